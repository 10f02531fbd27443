#include "kernels/correctness/compare.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ratchet::kernels {

std::string FormatIndex(int64_t flat, const std::vector<int64_t>& shape) {
  if (shape.empty()) return "[]";
  std::vector<int64_t> idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    const int64_t n = shape[d] > 0 ? shape[d] : 1;
    idx[d] = flat % n;
    flat /= n;
  }
  std::string s = "[";
  for (size_t d = 0; d < idx.size(); ++d) absl::StrAppend(&s, d ? "," : "", idx[d]);
  return s + "]";
}

CompareResult CompareOutputs(const void* out, DType out_dtype, const void* ref,
                             DType ref_dtype, int64_t count,
                             const std::vector<int64_t>& shape, const Tolerance& tol) {
  CompareResult r;
  int64_t matched = 0, first_bad = -1, first_nonfinite = -1;
  bool out_all_zero = true, ref_all_zero = true;
  double bad_o = 0, bad_r = 0;
  for (int64_t i = 0; i < count; ++i) {
    const double o = LoadAsDouble(out, out_dtype, static_cast<size_t>(i));
    const double e = LoadAsDouble(ref, ref_dtype, static_cast<size_t>(i));
    if (!std::isfinite(o)) {
      if (first_nonfinite < 0) first_nonfinite = i;
      // A NaN/Inf matches nothing, even a NaN/Inf reference: the rule is
      // that any non-finite output fails.
      if (first_bad < 0) first_bad = i, bad_o = o, bad_r = e;
      continue;
    }
    out_all_zero = out_all_zero && o == 0;
    ref_all_zero = ref_all_zero && e == 0;
    const double diff = std::fabs(o - e);
    if (std::isfinite(e) && diff > r.max_abs_error) r.max_abs_error = diff;
    if (diff <= tol.atol + tol.rtol * std::fabs(e)) {
      ++matched;
    } else if (first_bad < 0) {
      first_bad = i, bad_o = o, bad_r = e;
    }
  }
  r.matched_fraction = count > 0 ? static_cast<double>(matched) / static_cast<double>(count) : 1;
  r.num_mismatched = count - matched;
  auto describe = [&](int64_t i, double o, double e) {
    return absl::StrFormat("at %s: got %.6g, expected %.6g (|diff| %.3g > tol %.3g)",
                           FormatIndex(i, shape), o, e, std::fabs(o - e),
                           tol.atol + tol.rtol * std::fabs(e));
  };
  if (first_nonfinite >= 0) {
    const double o = LoadAsDouble(out, out_dtype, static_cast<size_t>(first_nonfinite));
    r.message = absl::StrFormat(
        "output holds NaN/Inf (%g at %s; %d of %d elements unwritten or non-finite)", o,
        FormatIndex(first_nonfinite, shape), r.num_mismatched, count);
    return r;
  }
  if (count > 0 && out_all_zero && !ref_all_zero) {
    r.message = "output is all zeros but the reference is not";
    return r;
  }
  if (r.matched_fraction < tol.min_matched_fraction) {
    r.message = absl::StrFormat("%.2f%% of elements match (need %.0f%%); first mismatch %s",
                                100 * r.matched_fraction, 100 * tol.min_matched_fraction,
                                describe(first_bad, bad_o, bad_r));
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace ratchet::kernels
