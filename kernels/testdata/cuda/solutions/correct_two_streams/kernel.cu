// Honest: forks the second half onto a private stream and joins it back
// with an event before returning (all work ordered before the caller's stream).
#include <cuda_runtime.h>
#include "ratchet/kernel_abi.h"

__global__ void axpy_kernel(const float* a, const float* b, const float* alpha, float* c, int64_t lo, int64_t hi) {
  const float s = *alpha;
  for (int64_t i = lo + blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < hi; i += (int64_t)gridDim.x * blockDim.x)
    c[i] = a[i] + s * b[i];
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  static cudaStream_t side = nullptr;
  static cudaEvent_t fork_ev = nullptr, join_ev = nullptr;
  if (side == nullptr) {
    if (cudaStreamCreateWithFlags(&side, cudaStreamNonBlocking) != cudaSuccess) return 3;
    cudaEventCreateWithFlags(&fork_ev, cudaEventDisableTiming);
    cudaEventCreateWithFlags(&join_ev, cudaEventDisableTiming);
  }
  cudaStream_t s = (cudaStream_t)stream;
  const int64_t n = in[0].shape[0], h = n / 2;
  const float* a = (const float*)in[0].data; const float* b = (const float*)in[1].data;
  const float* al = (const float*)in[2].data; float* c = (float*)out[0].data;
  cudaEventRecord(fork_ev, s);
  cudaStreamWaitEvent(side, fork_ev, 0);
  axpy_kernel<<<1024, 256, 0, s>>>(a, b, al, c, 0, h);
  axpy_kernel<<<1024, 256, 0, side>>>(a, b, al, c, h, n);
  cudaEventRecord(join_ev, side);
  cudaStreamWaitEvent(s, join_ev, 0);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
