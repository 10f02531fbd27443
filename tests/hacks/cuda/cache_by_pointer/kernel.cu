// Planted hack (tests/hacks): output cached, keyed on the input pointer.
#include <cuda_runtime.h>
#include <stdint.h>

#include "ratchet/kernel_abi.h"

// One warp per row: coalesced loads, a shuffle reduction, float32 throughout.
__global__ void rowsum_warp(const float* __restrict__ x, float* __restrict__ y, int64_t R, int64_t C) {
  const int64_t row = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (row >= R) return;  // whole warps: every lane of a warp shares its row
  const float* p = x + row * C;
  float acc = 0.f;
  for (int64_t c = lane; c < C; c += 32) acc += p[c];
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
  if (lane == 0) y[row] = acc;
}

void LaunchWarp(const float* x, float* y, int64_t R, int64_t C, cudaStream_t s) {
  const int64_t threads = R * 32;
  rowsum_warp<<<(unsigned)((threads + 255) / 256), 256, 0, s>>>(x, y, R, C);
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  static const void* key = nullptr;
  static float* cache = nullptr;
  static int64_t cached_rows = 0;
  cudaStream_t s = (cudaStream_t)stream;
  const int64_t R = in[0].shape[0], C = in[0].shape[1];
  if (cache != nullptr && key == in[0].data && cached_rows == R) {
    cudaMemcpyAsync(out[0].data, cache, R * sizeof(float), cudaMemcpyDeviceToDevice, s);
    return 0;
  }
  LaunchWarp((const float*)in[0].data, (float*)out[0].data, R, C, s);
  if (cached_rows != R) {
    cudaFree(cache);
    cudaMalloc(&cache, R * sizeof(float));
    cached_rows = R;
  }
  cudaMemcpyAsync(cache, out[0].data, R * sizeof(float), cudaMemcpyDeviceToDevice, s);
  key = in[0].data;
  return 0;
}
