#include "coordinator/job_queue.h"

namespace ratchet::coordinator {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

JobQueue::JobQueue(store::Store* store, const Clock* clock)
    : store_(store), clock_(clock), seed_rng_(std::random_device{}()),
      campaign_salt_(seed_rng_()) {}

absl::StatusOr<int64_t> JobQueue::Enqueue(int64_t campaign_id, int64_t candidate_id,
                                          v1::JobKind kind, int64_t verification_id,
                                          const std::string& avoid_worker_id, uint64_t seed) {
  v1::Job job;
  job.set_seed(seed);
  job.set_campaign_id(campaign_id);
  job.set_candidate_id(candidate_id);
  job.set_kind(kind);
  job.set_verification_id(verification_id);
  job.set_avoid_worker_id(avoid_worker_id);
  return Create(std::move(job));
}

absl::StatusOr<int64_t> JobQueue::EnqueueEvaluation(int64_t campaign_id, int64_t candidate_id,
                                                    double fidelity, bool shared_inputs) {
  v1::Job job;
  job.set_campaign_id(campaign_id);
  job.set_candidate_id(candidate_id);
  job.set_kind(v1::JOB_EVALUATE);
  if (fidelity > 0 && fidelity < 1) job.set_fidelity(fidelity);
  job.set_shared_inputs(shared_inputs);
  return Create(std::move(job));
}

uint64_t JobQueue::NewSeed() {
  std::lock_guard<std::mutex> lock(mu_);
  uint64_t seed = 0;
  while (seed == 0) seed = seed_rng_() >> 1;
  return seed;
}

absl::StatusOr<int64_t> JobQueue::Create(v1::Job job) {
  if (job.shared_inputs()) {
    std::lock_guard<std::mutex> lock(mu_);
    job.set_seed(SplitMix64(campaign_salt_ ^ static_cast<uint64_t>(job.campaign_id())) >> 1);
  } else if (job.seed() == 0) {
    job.set_seed(NewSeed());
  }
  job.set_state(v1::JOB_QUEUED);
  job.set_created_unix_ms(clock_->NowUnixMs());
  return store_->CreateJob(job);
}

}  // namespace ratchet::coordinator
