#include "kernels/problem/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace ratchet::kernels {
namespace {

TEST(DTypeTest, ParseNamesAndSizes) {
  EXPECT_EQ(*ParseDType("bfloat16"), DType::kBFloat16);
  EXPECT_EQ(DTypeSize(*ParseDType("int64")), 8u);
  EXPECT_EQ(DTypeSize(*ParseDType("bool")), 1u);
  EXPECT_EQ(DTypeSize(*ParseDType("float16")), 2u);
  EXPECT_STREQ(DTypeName(DType::kUInt8), "uint8");
  EXPECT_EQ(ParseDType("float8_e4m3fnuz").status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(*ParseDType("float8_e4m3fn"), DType::kFloat8E4M3);
  EXPECT_EQ(ParseDType("f32").status().code(), absl::StatusCode::kInvalidArgument);
  // The enum values are the ABI's.
  EXPECT_EQ(static_cast<int>(DType::kUInt8), RATCHET_UINT8);
}

TEST(DTypeTest, HalfKnownValues) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(65520.0f), 0x7c00);  // Rounds to Inf.
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -24)), 0x0001);  // Smallest subnormal.
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -26)), 0x0000);  // Rounds to zero.
  EXPECT_EQ(FloatToHalf(std::ldexp(1.0f, -14)), 0x0400);  // Smallest normal.
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0).
  EXPECT_EQ(FloatToHalf(1.0f + std::ldexp(1.0f, -11)), 0x3c00);
  EXPECT_EQ(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_TRUE(std::isnan(HalfToFloat(FloatToHalf(std::nanf("")))));
  EXPECT_EQ(HalfToFloat(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(HalfToFloat(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(HalfToFloat(0x3555), 0.333251953125f);
}

TEST(DTypeTest, HalfRoundTripsEveryValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), h) << std::hex << h;
  }
}

TEST(DTypeTest, BFloat16) {
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(BFloat16ToFloat(0x3f80), 1.0f);
  // 1 + 2^-8 is a tie: rounds to even (1.0); 1 + 3*2^-8 rounds up.
  EXPECT_EQ(FloatToBFloat16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(FloatToBFloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_TRUE(std::isnan(BFloat16ToFloat(FloatToBFloat16(std::nanf("")))));
  for (uint32_t b = 0; b < 0x10000; b += 7) {
    const float f = BFloat16ToFloat(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBFloat16(f), b);
  }
}

TEST(DTypeTest, LoadStoreEveryType) {
  for (DType t : {DType::kFloat32, DType::kFloat16, DType::kBFloat16, DType::kFloat64,
                  DType::kInt8, DType::kUInt8, DType::kInt32, DType::kInt64, DType::kBool}) {
    unsigned char buf[32] = {};
    StoreFromDouble(buf, t, 2, 1.0);
    EXPECT_EQ(LoadAsDouble(buf, t, 2), 1.0) << DTypeName(t);
    EXPECT_EQ(LoadAsDouble(buf, t, 1), 0.0) << DTypeName(t);
  }
  int8_t i8[1];
  StoreFromDouble(i8, DType::kInt8, 0, 1000);
  EXPECT_EQ(i8[0], 127);  // Saturates.
  uint8_t u8[1];
  StoreFromDouble(u8, DType::kUInt8, 0, -3);
  EXPECT_EQ(u8[0], 0);
  int64_t i64[1];
  StoreFromDouble(i64, DType::kInt64, 0, -123456789012.0);
  EXPECT_EQ(i64[0], -123456789012);
  uint8_t b[1];
  StoreFromDouble(b, DType::kBool, 0, 0.25);
  EXPECT_EQ(b[0], 1);
}

TEST(DTypeTest, PoisonIsNaNOrAllOnes) {
  uint16_t h[4];
  Poison(h, DType::kBFloat16, 4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(std::isnan(LoadAsDouble(h, DType::kBFloat16, i)));
  float f[3];
  Poison(f, DType::kFloat32, 3);
  EXPECT_TRUE(std::isnan(f[2]));
  int32_t n[2];
  Poison(n, DType::kInt32, 2);
  EXPECT_EQ(n[1], -1);
}

}  // namespace
}  // namespace ratchet::kernels
