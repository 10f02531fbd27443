// Baseline solution for tasks/kernels/argmax_bf16 (argmax_bf16_vocab):
//   index[b] = argmax_v logits[b, v]   (int64; the first index on ties, as torch.argmax)
// bfloat16 logits in. One thread block per row.
//
// Knobs (compile-time macros, every combination is correct for any B, V):
//   BLOCK   threads per block (power of two, 32..1024)
//   VEC     bf16 elements per load (1, 2, 4, 8); falls back to 1 at run time when V or
//           the pointer is not aligned for it
//   REDUCE  0: shared-memory tree over (value, index) pairs; 1: warp shuffles + one step
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
#ifndef REDUCE
#define REDUCE 0
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

template <int V>
struct alignas(2 * V) Pack {
  bf16 h[V];
};

// (v, i) := the better of (v, i) and (v2, i2): larger value, then smaller index.
__device__ __forceinline__ void better(float& v, int64_t& i, float v2, int64_t i2) {
  if (v2 > v || (v2 == v && i2 < i)) {
    v = v2;
    i = i2;
  }
}

template <int V>
__global__ void argmax_kernel(const bf16* __restrict__ logits, int64_t* __restrict__ index,
                              int64_t V_total) {
  const bf16* xr = logits + int64_t(blockIdx.x) * V_total;
  float best = -INFINITY;
  int64_t best_i = V_total;  // larger than any real index: loses every tie
  for (int64_t i = int64_t(threadIdx.x) * V; i < V_total; i += int64_t(BLOCK) * V) {
    Pack<V> p = *reinterpret_cast<const Pack<V>*>(xr + i);
#pragma unroll
    for (int j = 0; j < V; ++j) better(best, best_i, __bfloat162float(p.h[j]), i + j);
  }
#if REDUCE == 0
  __shared__ float sv[BLOCK];
  __shared__ int64_t si[BLOCK];
  sv[threadIdx.x] = best;
  si[threadIdx.x] = best_i;
  __syncthreads();
  for (int s = BLOCK / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      float v = sv[threadIdx.x];
      int64_t i = si[threadIdx.x];
      better(v, i, sv[threadIdx.x + s], si[threadIdx.x + s]);
      sv[threadIdx.x] = v;
      si[threadIdx.x] = i;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) index[blockIdx.x] = si[0] < V_total ? si[0] : 0;
#else
  for (int o = 16; o > 0; o >>= 1) {
    const float v2 = __shfl_xor_sync(0xffffffffu, best, o);
    const int64_t i2 = __shfl_xor_sync(0xffffffffu, best_i, o);
    better(best, best_i, v2, i2);
  }
  __shared__ float sv[32];
  __shared__ int64_t si[32];
  if ((threadIdx.x & 31) == 0) {
    sv[threadIdx.x >> 5] = best;
    si[threadIdx.x >> 5] = best_i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    float v = -INFINITY;
    int64_t i = V_total;
    for (int w = 0; w < BLOCK / 32; ++w) better(v, i, sv[w], si[w]);
    index[blockIdx.x] = i < V_total ? i : 0;  // an all-NaN row has no max; say 0
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
  ratchet_tensor& I = outputs[0];
  if (X.dtype != RATCHET_BFLOAT16 || I.dtype != RATCHET_INT64) return 2;
  if (X.ndim != 2 || I.ndim != 1) return 3;
  const int64_t B = X.shape[0], V = X.shape[1];
  if (I.shape[0] != B || V <= 0 || B > INT32_MAX) return 3;
  if (B == 0) return 0;

  const bf16* x = static_cast<const bf16*>(X.data);
  int64_t* idx = static_cast<int64_t*>(I.data);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (V % VEC == 0 && aligned(x, 2 * VEC))
    argmax_kernel<VEC><<<(unsigned)B, BLOCK, 0, s>>>(x, idx, V);
  else
    argmax_kernel<1><<<(unsigned)B, BLOCK, 0, s>>>(x, idx, V);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "argmax_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
}
