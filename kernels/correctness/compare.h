// Correctness rules (docs/harness.md, "Correctness and guards"): an
// element matches when |o - r| <= atol + rtol * |r|; at least 99% must match;
// any NaN/Inf in the output fails; an all-zero output against a non-zero
// reference fails. ratchet adds a bound on how far the mismatched elements may
// be (issue 11): without it, finite garbage in up to 1% of the elements
// passes. A floating-point element fails the whole output when
//   |o - r| > max_error_factor * max(atol + rtol * |r|, ulp(r))
// where ulp(r) is one unit in the last place at r of the output dtype (or the
// reference dtype, whichever is coarser). docs/harness.md "Mismatches must be near misses"
// explains the default and the exceptions.
#ifndef RATCHET_KERNELS_CORRECTNESS_COMPARE_H_
#define RATCHET_KERNELS_CORRECTNESS_COMPARE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/problem/dtype.h"

namespace ratchet::kernels {

// Default bound on a mismatched element, in units of its tolerance. Honest
// kernels that compute in another order miss the reference by small multiples
// of the tolerance. Measured on CPU emulations (fp64 reference, 1e-2/1e-2 for
// bf16 outputs, the CUDA table's 1e-4/1e-4 for fp32): bf16 matmul with fp32
// accumulation (K up to 16384, sequential or split-K), softmax and rmsnorm
// with bf16 intermediates: worst element 0.4-0.8 tolerances; fp32 matmul
// accumulated sequentially over K = 16384: 4.8 tolerances on 0.2% of the
// elements, the tightest honest case found (a kernel that rounds its split-K
// partials to bf16 is 5-40 tolerances off, but on 5-10% of the elements, so
// the 99% rule fails it anyway). 8 keeps a margin of 1.6x over that, while
// garbage (a stale, uninitialised or wrongly indexed element, a skipped tile)
// is off by the size of the data itself: tens to thousands of tolerances.
// The ulp floor in the rule keeps fp8 outputs (one e4m3 ulp at 256 is 12
// tolerances of the public 1e-2) and tolerances tighter than the output
// dtype's precision from turning one-ulp rounding differences into failures.
inline constexpr double kDefaultMaxErrorFactor = 8;

struct Tolerance {
  double atol = 1e-2;
  double rtol = 1e-2;
  double min_matched_fraction = 0.99;
  // See kDefaultMaxErrorFactor. At or below 1 every element must match.
  double max_error_factor = kDefaultMaxErrorFactor;
};

struct CompareResult {
  bool ok = false;
  double matched_fraction = 0;
  double max_abs_error = 0;  // Over finite elements.
  int64_t num_mismatched = 0;
  // Max over the finite elements that the bound covers (floating-point
  // output, finite reference) of |o - r| / max(atol + rtol*|r|, ulp(r)): 1 is
  // exactly at the tolerance; the output fails when it exceeds
  // max_error_factor. 0 for integer outputs.
  double worst_excess = 0;
  int64_t worst_index = -1;   // Flat index of worst_excess; -1 when none.
  int64_t num_beyond_bound = 0;  // Elements with excess > max_error_factor.
  // Why it failed, naming the rule: "output holds NaN/Inf ...", "output is
  // all zeros ...", "98.00% of elements match (need 99%); first mismatch at
  // [3,17]: ...", or "element [1234] off by 5.1 (limit 0.16 = 8 x tolerance
  // 0.02; got 6.1, expected 1) ..."; empty when ok.
  std::string message;
};

// Compares `count` elements of `out` (dtype `out_dtype`) against `ref`.
// `shape` only formats indices.
// Outputs of millions of elements are checked in stretches on up to
// `threads` cores (0: as many as the machine has, at most 16); the result is
// the same for every thread count.
CompareResult CompareOutputs(const void* out, DType out_dtype, const void* ref,
                             DType ref_dtype, int64_t count,
                             const std::vector<int64_t>& shape, const Tolerance& tol,
                             int threads = 0);

// One unit in the last place of `dtype` at value `x` (the spacing of the
// representable numbers in [2^e, 2^(e+1)) that holds |x|; the subnormal
// spacing near 0). 0 for integer and bool dtypes.
double UlpAt(DType dtype, double x);

// "[i,j,k]" for flat index `flat` in a row-major `shape`.
std::string FormatIndex(int64_t flat, const std::vector<int64_t>& shape);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_CORRECTNESS_COMPARE_H_
