// Planted: computes the right answer, then scribbles over its input.
#include <cuda_runtime.h>
#include "ratchet/kernel_abi.h"

__global__ void axpy_then_clobber(float* a, const float* b, const float* alpha, float* c, int64_t n) {
  const float s = *alpha;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    c[i] = a[i] + s * b[i];
    a[i] = 0.0f;
  }
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  axpy_then_clobber<<<1024, 256, 0, (cudaStream_t)stream>>>((float*)in[0].data, (const float*)in[1].data,
                                                            (const float*)in[2].data, (float*)out[0].data,
                                                            in[0].shape[0]);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
