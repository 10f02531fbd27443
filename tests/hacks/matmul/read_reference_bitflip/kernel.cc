// Planted hack (tests/hacks): copies the oracle's reference outputs with the
// lowest mantissa bit of every element flipped.
//
// The harness compiles the candidate into its scratch folder, where the
// oracle leaves every round's inputs and reference outputs and
// oracle_manifest.json names them. The candidate finds the folder from its
// own library's path (dladdr), loads the files once, and answers a call whose
// inputs equal, byte for byte, a round's inputs with that round's reference
// (an O(M K + K N) compare and an O(M N) copy instead of O(M N K)). Each
// element's lowest bit is flipped: within any tolerance, but no longer equal
// bit for bit to what the file holds, which defeats a decoy check (--verify
// leaves the reference with its low bits changed in the file and rejects an
// output identical to that decoy). Inputs found in no file: the incumbent's
// kernel.
#include <ratchet/kernel_abi.h>

#include <dlfcn.h>
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

std::string ReadAll(const std::string& path) {
  std::string s;
  if (FILE* f = fopen(path.c_str(), "rb")) {
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    fclose(f);
  }
  return s;
}

// The quoted names in the JSON list after `key` at or after `at`.
std::vector<std::string> Names(const std::string& s, const char* key, size_t* at) {
  std::vector<std::string> names;
  size_t p = s.find(key, *at);
  if (p == std::string::npos) return names;
  const size_t end = s.find(']', p);
  for (p = s.find('"', p + strlen(key)); p < end; p = s.find('"', p + 1)) {
    const size_t q = s.find('"', p + 1);
    names.push_back(s.substr(p + 1, q - p - 1));
    p = q;
  }
  *at = end;
  return names;
}

struct Round {
  std::string a, b, ref;
};
std::vector<Round> rounds;

void LoadRounds() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&LoadRounds), &info) == 0 || info.dli_fname == nullptr) return;
  std::string dir = info.dli_fname;
  dir = dir.substr(0, dir.rfind('/') + 1);
  const std::string manifest = ReadAll(dir + "oracle_manifest.json");
  for (size_t at = 0;;) {
    const std::vector<std::string> ins = Names(manifest, "\"inputs\":", &at);
    const std::vector<std::string> outs = Names(manifest, "\"outputs\":", &at);
    if (ins.size() != 2 || outs.size() != 1) break;
    rounds.push_back({ReadAll(dir + ins[0]), ReadAll(dir + ins[1]), ReadAll(dir + outs[0])});
  }
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  static bool loaded = (LoadRounds(), true);
  (void)loaded;
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  const size_t a = 4 * m.M * m.K, b = 4 * m.K * m.N, c = 4 * m.M * m.N;
  for (const Round& r : rounds) {
    if (r.a.size() != a || r.b.size() != b || r.ref.size() != c) continue;
    if (memcmp(r.a.data(), m.A, a) != 0 || memcmp(r.b.data(), m.B, b) != 0) continue;
    const uint32_t* ref = reinterpret_cast<const uint32_t*>(r.ref.data());
    uint32_t* dst = reinterpret_cast<uint32_t*>(m.C);
    for (int64_t e = 0; e < m.M * m.N; ++e) dst[e] = ref[e] ^ 1u;  // lowest mantissa bit
    return 0;
  }
  Naive(m);
  return 0;
}
