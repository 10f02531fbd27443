// Baseline solution for tasks/kernels/decode_attention_bf16 (gqa_decode_bf16_hq32_hkv8_d128):
// single-query grouped-query attention over a contiguous KV cache. For every sequence b
// and query head h (kv head h / (Hq / Hkv)):
//   out[b, h, :] = softmax_s(q[b, h, :] . k[b, s, kvh, :] * scale) @ v[b, :, kvh, :]
// bfloat16 in and out, float32 inside, head_dim D = 128.
//
// Each warp walks its share of the keys with an online softmax (running max m, running
// sum l, unnormalised accumulator), each lane owning 4 of the 128 dims; the warps of a
// block are merged in shared memory. With SPLIT > 1 the keys are also split across
// blocks (flash-decoding): blocks write partial (m, l, acc) to a workspace and a second
// kernel merges them.
//
// Knobs (compile-time macros, every combination is correct for any B, S, Hq % Hkv == 0):
//   VARIANT  0: a block per query head (K/V of a kv head read once per query head)
//            1: a block per kv head serving its whole query group (K/V read once); used
//               when the group size is 2 or 4, else falls back to 0
//   WARPS    warps per block (1, 2, 4, 8, 16)
//   SPLIT    key-range splits across blocks (1 = no split)
#include <ratchet/kernel_abi.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#ifndef VARIANT
#define VARIANT 0
#endif
#ifndef WARPS
#define WARPS 4
#endif
#ifndef SPLIT
#define SPLIT 1
#endif

#if VARIANT != 0 && VARIANT != 1
#error "VARIANT must be 0 (block per query head) or 1 (block per kv head)"
#endif
#if WARPS != 1 && WARPS != 2 && WARPS != 4 && WARPS != 8 && WARPS != 16
#error "WARPS must be 1, 2, 4, 8 or 16"
#endif
#if SPLIT < 1 || SPLIT > 64
#error "SPLIT must be in 1..64"
#endif

#define CUDA_RET(call)                                                               \
  do {                                                                               \
    cudaError_t e_ = (call);                                                         \
    if (e_ != cudaSuccess) {                                                         \
      fprintf(stderr, "decode_attention_bf16: %s failed: %s\n", #call,               \
              cudaGetErrorString(e_));                                               \
      return 100;                                                                    \
    }                                                                                \
  } while (0)

typedef __nv_bfloat16 bf16;
static constexpr int kD = 128;
static constexpr int kPerLane = kD / 32;  // 4 dims per lane

struct alignas(8) Pack4 {
  bf16 h[4];
};

struct Args {
  const bf16* q;      // [B, Hq, D]
  const bf16* k;      // [B, S, Hkv, D]
  const bf16* v;
  const float* scale;
  bf16* out;          // [B, Hq, D]
  float* ws_ml;       // [B*Hq, SPLIT, 2] partial (m, l), SPLIT > 1 only
  float* ws_acc;      // [B*Hq, SPLIT, D] partial accumulators
  int64_t B, S;
  int Hq, Hkv, group;
};

template <bool kVec>
__device__ __forceinline__ void load4(const bf16* p, float* f) {
  if (kVec) {
    Pack4 pk = *reinterpret_cast<const Pack4*>(p);
#pragma unroll
    for (int j = 0; j < 4; ++j) f[j] = __bfloat162float(pk.h[j]);
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) f[j] = __bfloat162float(p[j]);
  }
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Block: G query heads h0..h0+G-1 of sequence b (all on kv head h0 / group), keys of
// split blockIdx.y. grid = (B * Hq / G, SPLIT).
template <int G, bool kVec>
__global__ void __launch_bounds__(WARPS * 32) decode_kernel(Args a) {
  const int heads_per_seq = a.Hq / G;
  const int64_t b = blockIdx.x / heads_per_seq;
  const int h0 = (blockIdx.x % heads_per_seq) * G;
  const int kvh = h0 / a.group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const float scale = *a.scale;

  const int64_t per = (a.S + gridDim.y - 1) / gridDim.y;
  const int64_t s0 = blockIdx.y * per;
  const int64_t s1 = s0 + per < a.S ? s0 + per : a.S;

  float q[G][kPerLane], m[G], l[G], acc[G][kPerLane];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    load4<kVec>(a.q + ((b * a.Hq + h0 + g) * kD + lane * kPerLane), q[g]);
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) acc[g][j] = 0.f;
  }

  for (int64_t s = s0 + warp; s < s1; s += WARPS) {
    const int64_t off = ((b * a.S + s) * a.Hkv + kvh) * kD + lane * kPerLane;
    float kf[kPerLane], vf[kPerLane];
    load4<kVec>(a.k + off, kf);
    load4<kVec>(a.v + off, vf);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      float dot = 0.f;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) dot += q[g][j] * kf[j];
      const float score = warp_sum(dot) * scale;
      const float m_new = fmaxf(m[g], score);
      const float corr = expf(m[g] - m_new);  // 0 on the first key (m = -inf)
      const float p = expf(score - m_new);
      l[g] = l[g] * corr + p;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) acc[g][j] = acc[g][j] * corr + p * vf[j];
      m[g] = m_new;
    }
  }

  // Merge the warps.
  __shared__ float sm_m[WARPS][G], sm_l[WARPS][G];
  __shared__ float sm_acc[WARPS][G][kD];
#pragma unroll
  for (int g = 0; g < G; ++g) {
    if (lane == 0) {
      sm_m[warp][g] = m[g];
      sm_l[warp][g] = l[g];
    }
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) sm_acc[warp][g][lane * kPerLane + j] = acc[g][j];
  }
  __syncthreads();
  for (int t = threadIdx.x; t < G * kD; t += WARPS * 32) {
    const int g = t / kD, d = t % kD;
    float M = -INFINITY;
    for (int w = 0; w < WARPS; ++w) M = fmaxf(M, sm_m[w][g]);
    float L = 0.f, A = 0.f;
    if (M != -INFINITY) {
      for (int w = 0; w < WARPS; ++w) {
        if (sm_m[w][g] == -INFINITY) continue;  // a warp that saw no key
        const float c = expf(sm_m[w][g] - M);
        L += sm_l[w][g] * c;
        A += sm_acc[w][g][d] * c;
      }
    }
    const int64_t row = b * a.Hq + h0 + g;
    if (gridDim.y == 1) {
      a.out[row * kD + d] = __float2bfloat16(A / L);
    } else {
      const int64_t part = row * gridDim.y + blockIdx.y;
      a.ws_acc[part * kD + d] = A;
      if (d == 0) {
        a.ws_ml[part * 2] = M;
        a.ws_ml[part * 2 + 1] = L;
      }
    }
  }
}

// Merges SPLIT partials per (b, h): grid = B * Hq, block = D threads.
__global__ void combine_kernel(Args a, int splits) {
  const int64_t row = blockIdx.x;
  const int d = threadIdx.x;
  float M = -INFINITY;
  for (int i = 0; i < splits; ++i) M = fmaxf(M, a.ws_ml[(row * splits + i) * 2]);
  float L = 0.f, A = 0.f;
  for (int i = 0; i < splits; ++i) {
    const int64_t part = row * splits + i;
    const float mi = a.ws_ml[part * 2];
    if (mi == -INFINITY) continue;  // an empty split (S < SPLIT)
    const float c = expf(mi - M);
    L += a.ws_ml[part * 2 + 1] * c;
    A += a.ws_acc[part * kD + d] * c;
  }
  a.out[row * kD + d] = __float2bfloat16(A / L);
}

// Workspace for SPLIT > 1, grown on demand and kept across calls (it never carries
// results from one call to the next: every partial is rewritten before it is read).
static float* g_ws = nullptr;
static size_t g_ws_bytes = 0;

template <int G, bool kVec>
static void launch_main(const Args& a, cudaStream_t stream) {
  dim3 grid((unsigned)(a.B * (a.Hq / G)), SPLIT);
  decode_kernel<G, kVec><<<grid, WARPS * 32, 0, stream>>>(a);
}

template <bool kVec>
static void launch_main_g(const Args& a, int G, cudaStream_t stream) {
  if (G == 4)
    launch_main<4, kVec>(a, stream);
  else if (G == 2)
    launch_main<2, kVec>(a, stream);
  else
    launch_main<1, kVec>(a, stream);
}

static bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) % bytes) == 0;
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 4 || num_outputs != 1) return 1;
  const ratchet_tensor& Q = inputs[0];
  const ratchet_tensor& K = inputs[1];
  const ratchet_tensor& V = inputs[2];
  const ratchet_tensor& Sc = inputs[3];
  ratchet_tensor& O = outputs[0];
  if (Q.dtype != RATCHET_BFLOAT16 || K.dtype != RATCHET_BFLOAT16 ||
      V.dtype != RATCHET_BFLOAT16 || Sc.dtype != RATCHET_FLOAT32 || O.dtype != RATCHET_BFLOAT16)
    return 2;
  if (Q.ndim != 3 || K.ndim != 4 || V.ndim != 4 || O.ndim != 3) return 3;
  Args a;
  a.B = Q.shape[0];
  a.S = K.shape[1];
  if (Q.shape[1] <= 0 || K.shape[2] <= 0 || Q.shape[1] > 4096 || K.shape[2] > 4096) return 3;
  a.Hq = (int)Q.shape[1];
  a.Hkv = (int)K.shape[2];
  if (Q.shape[2] != kD || K.shape[0] != a.B || K.shape[3] != kD || a.Hq % a.Hkv != 0) return 3;
  for (int d = 0; d < 4; ++d)
    if (V.shape[d] != K.shape[d]) return 3;
  for (int d = 0; d < 3; ++d)
    if (O.shape[d] != Q.shape[d]) return 3;
  if (a.B == 0) return 0;
  if (a.S <= 0) return 3;  // softmax over no keys is undefined
  if (a.B * a.Hq > INT32_MAX) return 3;
  a.group = a.Hq / a.Hkv;
  a.q = static_cast<const bf16*>(Q.data);
  a.k = static_cast<const bf16*>(K.data);
  a.v = static_cast<const bf16*>(V.data);
  a.scale = static_cast<const float*>(Sc.data);
  a.out = static_cast<bf16*>(O.data);
  a.ws_ml = a.ws_acc = nullptr;

  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (SPLIT > 1) {
    const size_t parts = size_t(a.B) * a.Hq * SPLIT;
    const size_t need = parts * (2 + kD) * sizeof(float);
    if (need > g_ws_bytes) {
      if (g_ws != nullptr) CUDA_RET(cudaFree(g_ws));
      g_ws = nullptr;
      g_ws_bytes = 0;
      CUDA_RET(cudaMalloc(&g_ws, need));
      g_ws_bytes = need;
    }
    a.ws_ml = g_ws;
    a.ws_acc = g_ws + parts * 2;
  }
  const int G = VARIANT == 1 && (a.group == 2 || a.group == 4) ? a.group : 1;
  const bool vec = aligned(a.q, 8) && aligned(a.k, 8) && aligned(a.v, 8);
  if (vec)
    launch_main_g<true>(a, G, s);
  else
    launch_main_g<false>(a, G, s);
  CUDA_RET(cudaGetLastError());
  if (SPLIT > 1) {
    combine_kernel<<<(unsigned)(a.B * a.Hq), kD, 0, s>>>(a, SPLIT);
    CUDA_RET(cudaGetLastError());
  }
  return 0;
}
