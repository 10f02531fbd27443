// Where candidates come from: a thread's proposer turns its incumbent (or an
// archive winner), the campaign's history, the other threads' incumbents and
// the experience into a new candidate, which is stored and queued for
// evaluation (never one identical to an earlier candidate). Fast proposers
// (evolve, random, grid, replay) propose on the research loop's tick; slow
// ones (llm) run in the proposal pool and are collected on later ticks.
#ifndef RATCHET_COORDINATOR_PROPOSALS_H_
#define RATCHET_COORDINATOR_PROPOSALS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/event_log.h"
#include "coordinator/experience.h"
#include "coordinator/job_queue.h"
#include "coordinator/proposal_pool.h"
#include "coordinator/store/store.h"
#include "coordinator/wakeup.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

class Proposals {
 public:
  // `llm_endpoints`: the operator's, for llm campaigns (may be null).
  Proposals(store::Store* store, const Clock* clock,
            std::shared_ptr<const llm::LlmEndpoints> llm_endpoints, Wakeup* wakeup,
            EventLog* events, CoordinatorMetrics* metrics, JobQueue* jobs,
            Experience* experience);
  Proposals(const Proposals&) = delete;
  Proposals& operator=(const Proposals&) = delete;

  // A fast proposer's turn for `thread`: sets *proposed when a new candidate
  // was queued (not when its neighbourhood is exhausted for now). Every
  // migrate_every proposals of the thread, it offers its incumbent to the
  // next thread.
  absl::Status ProposeForThread(v1::Campaign& campaign, v1::ResearchThread& thread,
                                const std::vector<v1::Candidate>& history, bool* proposed);
  // A slow proposal for the thread, started in the pool.
  absl::Status StartProposal(const v1::Campaign& campaign, const v1::ResearchThread& thread,
                             const std::vector<v1::Candidate>& history);
  // Turns the pool's finished answers into candidates (counted into
  // *open_evaluations and *open_by_candidate) and accounts for their cost.
  // Sets *ended (and *failed) when no more proposals may be made.
  absl::Status CollectProposals(v1::Campaign& campaign, int* open_evaluations,
                                std::map<int64_t, int>* open_by_candidate, std::string* ended,
                                bool* failed);
  // Slow proposals started and not yet collected.
  int InFlight(int64_t campaign_id) { return pool_.InFlight(campaign_id); }
  int InFlight(int64_t campaign_id, int64_t thread_id) {
    return pool_.InFlight(campaign_id, thread_id);
  }
  // Cancels the campaign's slow proposals: their answers are no longer wanted.
  void Forget(int64_t campaign_id) { pool_.Forget(campaign_id); }

 private:
  // Stores a proposed candidate and queues its evaluation; 0 if an identical
  // candidate exists already (never evaluated twice).
  absl::StatusOr<int64_t> AddCandidate(const v1::Campaign& campaign, int64_t thread_id,
                                       int64_t parent_id, proposers::Proposal proposal);
  // One finished slow proposal: its cost counted into the campaign, its
  // candidate stored and queued; returns the candidate's id, or 0 when it
  // gave none (failed, malformed, a duplicate, cancelled).
  absl::StatusOr<int64_t> TakeAnswer(v1::Campaign& campaign, ProposalPool::Finished& f);
  // Sets *ended (and *failed) when the campaign may make no more slow
  // proposals: its cost cap, its endpoint failing, its proposer unusable.
  void WhyNoMore(const v1::Campaign& campaign, std::string* ended, bool* failed);
  // The thread's latest attempts for a slow proposal's prompt.
  absl::StatusOr<std::vector<proposers::Attempt>> LatestAttempts(
      const v1::ResearchThread& thread, const std::vector<v1::Candidate>& history);

  store::Store* const store_;
  const Clock* const clock_;
  const std::shared_ptr<const llm::LlmEndpoints> llm_endpoints_;
  Wakeup* const wakeup_;
  EventLog* const events_;
  CoordinatorMetrics* const metrics_;
  JobQueue* const jobs_;
  Experience* const experience_;
  // Declared last: destroyed first, so its threads stop before the rest.
  ProposalPool pool_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_PROPOSALS_H_
