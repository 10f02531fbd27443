// Planted: computes the right answer and writes 16 elements past the end of c.
#include <cuda_runtime.h>
#include "ratchet/kernel_abi.h"

__global__ void axpy_kernel(const float* a, const float* b, const float* alpha, float* c, int64_t n) {
  const float s = *alpha;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n + 16; i += (int64_t)gridDim.x * blockDim.x)
    c[i] = i < n ? a[i] + s * b[i] : 0.0f;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  axpy_kernel<<<1024, 256, 0, (cudaStream_t)stream>>>((const float*)in[0].data, (const float*)in[1].data,
                                                      (const float*)in[2].data, (float*)out[0].data,
                                                      in[0].shape[0]);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
