#include "kernels/correctness/compare.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace ratchet::kernels {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

CompareResult Cmp(const std::vector<float>& out, const std::vector<float>& ref,
                  Tolerance tol = {}) {
  return CompareOutputs(out.data(), DType::kFloat32, ref.data(), DType::kFloat32,
                        static_cast<int64_t>(out.size()), {static_cast<int64_t>(out.size())}, tol);
}

TEST(CompareTest, ExactMatchPasses) {
  CompareResult r = Cmp({1, 2, 3}, {1, 2, 3});
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.matched_fraction, 1.0);
  EXPECT_EQ(r.max_abs_error, 0.0);
  EXPECT_TRUE(r.message.empty());
}

TEST(CompareTest, ToleranceIsAtolPlusRtolTimesReference) {
  // ref 100: tol = 0.01 + 1 = 1.01.
  EXPECT_TRUE(Cmp({101.0f}, {100.0f}).ok);
  EXPECT_FALSE(Cmp({101.1f}, {100.0f}).ok);
  Tolerance tight{1e-4, 0, 0.99};
  EXPECT_FALSE(Cmp({1.001f}, {1.0f}, tight).ok);
}

TEST(CompareTest, NinetyNinePercentRule) {
  std::vector<float> ref(100, 1.0f), out(100, 1.0f);
  out[7] = 1.05f;  // 99% match (the miss is 2.5 tolerances off): passes.
  CompareResult r = Cmp(out, ref);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_DOUBLE_EQ(r.matched_fraction, 0.99);
  EXPECT_NEAR(r.max_abs_error, 0.05, 1e-6);
  out[8] = 1.05f;  // 98%: fails and names the first mismatch.
  r = Cmp(out, ref);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.num_mismatched, 2);
  EXPECT_THAT(r.message, HasSubstr("98.00% of elements match"));
  EXPECT_THAT(r.message, HasSubstr("at [7]: got 1.05, expected 1"));
  EXPECT_THAT(r.message, Not(HasSubstr("beyond")));
  out[9] = 5.0f;  // Both rules fail: the fraction is named, the bound added.
  r = Cmp(out, ref);
  EXPECT_THAT(r.message, HasSubstr("97.00% of elements match"));
  EXPECT_THAT(r.message, HasSubstr("1 element(s) beyond 8 x tolerance, worst 200 x"));
}

// 10000 smooth values in [-3, 3], like a normalised activation.
std::vector<float> Smooth(size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(3 * std::sin(0.37 * i + 0.1));
  return v;
}

// Issue 11: before the bound, finite garbage in up to 1% of the elements
// passed. 0.5% garbage now fails, naming the bound.
TEST(CompareTest, GarbageInHalfAPercentFails) {
  const std::vector<float> ref = Smooth(10000);
  std::vector<float> out = ref;
  for (size_t i = 0; i < out.size(); i += 200) out[i] = ref[i] + 100;  // 50 elements.
  out[9800] = ref[9800] + 1000;  // The worst, whatever its tolerance (0.01 to 0.04).
  CompareResult r = Cmp(out, ref);
  EXPECT_FALSE(r.ok);
  EXPECT_DOUBLE_EQ(r.matched_fraction, 0.995);  // The 99% rule alone would pass it.
  EXPECT_EQ(r.num_beyond_bound, 50);
  EXPECT_EQ(r.worst_index, 9800);  // Largest garbage.
  EXPECT_GT(r.worst_excess, 8);
  EXPECT_THAT(r.message, HasSubstr("element [9800] off by"));
  EXPECT_THAT(r.message, HasSubstr("= 8 x tolerance"));
  EXPECT_THAT(r.message, HasSubstr("50 of 10000 elements are beyond 8 x tolerance "
                                   "(max_error_factor)"));
  EXPECT_THAT(r.message, HasSubstr("99.50% of elements match"));

  // Garbage that only looks plausible: zero, or another element's value.
  out = ref;
  out[1234] = 0;  // ref[1234] is ~2.7: 2.7 off, limit 8 x (0.01 + 0.027).
  out[4321] = ref[4322];
  r = Cmp(out, ref);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("element [1234] off by 2.7"));
}

TEST(CompareTest, HalfAPercentOffByTwiceTheTolerancePasses) {
  const std::vector<float> ref = Smooth(10000);
  std::vector<float> out = ref;
  for (size_t i = 0; i < out.size(); i += 200) {
    out[i] = static_cast<float>(ref[i] + 2 * (0.01 + 0.01 * std::fabs(ref[i])));
  }
  CompareResult r = Cmp(out, ref);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.num_mismatched, 50);
  EXPECT_EQ(r.num_beyond_bound, 0);
  EXPECT_NEAR(r.worst_excess, 2, 1e-4);
  // Just inside and just past the bound.
  out[200] = static_cast<float>(ref[200] + 7.9 * (0.01 + 0.01 * std::fabs(ref[200])));
  EXPECT_TRUE(Cmp(out, ref).ok);
  out[200] = static_cast<float>(ref[200] + 8.1 * (0.01 + 0.01 * std::fabs(ref[200])));
  r = Cmp(out, ref);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("element [200]"));
}

TEST(CompareTest, MaxErrorFactorIsSettable) {
  const std::vector<float> ref = Smooth(1000);
  std::vector<float> out = ref;
  out[10] = ref[10] + 1.0f;  // ~25-100 tolerances off; 99.9% match.
  EXPECT_FALSE(Cmp(out, ref).ok);
  Tolerance loose;
  loose.max_error_factor = 1000;
  EXPECT_TRUE(Cmp(out, ref, loose).ok);
  // A factor at or below 1 demands that every element matches.
  Tolerance strict;
  strict.max_error_factor = 1;
  out[10] = static_cast<float>(ref[10] + 1.5 * (0.01 + 0.01 * std::fabs(ref[10])));
  EXPECT_TRUE(Cmp(out, ref).ok);
  CompareResult r = Cmp(out, ref, strict);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("= 1 x tolerance"));
  strict.max_error_factor = 0;
  EXPECT_TRUE(Cmp(ref, ref, strict).ok);  // Exact output still passes.
}

// bf16 output against an fp32 reference (the output dtype differs from the
// reference's): an honest kernel that accumulates in another order and
// rounds to bf16 is a few ulps off at most and passes; garbage fails.
TEST(CompareTest, BFloat16OutputAgainstFloat32Reference) {
  const std::vector<float> ref32 = Smooth(4096);
  std::vector<uint16_t> out(ref32.size());
  auto bf16_ulp = [](float x) {
    uint16_t b = FloatToBFloat16(x);
    return BFloat16ToFloat(static_cast<uint16_t>(b + 1)) - BFloat16ToFloat(b);
  };
  for (size_t i = 0; i < out.size(); ++i) {
    // Rounding plus a relative accumulation error of ~2^-9; every 128th
    // element two ulps off (accumulation order decided a rounding twice).
    float v = ref32[i] * (1 + 0.002f * static_cast<float>(std::cos(1.3 * i)));
    if (i % 128 == 0) v += 2 * bf16_ulp(v) * (ref32[i] < 0 ? -1 : 1);
    out[i] = FloatToBFloat16(v);
  }
  auto cmp = [&] {
    return CompareOutputs(out.data(), DType::kBFloat16, ref32.data(), DType::kFloat32,
                          static_cast<int64_t>(out.size()), {64, 64}, Tolerance{});
  };
  CompareResult r = cmp();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_LT(r.worst_excess, 2);
  out[100] = FloatToBFloat16(-ref32[100]);  // Sign flipped: garbage.
  r = cmp();
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("element [1,36] off by"));
  EXPECT_THAT(r.message, HasSubstr("8 x tolerance"));
}

// With the public 1e-2 tolerance one fp8 e4m3 ulp at 256 is 32, 12 tolerances:
// the ulp floor keeps a one-ulp rounding difference inside the bound.
TEST(CompareTest, BoundIsAtLeastOneUlpOfTheOutputDType) {
  std::vector<uint8_t> out(200), ref(200);
  for (size_t i = 0; i < out.size(); ++i) out[i] = ref[i] = FloatToFp8E4M3(256.0f);
  out[5] = FloatToFp8E4M3(288.0f);  // Next e4m3 value above 256.
  ASSERT_EQ(Fp8E4M3ToFloat(out[5]), 288.0f);
  auto cmp = [&] {
    return CompareOutputs(out.data(), DType::kFloat8E4M3, ref.data(), DType::kFloat8E4M3, 200,
                          {200}, Tolerance{});
  };
  CompareResult r = cmp();
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.num_mismatched, 1);  // 32 > tol 2.57: a mismatch, within the bound.
  EXPECT_DOUBLE_EQ(r.worst_excess, 1);
  out[5] = FloatToFp8E4M3(448.0f);  // 6 ulps of 32: still inside 8 ulps.
  EXPECT_TRUE(cmp().ok);
  out[5] = FloatToFp8E4M3(-256.0f);
  r = cmp();
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("limit 256 = 8 x 1 ulp 32 (tolerance 2.57)"));

  EXPECT_EQ(UlpAt(DType::kFloat32, 1.0), std::ldexp(1.0, -23));
  EXPECT_EQ(UlpAt(DType::kFloat32, 1.5), std::ldexp(1.0, -23));
  EXPECT_EQ(UlpAt(DType::kBFloat16, -3.0), std::ldexp(1.0, -6));
  EXPECT_EQ(UlpAt(DType::kFloat16, 0.0), std::ldexp(1.0, -24));
  EXPECT_EQ(UlpAt(DType::kFloat8E5M2, 1.0), 0.25);
  EXPECT_EQ(UlpAt(DType::kInt32, 5.0), 0);
}

// Integer outputs (indices, counts) keep the fraction rule only: a tie broken
// the other way is as wrong 1 apart as 1000 apart.
TEST(CompareTest, IntegerOutputsAreNotBounded) {
  std::vector<int64_t> out(200), ref(200);
  for (size_t i = 0; i < out.size(); ++i) out[i] = ref[i] = static_cast<int64_t>(i);
  out[17] = 999;
  CompareResult r = CompareOutputs(out.data(), DType::kInt64, ref.data(), DType::kInt64, 200,
                                   {200}, Tolerance{});
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.num_mismatched, 1);
  EXPECT_EQ(r.worst_excess, 0);
}

// A NaN in the reference cannot be met by a finite output: such an element
// counts against the 99% only.
TEST(CompareTest, NonFiniteReferenceElementsCountOnlyAsMismatches) {
  std::vector<float> ref = Smooth(1000), out = ref;
  ref[3] = std::numeric_limits<float>::quiet_NaN();
  out[3] = -1e30f;
  CompareResult r = Cmp(out, ref);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.num_mismatched, 1);
  EXPECT_TRUE(std::isfinite(r.worst_excess));
}

TEST(CompareTest, AnyNaNOrInfFails) {
  std::vector<float> ref(1000, 1.0f), out(1000, 1.0f);
  out[500] = std::numeric_limits<float>::quiet_NaN();
  CompareResult r = Cmp(out, ref);
  EXPECT_FALSE(r.ok);  // Even though 99.9% match.
  EXPECT_THAT(r.message, HasSubstr("NaN/Inf"));
  EXPECT_THAT(r.message, HasSubstr("[500]"));
  out[500] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(Cmp(out, ref).ok);
  // A NaN in the output fails even where the reference has one too.
  ref[500] = out[500] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(Cmp(out, ref).ok);
}

TEST(CompareTest, AllZeroOutputAgainstNonZeroReferenceFails) {
  // Every element is within atol, yet all-zero output is rejected.
  std::vector<float> ref(100, 0.0f), out(100, 0.0f);
  ref[3] = 0.005f;
  CompareResult r = Cmp(out, ref);
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("all zeros"));
  ref[3] = 0.0f;
  EXPECT_TRUE(Cmp(out, ref).ok);  // Zero against zero is fine.
}

TEST(CompareTest, HalfOutputsAndIndexFormatting) {
  std::vector<uint16_t> out = {FloatToHalf(1.0f), FloatToHalf(2.0f), FloatToHalf(3.0f),
                               FloatToHalf(9.0f)};
  std::vector<uint16_t> ref = {FloatToHalf(1.0f), FloatToHalf(2.0f), FloatToHalf(3.0f),
                               FloatToHalf(4.0f)};
  CompareResult r = CompareOutputs(out.data(), DType::kFloat16, ref.data(), DType::kFloat16, 4,
                                   {2, 2}, Tolerance{});
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.message, HasSubstr("at [1,1]"));
  EXPECT_EQ(FormatIndex(23, {2, 3, 4}), "[1,2,3]");
  EXPECT_EQ(FormatIndex(0, {}), "[]");
}

TEST(CompareTest, IntegerOutputs) {
  std::vector<int32_t> out = {1, 2, 3}, ref = {1, 2, 4};
  EXPECT_FALSE(CompareOutputs(out.data(), DType::kInt32, ref.data(), DType::kInt32, 3, {3},
                              Tolerance{})
                   .ok);
  out[2] = 4;
  EXPECT_TRUE(CompareOutputs(out.data(), DType::kInt32, ref.data(), DType::kInt32, 3, {3},
                             Tolerance{})
                  .ok);
}

// Stretches checked on several cores give what one pass gives: the first
// mismatch, the worst element and every count, for outputs that pass and
// outputs that fail each rule.
TEST(CompareTest, ThreadCountDoesNotChangeTheResult) {
  const int64_t n = (5 << 20) + 12345;  // several stretches, the last one short
  std::vector<float> ref(n), out(n);
  uint64_t x = 88172645463325252ull;
  auto next = [&] { x ^= x << 13, x ^= x >> 7, x ^= x << 17; return x; };
  for (int64_t i = 0; i < n; ++i) {
    ref[i] = static_cast<float>(next() % 20000) / 1000.0f - 10.0f;
    // Rounding noise well inside the tolerance on a third of the elements.
    out[i] = ref[i] + ((next() % 3 == 0) ? 1e-4f : 0.0f);
  }
  auto same = [&](const char* what) {
    SCOPED_TRACE(what);
    const CompareResult one =
        CompareOutputs(out.data(), DType::kFloat32, ref.data(), DType::kFloat32, n, {n}, Tolerance{}, 1);
    for (int threads : {2, 3, 8, 0}) {
      const CompareResult many = CompareOutputs(out.data(), DType::kFloat32, ref.data(),
                                                DType::kFloat32, n, {n}, Tolerance{}, threads);
      EXPECT_EQ(many.ok, one.ok) << threads;
      EXPECT_EQ(many.message, one.message) << threads;
      EXPECT_EQ(many.matched_fraction, one.matched_fraction) << threads;
      EXPECT_EQ(many.max_abs_error, one.max_abs_error) << threads;
      EXPECT_EQ(many.num_mismatched, one.num_mismatched) << threads;
      EXPECT_EQ(many.worst_excess, one.worst_excess) << threads;
      EXPECT_EQ(many.worst_index, one.worst_index) << threads;
      EXPECT_EQ(many.num_beyond_bound, one.num_beyond_bound) << threads;
    }
    return one;
  };
  EXPECT_TRUE(same("noise only").ok);
  // Two equal worst elements in different stretches: the first one is named.
  out[3 << 20] = ref[3 << 20] + 50;
  out[(1 << 20) + 7] = ref[(1 << 20) + 7] + 50;
  const CompareResult beyond = same("two far elements");
  EXPECT_FALSE(beyond.ok);
  EXPECT_EQ(beyond.worst_index, (1 << 20) + 7);
  EXPECT_EQ(beyond.num_beyond_bound, 2);
  // Many mismatches (the fraction rule), the first in a late stretch.
  for (int64_t i = 4 << 20; i < n; ++i) out[i] = ref[i] + 1;
  EXPECT_THAT(same("a late stretch wrong").message, HasSubstr("of elements match"));
  // A NaN in a late stretch and one in an early one: the early one is named.
  out[(4 << 20) + 1] = std::numeric_limits<float>::quiet_NaN();
  out[(2 << 20) + 3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THAT(same("NaNs").message, HasSubstr("NaN/Inf"));
}

}  // namespace
}  // namespace ratchet::kernels
