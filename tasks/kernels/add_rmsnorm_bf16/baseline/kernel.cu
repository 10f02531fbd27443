// Baseline solution for tasks/kernels/add_rmsnorm_bf16 (fused_add_rmsnorm_bf16):
//   residual_out = bf16(x + residual)
//   output       = residual_out * rsqrt(mean(residual_out^2) + eps) * weight
// per row, bfloat16 in and out, statistics in float32 (from the bf16-rounded sum, as
// the reference), eps a float32 scalar on the device.
//
// Knobs (compile-time macros, every combination is correct for any T, H):
//   VARIANT  0: one thread block per row; 1: one warp per row (BLOCK/32 rows per block)
//   BLOCK    threads per block (power of two, 32..1024)
//   VEC      bf16 elements per load/store (1, 2, 4, 8); falls back to 1 at run time
//            when H or a pointer is not aligned for it
//   REREAD   second pass source. 0: recompute x + residual; 1: read back residual_out
//            (each thread reads only what it wrote itself, so no extra sync is needed)
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
#ifndef REREAD
#define REREAD 0
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
#if REREAD != 0 && REREAD != 1
#error "REREAD must be 0 or 1"
#endif

typedef __nv_bfloat16 bf16;

template <int V>
struct alignas(2 * V) Pack {
  bf16 h[V];
};

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Sum over the lanes that share a row: the block (VARIANT 0) or the warp.
__device__ __forceinline__ float row_reduce(float v, float* sm) {
  v = warp_sum(v);
#if VARIANT == 0
  if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = 0.f;
  for (int i = 0; i < BLOCK / 32; ++i) r += sm[i];
  __syncthreads();
  return r;
#else
  (void)sm;
  return v;
#endif
}

// r = bf16(x + residual) for V elements.
template <int V>
__device__ __forceinline__ Pack<V> add_pack(const bf16* x, const bf16* res) {
  Pack<V> a = *reinterpret_cast<const Pack<V>*>(x);
  Pack<V> b = *reinterpret_cast<const Pack<V>*>(res);
  Pack<V> r;
#pragma unroll
  for (int j = 0; j < V; ++j)
    r.h[j] = __float2bfloat16(__bfloat162float(a.h[j]) + __bfloat162float(b.h[j]));
  return r;
}

template <int V>
__global__ void add_rmsnorm_kernel(const bf16* __restrict__ x, const bf16* __restrict__ res,
                                   const bf16* __restrict__ w, const float* __restrict__ eps_p,
                                   bf16* __restrict__ y, bf16* __restrict__ rout, int64_t T,
                                   int H) {
  __shared__ float sm[32];
#if VARIANT == 0
  const int64_t row = blockIdx.x;
  const int lane = threadIdx.x, lanes = BLOCK;
#else
  const int64_t row = int64_t(blockIdx.x) * (BLOCK / 32) + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31, lanes = 32;
#endif
  if (row >= T) return;
  const int64_t off = row * H;

  float ss = 0.f;
  for (int i = lane * V; i < H; i += lanes * V) {
    Pack<V> r = add_pack<V>(x + off + i, res + off + i);
    *reinterpret_cast<Pack<V>*>(rout + off + i) = r;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float f = __bfloat162float(r.h[j]);
      ss += f * f;
    }
  }
  const float inv_rms = rsqrtf(row_reduce(ss, sm) / H + *eps_p);
  for (int i = lane * V; i < H; i += lanes * V) {
#if REREAD == 0
    Pack<V> r = add_pack<V>(x + off + i, res + off + i);
#else
    Pack<V> r = *reinterpret_cast<const Pack<V>*>(rout + off + i);
#endif
    Pack<V> wp = *reinterpret_cast<const Pack<V>*>(w + i);
    Pack<V> o;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      float f = __bfloat162float(r.h[j]) * inv_rms;
      o.h[j] = __float2bfloat16(f * __bfloat162float(wp.h[j]));
    }
    *reinterpret_cast<Pack<V>*>(y + off + i) = o;
  }
}

template <int V>
static void launch(const bf16* x, const bf16* res, const bf16* w, const float* eps, bf16* y,
                   bf16* rout, int64_t T, int H, cudaStream_t stream) {
#if VARIANT == 0
  const int64_t grid = T;
#else
  const int64_t grid = (T + BLOCK / 32 - 1) / (BLOCK / 32);
#endif
  add_rmsnorm_kernel<V><<<(unsigned)grid, BLOCK, 0, stream>>>(x, res, w, eps, y, rout, T, H);
}

static bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 4 || num_outputs != 2) return 1;
  const ratchet_tensor& X = inputs[0];
  const ratchet_tensor& R = inputs[1];
  const ratchet_tensor& W = inputs[2];
  const ratchet_tensor& E = inputs[3];
  ratchet_tensor& Y = outputs[0];
  ratchet_tensor& RO = outputs[1];
  if (X.dtype != RATCHET_BFLOAT16 || R.dtype != RATCHET_BFLOAT16 ||
      W.dtype != RATCHET_BFLOAT16 || E.dtype != RATCHET_FLOAT32 ||
      Y.dtype != RATCHET_BFLOAT16 || RO.dtype != RATCHET_BFLOAT16)
    return 2;
  if (X.ndim != 2 || R.ndim != 2 || W.ndim != 1 || Y.ndim != 2 || RO.ndim != 2) return 3;
  const int64_t T = X.shape[0], H = X.shape[1];
  const ratchet_tensor* same_shape[3] = {&R, &Y, &RO};
  for (const ratchet_tensor* t : same_shape)
    if (t->shape[0] != T || t->shape[1] != H) return 3;
  if (W.shape[0] != H || H <= 0 || H > INT32_MAX || T > INT32_MAX) return 3;
  if (T == 0) return 0;

  const bf16* x = static_cast<const bf16*>(X.data);
  const bf16* res = static_cast<const bf16*>(R.data);
  const bf16* w = static_cast<const bf16*>(W.data);
  const float* eps = static_cast<const float*>(E.data);
  bf16* y = static_cast<bf16*>(Y.data);
  bf16* rout = static_cast<bf16*>(RO.data);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const bool vec_ok = H % VEC == 0 && aligned(x, 2 * VEC) && aligned(res, 2 * VEC) &&
                      aligned(w, 2 * VEC) && aligned(y, 2 * VEC) && aligned(rout, 2 * VEC);
  if (vec_ok)
    launch<VEC>(x, res, w, eps, y, rout, T, (int)H, s);
  else
    launch<1>(x, res, w, eps, y, rout, T, (int)H, s);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "add_rmsnorm_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
}
