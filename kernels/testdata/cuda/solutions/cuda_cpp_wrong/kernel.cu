// c = a + alpha * b, launched on the current torch stream.
#include <cuda_runtime.h>

#include "axpy.h"

__global__ void axpy_kernel(const float* a, const float* b, float alpha, float* c, long n) {
  long i = blockIdx.x * (long)blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + OFFSET + alpha * b[i];
}

void axpy_launch(const float* a, const float* b, float alpha, float* c, long n,
                 cudaStream_t stream) {
  axpy_kernel<<<(n + 255) / 256, 256, 0, stream>>>(a, b, alpha, c, n);
}
