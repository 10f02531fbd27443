// Baseline solution for tasks/kernels/rmsnorm_bf16 (rmsnorm_bf16):
//   output[t, :] = hidden_states[t, :] * rsqrt(mean(hidden_states[t, :]^2) + eps) * weight
// bfloat16 in and out, statistics in float32, eps a float32 scalar on the device.
//
// Knobs (compile-time macros, every combination is correct for any T, H):
//   VARIANT  0: one thread block per row (block-wide reduction)
//            1: one warp per row, BLOCK/32 rows per block (shuffle reduction only)
//   BLOCK    threads per block (power of two, 32..1024)
//   VEC      bf16 elements per load/store (1, 2, 4, 8 = up to 16-byte accesses); falls
//            back to 1 at run time when H or a pointer is not aligned for it
//   REDUCE   VARIANT 0 only. 0: shared-memory tree; 1: warp shuffles + one smem step
#include <ratchet/kernel_abi.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#ifndef VARIANT
#define VARIANT 0
#endif
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef VEC
#define VEC 1
#endif
#ifndef REDUCE
#define REDUCE 0
#endif

#if VARIANT != 0 && VARIANT != 1
#error "VARIANT must be 0 (block per row) or 1 (warp per row)"
#endif
#if BLOCK < 32 || BLOCK > 1024 || (BLOCK & (BLOCK - 1)) != 0
#error "BLOCK must be a power of two in 32..1024"
#endif
#if VEC != 1 && VEC != 2 && VEC != 4 && VEC != 8
#error "VEC must be 1, 2, 4 or 8"
#endif
#if REDUCE != 0 && REDUCE != 1
#error "REDUCE must be 0 (smem tree) or 1 (warp shuffle)"
#endif

typedef __nv_bfloat16 bf16;

// V consecutive bf16 values moved as one aligned access.
template <int V>
struct alignas(2 * V) Pack {
  bf16 h[V];
};

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum of v over the block; every thread gets the result. `sm` has BLOCK floats.
__device__ __forceinline__ float block_sum(float v, float* sm) {
#if REDUCE == 0
  sm[threadIdx.x] = v;
  __syncthreads();
  for (int s = BLOCK / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sm[threadIdx.x] += sm[threadIdx.x + s];
    __syncthreads();
  }
#else
  v = warp_sum(v);
  if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    float r = threadIdx.x < BLOCK / 32 ? sm[threadIdx.x] : 0.f;
    r = warp_sum(r);
    if (threadIdx.x == 0) sm[0] = r;
  }
  __syncthreads();
#endif
  float r = sm[0];
  __syncthreads();  // sm is reused by the next call
  return r;
}

// This thread's share (`lane` of `lanes`) of sum(x^2) over one row; the
// caller reduces it across the block or warp.
template <int V>
__device__ __forceinline__ float row_sum_sq(const bf16* xr, int H, int lane, int lanes) {
  float ss = 0.f;
  for (int i = lane * V; i < H; i += lanes * V) {
    Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float f = __bfloat162float(p.h[j]);
      ss += f * f;
    }
  }
  return ss;
}

// y = x * inv_rms * w over one row, `lanes` threads.
template <int V>
__device__ __forceinline__ void row_scale(const bf16* xr, const bf16* w, bf16* yr, int H,
                                          float inv_rms, int lane, int lanes) {
  for (int i = lane * V; i < H; i += lanes * V) {
    Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
    Pack<V> wp = *reinterpret_cast<const Pack<V>*>(w + i);
    Pack<V> o;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float f = __bfloat162float(p.h[j]) * inv_rms;
      o.h[j] = __float2bfloat16(f * __bfloat162float(wp.h[j]));
    }
    *reinterpret_cast<Pack<V>*>(yr + i) = o;
  }
}

template <int V>
__global__ void rmsnorm_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w,
                               const float* __restrict__ eps_p, bf16* __restrict__ y,
                               int64_t T, int H) {
  const float eps = *eps_p;
#if VARIANT == 0
  __shared__ float sm[BLOCK];
  const int64_t row = blockIdx.x;
  if (row >= T) return;
  const bf16* xr = x + row * H;
  float ss = block_sum(row_sum_sq<V>(xr, H, threadIdx.x, BLOCK), sm);
  float inv_rms = rsqrtf(ss / H + eps);
  row_scale<V>(xr, w, y + row * H, H, inv_rms, threadIdx.x, BLOCK);
#else
  const int64_t row = int64_t(blockIdx.x) * (BLOCK / 32) + (threadIdx.x >> 5);
  if (row >= T) return;  // whole warps exit together
  const int lane = threadIdx.x & 31;
  const bf16* xr = x + row * H;
  float ss = warp_sum(row_sum_sq<V>(xr, H, lane, 32));
  float inv_rms = rsqrtf(ss / H + eps);
  row_scale<V>(xr, w, y + row * H, H, inv_rms, lane, 32);
#endif
}

template <int V>
static void launch(const bf16* x, const bf16* w, const float* eps, bf16* y, int64_t T, int H,
                   cudaStream_t stream) {
#if VARIANT == 0
  const int64_t grid = T;
#else
  const int64_t grid = (T + BLOCK / 32 - 1) / (BLOCK / 32);
#endif
  rmsnorm_kernel<V><<<(unsigned)grid, BLOCK, 0, stream>>>(x, w, eps, y, T, H);
}

static bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 3 || num_outputs != 1) return 1;
  const ratchet_tensor& X = inputs[0];
  const ratchet_tensor& W = inputs[1];
  const ratchet_tensor& E = inputs[2];
  ratchet_tensor& Y = outputs[0];
  if (X.dtype != RATCHET_BFLOAT16 || W.dtype != RATCHET_BFLOAT16 || E.dtype != RATCHET_FLOAT32 ||
      Y.dtype != RATCHET_BFLOAT16)
    return 2;
  if (X.ndim != 2 || W.ndim != 1 || Y.ndim != 2) return 3;
  const int64_t T = X.shape[0], H = X.shape[1];
  if (W.shape[0] != H || Y.shape[0] != T || Y.shape[1] != H || H <= 0 || H > INT32_MAX) return 3;
  if (T == 0) return 0;
  if (T > INT32_MAX) return 3;  // grid.x limit

  const bf16* x = static_cast<const bf16*>(X.data);
  const bf16* w = static_cast<const bf16*>(W.data);
  const float* eps = static_cast<const float*>(E.data);
  bf16* y = static_cast<bf16*>(Y.data);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const bool vec_ok = H % VEC == 0 && aligned(x, 2 * VEC) && aligned(w, 2 * VEC) &&
                      aligned(y, 2 * VEC);
  if (vec_ok)
    launch<VEC>(x, w, eps, y, T, (int)H, s);
  else
    launch<1>(x, w, eps, y, T, (int)H, s);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "rmsnorm_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
}
