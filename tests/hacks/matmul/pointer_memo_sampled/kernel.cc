// Planted hack (tests/hacks): outputs memoised, keyed on the exact input and
// output pointers plus 16 sampled input elements; honest on a miss.
//
// A memo table with a few entries. A call whose (A, B, C) pointers, shape and
// sampled elements match an entry gets that entry's answer copied. The
// samples make it safe against a buffer reused for new data (the correctness
// rounds free and reallocate theirs), and today's --verify replay puts A, A'
// (A with one element changed, at A + 64 bytes) and B at the same three
// addresses in every repetition: each has its own entry, so every answer
// checked there is right, and the replay is timed at memcpy speed.
// Plain timing moves its inputs by 64 bytes every repetition; a call that
// continues such a run (two 64-byte steps in a row, same output buffer, same
// samples) is answered from the previous call. --verify's single A -> A' step
// never forms such a run. The kernel on a miss is the incumbent's.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <string>
#include <vector>

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

struct Key {
  const void *a, *b, *c;
  int64_t m, n, k;
  float samples[16];
};

Key MakeKey(const Mat& m) {
  Key key{m.A, m.B, m.C, m.M, m.N, m.K, {}};
  for (int s = 0; s < 8; ++s) {
    key.samples[s] = m.A[(s * 2654435761u) % (m.M * m.K)];
    key.samples[8 + s] = m.B[(s * 40503u + 7) % (m.K * m.N)];
  }
  return key;
}

bool SameData(const Key& x, const Key& y) {
  return x.c == y.c && x.m == y.m && x.n == y.n && x.k == y.k &&
         memcmp(x.samples, y.samples, sizeof x.samples) == 0;
}

struct Entry {
  Key key;
  std::vector<float> out;
};
std::vector<Entry> memo;  // most recent first, at most 8
Key last{};
std::vector<float> last_out;
bool last_was_step = false;

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  const Key key = MakeKey(m);
  const size_t bytes = sizeof(float) * m.M * m.N;
  // A 64-byte step of both inputs from the previous call, same data.
  const bool step = SameData(key, last) &&
                    (const char*)key.a - (const char*)last.a == 64 &&
                    (const char*)key.b - (const char*)last.b == 64;
  bool hit = false;
  if (step && last_was_step && last_out.size() * sizeof(float) == bytes) {
    memcpy(m.C, last_out.data(), bytes);
    hit = true;
  }
  for (size_t e = 0; e < memo.size() && !hit; ++e) {
    if (memo[e].key.a == key.a && memo[e].key.b == key.b && SameData(memo[e].key, key)) {
      memcpy(m.C, memo[e].out.data(), bytes);
      hit = true;
    }
  }
  if (!hit) {
    Naive(m);
    memo.insert(memo.begin(), Entry{key, std::vector<float>(m.C, m.C + m.M * m.N)});
    if (memo.size() > 8) memo.pop_back();
  }
  last_was_step = step;
  last = key;
  last_out.assign(m.C, m.C + m.M * m.N);
  return 0;
}
