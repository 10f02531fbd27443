// Correctness rules (brief §1): an element matches when
// |o - r| <= atol + rtol * |r|; at least 99% must match; any NaN/Inf in the
// output fails; an all-zero output against a non-zero reference fails.
#ifndef RATCHET_KERNELS_CORRECTNESS_COMPARE_H_
#define RATCHET_KERNELS_CORRECTNESS_COMPARE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/problem/dtype.h"

namespace ratchet::kernels {

struct Tolerance {
  double atol = 1e-2;
  double rtol = 1e-2;
  double min_matched_fraction = 0.99;
};

struct CompareResult {
  bool ok = false;
  double matched_fraction = 0;
  double max_abs_error = 0;  // Over finite elements.
  int64_t num_mismatched = 0;
  // Why it failed, with the first mismatch ("at [3,17]: got 1.5, expected
  // 2 (|diff| 0.5 > tol 0.03)"); empty when ok.
  std::string message;
};

// Compares `count` elements of `out` (dtype `out_dtype`) against `ref`.
// `shape` only formats indices.
CompareResult CompareOutputs(const void* out, DType out_dtype, const void* ref,
                             DType ref_dtype, int64_t count,
                             const std::vector<int64_t>& shape, const Tolerance& tol);

// "[i,j,k]" for flat index `flat` in a row-major `shape`.
std::string FormatIndex(int64_t flat, const std::vector<int64_t>& shape);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_CORRECTNESS_COMPARE_H_
