// GPU activity records from CUPTI: every kernel (all streams, all devices),
// memcpy and memset, with device timestamps. The harness discards what came
// before a repetition (the L2 flush), calls the candidate, synchronises the
// device and collects: the span of what is left is the kernel time T_k.
// Records are collected once per workload and split into repetitions by
// CuptiTracer::Now() windows (SplitByWindow).
#ifndef RATCHET_KERNELS_CUDA_CUPTI_TRACER_H_
#define RATCHET_KERNELS_CUDA_CUPTI_TRACER_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/timing_stats.h"

namespace ratchet::kernels {

struct ActivityRecord {
  enum class Kind { kKernel, kMemcpy, kMemset };
  Kind kind = Kind::kKernel;
  uint64_t start = 0;  // ns, CUPTI's clock (CuptiTracer::Now()).
  uint64_t end = 0;
  uint64_t bytes = 0;  // Memcpy and memset.
};

struct ActivityBatch {
  std::vector<ActivityRecord> records;
  int kernels = 0;
  int memcpys = 0;
  int memsets = 0;
  uint64_t dropped = 0;  // Records CUPTI had to drop (its buffers were full).
};

// Process-wide: CUPTI has one set of activity callbacks per process.
class CuptiTracer {
 public:
  // Registers the buffer callbacks and enables concurrent-kernel, memcpy and
  // memset records. Call once, after the CUDA context exists.
  static absl::Status Start();
  // Forces out every buffered record and returns those completed since the
  // last Collect(). Call after a device-wide synchronisation.
  static absl::StatusOr<ActivityBatch> Collect();
  // Now in the clock of the records' start/end.
  static uint64_t Now();
};

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_CUDA_CUPTI_TRACER_H_
