// The research loop (docs/research.md), one Tick() at a time, per running
// campaign:
//   baseline job → evaluated → every thread's incumbent = baseline
//   each thread keeps `in_flight_per_thread` candidates proposed and queued
//   an evaluation that beats its thread's incumbent by the campaign's
//   min_gain becomes a claim; a verifier replays it and reports a verdict;
//   only an accepted verdict moves the incumbent.
//   when the budget is spent and the work drained, the campaign finishes.
// Budgets and leases are judged on the coordinator's clock; time a campaign
// spent paused is not research time.
#ifndef RATCHET_COORDINATOR_RESEARCH_LOOP_H_
#define RATCHET_COORDINATOR_RESEARCH_LOOP_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/evaluation_intake.h"
#include "coordinator/event_log.h"
#include "coordinator/proposals.h"
#include "coordinator/sleep_campaigns.h"
#include "coordinator/store/store.h"
#include "coordinator/verification_desk.h"
#include "coordinator/worker_gateway.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

class ResearchLoop {
 public:
  struct Parts {
    WorkerGateway* gateway;
    EvaluationIntake* intake;
    Proposals* proposals;
    VerificationDesk* desk;
    SleepCampaigns* sleep;
  };
  ResearchLoop(store::Store* store, const Clock* clock, EventLog* events,
               CoordinatorMetrics* metrics, const Parts& parts);
  ResearchLoop(const ResearchLoop&) = delete;
  ResearchLoop& operator=(const ResearchLoop&) = delete;

  // One step: lapsed leases, the reports that came in applied, every running
  // campaign advanced, the gauges recounted (once a second). The caller
  // holds the coordinator's research lock.
  absl::Status Tick();

 private:
  // What a campaign has under way.
  struct OpenWork {
    int evaluations = 0;  // evaluation jobs queued, leased, or reported and not applied
    std::map<int64_t, int> by_candidate;  // the same, per candidate
    int proposals = 0;                    // slow proposals not yet collected
    std::vector<v1::Verification> verifications;  // all of the campaign's
    int pending_verifications = 0;
  };
  // How far a campaign has got with its budget.
  struct Spent {
    double elapsed_s = 0;  // research time: wall time less time paused
    bool wall = false;
    bool gpu = false;
    bool overdue = false;  // past the wall budget by a grace period
  };

  absl::Status ExpireLeases();
  absl::Status AdvanceCampaign(int64_t campaign_id);
  absl::StatusOr<OpenWork> CountOpenWork(int64_t campaign_id);
  Spent SpentOf(const v1::Campaign& campaign) const;
  // Proposes round-robin over the threads, so that every thread gets its
  // turn at the budget, until each has its candidates in flight or the
  // evaluation budget is spoken for (*evaluations_spent).
  absl::Status ProposeRound(v1::Campaign& campaign, OpenWork* work, bool* evaluations_spent,
                            bool* any_proposed);
  // Past the grace period: fails the open jobs and rejects pending claims.
  absl::Status AbandonOverdue(int64_t campaign_id, OpenWork* work);
  // The campaign is done: stores why and reports its best.
  absl::Status Finish(v1::Campaign& campaign, bool failed, const std::string& message);

  store::Store* const store_;
  const Clock* const clock_;
  EventLog* const events_;
  CoordinatorMetrics* const metrics_;
  const Parts parts_;
  int64_t gauges_updated_ms_ = 0;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_RESEARCH_LOOP_H_
