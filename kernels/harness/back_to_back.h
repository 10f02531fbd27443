// Verification's second timing method, shared by both harnesses: calls the
// candidate back to back in batches and brackets each batch's calls with two
// marks, "ratchet-mark WORKLOAD CALLS NS" (the calls made before the batch,
// then after it; NS the moment, by this process's steady clock), for the
// parent (the worker) to time. The stamp is taken here, not when the parent
// reads the line: under load the parent read a batch's two marks together
// and the window shrank (an honest kernel read x0.14). This process is
// outside the candidate's reach (a separate, non-dumpable process; the
// candidate's runs as nobody or without capabilities), so its clock is as
// independent as the parent's; the parent checks that no mark arrived before
// its stamp. Placing inputs and checking outputs fall between a batch's end
// mark and the next one's start mark, a window of no calls that the parent
// leaves out.
#ifndef RATCHET_KERNELS_HARNESS_BACK_TO_BACK_H_
#define RATCHET_KERNELS_HARNESS_BACK_TO_BACK_H_

#include <cstdint>
#include <functional>

#include "absl/status/statusor.h"

namespace ratchet::kernels {

// The two marks of one batch: `begin` right before its first call is sent,
// `end` right after its last call is known finished (the CUDA harness's
// candidate synchronises the device before it answers).
struct BatchMarks {
  std::function<void()> begin, end;
};

// `calls(first, n, marks)` makes calls first..first+n-1, calling
// marks.begin and marks.end around them. Batches double until one's calls
// last `settle_seconds`, then keep that size (many short windows let the
// parent leave out those that other load preempted); they stop once
// `seconds` have passed and at least 6 batches of the settled size were
// made, or at 2^22 calls. Returns the calls made, or the first failing
// batch's status.
absl::StatusOr<int64_t> RunMarkedBatches(
    int workload, double seconds, double settle_seconds,
    const std::function<absl::Status(int64_t first, int64_t n, const BatchMarks& marks)>&
        calls);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_BACK_TO_BACK_H_
