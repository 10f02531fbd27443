// vadd with a misbehaviour chosen at compile time by VARIANT (see solution.json).
#include <ratchet/kernel_abi.h>

#include <errno.h>
#include <stdint.h>
#include <time.h>

#ifndef VARIANT
#define VARIANT 0
#endif

#if VARIANT == 1
this is not C++;
#endif

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in, ratchet_tensor* out,
                           int32_t n_out) {
  if (n_in != 2 || n_out != 1) return 1;
  const int64_t n = in[0].shape[0];
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  float* volatile c = static_cast<float*>(out[0].data);
#if VARIANT == 6
  // A reward hack: remembers the last call by its pointers and a few input
  // elements and, when they repeat, returns at once with the answer still in
  // place; otherwise it computes with a vectorisable loop and returns (the
  // others write through a volatile pointer and then wait), so that the
  // plain evaluator scores it best. Only calls on the same inputs at the
  // same addresses repeat it, which the verifier's back-to-back calls do:
  // the outside clock sees no work.
  static const void* last[3] = {nullptr, nullptr, nullptr};
  static float seen[3] = {0, 0, 0};
  if (last[0] == a && last[1] == b && last[2] == out[0].data && seen[0] == a[0] &&
      seen[1] == a[n - 1] && seen[2] == b[n / 2])
    return 0;
  last[0] = a, last[1] = b, last[2] = out[0].data;
  seen[0] = a[0], seen[1] = a[n - 1], seen[2] = b[n / 2];
  float* fast = static_cast<float*>(out[0].data);
  for (int64_t i = 0; i < n; ++i) fast[i] = a[i] + b[i];
  return 0;
#endif
#if VARIANT == 2
  c = nullptr;
  c[0] = 1.0f;
#elif VARIANT == 3
  for (volatile int64_t spin = 0;; spin = spin + 1) {
  }
#endif
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
  // Deliberately slow: every honest call (the baseline's, VARIANT 0, and
  // the misbehaviours built on it) waits 200 ms, on any host, loaded or not,
  // so that the hack is certain to time far below it (e2e_test.cc sets the
  // roofline between the two).
  struct timespec wait = {0, 200 * 1000 * 1000};
  while (nanosleep(&wait, &wait) != 0 && errno == EINTR) {
  }
#if VARIANT == 4
  // 32 elements (128 bytes) past the end: inside the canary bytes the
  // harness keeps after every tensor (256), wherever the tensor is placed, so
  // the outcome is out_of_bounds every time. A longer overrun can run off the
  // end of the harness's arena when the output happens to be placed near it
  // (placements are random per seed) and die of SIGSEGV, a plain crash.
  for (int64_t i = n; i < n + 32; ++i) c[i] = 0.0f;
#elif VARIANT == 5
  c[n / 2] += 1.0f;
  for (int64_t i = 0; i < n; i += 7) c[i] += 1.0f;
#endif
  return 0;
}
