#include "kernels/correctness/compare.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace ratchet::kernels {
namespace {

using ::testing::HasSubstr;

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
  out[7] = 5.0f;  // 99% match: passes.
  CompareResult r = Cmp(out, ref);
  EXPECT_TRUE(r.ok);
  EXPECT_DOUBLE_EQ(r.matched_fraction, 0.99);
  EXPECT_NEAR(r.max_abs_error, 4.0, 1e-6);
  out[8] = 5.0f;  // 98%: fails and names the first mismatch.
  r = Cmp(out, ref);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.num_mismatched, 2);
  EXPECT_THAT(r.message, HasSubstr("98.00% of elements match"));
  EXPECT_THAT(r.message, HasSubstr("at [7]: got 5, expected 1"));
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

}  // namespace
}  // namespace ratchet::kernels
