// Bad candidate: computes c = a + b correctly, then keeps writing past the
// end of c, from c[n] through c[n + 4096*4 + 1023] (68 KiB past the end), so
// it runs over any canary bytes and into the guard page after the buffer.
// Expected outcome: out_of_bounds.
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdlib.h>

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  if (n_in != 2 || n_out != 1 || in[0].ndim != 1) return 1;
  const int64_t n = in[0].shape[0];
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  float* volatile c = static_cast<float*>(out[0].data);
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
  for (int64_t i = n; i < n + 4096 * 4 + 1024; ++i) c[i] = 42.0f;
  return 0;
}
