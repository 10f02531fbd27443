// Element types of problem tensors and their conversion to and from double.
//
// fp16 and bf16 are converted in software so that the harness needs no
// compiler or CPU support for half types.
#ifndef RATCHET_KERNELS_PROBLEM_DTYPE_H_
#define RATCHET_KERNELS_PROBLEM_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "kernels/include/ratchet/kernel_abi.h"

namespace ratchet::kernels {

enum class DType {
  kFloat32 = RATCHET_FLOAT32,
  kFloat16 = RATCHET_FLOAT16,
  kBFloat16 = RATCHET_BFLOAT16,
  kFloat64 = RATCHET_FLOAT64,
  kInt8 = RATCHET_INT8,
  kInt32 = RATCHET_INT32,
  kInt64 = RATCHET_INT64,
  kBool = RATCHET_BOOL,
  kUInt8 = RATCHET_UINT8,
  kFloat8E4M3 = RATCHET_FLOAT8_E4M3,  // float8_e4m3fn: no Inf, NaN = S.1111.111.
  kFloat8E5M2 = RATCHET_FLOAT8_E5M2,
  kInt16 = RATCHET_INT16,
};

// Parses a SOL-ExecBench dtype name ("float32", "bfloat16", "float8_e4m3fn",
// ...). Names of the format that the harness cannot represent (float4_*,
// the fnuz float8 variants) give an error that says so.
absl::StatusOr<DType> ParseDType(absl::string_view name);
const char* DTypeName(DType dtype);
size_t DTypeSize(DType dtype);
bool IsFloating(DType dtype);

// IEEE half <-> float, round to nearest even; NaN and Inf preserved.
float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
// bfloat16 <-> float, round to nearest even; NaN stays NaN.
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);

// float8 <-> float. Decoding is exact. Encoding rounds to nearest even like
// PyTorch's casts: e4m3fn has no Inf, so out-of-range values become NaN;
// e5m2 overflows to Inf.
float Fp8E4M3ToFloat(uint8_t v);
uint8_t FloatToFp8E4M3(float f);
float Fp8E5M2ToFloat(uint8_t v);
uint8_t FloatToFp8E5M2(float f);

// Default correctness tolerance for an output of `dtype` when neither the
// workload nor the definition gives one (docs/harness.md has the table):
// tight enough that computing in a narrower type than the output's shows.
struct DefaultTolerance {
  double atol;
  double rtol;
};
DefaultTolerance DefaultToleranceFor(DType dtype);

// Reads element `index` of a buffer of `dtype` as a double.
double LoadAsDouble(const void* data, DType dtype, size_t index);
// Writes `value` into element `index`, converting (saturating for ints).
void StoreFromDouble(void* data, DType dtype, size_t index, double value);

// Fills `count` elements with a value that no honest kernel produces: NaN
// for floating types, all-ones bytes for integers and bool. (All-0xFF bytes,
// which the CUDA harness memsets on the device, are NaN in every floating
// dtype too.)
void Poison(void* data, DType dtype, size_t count);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_PROBLEM_DTYPE_H_
