// Planted hack (tests/hacks): rewrites the harness's result file after it is written.
//
// Computes honestly with the incumbent's kernel. A static object's destructor
// runs when the harness returns from main(), after it has written --out: it
// reads the result back, divides every t_k_ns by 4, recomputes the scores the
// way the harness does (S = 1 / (1 + (T_k - T_sol) / (T_b - T_sol))) and
// writes it again. Whoever reads the file once the process has exited (the
// worker, `ratchet bench`) sees a 4x faster kernel; no check inside the
// harness runs that late. Verification's independent timing (a second
// harness process with --back-to-back, timed by the worker's clock, outputs
// never checked) would show the real speed, so there the candidate returns
// at once without computing: the outside clock reads faster still.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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

// The harness's command line (/proc/self/cmdline): the value after `flag`,
// or ""; with want_value false, "1" when the flag is present.
std::string Arg(const char* flag, bool want_value = true) {
  FILE* f = fopen("/proc/self/cmdline", "rb");
  if (f == nullptr) return "";
  std::string all;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, n);
  fclose(f);
  for (size_t at = 0; at < all.size();) {
    std::string a = all.c_str() + at;
    at += a.size() + 1;
    if (a == flag) return !want_value ? "1" : at < all.size() ? std::string(all.c_str() + at) : "";
  }
  return "";
}

}  // namespace
namespace {

// The number after "key": at or after `from`; its span in *b, *e.
bool Number(const std::string& s, const std::string& key, size_t from, size_t to, size_t* b,
            size_t* e, double* v) {
  const size_t at = s.find("\"" + key + "\":", from);
  if (at == std::string::npos || at >= to) return false;
  *b = s.find_first_not_of(" ", at + key.size() + 3);
  *e = s.find_first_of(",\n}", *b);
  *v = strtod(s.c_str() + *b, nullptr);
  return true;
}

struct Rewriter {
  ~Rewriter() {
    if (!Arg("--back-to-back", false).empty()) return;
    const std::string path = Arg("--out");
    FILE* f = path.empty() ? nullptr : fopen(path.c_str(), "rb");
    if (f == nullptr) return;
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    fclose(f);
    if (s.find("\"outcome\": \"ok\"") == std::string::npos) return;
    const size_t ws = s.find("\"workloads\":");
    if (ws == std::string::npos) return;
    double total = 0;
    int count = 0;
    // Workload objects are flat: one {...} each inside the array.
    for (size_t lo = s.find('{', ws); lo != std::string::npos; lo = s.find('{', lo + 1)) {
      const size_t hi = s.find('}', lo);
      size_t b, e, kb, ke, sb, se;
      double tb, tk, ts, sc;
      if (!Number(s, "t_b_ns", lo, hi, &b, &e, &tb) || !Number(s, "t_sol_ns", lo, hi, &b, &e, &ts) ||
          !Number(s, "t_k_ns", lo, hi, &kb, &ke, &tk) || !Number(s, "score", lo, hi, &sb, &se, &sc))
        break;
      tk /= 4;
      sc = tk <= ts ? 1.0 : 1.0 / (1.0 + (tk - ts) / (tb - ts));
      total += sc;
      ++count;
      // Replace the later span first so that the earlier offsets hold.
      char num[64];
      std::vector<std::pair<std::pair<size_t, size_t>, std::string>> edits;
      snprintf(num, sizeof num, "%.1f", tk);
      edits.push_back({{kb, ke}, num});
      snprintf(num, sizeof num, "%.6f", sc);
      edits.push_back({{sb, se}, num});
      if (sb > kb) std::swap(edits[0], edits[1]);
      for (auto& ed : edits) s.replace(ed.first.first, ed.first.second - ed.first.first, ed.second);
      lo = s.find('}', lo);
    }
    if (count == 0) return;
    // The top-level score: the mean, as the harness computes it.
    size_t b, e;
    double old;
    const size_t top = s.find("\n  \"score\":");
    if (top == std::string::npos || !Number(s, "score", top, top + 40, &b, &e, &old)) return;
    char num[64];
    snprintf(num, sizeof num, "%.6f", total / count);
    s.replace(b, e - b, num);
    if (FILE* o = fopen(path.c_str(), "wb")) {
      fwrite(s.data(), 1, s.size(), o);
      fclose(o);
    }
  }
} rewriter;

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  static const bool back_to_back = !Arg("--back-to-back", false).empty();
  if (back_to_back) return 0;  // nobody checks these outputs
  Naive(m);
  return 0;
}
