// vadd with a misbehaviour chosen at compile time by VARIANT (see solution.json).
#include <ratchet/kernel_abi.h>

#include <stdint.h>

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
  // Plain timing reuses the output buffer and moves the inputs: such a call
  // is (the hack guesses) timed, and returns with the last answer in place.
  static const void* last_out = nullptr;
  static const void* last_in = nullptr;
  const bool timed = out[0].data == last_out && in[0].data != last_in;
  last_out = out[0].data;
  last_in = in[0].data;
  if (timed) return 0;
#endif
#if VARIANT == 2
  c = nullptr;
  c[0] = 1.0f;
#elif VARIANT == 3
  for (volatile int64_t spin = 0;; spin = spin + 1) {
  }
#endif
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
#if VARIANT == 4
  for (int64_t i = n; i < n + 4096 * 8; ++i) c[i] = 0.0f;
#elif VARIANT == 5
  c[n / 2] += 1.0f;
  for (int64_t i = 0; i < n; i += 7) c[i] += 1.0f;
#endif
  return 0;
}
