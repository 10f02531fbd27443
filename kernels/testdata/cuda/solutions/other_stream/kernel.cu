// Planted: launches on a private non-blocking stream and returns without
// joining it, so events on the caller's stream see almost nothing. CUPTI's
// span still covers it (T_k is right) and the events disagree: flagged.
#include <cuda_runtime.h>
#include "ratchet/kernel_abi.h"

__global__ void axpy_kernel(const float* a, const float* b, const float* alpha, float* c, int64_t n) {
  const float s = *alpha;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    c[i] = a[i] + s * b[i];
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  static cudaStream_t hidden = nullptr;
  if (hidden == nullptr && cudaStreamCreateWithFlags(&hidden, cudaStreamNonBlocking) != cudaSuccess) return 3;
  const int64_t n = in[0].shape[0];
  // Several passes so that the hidden work is long enough to measure.
  for (int rep = 0; rep < 20; ++rep) {
    axpy_kernel<<<1024, 256, 0, hidden>>>((const float*)in[0].data, (const float*)in[1].data,
                                          (const float*)in[2].data, (float*)out[0].data, n);
  }
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
