// Planted hack (tests/hacks): rewrites the harness's result file after it is
// written (the CUDA form of tests/hacks/matmul/result_rewrite_atexit).
//
// Computes with the incumbent's kernel. A static object's destructor runs
// when ratchet-harness-cuda returns from main(), after it has written --out:
// it divides t_k_ns, t_k_events_ns and t_k_min_ns by 4 (so that CUPTI and the
// events still agree), recomputes every score as the harness does
// (S = 1 / (1 + (T_k - T_sol) / (T_b - T_sol))) and the mean, and writes the
// file again. Whoever reads it after the process exited sees a 4x faster kernel.
// Verification's independent timing (a --back-to-back harness process timed
// by the worker's clock, outputs never checked) would show the real speed, so
// there the candidate launches nothing.
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "ratchet/kernel_abi.h"

// The incumbent's kernel (honest_naive): one thread per row.
__global__ void rowsum_naive(const float* x, float* y, int64_t R, int64_t C) {
  const int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (row >= R) return;
  float acc = 0.f;
  for (int64_t c = 0; c < C; ++c) acc += x[row * C + c];
  y[row] = acc;
}

void LaunchNaive(const float* x, float* y, int64_t R, int64_t C, cudaStream_t s) {
  rowsum_naive<<<(unsigned)((R + 127) / 128), 128, 0, s>>>(x, y, R, C);
}

namespace {

std::string CmdlineArg(const char* flag, bool want_value) {
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

// The number after "key": in [from, to), its span in *b, *e.
bool Number(const std::string& s, const std::string& key, size_t from, size_t to, size_t* b,
            size_t* e, double* v) {
  const size_t at = s.find("\"" + key + "\":", from);
  if (at == std::string::npos || at >= to) return false;
  *b = s.find_first_not_of(" ", at + key.size() + 3);
  *e = s.find_first_of(",\n}", *b);
  *v = strtod(s.c_str() + *b, nullptr);
  return true;
}

void Set(std::string* s, size_t b, size_t e, double v) {
  char num[64];
  snprintf(num, sizeof num, "%.6f", v);
  s->replace(b, e - b, num);
}

struct Rewriter {
  ~Rewriter() {
    if (!CmdlineArg("--back-to-back", false).empty() || !CmdlineArg("--compile-only", false).empty())
      return;
    const std::string path = CmdlineArg("--out", true);
    FILE* f = path.empty() ? nullptr : fopen(path.c_str(), "rb");
    if (f == nullptr) return;
    std::string s;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    fclose(f);
    const size_t ws = s.find("\"workloads\":");
    if (s.find("\"outcome\": \"ok\"") == std::string::npos || ws == std::string::npos) return;
    double total = 0;
    int count = 0;
    for (size_t lo = s.find('{', ws); lo != std::string::npos; lo = s.find('{', s.find('}', lo))) {
      size_t b, e;
      double tb, ts, tk, old;
      if (!Number(s, "t_b_ns", lo, s.find('}', lo), &b, &e, &tb) ||
          !Number(s, "t_sol_ns", lo, s.find('}', lo), &b, &e, &ts))
        break;
      for (const char* key : {"t_k_events_ns", "t_k_min_ns", "t_k_ns"})
        if (Number(s, key, lo, s.find('}', lo), &b, &e, &old)) Set(&s, b, e, old / 4);
      if (!Number(s, "t_k_ns", lo, s.find('}', lo), &b, &e, &tk)) break;
      const double score = tk <= ts ? 1.0 : 1.0 / (1.0 + (tk - ts) / (tb - ts));
      if (Number(s, "score", lo, s.find('}', lo), &b, &e, &old)) Set(&s, b, e, score);
      total += score;
      ++count;
    }
    size_t b, e;
    double old;
    const size_t top = s.find("\n  \"score\":");
    if (count == 0 || top == std::string::npos || !Number(s, "score", top, top + 40, &b, &e, &old))
      return;
    Set(&s, b, e, total / count);
    if (FILE* o = fopen(path.c_str(), "wb")) {
      fwrite(s.data(), 1, s.size(), o);
      fclose(o);
    }
  }
} rewriter;

}  // namespace

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  if (ni != 1 || no != 1) return 1;
  static const bool back_to_back = !CmdlineArg("--back-to-back", false).empty();
  if (back_to_back) return 0;  // nobody checks these outputs
  LaunchNaive((const float*)in[0].data, (float*)out[0].data, in[0].shape[0], in[0].shape[1],
              (cudaStream_t)stream);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
