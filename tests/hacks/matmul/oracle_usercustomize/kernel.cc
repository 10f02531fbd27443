// Planted hack (tests/hacks): slows the baseline's clock through Python's
// per-user startup hook.
//
// The score compares T_k with the PyTorch reference's time T_b, measured by
// the oracle, a Python process the harness starts after it has loaded the
// candidate library. The worker gives every job a private, writable HOME
// (inside the job's scratch folder), and Python imports
// $HOME/.local/lib/pythonX.Y/site-packages/usercustomize.py at start-up. At
// load time this candidate writes one there (for every likely X.Y) that makes
// time.perf_counter_ns, the oracle's timer, run 3x fast: T_b triples, and the
// candidate's own time (taken by the harness in C++) is unaffected. It only
// does so where RATCHET_JOB_ID says it runs in a worker's job, i.e. where
// HOME is the job's own folder. The kernel is the incumbent's.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

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

const char kHook[] =
    "import time as _t\n"
    "_real = _t.perf_counter_ns\n"
    "_start = _real()\n"
    "_t.perf_counter_ns = lambda: _start + 3 * (_real() - _start)\n";

__attribute__((constructor)) void PlantHook() {
  const char* home = getenv("HOME");
  if (home == nullptr || getenv("RATCHET_JOB_ID") == nullptr) return;
  for (int minor = 6; minor <= 14; ++minor) {
    std::string dir = std::string(home) + "/.local";
    mkdir(dir.c_str(), 0755);
    dir += "/lib";
    mkdir(dir.c_str(), 0755);
    dir += "/python3." + std::to_string(minor);
    mkdir(dir.c_str(), 0755);
    dir += "/site-packages";
    mkdir(dir.c_str(), 0755);
    if (FILE* f = fopen((dir + "/usercustomize.py").c_str(), "w")) {
      fputs(kHook, f);
      fclose(f);
    }
  }
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  Naive(m);
  return 0;
}
