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
};

// Parses a SOL-ExecBench dtype name ("float32", "bfloat16", ...). Names of the
// format that the CPU harness cannot represent (float8_*, int16, ...) give an
// error that says so.
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

// Reads element `index` of a buffer of `dtype` as a double.
double LoadAsDouble(const void* data, DType dtype, size_t index);
// Writes `value` into element `index`, converting (saturating for ints).
void StoreFromDouble(void* data, DType dtype, size_t index, double value);

// Fills `count` elements with a value that no honest kernel produces: NaN
// for floating types, all-ones bytes for integers and bool.
void Poison(void* data, DType dtype, size_t count);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_PROBLEM_DTYPE_H_
