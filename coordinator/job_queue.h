// Queues jobs: every evaluation and replay the coordinator wants run, each
// with a fresh seed for its inputs.
#ifndef RATCHET_COORDINATOR_JOB_QUEUE_H_
#define RATCHET_COORDINATOR_JOB_QUEUE_H_

#include <cstdint>
#include <mutex>
#include <random>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/store/store.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

// A job a worker has or may lease.
inline bool IsOpen(const v1::Job& job) {
  return job.state() == v1::JOB_QUEUED || job.state() == v1::JOB_LEASED;
}

class JobQueue {
 public:
  JobQueue(store::Store* store, const Clock* clock);
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;

  // Queues a job (inside the caller's transaction, if any); returns its id.
  // A replay names its verification and the worker it should avoid. Its
  // seed is `seed` when not 0 (a pair of replays sharing one: NewSeed()),
  // else fresh.
  absl::StatusOr<int64_t> Enqueue(int64_t campaign_id, int64_t candidate_id, v1::JobKind kind,
                                  int64_t verification_id = 0,
                                  const std::string& avoid_worker_id = "", uint64_t seed = 0);
  // A research evaluation at `fidelity`, a fraction of a training budget
  // (multi_fidelity.h; 0 = full). `shared_inputs` (kernel campaigns): its
  // seed is the campaign's, the same for every evaluation of the campaign.
  absl::StatusOr<int64_t> EnqueueEvaluation(int64_t campaign_id, int64_t candidate_id,
                                            double fidelity, bool shared_inputs = false);

  // A fresh seed, as Enqueue draws its own: not 0, and positive when read
  // back as a signed integer.
  uint64_t NewSeed();

 private:
  // Queued now, with the campaign's seed (shared_inputs), the job's own
  // (already set), or a fresh one.
  absl::StatusOr<int64_t> Create(v1::Job job);

  store::Store* const store_;
  const Clock* const clock_;
  std::mutex mu_;
  std::mt19937_64 seed_rng_;
  uint64_t campaign_salt_;  // the campaigns' input seeds, fresh per process
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_JOB_QUEUE_H_
