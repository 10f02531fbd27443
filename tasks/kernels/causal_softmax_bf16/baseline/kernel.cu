// Baseline solution for tasks/kernels/causal_softmax_bf16 (attention_causal_softmax_bf16):
// for every score row (bh, q) over keys c < S:
//   x[c]     = scores[bh, q, c] * scale   if c <= q,  -inf otherwise
//   probs[c] = exp(x[c] - max(x)) / sum(exp(x - max(x)))   (exactly 0 above the diagonal)
// bfloat16 in and out, float32 inside, scale a float32 scalar on the device.
// One thread block per row, three passes (max, sum, write).
//
// Knobs (compile-time macros, every combination is correct for any BH, S):
//   BLOCK        threads per block (power of two, 32..1024)
//   VEC          bf16 elements per load/store (1, 2, 4, 8); falls back to 1 at run time
//                when S or a pointer is not aligned for it
//   SKIP_MASKED  0: read the whole row and mask in registers (as the reference)
//                1: read only the causal part (keys <= q); still write the zeros
//   FAST_EXP     0: expf and a true division; 1: __expf and a reciprocal multiply
#include <ratchet/kernel_abi.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef VEC
#define VEC 1
#endif
#ifndef SKIP_MASKED
#define SKIP_MASKED 0
#endif
#ifndef FAST_EXP
#define FAST_EXP 0
#endif

#if BLOCK < 32 || BLOCK > 1024 || (BLOCK & (BLOCK - 1)) != 0
#error "BLOCK must be a power of two in 32..1024"
#endif
#if VEC != 1 && VEC != 2 && VEC != 4 && VEC != 8
#error "VEC must be 1, 2, 4 or 8"
#endif
#if SKIP_MASKED != 0 && SKIP_MASKED != 1
#error "SKIP_MASKED must be 0 or 1"
#endif
#if FAST_EXP != 0 && FAST_EXP != 1
#error "FAST_EXP must be 0 or 1"
#endif

#if FAST_EXP
#define EXP __expf
#else
#define EXP expf
#endif

typedef __nv_bfloat16 bf16;

template <int V>
struct alignas(2 * V) Pack {
  bf16 h[V];
};

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <bool kMax>
__device__ __forceinline__ float block_reduce(float v, float* sm) {
  v = kMax ? warp_max(v) : warp_sum(v);
  if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = kMax ? -INFINITY : 0.f;
  for (int i = 0; i < BLOCK / 32; ++i) r = kMax ? fmaxf(r, sm[i]) : r + sm[i];
  __syncthreads();
  return r;
}

template <int V>
__global__ void causal_softmax_kernel(const bf16* __restrict__ scores,
                                      const float* __restrict__ scale_p,
                                      bf16* __restrict__ probs, int64_t S) {
  __shared__ float sm[32];
  const int64_t row = blockIdx.x;  // bh * S + q
  const int64_t q = row % S;
  const bf16* xr = scores + row * S;
  bf16* yr = probs + row * S;
  const float scale = *scale_p;
#if SKIP_MASKED
  const int64_t read_end = q + 1;  // packs starting at or before the diagonal
#else
  const int64_t read_end = S;
#endif

  float m = -INFINITY;
  for (int64_t i = int64_t(threadIdx.x) * V; i < read_end; i += int64_t(BLOCK) * V) {
    Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
#pragma unroll
    for (int j = 0; j < V; ++j)
      if (i + j <= q) m = fmaxf(m, __bfloat162float(p.h[j]) * scale);
  }
  m = block_reduce<true>(m, sm);  // finite: key 0 is always visible

  float s = 0.f;
  for (int64_t i = int64_t(threadIdx.x) * V; i < read_end; i += int64_t(BLOCK) * V) {
    Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
#pragma unroll
    for (int j = 0; j < V; ++j)
      if (i + j <= q) s += EXP(__bfloat162float(p.h[j]) * scale - m);
  }
  s = block_reduce<false>(s, sm);
#if FAST_EXP
  const float inv = 1.f / s;
#endif

  for (int64_t i = int64_t(threadIdx.x) * V; i < S; i += int64_t(BLOCK) * V) {
    Pack<V> o;
    if (i <= q) {
      Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        float e = i + j <= q ? EXP(__bfloat162float(p.h[j]) * scale - m) : 0.f;
#if FAST_EXP
        o.h[j] = __float2bfloat16(e * inv);
#else
        o.h[j] = __float2bfloat16(e / s);
#endif
      }
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) o.h[j] = __float2bfloat16(0.f);
    }
    *reinterpret_cast<Pack<V>*>(yr + i) = o;
  }
}

static bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 2 || num_outputs != 1) return 1;
  const ratchet_tensor& X = inputs[0];
  const ratchet_tensor& Sc = inputs[1];
  ratchet_tensor& P = outputs[0];
  if (X.dtype != RATCHET_BFLOAT16 || Sc.dtype != RATCHET_FLOAT32 || P.dtype != RATCHET_BFLOAT16)
    return 2;
  if (X.ndim != 3 || P.ndim != 3) return 3;
  const int64_t BH = X.shape[0], S = X.shape[2];
  if (X.shape[1] != S || P.shape[0] != BH || P.shape[1] != S || P.shape[2] != S) return 3;
  if (BH == 0 || S == 0) return 0;
  const int64_t rows = BH * S;
  if (rows > INT32_MAX) return 3;

  const bf16* x = static_cast<const bf16*>(X.data);
  const float* scale = static_cast<const float*>(Sc.data);
  bf16* y = static_cast<bf16*>(P.data);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (S % VEC == 0 && aligned(x, 2 * VEC) && aligned(y, 2 * VEC))
    causal_softmax_kernel<VEC><<<(unsigned)rows, BLOCK, 0, s>>>(x, scale, y, S);
  else
    causal_softmax_kernel<1><<<(unsigned)rows, BLOCK, 0, s>>>(x, scale, y, S);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "causal_softmax_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
}
