// Baseline solution for tasks/kernels/rope_bf16 (rope_neox_bf16_d128): rotary position
// embedding, rotate-half layout. For each token t, head h and pair i < D/2:
//   out[t, h, i]       = x[t, h, i] * cos[t, i] - x[t, h, i + D/2] * sin[t, i]
//   out[t, h, i + D/2] = x[t, h, i + D/2] * cos[t, i] + x[t, h, i] * sin[t, i]
// applied to q and k; bfloat16 in and out, float32 cos/sin tables.
//
// Knobs (compile-time macros, every combination is correct for any T, Hq, Hkv, even D):
//   BLOCK   threads per block (power of two, 32..1024)
//   VEC     pairs per thread, moved as aligned accesses (1, 2, 4, 8); falls back to 1 at
//           run time when D/2 or a pointer is not aligned for it
//   FUSED   0: one launch for q, one for k; 1: one launch over the heads of both
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
#ifndef FUSED
#define FUSED 0
#endif

#if BLOCK < 32 || BLOCK > 1024 || (BLOCK & (BLOCK - 1)) != 0
#error "BLOCK must be a power of two in 32..1024"
#endif
#if VEC != 1 && VEC != 2 && VEC != 4 && VEC != 8
#error "VEC must be 1, 2, 4 or 8"
#endif
#if FUSED != 0 && FUSED != 1
#error "FUSED must be 0 or 1"
#endif

typedef __nv_bfloat16 bf16;

template <int V>
struct alignas(2 * V) Pack {
  bf16 h[V];
};
template <int V>
struct alignas(4 * V) PackF {
  float f[V];
};

struct RopeArgs {
  const bf16* q;
  const bf16* k;
  const float* cos;
  const float* sin;
  bf16* q_out;
  bf16* k_out;
  int64_t T;
  int Hq, Hkv, half;
};

// Rotates the heads [h_begin, h_end) of the combined list (q heads, then k heads).
template <int V>
__global__ void rope_kernel(RopeArgs a, int h_begin, int h_end) {
  const int heads = h_end - h_begin;
  const int groups_per_head = a.half / V;
  const int64_t total = a.T * heads * groups_per_head;
  const int64_t e = int64_t(blockIdx.x) * BLOCK + threadIdx.x;
  if (e >= total) return;
  const int g = int(e % groups_per_head);
  const int64_t th = e / groups_per_head;
  const int h = h_begin + int(th % heads);
  const int64_t t = th / heads;
  const int D = 2 * a.half;
  const bf16* src;
  bf16* dst;
  if (h < a.Hq) {
    src = a.q + (t * a.Hq + h) * D;
    dst = a.q_out + (t * a.Hq + h) * D;
  } else {
    src = a.k + (t * a.Hkv + (h - a.Hq)) * D;
    dst = a.k_out + (t * a.Hkv + (h - a.Hq)) * D;
  }
  const int i = g * V;
  Pack<V> x1 = *reinterpret_cast<const Pack<V>*>(src + i);
  Pack<V> x2 = *reinterpret_cast<const Pack<V>*>(src + a.half + i);
  PackF<V> c = *reinterpret_cast<const PackF<V>*>(a.cos + t * a.half + i);
  PackF<V> s = *reinterpret_cast<const PackF<V>*>(a.sin + t * a.half + i);
  Pack<V> o1, o2;
#pragma unroll
  for (int j = 0; j < V; ++j) {
    const float f1 = __bfloat162float(x1.h[j]), f2 = __bfloat162float(x2.h[j]);
    o1.h[j] = __float2bfloat16(f1 * c.f[j] - f2 * s.f[j]);
    o2.h[j] = __float2bfloat16(f2 * c.f[j] + f1 * s.f[j]);
  }
  *reinterpret_cast<Pack<V>*>(dst + i) = o1;
  *reinterpret_cast<Pack<V>*>(dst + a.half + i) = o2;
}

template <int V>
static void launch(const RopeArgs& a, int h_begin, int h_end, cudaStream_t stream) {
  const int64_t total = a.T * (h_end - h_begin) * (a.half / V);
  const int64_t grid = (total + BLOCK - 1) / BLOCK;
  if (grid > 0) rope_kernel<V><<<(unsigned)grid, BLOCK, 0, stream>>>(a, h_begin, h_end);
}

template <int V>
static void launch_all(const RopeArgs& a, cudaStream_t stream) {
#if FUSED
  launch<V>(a, 0, a.Hq + a.Hkv, stream);
#else
  launch<V>(a, 0, a.Hq, stream);
  launch<V>(a, a.Hq, a.Hq + a.Hkv, stream);
#endif
}

static bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 4 || num_outputs != 2) return 1;
  const ratchet_tensor& Q = inputs[0];
  const ratchet_tensor& K = inputs[1];
  const ratchet_tensor& C = inputs[2];
  const ratchet_tensor& S = inputs[3];
  ratchet_tensor& QO = outputs[0];
  ratchet_tensor& KO = outputs[1];
  if (Q.dtype != RATCHET_BFLOAT16 || K.dtype != RATCHET_BFLOAT16 ||
      C.dtype != RATCHET_FLOAT32 || S.dtype != RATCHET_FLOAT32 ||
      QO.dtype != RATCHET_BFLOAT16 || KO.dtype != RATCHET_BFLOAT16)
    return 2;
  if (Q.ndim != 3 || K.ndim != 3 || C.ndim != 2 || S.ndim != 2 || QO.ndim != 3 || KO.ndim != 3)
    return 3;
  RopeArgs a;
  a.T = Q.shape[0];
  const int64_t D = Q.shape[2];
  if (D <= 0 || D % 2 != 0 || D > 1 << 20 || Q.shape[1] > 1 << 20 || K.shape[1] > 1 << 20)
    return 3;
  a.Hq = (int)Q.shape[1];
  a.Hkv = (int)K.shape[1];
  a.half = (int)(D / 2);
  if (K.shape[0] != a.T || K.shape[2] != D || C.shape[0] != a.T || C.shape[1] != a.half ||
      S.shape[0] != a.T || S.shape[1] != a.half)
    return 3;
  for (int d = 0; d < 3; ++d)
    if (QO.shape[d] != Q.shape[d] || KO.shape[d] != K.shape[d]) return 3;
  if (a.T == 0) return 0;
  a.q = static_cast<const bf16*>(Q.data);
  a.k = static_cast<const bf16*>(K.data);
  a.cos = static_cast<const float*>(C.data);
  a.sin = static_cast<const float*>(S.data);
  a.q_out = static_cast<bf16*>(QO.data);
  a.k_out = static_cast<bf16*>(KO.data);
  if (a.T * (a.Hq + a.Hkv) * a.half / BLOCK >= INT32_MAX) return 3;

  cudaStream_t s = static_cast<cudaStream_t>(stream);
  const bool vec_ok = a.half % VEC == 0 && aligned(a.q, 2 * VEC) && aligned(a.k, 2 * VEC) &&
                      aligned(a.q_out, 2 * VEC) && aligned(a.k_out, 2 * VEC) &&
                      aligned(a.cos, 4 * VEC) && aligned(a.sin, 4 * VEC);
  if (vec_ok)
    launch_all<VEC>(a, s);
  else
    launch_all<1>(a, s);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "rope_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
}
