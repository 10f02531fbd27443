// Baseline solution for tasks/kernels/embedding_bf16 (embedding_gather_bf16):
//   out[t, :] = table[ids[t], :]    (int64 ids, bfloat16 table [V, H])
// An id outside [0, V) yields a zero row instead of an out-of-bounds read.
//
// Knobs (compile-time macros, every combination is correct for any T, V, H):
//   BLOCK  threads per block (power of two, 32..1024)
//   VEC    bf16 elements per load/store (1, 2, 4, 8); falls back to 1 at run time when
//          H or a pointer is not aligned for it
//   ROWS   output rows per block (1, 2, 4, 8): the block copies them one after another
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
#ifndef ROWS
#define ROWS 1
#endif

#if BLOCK < 32 || BLOCK > 1024 || (BLOCK & (BLOCK - 1)) != 0
#error "BLOCK must be a power of two in 32..1024"
#endif
#if VEC != 1 && VEC != 2 && VEC != 4 && VEC != 8
#error "VEC must be 1, 2, 4 or 8"
#endif
#if ROWS != 1 && ROWS != 2 && ROWS != 4 && ROWS != 8
#error "ROWS must be 1, 2, 4 or 8"
#endif

typedef __nv_bfloat16 bf16;

template <int V>
struct alignas(2 * V) Pack {
  bf16 h[V];
};

template <int V>
__global__ void embedding_kernel(const int64_t* __restrict__ ids, const bf16* __restrict__ table,
                                 bf16* __restrict__ out, int64_t T, int64_t Vocab, int64_t H) {
  for (int r = 0; r < ROWS; ++r) {
    const int64_t t = int64_t(blockIdx.x) * ROWS + r;
    if (t >= T) return;
    const int64_t id = ids[t];
    const bool valid = id >= 0 && id < Vocab;
    const bf16* src = table + (valid ? id : 0) * H;
    bf16* dst = out + t * H;
    for (int64_t i = int64_t(threadIdx.x) * V; i < H; i += int64_t(BLOCK) * V) {
      Pack<V> p;
      if (valid) {
        p = *reinterpret_cast<const Pack<V>*>(src + i);
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) p.h[j] = __float2bfloat16(0.f);
      }
      *reinterpret_cast<Pack<V>*>(dst + i) = p;
    }
  }
}

static bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 2 || num_outputs != 1) return 1;
  const ratchet_tensor& I = inputs[0];
  const ratchet_tensor& W = inputs[1];
  ratchet_tensor& O = outputs[0];
  if (I.dtype != RATCHET_INT64 || W.dtype != RATCHET_BFLOAT16 || O.dtype != RATCHET_BFLOAT16)
    return 2;
  if (I.ndim != 1 || W.ndim != 2 || O.ndim != 2) return 3;
  const int64_t T = I.shape[0], Vocab = W.shape[0], H = W.shape[1];
  if (O.shape[0] != T || O.shape[1] != H || H <= 0) return 3;
  if (T == 0) return 0;
  const int64_t grid = (T + ROWS - 1) / ROWS;
  if (grid > INT32_MAX) return 3;

  const int64_t* ids = static_cast<const int64_t*>(I.data);
  const bf16* table = static_cast<const bf16*>(W.data);
  bf16* out = static_cast<bf16*>(O.data);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (H % VEC == 0 && aligned(table, 2 * VEC) && aligned(out, 2 * VEC))
    embedding_kernel<VEC><<<(unsigned)grid, BLOCK, 0, s>>>(ids, table, out, T, Vocab, H);
  else
    embedding_kernel<1><<<(unsigned)grid, BLOCK, 0, s>>>(ids, table, out, T, Vocab, H);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "embedding_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
}
