// Bad candidate: writes through a null pointer -> SIGSEGV.
// Expected outcome: crash. The pointer is read from a volatile global so
// that the compiler cannot see it is null (and cannot turn the store into a
// trap instruction or drop it).
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdlib.h>

float* volatile g_target = nullptr;

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  (void)in; (void)n_in; (void)out; (void)n_out;
  float* p = g_target;
  p[0] = 1.0f;
  return 0;
}
