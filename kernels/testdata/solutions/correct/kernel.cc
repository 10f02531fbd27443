// Correct: c = a + alpha*b, head_sum = c[:h] + c[h:2h].
#include "ratchet/kernel_abi.h"

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  if (ni != 3 || no != 2) return 1;
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  const float alpha = *static_cast<const float*>(in[2].data);
  float* c = static_cast<float*>(out[0].data);
  float* h = static_cast<float*>(out[1].data);
  const int64_t n = in[0].shape[0], half = out[1].shape[0];
  int64_t i = 0;
  for (; i + UNROLL <= n; i += UNROLL) {
    for (int u = 0; u < UNROLL; ++u) c[i + u] = a[i + u] + alpha * b[i + u];
  }
  for (; i < n; ++i) c[i] = a[i] + alpha * b[i];
  for (int64_t i = 0; i < half; ++i) h[i] = c[i] + c[half + i];
  return 0;
}
