// Baseline solution for tasks/kernels/logsumexp_bf16 (logsumexp_bf16_vocab):
//   lse[t] = m + log(sum_v exp(logits[t, v] - m)),  m = max_v logits[t, v]
// bfloat16 logits in, float32 out. One thread block per row.
//
// Knobs (compile-time macros, every combination is correct for any T, V):
//   BLOCK   threads per block (power of two, 32..1024)
//   VEC     bf16 elements per load (1, 2, 4, 8); falls back to 1 at run time when V or
//           the pointer is not aligned for it
//   ONLINE  0: two passes over the row (max, then sum of exp), as the reference
//           1: one pass with a running (max, sum) pair rescaled on a new max
//   FAST_EXP 0: expf/logf; 1: __expf/__logf (SFU intrinsics, a few ulp less accurate)
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
#ifndef ONLINE
#define ONLINE 0
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
#if ONLINE != 0 && ONLINE != 1
#error "ONLINE must be 0 or 1"
#endif
#if FAST_EXP != 0 && FAST_EXP != 1
#error "FAST_EXP must be 0 or 1"
#endif

#if FAST_EXP
#define EXP __expf
#define LOG __logf
#else
#define EXP expf
#define LOG logf
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

// Reduction over the block; every thread gets the result. sm has 32 floats.
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

// Merges running softmax statistics (m, s): s is the sum of exp(x - m).
__device__ __forceinline__ void merge(float& m, float& s, float m2, float s2) {
  if (m2 == -INFINITY) return;
  if (m == -INFINITY) {
    m = m2;
    s = s2;
    return;
  }
  const float mm = fmaxf(m, m2);
  s = s * EXP(m - mm) + s2 * EXP(m2 - mm);
  m = mm;
}

template <int V>
__global__ void logsumexp_kernel(const bf16* __restrict__ logits, float* __restrict__ lse,
                                 int64_t V_total) {
  __shared__ float sm[32];
  const bf16* xr = logits + int64_t(blockIdx.x) * V_total;
#if ONLINE == 0
  float m = -INFINITY;
  for (int64_t i = int64_t(threadIdx.x) * V; i < V_total; i += int64_t(BLOCK) * V) {
    Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
#pragma unroll
    for (int j = 0; j < V; ++j) m = fmaxf(m, __bfloat162float(p.h[j]));
  }
  m = block_reduce<true>(m, sm);
  float s = 0.f;
  for (int64_t i = int64_t(threadIdx.x) * V; i < V_total; i += int64_t(BLOCK) * V) {
    Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
#pragma unroll
    for (int j = 0; j < V; ++j) s += EXP(__bfloat162float(p.h[j]) - m);
  }
  s = block_reduce<false>(s, sm);
  if (threadIdx.x == 0) lse[blockIdx.x] = m + LOG(s);
#else
  float m = -INFINITY, s = 0.f;
  for (int64_t i = int64_t(threadIdx.x) * V; i < V_total; i += int64_t(BLOCK) * V) {
    Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      const float f = __bfloat162float(p.h[j]);
      if (f > m) {
        s = (m == -INFINITY ? 0.f : s * EXP(m - f)) + 1.f;
        m = f;
      } else {
        s += EXP(f - m);
      }
    }
  }
  // Warp, then block: merge (m, s) pairs.
  for (int o = 16; o > 0; o >>= 1) {
    const float m2 = __shfl_xor_sync(0xffffffffu, m, o);
    const float s2 = __shfl_xor_sync(0xffffffffu, s, o);
    merge(m, s, m2, s2);
  }
  __shared__ float sm_s[32];
  if ((threadIdx.x & 31) == 0) {
    sm[threadIdx.x >> 5] = m;
    sm_s[threadIdx.x >> 5] = s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float mt = -INFINITY, st = 0.f;
    for (int i = 0; i < BLOCK / 32; ++i) merge(mt, st, sm[i], sm_s[i]);
    lse[blockIdx.x] = mt + LOG(st);
  }
#endif
}

static bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 1 || num_outputs != 1) return 1;
  const ratchet_tensor& X = inputs[0];
  ratchet_tensor& L = outputs[0];
  if (X.dtype != RATCHET_BFLOAT16 || L.dtype != RATCHET_FLOAT32) return 2;
  if (X.ndim != 2 || L.ndim != 1) return 3;
  const int64_t T = X.shape[0], V = X.shape[1];
  if (L.shape[0] != T || V <= 0 || T > INT32_MAX) return 3;
  if (T == 0) return 0;

  const bf16* x = static_cast<const bf16*>(X.data);
  float* lse = static_cast<float*>(L.data);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (V % VEC == 0 && aligned(x, 2 * VEC))
    logsumexp_kernel<VEC><<<(unsigned)T, BLOCK, 0, s>>>(x, lse, V);
  else
    logsumexp_kernel<1><<<(unsigned)T, BLOCK, 0, s>>>(x, lse, V);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "logsumexp_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
}
