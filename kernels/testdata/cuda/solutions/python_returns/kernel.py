def axpy(a, b, alpha):
    return a + alpha * b
