// Bad candidate: every element is off by one, c = a + b + 1 (far outside
// the 1e-2 tolerances; one wrong element alone would pass the 99% rule).
// Expected outcome: wrong_answer.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdlib.h>

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  if (n_in != 2 || n_out != 1 || in[0].ndim != 1) return 1;
  const int64_t n = in[0].shape[0];
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  float* c = static_cast<float*>(out[0].data);
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + b[i] + 1.0f;
  return 0;
}
