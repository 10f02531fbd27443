// Baseline solution for tasks/cpu/matmul (gemm_f32_cpu): C = A @ B, float32,
// A is M x K, B is K x N, C is M x N, all row-major and contiguous.
//
// The defaults give the textbook kernel: i-j-k loop order (a dot product per
// C element, reading B down a column), scalar code, no blocking, one thread.
// Every knob is a compile-time macro (-DNAME=value); every combination of the
// choices listed in solution.json computes the same product (up to float
// rounding from a different summation order).
//
//   LOOP_ORDER  0: i-j-k  for each C[i, j-chunk], accumulate over all k
//               1: i-k-j  for each A[i, k], C[i, :] += A[i, k] * B[k, :]
//                         (every access unit-stride)
//   BLOCK_N     columns of B/C per cache block; 0 = no blocking
//   BLOCK_K     rows of B per cache block;      0 = no blocking
//   VEC         floats per SIMD vector in the innermost (j) loop; 1 = scalar
//               code (the compiler's auto-vectoriser is switched off too, so
//               that the knob means what it says)
//   UNROLL      register blocking. i-j-k: independent VEC-wide accumulators
//               along j; i-k-j: rows of B folded into one pass over C[i, :]
//   THREADS     std::threads splitting the rows of C (1 or 2)
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <string.h>

#include <functional>
#include <thread>

#ifndef LOOP_ORDER
#define LOOP_ORDER 0
#endif
#ifndef BLOCK_N
#define BLOCK_N 0
#endif
#ifndef BLOCK_K
#define BLOCK_K 0
#endif
#ifndef VEC
#define VEC 1
#endif
#ifndef UNROLL
#define UNROLL 1
#endif
#ifndef THREADS
#define THREADS 1
#endif

#if LOOP_ORDER != 0 && LOOP_ORDER != 1
#error "LOOP_ORDER must be 0 (i-j-k) or 1 (i-k-j)"
#endif
#if VEC != 1 && VEC != 2 && VEC != 4 && VEC != 8 && VEC != 16
#error "VEC must be 1, 2, 4, 8 or 16"
#endif
#if UNROLL < 1 || UNROLL > 8
#error "UNROLL must be in 1..8"
#endif
#if THREADS < 1 || THREADS > 8
#error "THREADS must be in 1..8"
#endif
#if BLOCK_N < 0 || BLOCK_K < 0
#error "BLOCK_N and BLOCK_K must be >= 0"
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
#define KERNEL_ATTR
#else
typedef float vec_t;
inline vec_t load(const float* p) { return *p; }
inline void store(float* p, vec_t v) { *p = v; }
// VEC=1 means scalar code: keep GCC's auto-vectoriser out of it.
#define KERNEL_ATTR __attribute__((optimize("no-tree-vectorize")))
#endif

struct Problem {
  const float* A;
  const float* B;
  float* C;
  int64_t M, N, K;
};

inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

#if LOOP_ORDER == 0
// i-j-k: C[i, j..j+W) += sum_{k in block} A[i, k] * B[k, j..j+W)
KERNEL_ATTR void block_ijk(const Problem& p, int64_t i0, int64_t i1,
                           int64_t j0, int64_t j1, int64_t k0, int64_t k1) {
  const int64_t N = p.N, K = p.K;
  constexpr int64_t W = int64_t(VEC) * UNROLL;
  for (int64_t i = i0; i < i1; ++i) {
    const float* a = p.A + i * K;
    float* c = p.C + i * N;
    int64_t j = j0;
    for (; j + W <= j1; j += W) {
      vec_t acc[UNROLL];
      for (int u = 0; u < UNROLL; ++u) acc[u] = load(c + j + u * VEC);
      for (int64_t k = k0; k < k1; ++k) {
        const float aik = a[k];
        const float* b = p.B + k * N + j;
        for (int u = 0; u < UNROLL; ++u) acc[u] += aik * load(b + u * VEC);
      }
      for (int u = 0; u < UNROLL; ++u) store(c + j + u * VEC, acc[u]);
    }
    for (; j < j1; ++j) {  // columns left over
      float acc = c[j];
      for (int64_t k = k0; k < k1; ++k) acc += a[k] * p.B[k * N + j];
      c[j] = acc;
    }
  }
}
#else
// i-k-j: C[i, j0..j1) += sum_{k in block} A[i, k] * B[k, j0..j1)
KERNEL_ATTR void block_ikj(const Problem& p, int64_t i0, int64_t i1,
                           int64_t j0, int64_t j1, int64_t k0, int64_t k1) {
  const int64_t N = p.N, K = p.K;
  for (int64_t i = i0; i < i1; ++i) {
    const float* a = p.A + i * K;
    float* c = p.C + i * N;
    int64_t k = k0;
    for (; k + UNROLL <= k1; k += UNROLL) {
      float aik[UNROLL];
      const float* b[UNROLL];
      for (int u = 0; u < UNROLL; ++u) {
        aik[u] = a[k + u];
        b[u] = p.B + (k + u) * N;
      }
      int64_t j = j0;
      for (; j + VEC <= j1; j += VEC) {
        vec_t cv = load(c + j);
        for (int u = 0; u < UNROLL; ++u) cv += aik[u] * load(b[u] + j);
        store(c + j, cv);
      }
      for (; j < j1; ++j) {
        float cs = c[j];
        for (int u = 0; u < UNROLL; ++u) cs += aik[u] * b[u][j];
        c[j] = cs;
      }
    }
    for (; k < k1; ++k) {  // rows of B left over
      const float aik = a[k];
      const float* b = p.B + k * N;
      for (int64_t j = j0; j < j1; ++j) c[j] += aik * b[j];
    }
  }
}
#endif

// Rows [i0, i1) of C, walking cache blocks of B.
void rows(const Problem& p, int64_t i0, int64_t i1) {
  for (int64_t i = i0; i < i1; ++i) memset(p.C + i * p.N, 0, sizeof(float) * p.N);
  const int64_t bn = BLOCK_N > 0 ? BLOCK_N : p.N;
  const int64_t bk = BLOCK_K > 0 ? BLOCK_K : p.K;
  for (int64_t j0 = 0; j0 < p.N; j0 += bn) {
    const int64_t j1 = min64(j0 + bn, p.N);
    for (int64_t k0 = 0; k0 < p.K; k0 += bk) {
      const int64_t k1 = min64(k0 + bk, p.K);
#if LOOP_ORDER == 0
      block_ijk(p, i0, i1, j0, j1, k0, k1);
#else
      block_ikj(p, i0, i1, j0, j1, k0, k1);
#endif
    }
  }
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* inputs, int32_t num_inputs,
                           ratchet_tensor* outputs, int32_t num_outputs) {
  if (num_inputs != 2 || num_outputs != 1) return 1;
  const ratchet_tensor& A = inputs[0];
  const ratchet_tensor& B = inputs[1];
  ratchet_tensor& C = outputs[0];
  if (A.dtype != RATCHET_FLOAT32 || B.dtype != RATCHET_FLOAT32 ||
      C.dtype != RATCHET_FLOAT32)
    return 2;
  if (A.ndim != 2 || B.ndim != 2 || C.ndim != 2) return 3;
  Problem p;
  p.M = A.shape[0];
  p.K = A.shape[1];
  p.N = B.shape[1];
  if (B.shape[0] != p.K || C.shape[0] != p.M || C.shape[1] != p.N) return 4;
  p.A = static_cast<const float*>(A.data);
  p.B = static_cast<const float*>(B.data);
  p.C = static_cast<float*>(C.data);

  const int64_t nt = THREADS < p.M ? THREADS : (p.M > 0 ? p.M : 1);
  if (nt <= 1) {
    rows(p, 0, p.M);
    return 0;
  }
  std::thread workers[THREADS];
  const int64_t per = (p.M + nt - 1) / nt;
  for (int64_t t = 1; t < nt; ++t) {
    const int64_t i0 = t * per, i1 = min64(i0 + per, p.M);
    if (i0 < i1) workers[t] = std::thread(rows, std::cref(p), i0, i1);
  }
  rows(p, 0, min64(per, p.M));
  for (int64_t t = 1; t < nt; ++t)
    if (workers[t].joinable()) workers[t].join();
  return 0;
}
