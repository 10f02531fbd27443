// How long one job may run on a worker: the one rule that the worker's wall
// limit (worker/worker.cc) and the coordinator's lease limit
// (coordinator/store/record_rules.h) both follow, so that a heartbeating
// worker never loses a job it is still allowed to run.
#ifndef RATCHET_COMMON_JOB_WALL_H_
#define RATCHET_COMMON_JOB_WALL_H_

#include <algorithm>
#include <cstdint>

namespace ratchet {

// The most jobs one GPU may run at once (a worker's --gpu-jobs). A worker
// says how many it runs (Hardware.jobs_per_gpu); the coordinator believes no
// more than this, so a lying worker still cannot hold a lease for long.
constexpr int kMaxJobsPerGpu = 8;

// The time a job's GPU run may wait for the other jobs sharing its GPU,
// each at most its own timeout.
inline double GpuWaitSeconds(double timeout_seconds, int jobs_per_gpu) {
  return timeout_seconds * (std::clamp(jobs_per_gpu, 1, kMaxJobsPerGpu) - 1);
}

// How long a job may hold its lease from when it was leased: the harness
// timeout for compiling and running, the GPU wait, one more timeout of slack
// and two minutes for reporting.
inline int64_t JobWallLimitMs(double timeout_seconds, int jobs_per_gpu) {
  return static_cast<int64_t>(
      1000 * (2 * timeout_seconds + GpuWaitSeconds(timeout_seconds, jobs_per_gpu) + 120));
}

}  // namespace ratchet

#endif  // RATCHET_COMMON_JOB_WALL_H_
