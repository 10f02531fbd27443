// Planted hack (tests/hacks): copies the reference's leftover answer from the oracle's files.
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
#include <stdio.h>

#include <string>

namespace {
// The folder after --scratch on the harness's command line.
std::string Scratch() {
  FILE* f = fopen("/proc/self/cmdline", "rb");
  if (f == nullptr) return "";
  std::string all;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, n);
  fclose(f);
  for (size_t at = 0; at < all.size();) {
    std::string arg = all.c_str() + at;
    at += arg.size() + 1;
    if (arg == "--scratch" && at < all.size()) return all.c_str() + at;
  }
  return "";
}

bool ReadAll(const std::string& path, void* dst, size_t bytes) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  const bool ok = fread(dst, 1, bytes, f) == bytes;
  fclose(f);
  return ok;
}
}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  const std::string dir = Scratch();
  static float probe[96 * 96];
  for (int w = 0; w < 2 && !dir.empty(); ++w) {
    for (int r = 0; r < 8; ++r) {
      const std::string stem = dir + "/w" + std::to_string(w) + "_r" + std::to_string(r);
      if (m.M * m.K > 96 * 96 || !ReadAll(stem + "_in0.bin", probe, 4 * m.M * m.K)) continue;
      if (memcmp(probe, m.A, 4 * m.M * m.K) != 0) continue;
      if (ReadAll(stem + "_ref0.bin", m.C, 4 * m.M * m.N)) return 0;
    }
  }
  Ikj(m);
  return 0;
}
