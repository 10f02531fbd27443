// Verification's second timing method, shared by both harnesses: calls the
// candidate back to back in batches and prints a mark after each batch,
// "ratchet-mark WORKLOAD CALLS", for the parent (the worker) to time with its
// own clock. This process's clock only decides the batch sizes and when to
// stop, so a timer tampered with inside the candidate's library can stretch
// the run, never the figure.
#ifndef RATCHET_KERNELS_HARNESS_BACK_TO_BACK_H_
#define RATCHET_KERNELS_HARNESS_BACK_TO_BACK_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"

namespace ratchet::kernels {

// `calls(first, n)` makes calls first..first+n-1 and returns once they are
// finished (the CUDA harness synchronises the device). Batches double until
// one lasts `settle_seconds`, then keep that size (many short windows let the
// parent leave out those that other load preempted); they stop once `seconds`
// have passed and at least 8 calls were made, or at 2^22 calls. Returns the
// calls made, or the first failing batch's status.
absl::StatusOr<int64_t> RunMarkedBatches(
    int workload, double seconds, double settle_seconds,
    const std::function<absl::Status(int64_t first, int64_t n)>& calls);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_BACK_TO_BACK_H_
