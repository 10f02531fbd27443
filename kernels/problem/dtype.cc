#include "kernels/problem/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ratchet::kernels {

absl::StatusOr<DType> ParseDType(absl::string_view name) {
  if (name == "float32") return DType::kFloat32;
  if (name == "float16") return DType::kFloat16;
  if (name == "bfloat16") return DType::kBFloat16;
  if (name == "float64") return DType::kFloat64;
  if (name == "int8") return DType::kInt8;
  if (name == "uint8") return DType::kUInt8;
  if (name == "int32") return DType::kInt32;
  if (name == "int64") return DType::kInt64;
  if (name == "bool") return DType::kBool;
  if (name == "int16") return DType::kInt16;
  if (name == "float8_e4m3fn") return DType::kFloat8E4M3;
  if (name == "float8_e5m2") return DType::kFloat8E5M2;
  if (absl::StartsWith(name, "float8") || absl::StartsWith(name, "float4")) {
    return absl::UnimplementedError(
        absl::StrCat("dtype \"", name,
                     "\" is part of the SOL-ExecBench format but not supported "
                     "by the harness (float8_e4m3fn and float8_e5m2 are)"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dtype \"", name,
      "\" (expected one of float32, float16, bfloat16, float64, float8_e4m3fn, "
      "float8_e5m2, int8, uint8, int16, int32, int64, bool)"));
}

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
    case DType::kFloat64: return "float64";
    case DType::kInt8: return "int8";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kBool: return "bool";
    case DType::kUInt8: return "uint8";
    case DType::kFloat8E4M3: return "float8_e4m3fn";
    case DType::kFloat8E5M2: return "float8_e5m2";
    case DType::kInt16: return "int16";
  }
  return "?";
}

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kFloat64:
    case DType::kInt64: return 8;
    case DType::kFloat32:
    case DType::kInt32: return 4;
    case DType::kFloat16:
    case DType::kBFloat16:
    case DType::kInt16: return 2;
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kBool:
    case DType::kFloat8E4M3:
    case DType::kFloat8E5M2: return 1;
  }
  return 1;
}

bool IsFloating(DType dtype) {
  return dtype == DType::kFloat32 || dtype == DType::kFloat16 ||
         dtype == DType::kBFloat16 || dtype == DType::kFloat64 ||
         dtype == DType::kFloat8E4M3 || dtype == DType::kFloat8E5M2;
}

namespace {
uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
}  // namespace

float HalfToFloat(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  if (exp == 0x1f) return BitsFloat(sign | 0x7f800000 | (mant << 13));
  if (exp == 0) {
    if (mant == 0) return BitsFloat(sign);
    // Subnormal half: value = mant * 2^-24, exact in float.
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  return BitsFloat(sign | ((exp + 112) << 23) | (mant << 13));
}

uint16_t FloatToHalf(float f) {
  const uint32_t u = FloatBits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7fffffff;
  if (abs >= 0x7f800000) {  // Inf or NaN.
    return sign | 0x7c00 | (abs > 0x7f800000 ? 0x200 : 0);
  }
  if (abs >= 0x477ff000) return sign | 0x7c00;  // Rounds to >= 65520: Inf.
  if (abs < 0x38800000) {
    // Subnormal or zero half: scale so that the integer part is the mantissa,
    // then round to nearest even via float arithmetic.
    const float a = BitsFloat(abs);
    const float scaled = a * 16777216.0f;  // 2^24.
    const uint16_t m = static_cast<uint16_t>(std::nearbyint(scaled));
    return sign | m;
  }
  uint32_t mant = abs & 0x7fffff;
  uint32_t exp = (abs >> 23) - 112;
  uint32_t half = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;
  return sign | static_cast<uint16_t>(half);
}

float BFloat16ToFloat(uint16_t b) {
  return BitsFloat(static_cast<uint32_t>(b) << 16);
}

uint16_t FloatToBFloat16(float f) {
  uint32_t u = FloatBits(f);
  if ((u & 0x7fffffff) > 0x7f800000) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fff + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

namespace {

// Encodes |a| (finite, > 0) with `mbits` mantissa bits and exponent bias
// `bias`, round to nearest even; the result may spill into the all-ones
// exponent, which the callers map to Inf or NaN.
uint32_t EncodeSmallFloat(double a, int mbits, int bias) {
  const int emin = 1 - bias;
  if (a < std::ldexp(1.0, emin)) {
    // Subnormal: a count of 2^(emin - mbits) steps; rounding up to 2^mbits
    // lands exactly on the smallest normal's code.
    return static_cast<uint32_t>(std::nearbyint(std::ldexp(a, mbits - emin)));
  }
  int x = 0;
  const double m = std::frexp(a, &x);  // a = m * 2^x, m in [0.5, 1).
  int e = x - 1;
  double q = std::nearbyint((2 * m - 1) * std::ldexp(1.0, mbits));
  if (q >= std::ldexp(1.0, mbits)) {
    q = 0;
    ++e;
  }
  const int biased = e + bias;
  if (biased > (1 << 10)) return 0xffffffffu;  // Far out of range.
  return (static_cast<uint32_t>(biased) << mbits) | static_cast<uint32_t>(q);
}

}  // namespace

float Fp8E4M3ToFloat(uint8_t v) {
  const float sign = (v & 0x80) ? -1.0f : 1.0f;
  const int exp = (v >> 3) & 0xf;
  const int mant = v & 7;
  if (exp == 15 && mant == 7) return std::numeric_limits<float>::quiet_NaN();
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -9);
  return sign * std::ldexp(1.0f + static_cast<float>(mant) / 8.0f, exp - 7);
}

uint8_t FloatToFp8E4M3(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return sign | 0x7f;
  const double a = std::fabs(static_cast<double>(f));
  if (a == 0) return sign;
  const uint32_t code = std::isinf(f) ? 0xffffffffu : EncodeSmallFloat(a, 3, 7);
  if (code >= 0x7f) return sign | 0x7f;  // No Inf in e4m3fn: NaN.
  return sign | static_cast<uint8_t>(code);
}

float Fp8E5M2ToFloat(uint8_t v) {
  const float sign = (v & 0x80) ? -1.0f : 1.0f;
  const int exp = (v >> 2) & 0x1f;
  const int mant = v & 3;
  if (exp == 31) {
    return mant == 0 ? sign * std::numeric_limits<float>::infinity()
                     : std::numeric_limits<float>::quiet_NaN();
  }
  if (exp == 0) return sign * std::ldexp(static_cast<float>(mant), -16);
  return sign * std::ldexp(1.0f + static_cast<float>(mant) / 4.0f, exp - 15);
}

uint8_t FloatToFp8E5M2(float f) {
  const uint8_t sign = std::signbit(f) ? 0x80 : 0;
  if (std::isnan(f)) return sign | 0x7f;
  const double a = std::fabs(static_cast<double>(f));
  if (a == 0) return sign;
  const uint32_t code = std::isinf(f) ? 0xffffffffu : EncodeSmallFloat(a, 2, 15);
  if (code >= 0x7c) return sign | 0x7c;  // Overflow: Inf.
  return sign | static_cast<uint8_t>(code);
}

DefaultTolerance DefaultToleranceFor(DType dtype) {
  switch (dtype) {
    case DType::kFloat64: return {1e-6, 1e-6};
    case DType::kFloat32: return {1e-4, 1e-4};
    case DType::kFloat16:
    case DType::kBFloat16: return {1e-2, 1e-2};
    // One unit in the last place at 1.0 (3 and 2 mantissa bits).
    case DType::kFloat8E4M3: return {1.25e-1, 1.25e-1};
    case DType::kFloat8E5M2: return {2.5e-1, 2.5e-1};
    case DType::kInt8:
    case DType::kUInt8:
    case DType::kInt16:
    case DType::kInt32:
    case DType::kInt64:
    case DType::kBool: return {0, 0};
  }
  return {1e-2, 1e-2};
}

double LoadAsDouble(const void* data, DType dtype, size_t i) {
  switch (dtype) {
    case DType::kFloat32: return static_cast<const float*>(data)[i];
    case DType::kFloat64: return static_cast<const double*>(data)[i];
    case DType::kFloat16: return HalfToFloat(static_cast<const uint16_t*>(data)[i]);
    case DType::kBFloat16: return BFloat16ToFloat(static_cast<const uint16_t*>(data)[i]);
    case DType::kInt8: return static_cast<const int8_t*>(data)[i];
    case DType::kUInt8: return static_cast<const uint8_t*>(data)[i];
    case DType::kInt32: return static_cast<const int32_t*>(data)[i];
    case DType::kInt64: return static_cast<double>(static_cast<const int64_t*>(data)[i]);
    case DType::kBool: return static_cast<const uint8_t*>(data)[i];
    case DType::kInt16: return static_cast<const int16_t*>(data)[i];
    case DType::kFloat8E4M3: return Fp8E4M3ToFloat(static_cast<const uint8_t*>(data)[i]);
    case DType::kFloat8E5M2: return Fp8E5M2ToFloat(static_cast<const uint8_t*>(data)[i]);
  }
  return 0;
}

namespace {
template <typename T>
T Saturate(double v) {
  if (std::isnan(v)) return 0;
  const double lo = static_cast<double>(std::numeric_limits<T>::min());
  const double hi = static_cast<double>(std::numeric_limits<T>::max());
  if (v <= lo) return std::numeric_limits<T>::min();
  if (v >= hi) return std::numeric_limits<T>::max();
  return static_cast<T>(std::nearbyint(v));
}
}  // namespace

void StoreFromDouble(void* data, DType dtype, size_t i, double v) {
  switch (dtype) {
    case DType::kFloat32: static_cast<float*>(data)[i] = static_cast<float>(v); break;
    case DType::kFloat64: static_cast<double*>(data)[i] = v; break;
    case DType::kFloat16:
      static_cast<uint16_t*>(data)[i] = FloatToHalf(static_cast<float>(v));
      break;
    case DType::kBFloat16:
      static_cast<uint16_t*>(data)[i] = FloatToBFloat16(static_cast<float>(v));
      break;
    case DType::kInt8: static_cast<int8_t*>(data)[i] = Saturate<int8_t>(v); break;
    case DType::kUInt8: static_cast<uint8_t*>(data)[i] = Saturate<uint8_t>(v); break;
    case DType::kInt32: static_cast<int32_t*>(data)[i] = Saturate<int32_t>(v); break;
    case DType::kInt64: static_cast<int64_t*>(data)[i] = Saturate<int64_t>(v); break;
    case DType::kBool: static_cast<uint8_t*>(data)[i] = v != 0 ? 1 : 0; break;
    case DType::kInt16: static_cast<int16_t*>(data)[i] = Saturate<int16_t>(v); break;
    case DType::kFloat8E4M3:
      static_cast<uint8_t*>(data)[i] = FloatToFp8E4M3(static_cast<float>(v));
      break;
    case DType::kFloat8E5M2:
      static_cast<uint8_t*>(data)[i] = FloatToFp8E5M2(static_cast<float>(v));
      break;
  }
}

void Poison(void* data, DType dtype, size_t count) {
  if (IsFloating(dtype)) {
    for (size_t i = 0; i < count; ++i) {
      StoreFromDouble(data, dtype, i, std::numeric_limits<double>::quiet_NaN());
    }
  } else {
    std::memset(data, 0xff, count * DTypeSize(dtype));
  }
}

}  // namespace ratchet::kernels
