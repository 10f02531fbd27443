// Task "sleep" (load tests, docs/cluster.md): every job is queued at
// submission and a job's report only counts; no proposals, no verdicts.
#ifndef RATCHET_COORDINATOR_SLEEP_CAMPAIGNS_H_
#define RATCHET_COORDINATOR_SLEEP_CAMPAIGNS_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/event_log.h"
#include "coordinator/job_queue.h"
#include "coordinator/store/store.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

class SleepCampaigns {
 public:
  SleepCampaigns(store::Store* store, const Clock* clock, EventLog* events, JobQueue* jobs);
  SleepCampaigns(const SleepCampaigns&) = delete;
  SleepCampaigns& operator=(const SleepCampaigns&) = delete;

  // Stores a running campaign of `spec` (checked and completed already) with
  // every one of its jobs queued; returns its id.
  absl::StatusOr<int64_t> Create(const v1::CampaignSpec& spec);
  // Counts a tick's reports of sleep jobs, in one transaction.
  absl::Status ProcessEvaluations(const std::vector<v1::Evaluation>& evaluations);
  // Finishes the campaign once every job is done or its wall-clock budget
  // is spent.
  absl::Status Advance(v1::Campaign campaign);

 private:
  store::Store* const store_;
  const Clock* const clock_;
  EventLog* const events_;
  JobQueue* const jobs_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_SLEEP_CAMPAIGNS_H_
