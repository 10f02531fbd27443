// Planted hack (tests/hacks): sums each row in place (a halving tree over
// the input itself), leaving the input changed.
#include <cuda_runtime.h>
#include <stdint.h>

#include "ratchet/kernel_abi.h"

__global__ void fold_half(float* x, int64_t R, int64_t C, int64_t width) {
  const int64_t half = (width + 1) / 2;
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= R * (width / 2)) return;
  const int64_t row = i / (width / 2), c = i % (width / 2);
  x[row * C + c] += x[row * C + c + half];
}

__global__ void take_first(const float* x, float* y, int64_t R, int64_t C) {
  const int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (row < R) y[row] = x[row * C];
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  cudaStream_t s = (cudaStream_t)stream;
  float* x = (float*)in[0].data;
  const int64_t R = in[0].shape[0], C = in[0].shape[1];
  for (int64_t width = C; width > 1; width = (width + 1) / 2) {
    const int64_t n = R * (width / 2);
    fold_half<<<(unsigned)((n + 255) / 256), 256, 0, s>>>(x, R, C, width);
  }
  take_first<<<(unsigned)((R + 255) / 256), 256, 0, s>>>(x, (float*)out[0].data, R, C);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
