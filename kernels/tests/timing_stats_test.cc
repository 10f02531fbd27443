// CPU-only tests of the CUDA harness's pure parts: timing statistics, CUPTI
// span arithmetic, the events cross-check, the repetition rule, float8
// conversion and the default tolerance table.
#include "kernels/harness/timing_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/cuda/abba.h"
#include "kernels/problem/dtype.h"

namespace ratchet::kernels {
namespace {

TEST(TimingStatsTest, SummarizeOddAndEven) {
  SampleSummary s = Summarize({5, 1, 3, 2, 4});
  EXPECT_EQ(s.n, 5u);
  EXPECT_DOUBLE_EQ(s.median, 3);
  EXPECT_DOUBLE_EQ(s.min, 1);
  EXPECT_DOUBLE_EQ(s.max, 5);
  s = Summarize({4, 1, 3, 2});
  EXPECT_DOUBLE_EQ(s.median, 2.5);
}

TEST(TimingStatsTest, SpreadIsP90MinusP10OverMedian) {
  std::vector<double> v;
  for (int i = 1; i <= 11; ++i) v.push_back(i * 10.0);  // 10..110, median 60.
  const SampleSummary s = Summarize(v);
  EXPECT_DOUBLE_EQ(s.p10, 20);   // index floor(0.1*10) = 1.
  EXPECT_DOUBLE_EQ(s.p90, 100);  // index round(0.9*10) = 9.
  EXPECT_DOUBLE_EQ(s.spread, 80.0 / 60.0);
}

TEST(TimingStatsTest, SummarizeEmptyAndZero) {
  EXPECT_EQ(Summarize({}).n, 0u);
  EXPECT_DOUBLE_EQ(Summarize({0, 0, 0}).spread, 0);
}

TEST(TimingStatsTest, SpanCoversAllStreamsAndIgnoresIncomplete) {
  // Two overlapping kernels on different streams and a later memcpy.
  std::vector<ActivityInterval> r = {{1000, 1500}, {1200, 2600}, {2700, 3000}};
  EXPECT_DOUBLE_EQ(*SpanNs(r), 2000);
  r.push_back({0, 5000});     // Incomplete record: no start.
  r.push_back({4000, 3900});  // End before start: invalid.
  EXPECT_DOUBLE_EQ(*SpanNs(r), 2000);
  EXPECT_FALSE(SpanNs({}).has_value());
  EXPECT_FALSE(SpanNs({{0, 0}}).has_value());
  EXPECT_DOUBLE_EQ(*SpanNs({{10, 10}}), 0);
}

TEST(TimingStatsTest, SplitByWindowAssignsByStart) {
  const std::vector<TimeWindow> w = {{100, 200}, {300, 400}, {500, 600}};
  const std::vector<ActivityInterval> r = {
      {50, 90},    // Before every window: the harness's own work.
      {110, 150},  // Window 0.
      {190, 210},  // Starts in window 0 (ends a little after its end).
      {250, 260},  // Between windows: dropped.
      {300, 320},  // Window 1, on its begin.
      {600, 610},  // Window 2, on its end.
      {700, 710},  // After every window.
  };
  const auto split = SplitByWindow(r, w);
  ASSERT_EQ(split.size(), 3u);
  EXPECT_EQ(split[0].size(), 2u);
  EXPECT_EQ(split[1].size(), 1u);
  EXPECT_EQ(split[2].size(), 1u);
  EXPECT_DOUBLE_EQ(*SpanNs(split[0]), 100);
  EXPECT_TRUE(SplitByWindow(r, {}).empty());
}

TEST(TimingStatsTest, DisagreementNeedsRelativeAndAbsoluteMargin) {
  EXPECT_FALSE(TimingsDisagree(100000, 109000));  // 9% of 109 us.
  EXPECT_TRUE(TimingsDisagree(100000, 120000));   // 17%, 20 us.
  EXPECT_FALSE(TimingsDisagree(1500, 4100));      // Tiny: events' own ~2.6 us.
  EXPECT_TRUE(TimingsDisagree(3000, 9000));
  EXPECT_TRUE(TimingsDisagree(1000000, 10000));   // Hidden work: events far shorter.
}

TEST(TimingStatsTest, RepetitionRule) {
  EXPECT_TRUE(NeedMoreRepetitions(10, 50, 1e9, 0, 100000));
  EXPECT_FALSE(NeedMoreRepetitions(50, 50, 0, 0, 100000));
  EXPECT_TRUE(NeedMoreRepetitions(50, 50, 5e6, 10, 100000));   // 5 of 10 ms.
  EXPECT_FALSE(NeedMoreRepetitions(50, 50, 11e6, 10, 100000));
  EXPECT_FALSE(NeedMoreRepetitions(1000, 50, 0, 10, 1000));  // Cap.
}

TEST(Fp8Test, E4M3KnownValues) {
  EXPECT_EQ(FloatToFp8E4M3(1.0f), 0x38);
  EXPECT_EQ(FloatToFp8E4M3(-2.0f), 0xc0);
  EXPECT_EQ(FloatToFp8E4M3(448.0f), 0x7e);  // Largest finite.
  EXPECT_EQ(FloatToFp8E4M3(1e6f), 0x7f);    // No Inf: NaN.
  EXPECT_EQ(FloatToFp8E4M3(std::numeric_limits<float>::infinity()), 0x7f);
  EXPECT_EQ(FloatToFp8E4M3(std::ldexp(1.0f, -9)), 0x01);  // Smallest subnormal.
  EXPECT_EQ(FloatToFp8E4M3(std::ldexp(1.0f, -11)), 0x00);  // Rounds to zero.
  EXPECT_EQ(FloatToFp8E4M3(1.0625f), 0x38);  // Tie to even (1.0).
  EXPECT_EQ(FloatToFp8E4M3(1.1875f), 0x3a);  // Tie to even (1.25).
  EXPECT_TRUE(std::isnan(Fp8E4M3ToFloat(0x7f)));
  EXPECT_TRUE(std::isnan(Fp8E4M3ToFloat(0xff)));
  EXPECT_FLOAT_EQ(Fp8E4M3ToFloat(0x7e), 448.0f);
  EXPECT_FLOAT_EQ(Fp8E4M3ToFloat(0x08), std::ldexp(1.0f, -6));  // Smallest normal.
}

TEST(Fp8Test, E5M2KnownValues) {
  EXPECT_EQ(FloatToFp8E5M2(1.0f), 0x3c);
  EXPECT_EQ(FloatToFp8E5M2(57344.0f), 0x7b);  // Largest finite.
  EXPECT_EQ(FloatToFp8E5M2(1e6f), 0x7c);      // Inf.
  EXPECT_EQ(FloatToFp8E5M2(-std::numeric_limits<float>::infinity()), 0xfc);
  EXPECT_EQ(FloatToFp8E5M2(std::ldexp(1.0f, -16)), 0x01);
  EXPECT_TRUE(std::isinf(Fp8E5M2ToFloat(0x7c)));
  EXPECT_TRUE(std::isnan(Fp8E5M2ToFloat(0x7d)));
}

TEST(Fp8Test, EveryCodeRoundTrips) {
  for (int v = 0; v < 256; ++v) {
    const uint8_t b = static_cast<uint8_t>(v);
    const float e4 = Fp8E4M3ToFloat(b);
    if (!std::isnan(e4)) {
      EXPECT_EQ(FloatToFp8E4M3(e4), b) << "e4m3 code " << v;
    }
    const float e5 = Fp8E5M2ToFloat(b);
    if (!std::isnan(e5)) {
      EXPECT_EQ(FloatToFp8E5M2(e5), b) << "e5m2 code " << v;
    }
  }
}

TEST(Fp8Test, LoadStoreAndPoison) {
  uint8_t buf[2];
  StoreFromDouble(buf, DType::kFloat8E4M3, 0, 3.0);
  StoreFromDouble(buf, DType::kFloat8E5M2, 1, -0.5);
  EXPECT_DOUBLE_EQ(LoadAsDouble(buf, DType::kFloat8E4M3, 0), 3.0);
  EXPECT_DOUBLE_EQ(LoadAsDouble(buf, DType::kFloat8E5M2, 1), -0.5);
  Poison(buf, DType::kFloat8E4M3, 2);
  EXPECT_TRUE(std::isnan(LoadAsDouble(buf, DType::kFloat8E4M3, 1)));
  // All-0xFF bytes (the device poison) are NaN in every floating dtype.
  const uint8_t ff[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16,
                  DType::kFloat8E4M3, DType::kFloat8E5M2}) {
    EXPECT_TRUE(std::isnan(LoadAsDouble(ff, d, 0))) << DTypeName(d);
  }
  EXPECT_EQ(DTypeSize(*ParseDType("float8_e5m2")), 1u);
  EXPECT_EQ(DTypeSize(*ParseDType("int16")), 2u);
  EXPECT_STREQ(DTypeName(DType::kFloat8E4M3), "float8_e4m3fn");
}

TEST(ToleranceTest, DefaultsPerDType) {
  EXPECT_DOUBLE_EQ(DefaultToleranceFor(DType::kFloat32).atol, 1e-4);
  EXPECT_DOUBLE_EQ(DefaultToleranceFor(DType::kBFloat16).rtol, 1e-2);
  EXPECT_DOUBLE_EQ(DefaultToleranceFor(DType::kFloat16).atol, 1e-2);
  EXPECT_GT(DefaultToleranceFor(DType::kFloat8E4M3).rtol, 1e-2);
  EXPECT_GT(DefaultToleranceFor(DType::kFloat8E5M2).rtol,
            DefaultToleranceFor(DType::kFloat8E4M3).rtol);
  EXPECT_DOUBLE_EQ(DefaultToleranceFor(DType::kInt32).atol, 0);
  EXPECT_DOUBLE_EQ(DefaultToleranceFor(DType::kBool).rtol, 0);
  // Tighter types never get looser tolerances than wider-error ones.
  EXPECT_LT(DefaultToleranceFor(DType::kFloat32).rtol, DefaultToleranceFor(DType::kBFloat16).rtol);
}

TEST(AbbaTest, CachedAnswerOnTheChangedElementIsCaught) {
  const std::vector<float> ref_a = {1, 2, 3, 4}, ref_p = {1, 2, 9, 4};
  // Honest: follows A'.
  AbbaVerdict v = CheckAbba(ref_p.data(), ref_a.data(), ref_p.data(), DType::kFloat32, 4, 1e-4, 1e-4);
  EXPECT_EQ(v.differing, 1);
  EXPECT_FALSE(v.cached);
  // Cached: A's answer, which the 99% rule alone would let through for a
  // large output.
  v = CheckAbba(ref_a.data(), ref_a.data(), ref_p.data(), DType::kFloat32, 4, 1e-4, 1e-4);
  EXPECT_TRUE(v.cached);
  EXPECT_NE(v.message.find("element 2"), std::string::npos) << v.message;
  // Wrong in some other way: not the caching signature (the normal compare
  // judges it).
  const std::vector<float> other = {1, 2, 5, 4};
  EXPECT_FALSE(CheckAbba(other.data(), ref_a.data(), ref_p.data(), DType::kFloat32, 4, 1e-4, 1e-4).cached);
  // References that do not differ (the changed input did not matter): no verdict.
  EXPECT_FALSE(CheckAbba(ref_a.data(), ref_a.data(), ref_a.data(), DType::kFloat32, 4, 1e-4, 1e-4).cached);
}

}  // namespace
}  // namespace ratchet::kernels
