// Planted: correct within tolerance, but the low bits depend on how often it
// was called, so the same inputs twice give different bits.
#include <cuda_runtime.h>
#include "ratchet/kernel_abi.h"

__global__ void axpy_kernel(const float* a, const float* b, const float* alpha, float* c, int64_t n, float eps) {
  const float s = *alpha;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    c[i] = (a[i] + s * b[i]) * (1.0f + eps);
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  static int calls = 0;
  const float eps = (++calls % 2) ? 0.0f : 1e-6f;
  axpy_kernel<<<1024, 256, 0, (cudaStream_t)stream>>>((const float*)in[0].data, (const float*)in[1].data,
                                                      (const float*)in[2].data, (float*)out[0].data,
                                                      in[0].shape[0], eps);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
