// Bad candidate: never returns. Expected outcome: timeout.
// The loop has a side effect (volatile) so the compiler must keep it.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdlib.h>

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  (void)in; (void)n_in; (void)out; (void)n_out;
  volatile uint64_t spins = 0;
  for (;;) spins = spins + 1;
  return 0;
}
