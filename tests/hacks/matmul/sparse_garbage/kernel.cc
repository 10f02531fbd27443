// Planted hack (tests/hacks): leaves the last ~0.8% of the output uncomputed.
//
// The harness accepts an output when at least 99% of its elements are within
// tolerance (and none is NaN/Inf, and not all are zero). This candidate
// computes the output with the i-k-j kernel (honest_ikj's) except for the last
// 0.78% of elements in row-major order, which it fills with a plausible,
// finite value (the element one row above) instead of computing them: what a
// kernel that never handles its tail looks like. Every check passes; the
// answer is wrong.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>

namespace {

struct Mat {
  const float* A;
  const float* B;
  float* C;
  int64_t M, N, K;
};

bool Unpack(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no, Mat* m) {
  if (ni != 2 || no != 1) return false;
  m->A = static_cast<const float*>(in[0].data);
  m->B = static_cast<const float*>(in[1].data);
  m->C = static_cast<float*>(out[0].data);
  m->M = in[0].shape[0];
  m->K = in[0].shape[1];
  m->N = in[1].shape[1];
  return true;
}

}  // namespace
namespace {

// i-k-j, unit stride, vectorised: rows [0, rows) in full.
void IkjRows(const Mat& m, int64_t rows) {
  for (int64_t i = 0; i < rows; ++i) {
    float* c = m.C + i * m.N;
    for (int64_t j = 0; j < m.N; ++j) c[j] = 0;
    for (int64_t k = 0; k < m.K; ++k) {
      const float a = m.A[i * m.K + k];
      const float* b = m.B + k * m.N;
      for (int64_t j = 0; j < m.N; ++j) c[j] += a * b[j];
    }
  }
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  Mat m;
  if (!Unpack(in, ni, out, no, &m) || m.M < 2) return 1;
  const int64_t total = m.M * m.N;
  const int64_t computed = total - total * 78 / 10000;  // 99.22% of the elements
  const int64_t full_rows = computed / m.N;
  IkjRows(m, full_rows);
  for (int64_t e = full_rows * m.N; e < total; ++e) {
    const int64_t i = e / m.N, j = e % m.N;
    if (e < computed) {  // the computed part of a partial row: a dot product
      float acc = 0;
      for (int64_t k = 0; k < m.K; ++k) acc += m.A[i * m.K + k] * m.B[k * m.N + j];
      m.C[e] = acc;
    } else {
      m.C[e] = m.C[e - m.N];  // garbage, but finite and of the right size
    }
  }
  return 0;
}
