// Bad candidate: does not compile (missing semicolon and an undeclared
// name). Expected outcome: compile_error, with the compiler's message.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdlib.h>

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  const int64_t n = in[0].shape[0]
  float* c = static_cast<float*>(out[0].data);
  for (int64_t i = 0; i < n; ++i) c[i] = undeclared_value;
  return 0;
}
