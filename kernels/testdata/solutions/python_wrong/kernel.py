def run(a, b, alpha, c, head_sum):
    c.copy_(a + b)  # forgets alpha
    h = c.shape[0] // 2
    head_sum.copy_(c[:h] + c[h:2 * h])
