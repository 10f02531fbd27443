// Baseline solution for tasks/kernels/swiglu_bf16 (swiglu_bf16):
//   out[t, i] = silu(x[t, i]) * x[t, I + i],  silu(g) = g / (1 + exp(-g))
// bfloat16 in and out, float32 inside. Elementwise over T x I outputs.
//
// Knobs (compile-time macros, every combination is correct for any T, I):
//   BLOCK        threads per block (power of two, 32..1024)
//   VEC          outputs per thread and iteration, moved as one aligned access (1, 2, 4,
//                8); falls back to 1 at run time when I or a pointer is not aligned
//   FAST_MATH    0: expf and a true division; 1: __expf and __fdividef (SFU intrinsics)
//   GRID_STRIDE  0: one VEC-group per thread, as many blocks as needed
//                1: a grid-stride loop over 8 blocks per SM
#include <ratchet/kernel_abi.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef VEC
#define VEC 1
#endif
#ifndef FAST_MATH
#define FAST_MATH 0
#endif
#ifndef GRID_STRIDE
#define GRID_STRIDE 0
#endif

#if BLOCK < 32 || BLOCK > 1024 || (BLOCK & (BLOCK - 1)) != 0
#error "BLOCK must be a power of two in 32..1024"
#endif
#if VEC != 1 && VEC != 2 && VEC != 4 && VEC != 8
#error "VEC must be 1, 2, 4 or 8"
#endif
#if FAST_MATH != 0 && FAST_MATH != 1
#error "FAST_MATH must be 0 or 1"
#endif
#if GRID_STRIDE != 0 && GRID_STRIDE != 1
#error "GRID_STRIDE must be 0 or 1"
#endif

typedef __nv_bfloat16 bf16;

template <int V>
struct alignas(2 * V) Pack {
  bf16 h[V];
};

__device__ __forceinline__ float silu_mul(float g, float u) {
#if FAST_MATH
  return __fdividef(g, 1.f + __expf(-g)) * u;
#else
  return g / (1.f + expf(-g)) * u;
#endif
}

// groups = T * I / V: group e covers outputs [e*V, e*V + V) of the flattened [T, I].
template <int V>
__global__ void swiglu_kernel(const bf16* __restrict__ x, bf16* __restrict__ out, int64_t I,
                              int64_t groups) {
  int64_t e = int64_t(blockIdx.x) * BLOCK + threadIdx.x;
#if GRID_STRIDE
  for (; e < groups; e += int64_t(gridDim.x) * BLOCK) {
#else
  if (e < groups) {
#endif
    const int64_t o = e * V;
    const int64_t t = o / I, i = o - t * I;
    const bf16* row = x + t * 2 * I;
    Pack<V> g = *reinterpret_cast<const Pack<V>*>(row + i);
    Pack<V> u = *reinterpret_cast<const Pack<V>*>(row + I + i);
    Pack<V> r;
#pragma unroll
    for (int j = 0; j < V; ++j)
      r.h[j] = __float2bfloat16(silu_mul(__bfloat162float(g.h[j]), __bfloat162float(u.h[j])));
    *reinterpret_cast<Pack<V>*>(out + o) = r;
  }
}

template <int V>
static void launch(const bf16* x, bf16* out, int64_t T, int64_t I, cudaStream_t stream) {
  const int64_t groups = T * I / V;
  int64_t grid = (groups + BLOCK - 1) / BLOCK;
#if GRID_STRIDE
  int dev = 0, sms = 132;
  if (cudaGetDevice(&dev) == cudaSuccess)
    cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
  if (grid > int64_t(sms) * 8) grid = int64_t(sms) * 8;
#endif
  swiglu_kernel<V><<<(unsigned)grid, BLOCK, 0, stream>>>(x, out, I, groups);
}

static bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 1 || num_outputs != 1) return 1;
  const ratchet_tensor& X = inputs[0];
  ratchet_tensor& O = outputs[0];
  if (X.dtype != RATCHET_BFLOAT16 || O.dtype != RATCHET_BFLOAT16) return 2;
  if (X.ndim != 2 || O.ndim != 2) return 3;
  const int64_t T = X.shape[0], I = O.shape[1];
  if (O.shape[0] != T || X.shape[1] != 2 * I || I <= 0) return 3;
  if (T == 0) return 0;
  if (T * I / BLOCK >= INT32_MAX) return 3;  // grid.x limit with VEC = 1

  const bf16* x = static_cast<const bf16*>(X.data);
  bf16* out = static_cast<bf16*>(O.data);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (I % VEC == 0 && aligned(x, 2 * VEC) && aligned(out, 2 * VEC))
    launch<VEC>(x, out, T, I, s);
  else
    launch<1>(x, out, T, I, s);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "swiglu_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
}
