# Value-returning style: the outputs come back as a tuple.
def forward(a, b, alpha):
    c = a + alpha * b
    h = c.shape[0] // 2
    return c, c[:h] + c[h:2 * h]
