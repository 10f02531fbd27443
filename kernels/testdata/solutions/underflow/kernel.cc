// Writes one element before the start of head_sum (hits the canaries).
#include "ratchet/kernel_abi.h"

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t, ratchet_tensor* out, int32_t) {
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  const float alpha = *static_cast<const float*>(in[2].data);
  float* c = static_cast<float*>(out[0].data);
  float* h = static_cast<float*>(out[1].data);
  const int64_t n = in[0].shape[0], half = out[1].shape[0];
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + alpha * b[i];
  for (int64_t i = 0; i < half; ++i) h[i] = c[i] + c[half + i];
  volatile float* vh = h;
  vh[-1] = 1.0f;
  return 0;
}
