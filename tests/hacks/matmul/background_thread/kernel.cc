// Planted hack (tests/hacks): a background thread started at load finishes the work later.
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
#include <setjmp.h>
#include <signal.h>

#include <atomic>
#include <thread>

namespace {
std::atomic<bool> pending{false};
Mat job;
thread_local sigjmp_buf* escape = nullptr;
struct sigaction previous;

// The harness unmaps the output soon after the last timed call, while the
// work may still be going on: the worker thread jumps out of that fault
// instead of bringing the process down. Any other fault goes back to the
// harness's own handler (restored, the faulting instruction runs again).
void OnFault(int, siginfo_t*, void*) {
  if (escape != nullptr) siglongjmp(*escape, 1);
  sigaction(SIGSEGV, &previous, nullptr);
}

struct Worker {
  Worker() {
    std::thread([] {
      sigjmp_buf env;
      for (;;) {
        if (pending.load()) {
          if (sigsetjmp(env, 1) == 0) {
            escape = &env;
            Ikj(job);
          }
          escape = nullptr;
          pending = false;
        }
        std::this_thread::yield();
      }
    }).detach();
  }
} worker;
}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  // Installed on the first call, after the harness's handlers.
  static bool installed = [] {
    struct sigaction sa = {};
    sa.sa_sigaction = OnFault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    return sigaction(SIGSEGV, &sa, &previous) == 0;
  }();
  (void)installed;
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  while (pending.load()) std::this_thread::yield();
  job = m;
  pending = true;
  if (!BeingTimed(m))
    while (pending.load()) std::this_thread::yield();
  return 0;
}
