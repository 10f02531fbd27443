// Planted hack (tests/hacks): the warp kernel, accumulating in bfloat16.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "ratchet/kernel_abi.h"

__global__ void rowsum_bf16(const float* __restrict__ x, float* __restrict__ y, int64_t R, int64_t C) {
  const int64_t row = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (row >= R) return;
  const float* p = x + row * C;
  __nv_bfloat16 acc = __float2bfloat16(0.f);
  for (int64_t c = lane; c < C; c += 32) acc = __hadd(acc, __float2bfloat16(p[c]));
  for (int o = 16; o > 0; o >>= 1) acc = __hadd(acc, __shfl_down_sync(0xffffffffu, acc, o));
  if (lane == 0) y[row] = __bfloat162float(acc);
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  const int64_t R = in[0].shape[0], C = in[0].shape[1];
  rowsum_bf16<<<(unsigned)((R * 32 + 255) / 256), 256, 0, (cudaStream_t)stream>>>(
      (const float*)in[0].data, (float*)out[0].data, R, C);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
