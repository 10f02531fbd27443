// RMSNorm over bf16 rows, accumulating in float.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "ratchet/kernel_abi.h"

namespace {
float Load(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
uint16_t Store(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}
}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  if (ni != 3 || no != 1 || in[0].dtype != RATCHET_BFLOAT16 || in[2].ndim != 0) return 1;
  const uint16_t* x = static_cast<const uint16_t*>(in[0].data);
  const float* w = static_cast<const float*>(in[1].data);
  const float eps = *static_cast<const float*>(in[2].data);
  uint16_t* y = static_cast<uint16_t*>(out[0].data);
  const int64_t rows = in[0].shape[0], h = in[0].shape[1];
  for (int64_t r = 0; r < rows; ++r) {
    float ss = 0;
    for (int64_t i = 0; i < h; ++i) ss += Load(x[r * h + i]) * Load(x[r * h + i]);
    const float rstd = 1.0f / std::sqrt(ss / static_cast<float>(h) + eps);
    for (int64_t i = 0; i < h; ++i) y[r * h + i] = Store(Load(x[r * h + i]) * rstd * w[i]);
  }
  return 0;
}
