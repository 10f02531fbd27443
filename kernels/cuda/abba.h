// The A/B/A' check's decisive comparison. A' differs from A in one input
// element, so its reference differs from A's in a few output elements only:
// too few for the 99%-of-elements rule to notice a candidate that answers A'
// with A's cached output. This looks at exactly those elements.
#ifndef RATCHET_KERNELS_CUDA_ABBA_H_
#define RATCHET_KERNELS_CUDA_ABBA_H_

#include <cstdint>
#include <string>

#include "kernels/problem/dtype.h"

namespace ratchet::kernels {

struct AbbaVerdict {
  int64_t differing = 0;    // Elements where the two references differ.
  int64_t stale = 0;        // Of those, where the output matches A's, not A''s.
  bool cached = false;      // differing > 0 and every one of them is stale.
  std::string message;      // First stale element, when cached.
};

// `out`, `ref_a`, `ref_a_prime`: `count` elements of `dtype`. Two values are
// close when |x - r| <= atol + rtol |r| (both finite).
AbbaVerdict CheckAbba(const void* out, const void* ref_a, const void* ref_a_prime, DType dtype,
                      int64_t count, double atol, double rtol);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_CUDA_ABBA_H_
