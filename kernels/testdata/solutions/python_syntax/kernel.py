def run(a, b, alpha, c, head_sum)
    pass
