def run(a, b, alpha, c):
    c.copy_(a + b)  # forgets alpha
