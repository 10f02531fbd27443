// Bad candidate: terminates the whole process with exit(3) from inside
// ratchet_run. Expected outcome: crash (the harness process is gone).
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdlib.h>

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  (void)in; (void)n_in; (void)out; (void)n_out;
  exit(3);
}
