#include "kernels/correctness/compare.h"

#include <algorithm>
#include <cmath>
#include <thread>

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

namespace {

// What one stretch of elements found; stretches merge in order, so the
// result is the one a single pass over all elements would give.
struct Partial {
  int64_t matched = 0, first_bad = -1, first_nonfinite = -1, worst_beyond = -1;
  int64_t num_beyond_bound = 0, worst_index = -1;
  double worst_beyond_excess = 0, worst_excess = 0, max_abs_error = 0;
  double bad_o = 0, bad_r = 0;
  bool out_all_zero = true, ref_all_zero = true;

  void Merge(const Partial& p) {
    matched += p.matched;
    if (first_bad < 0 && p.first_bad >= 0) first_bad = p.first_bad, bad_o = p.bad_o, bad_r = p.bad_r;
    if (first_nonfinite < 0) first_nonfinite = p.first_nonfinite;
    if (p.worst_beyond_excess > worst_beyond_excess)
      worst_beyond_excess = p.worst_beyond_excess, worst_beyond = p.worst_beyond;
    num_beyond_bound += p.num_beyond_bound;
    if (p.worst_excess > worst_excess) worst_excess = p.worst_excess, worst_index = p.worst_index;
    max_abs_error = std::max(max_abs_error, p.max_abs_error);
    out_all_zero = out_all_zero && p.out_all_zero;
    ref_all_zero = ref_all_zero && p.ref_all_zero;
  }
};

Partial CompareRange(const void* out, DType out_dtype, const void* ref, DType ref_dtype,
                     int64_t begin, int64_t end, const Tolerance& tol) {
  Partial r;
  // Integer and bool outputs are discrete answers (indices, counts, masks):
  // a wrong one is not nearer for being numerically closer, so they keep the
  // fraction rule only.
  const bool bounded = IsFloating(out_dtype);
  for (int64_t i = begin; i < end; ++i) {
    const double o = LoadAsDouble(out, out_dtype, static_cast<size_t>(i));
    const double e = LoadAsDouble(ref, ref_dtype, static_cast<size_t>(i));
    if (!std::isfinite(o)) {
      if (r.first_nonfinite < 0) r.first_nonfinite = i;
      // A NaN/Inf matches nothing, even a NaN/Inf reference: the rule is
      // that any non-finite output fails.
      if (r.first_bad < 0) r.first_bad = i, r.bad_o = o, r.bad_r = e;
      continue;
    }
    r.out_all_zero = r.out_all_zero && o == 0;
    r.ref_all_zero = r.ref_all_zero && e == 0;
    const double diff = std::fabs(o - e);
    if (std::isfinite(e) && diff > r.max_abs_error) r.max_abs_error = diff;
    const double t = tol.atol + tol.rtol * std::fabs(e);
    if (diff <= t) {
      ++r.matched;
    } else if (r.first_bad < 0) {
      r.first_bad = i, r.bad_o = o, r.bad_r = e;
    }
    // A NaN/Inf reference cannot be met by a finite output; such elements
    // count as mismatches (fraction rule) only. An exact element's excess is
    // 0 whatever its scale.
    if (bounded && std::isfinite(e) && diff > 0) {
      const double scale = std::max({t, UlpAt(out_dtype, e), UlpAt(ref_dtype, e)});
      const double excess = diff / scale;
      if (excess > r.worst_excess) r.worst_excess = excess, r.worst_index = i;
      // `diff > t` too: an element within tolerance never fails, whatever
      // the factor (a factor below 1 then means "every element matches").
      if (diff > t && excess > tol.max_error_factor) {
        ++r.num_beyond_bound;
        if (excess > r.worst_beyond_excess) r.worst_beyond_excess = excess, r.worst_beyond = i;
      }
    }
  }
  return r;
}

}  // namespace

CompareResult CompareOutputs(const void* out, DType out_dtype, const void* ref,
                             DType ref_dtype, int64_t count,
                             const std::vector<int64_t>& shape, const Tolerance& tol,
                             int threads) {
  // Large outputs (a GPU workload's, tens of millions of elements) in
  // stretches on several cores: the check sits between timed calls.
  constexpr int64_t kStretch = 1 << 20;
  const int64_t cores =
      threads > 0 ? threads : static_cast<int64_t>(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t parts = std::clamp<int64_t>(count / kStretch, 1, std::min<int64_t>(cores, 16));
  std::vector<Partial> found(static_cast<size_t>(parts));
  if (parts == 1) {
    found[0] = CompareRange(out, out_dtype, ref, ref_dtype, 0, count, tol);
  } else {
    std::vector<std::thread> threads;
    for (int64_t k = 0; k < parts; ++k)
      threads.emplace_back([&, k] {
        found[static_cast<size_t>(k)] = CompareRange(out, out_dtype, ref, ref_dtype,
                                                     count * k / parts, count * (k + 1) / parts, tol);
      });
    for (std::thread& t : threads) t.join();
  }
  Partial all = found[0];
  for (size_t k = 1; k < found.size(); ++k) all.Merge(found[k]);
  CompareResult r;
  r.max_abs_error = all.max_abs_error;
  r.worst_excess = all.worst_excess;
  r.worst_index = all.worst_index;
  r.num_beyond_bound = all.num_beyond_bound;
  const int64_t matched = all.matched, first_bad = all.first_bad,
                first_nonfinite = all.first_nonfinite, worst_beyond = all.worst_beyond;
  const double worst_beyond_excess = all.worst_beyond_excess, bad_o = all.bad_o,
               bad_r = all.bad_r;
  const bool out_all_zero = all.out_all_zero, ref_all_zero = all.ref_all_zero;
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
