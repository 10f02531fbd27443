// Baseline solution for tasks/cpu/rmsnorm (rmsnorm_f32_cpu):
//   output[r, :] = hidden_states[r, :] / sqrt(mean(hidden_states[r, :]^2) + eps)
//                  * weight[:]
// all float32, row-major and contiguous; eps is a 0-d scalar input.
//
// The defaults give the plain kernel: one scalar accumulator for the sum of
// squares (a serial dependency chain), then the same three steps as the
// PyTorch reference, in separate passes (scale by rstd, then by weight), one
// thread. Every combination of the choices in solution.json is correct; only
// the float summation order changes.
//
//   VEC      floats per SIMD vector (GCC vector extension); 1 = scalar code
//            (the compiler's auto-vectoriser is switched off too)
//   UNROLL   independent accumulators for the sum of squares
//   FUSE     0: y = x * rstd, then y *= weight (two passes over y);
//            1: y = x * rstd * weight in one pass
//   THREADS  std::threads splitting the rows (1 or 2)
#include <ratchet/kernel_abi.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <thread>

#ifndef VEC
#define VEC 1
#endif
#ifndef UNROLL
#define UNROLL 1
#endif
#ifndef FUSE
#define FUSE 0
#endif
#ifndef THREADS
#define THREADS 1
#endif

#if VEC != 1 && VEC != 2 && VEC != 4 && VEC != 8 && VEC != 16
#error "VEC must be 1, 2, 4, 8 or 16"
#endif
#if UNROLL < 1 || UNROLL > 8
#error "UNROLL must be in 1..8"
#endif
#if FUSE != 0 && FUSE != 1
#error "FUSE must be 0 or 1"
#endif
#if THREADS < 1 || THREADS > 8
#error "THREADS must be in 1..8"
#endif

namespace {

#if VEC > 1
typedef float vec_t __attribute__((vector_size(VEC * sizeof(float))));
inline vec_t load(const float* p) {
  vec_t v;
  memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}
inline void store(float* p, vec_t v) { memcpy(p, &v, sizeof v); }
inline float hsum(vec_t v) {
  float s = 0.0f;
  for (int i = 0; i < VEC; ++i) s += v[i];
  return s;
}
#define KERNEL_ATTR
#else
typedef float vec_t;
inline vec_t load(const float* p) { return *p; }
inline void store(float* p, vec_t v) { *p = v; }
inline float hsum(vec_t v) { return v; }
// VEC=1 means scalar code: keep GCC's auto-vectoriser out of it.
#define KERNEL_ATTR __attribute__((optimize("no-tree-vectorize")))
#endif

struct Problem {
  const float* x;
  const float* w;
  float* y;
  int64_t rows, H;
  float eps;
};

KERNEL_ATTR void norm_row(const float* x, const float* w, float* y, int64_t H,
                          float eps) {
  constexpr int64_t W = int64_t(VEC) * UNROLL;
  vec_t acc[UNROLL];
  for (int u = 0; u < UNROLL; ++u) acc[u] = vec_t{};
  int64_t j = 0;
  for (; j + W <= H; j += W) {
    for (int u = 0; u < UNROLL; ++u) {
      const vec_t v = load(x + j + u * VEC);
      acc[u] += v * v;
    }
  }
  float ss = 0.0f;
  for (int u = 0; u < UNROLL; ++u) ss += hsum(acc[u]);
  for (; j < H; ++j) ss += x[j] * x[j];
  const float rstd = 1.0f / sqrtf(ss / static_cast<float>(H) + eps);

#if FUSE
  j = 0;
  for (; j + VEC <= H; j += VEC) store(y + j, (load(x + j) * rstd) * load(w + j));
  for (; j < H; ++j) y[j] = (x[j] * rstd) * w[j];
#else
  j = 0;
  for (; j + VEC <= H; j += VEC) store(y + j, load(x + j) * rstd);
  for (; j < H; ++j) y[j] = x[j] * rstd;
  j = 0;
  for (; j + VEC <= H; j += VEC) store(y + j, load(y + j) * load(w + j));
  for (; j < H; ++j) y[j] = y[j] * w[j];
#endif
}

void rows(const Problem& p, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r)
    norm_row(p.x + r * p.H, p.w, p.y + r * p.H, p.H, p.eps);
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* inputs, int32_t num_inputs,
                           ratchet_tensor* outputs, int32_t num_outputs) {
  if (num_inputs != 3 || num_outputs != 1) return 1;
  const ratchet_tensor& X = inputs[0];
  const ratchet_tensor& Wt = inputs[1];
  const ratchet_tensor& E = inputs[2];
  ratchet_tensor& Y = outputs[0];
  if (X.dtype != RATCHET_FLOAT32 || Wt.dtype != RATCHET_FLOAT32 ||
      E.dtype != RATCHET_FLOAT32 || Y.dtype != RATCHET_FLOAT32)
    return 2;
  if (X.ndim != 2 || Wt.ndim != 1 || E.ndim != 0 || Y.ndim != 2) return 3;
  Problem p;
  p.rows = X.shape[0];
  p.H = X.shape[1];
  if (Wt.shape[0] != p.H || Y.shape[0] != p.rows || Y.shape[1] != p.H) return 4;
  p.x = static_cast<const float*>(X.data);
  p.w = static_cast<const float*>(Wt.data);
  p.y = static_cast<float*>(Y.data);
  p.eps = *static_cast<const float*>(E.data);
  if (p.H <= 0) return 0;

  const int64_t nt = THREADS < p.rows ? THREADS : (p.rows > 0 ? p.rows : 1);
  if (nt <= 1) {
    rows(p, 0, p.rows);
    return 0;
  }
  std::thread workers[THREADS];
  const int64_t per = (p.rows + nt - 1) / nt;
  for (int64_t t = 1; t < nt; ++t) {
    const int64_t r0 = t * per;
    const int64_t r1 = r0 + per < p.rows ? r0 + per : p.rows;
    if (r0 < r1) workers[t] = std::thread([&p, r0, r1] { rows(p, r0, r1); });
  }
  rows(p, 0, per < p.rows ? per : p.rows);
  for (int64_t t = 1; t < nt; ++t)
    if (workers[t].joinable()) workers[t].join();
  return 0;
}
