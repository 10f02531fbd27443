// The checks of one call, made where its tensors are: on the device, by
// kernels of the harness's own (never the candidate's), in memory that only
// the harness's CUDA context maps. Outputs against references by the rules
// of CompareOutputs (kernels/correctness/compare.h), the read-reference test
// of NearerDecoy (pipeline.h), inputs against pristine copies, canary bytes.
//
// Only pass or fail comes back: a call that fails any check is looked at
// again on the host, by the same code as without a device, which writes the
// message (and stays the judge: the device can only send a call there).
#ifndef RATCHET_KERNELS_CUDA_DEVICE_CHECK_H_
#define RATCHET_KERNELS_CUDA_DEVICE_CHECK_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace ratchet::kernels::device_check {

// What the compare of one output found (sums over its elements).
struct OutputCounts {
  unsigned long long matched;       // |o - r| <= atol + rtol * |r|
  unsigned long long nonfinite;     // NaN/Inf in the output
  unsigned long long beyond_bound;  // floating outputs: beyond max_error_factor tolerances
  unsigned long long out_nonzero;   // finite, non-zero outputs
  unsigned long long ref_nonzero;   // non-zero references where the output is finite
  unsigned long long decoy_differ;  // NearerDecoy's sample: decoy and reference differ
  unsigned long long decoy_nearer;  //   ... and the output is nearer the decoy
  unsigned long long max_abs_error_bits;  // the largest |o - r| (finite r), a double's bits
};

struct CompareArgs {
  const void* out = nullptr;
  int out_dtype = 0;  // RATCHET_* of kernel_abi.h
  const void* ref = nullptr;
  int ref_dtype = 0;
  const void* decoy = nullptr;  // the output dtype's; null: no read-reference test
  int64_t count = 0;
  double atol = 0, rtol = 0, max_error_factor = 0;
};

// Adds the counts of `a` into `*counts` (device memory, zeroed by the caller).
cudaError_t LaunchCompare(const CompareArgs& a, OutputCounts* counts, cudaStream_t stream);

// Sets `*differs` (device memory) to 1 when the n bytes at a and b differ.
cudaError_t LaunchBytesDiffer(const void* a, const void* b, size_t n, unsigned int* differs,
                              cudaStream_t stream);

// Canary regions: `count` regions of `bytes` each at base + offsets[k] (at
// most kMaxCanaryRegions) must all hold `value`; `*first_bad` (device memory,
// set to INT32_MAX by the caller) gets the lowest index of one that does not.
inline constexpr int kMaxCanaryRegions = 128;
cudaError_t LaunchCanaryCheck(const char* base, const uint64_t* offsets, int count, int bytes,
                              unsigned char value, int* first_bad, cudaStream_t stream);

// Whether the counts pass CompareOutputs (ok) and NearerDecoy (false) both.
bool Passes(const OutputCounts& c, int64_t count, double min_matched_fraction);

}  // namespace ratchet::kernels::device_check

#endif  // RATCHET_KERNELS_CUDA_DEVICE_CHECK_H_
