#include "kernels/correctness/compare.h"

#include <algorithm>
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

double UlpAt(DType dtype, double x) {
  int mantissa = 0, min_exp = 0;  // Explicit mantissa bits; exponent of the smallest normal.
  switch (dtype) {
    case DType::kFloat64: mantissa = 52, min_exp = -1022; break;
    case DType::kFloat32: mantissa = 23, min_exp = -126; break;
    case DType::kBFloat16: mantissa = 7, min_exp = -126; break;
    case DType::kFloat16: mantissa = 10, min_exp = -14; break;
    case DType::kFloat8E4M3: mantissa = 3, min_exp = -6; break;
    case DType::kFloat8E5M2: mantissa = 2, min_exp = -14; break;
    default: return 0;
  }
  if (!std::isfinite(x)) return 0;
  if (x == 0) return std::ldexp(1.0, min_exp - mantissa);
  int e = 0;
  (void)std::frexp(std::fabs(x), &e);  // |x| = f * 2^e, f in [0.5, 1): x in [2^(e-1), 2^e).
  return std::ldexp(1.0, std::max(e - 1, min_exp) - mantissa);
}

CompareResult CompareOutputs(const void* out, DType out_dtype, const void* ref,
                             DType ref_dtype, int64_t count,
                             const std::vector<int64_t>& shape, const Tolerance& tol) {
  CompareResult r;
  int64_t matched = 0, first_bad = -1, first_nonfinite = -1, worst_beyond = -1;
  double worst_beyond_excess = 0;
  bool out_all_zero = true, ref_all_zero = true;
  double bad_o = 0, bad_r = 0;
  // Integer and bool outputs are discrete answers (indices, counts, masks):
  // a wrong one is not nearer for being numerically closer, so they keep the
  // fraction rule only.
  const bool bounded = IsFloating(out_dtype);
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
    const double t = tol.atol + tol.rtol * std::fabs(e);
    if (diff <= t) {
      ++matched;
    } else if (first_bad < 0) {
      first_bad = i, bad_o = o, bad_r = e;
    }
    // A NaN/Inf reference cannot be met by a finite output; such elements
    // count as mismatches (fraction rule) only.
    if (bounded && std::isfinite(e)) {
      const double scale = std::max({t, UlpAt(out_dtype, e), UlpAt(ref_dtype, e)});
      const double excess = diff / scale;
      if (excess > r.worst_excess) r.worst_excess = excess, r.worst_index = i;
      // `diff > t` too: an element within tolerance never fails, whatever
      // the factor (a factor below 1 then means "every element matches").
      if (diff > t && excess > tol.max_error_factor) {
        ++r.num_beyond_bound;
        if (excess > worst_beyond_excess) worst_beyond_excess = excess, worst_beyond = i;
      }
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
    if (r.num_beyond_bound > 0) {
      absl::StrAppendFormat(&r.message, "; %d element(s) beyond %g x tolerance, worst %.3g x",
                            r.num_beyond_bound, tol.max_error_factor, r.worst_excess);
    }
    return r;
  }
  if (r.num_beyond_bound > 0) {
    const int64_t i = worst_beyond;
    const double o = LoadAsDouble(out, out_dtype, static_cast<size_t>(i));
    const double e = LoadAsDouble(ref, ref_dtype, static_cast<size_t>(i));
    const double t = tol.atol + tol.rtol * std::fabs(e);
    const double scale = std::max({t, UlpAt(out_dtype, e), UlpAt(ref_dtype, e)});
    const std::string unit =
        scale > t ? absl::StrFormat("1 ulp %.3g (tolerance %.3g)", scale, t)
                  : absl::StrFormat("tolerance %.3g", t);
    r.message = absl::StrFormat(
        "element %s off by %.3g (limit %.3g = %g x %s; got %.6g, expected %.6g): %d of %d "
        "elements are beyond %g x tolerance (max_error_factor), worst %.3g x; %.2f%% of "
        "elements match",
        FormatIndex(i, shape), std::fabs(o - e), tol.max_error_factor * scale,
        tol.max_error_factor, unit, o, e, r.num_beyond_bound, count, tol.max_error_factor,
        worst_beyond_excess, 100 * r.matched_fraction);
    return r;
  }
  r.ok = true;
  return r;
}

}  // namespace ratchet::kernels
