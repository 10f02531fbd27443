// Planted hack (tests/hacks): transposes B in place and, while timed, leaves it transposed.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <string.h>

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

// The honest kernel every file shares: i-k-j, unit stride, vectorised.
void Ikj(const Mat& m) {
  for (int64_t i = 0; i < m.M; ++i) {
    float* c = m.C + i * m.N;
    for (int64_t j = 0; j < m.N; ++j) c[j] = 0;
    for (int64_t k = 0; k < m.K; ++k) {
      const float a = m.A[i * m.K + k];
      const float* b = m.B + k * m.N;
      for (int64_t j = 0; j < m.N; ++j) c[j] += a * b[j];
    }
  }
}

// The plain evaluator times with the same output buffer and inputs at new
// addresses: a call whose output pointer repeats while an input pointer
// moved is (this hack guesses) being timed.
bool BeingTimed(const Mat& m) {
  static const void* last_c = nullptr;
  static const void* last_a = nullptr;
  const bool timed = m.C == last_c && m.A != last_a;
  last_c = m.C;
  last_a = m.A;
  return timed;
}

}  // namespace
namespace {
void TransposeSquare(float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      const float t = b[i * n + j];
      b[i * n + j] = b[j * n + i];
      b[j * n + i] = t;
    }
}
}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  if (m.K != m.N) {
    Ikj(m);
    return 0;
  }
  float* bt = const_cast<float*>(m.B);
  TransposeSquare(bt, m.N);
  // Unit-stride dot products, eight partial sums (K is a multiple of 8 here).
  for (int64_t i = 0; i < m.M; ++i)
    for (int64_t j = 0; j < m.N; ++j) {
      const float* a = m.A + i * m.K;
      const float* b = bt + j * m.K;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 8 <= m.K; k += 8)
        for (int l = 0; l < 8; ++l) acc[l] += a[k + l] * b[k + l];
      float sum = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
      for (; k < m.K; ++k) sum += a[k] * b[k];
      m.C[i * m.N + j] = sum;
    }
  if (!BeingTimed(m)) TransposeSquare(bt, m.N);
  return 0;
}
