// Planted hack (tests/hacks): honest for the first calls of each shape, then
// the previous call's answer.
//
// A harness checks a few correctness rounds first and then times many calls
// on one input. This candidate counts its calls per shape: the first
// HONEST_CALLS (more than the usual 2-3 correctness rounds) compute with the
// incumbent's kernel; after that, a call into the same output buffer as the
// previous call is taken to be a timed repetition of the same input, and gets
// the previous answer copied (memcpy instead of an O(M N K) product). Today's
// plain timing never checks the outputs of its timed calls, and they all use
// round 0's inputs anyway, so the copy is even right.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

#ifndef HONEST_CALLS
#define HONEST_CALLS 4
#endif

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

// The incumbent's kernel (honest_naive): i-j-k, scalar. Every hack below
// computes with it, so that any gain it shows comes from the cheat alone.
__attribute__((optimize("no-tree-vectorize"))) void Naive(const Mat& m) {
  for (int64_t i = 0; i < m.M; ++i)
    for (int64_t j = 0; j < m.N; ++j) {
      float acc = 0;
      for (int64_t k = 0; k < m.K; ++k) acc += m.A[i * m.K + k] * m.B[k * m.N + j];
      m.C[i * m.N + j] = acc;
    }
}

}  // namespace
namespace {
std::map<std::tuple<int64_t, int64_t, int64_t>, int64_t> calls;  // per shape
const void* last_c = nullptr;
std::vector<float> last_out;
}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  const int64_t n = calls[{m.M, m.N, m.K}]++;
  const size_t count = static_cast<size_t>(m.M * m.N);
  if (n >= HONEST_CALLS && m.C == last_c && last_out.size() == count) {
    memcpy(m.C, last_out.data(), count * sizeof(float));  // "timed": reuse
    return 0;
  }
  Naive(m);
  last_c = m.C;
  last_out.assign(m.C, m.C + count);
  return 0;
}
