#include "kernels/cuda/abba.h"

#include <cmath>

#include "absl/strings/str_format.h"

namespace ratchet::kernels {
namespace {

bool Close(double x, double r, double atol, double rtol) {
  return std::isfinite(x) && std::isfinite(r) && std::fabs(x - r) <= atol + rtol * std::fabs(r);
}

}  // namespace

AbbaVerdict CheckAbba(const void* out, const void* ref_a, const void* ref_a_prime, DType dtype,
                      int64_t count, double atol, double rtol) {
  AbbaVerdict v;
  for (int64_t i = 0; i < count; ++i) {
    const size_t k = static_cast<size_t>(i);
    const double ra = LoadAsDouble(ref_a, dtype, k);
    const double rp = LoadAsDouble(ref_a_prime, dtype, k);
    if (Close(ra, rp, atol, rtol) && Close(rp, ra, atol, rtol)) continue;
    ++v.differing;
    const double o = LoadAsDouble(out, dtype, k);
    if (Close(o, ra, atol, rtol) && !Close(o, rp, atol, rtol)) {
      if (v.stale == 0) {
        v.message = absl::StrFormat("element %d: got %g, which is A's answer %g, not A''s %g", i, o,
                                    ra, rp);
      }
      ++v.stale;
    }
  }
  v.cached = v.differing > 0 && v.stale == v.differing;
  return v;
}

}  // namespace ratchet::kernels
