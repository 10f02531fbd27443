# A Triton solution on the GPU: a wrong kernel (an offset), launched on the harness's tensors.
import torch
import triton
import triton.language as tl


@triton.jit
def _axpy(a_ptr, b_ptr, c_ptr, alpha, n, BLOCK: tl.constexpr):
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = i < n
    a = tl.load(a_ptr + i, mask=m)
    b = tl.load(b_ptr + i, mask=m)
    tl.store(c_ptr + i, a + alpha * b + 0.25, mask=m)


def run(a, b, alpha, c):
    n = a.numel()
    _axpy[(triton.cdiv(n, 1024),)](a, b, c, alpha, n, BLOCK=1024)
