// Runs slow proposals (an LLM call: seconds to minutes) on their own threads,
// so the research loop never waits for one. The loop starts a request for a
// research thread that needs a candidate and collects the answer on a later
// tick; everything a request reads is copied into it, so it shares nothing
// with the loop but the pool's own bookkeeping.
#ifndef RATCHET_COORDINATOR_PROPOSAL_POOL_H_
#define RATCHET_COORDINATOR_PROPOSAL_POOL_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/proposers/proposer.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

class ProposalPool {
 public:
  // What a proposal reads, owned by the request.
  struct Request {
    int64_t campaign_id = 0;
    int64_t thread_id = 0;
    int thread_index = 0;
    uint64_t seed = 0;
    v1::Candidate parent;
    proposers::KnobSpace space;
    std::vector<v1::Candidate> history;
    v1::Problem problem;
    std::string device;
    std::vector<proposers::Attempt> attempts;
    std::vector<v1::Candidate> inspirations;
    int thread_proposals = 0;
    std::vector<v1::Lesson> lessons;  // the campaign's experience (ProposalContext)
  };

  struct Finished {
    int64_t campaign_id = 0;
    int64_t thread_id = 0;
    int thread_index = 0;
    int64_t parent_id = 0;
    absl::StatusOr<proposers::Proposal> result;
    double seconds = 0;
  };

  ProposalPool() = default;
  ~ProposalPool();  // cancels what is in flight and waits for it
  ProposalPool(const ProposalPool&) = delete;
  ProposalPool& operator=(const ProposalPool&) = delete;

  // The campaign's proposer, made from its spec on first use and kept, so
  // that its concurrency limit is shared by all of the campaign's requests.
  // An llm spec's endpoint is looked up in `llm_endpoints` (the operator's).
  absl::StatusOr<std::shared_ptr<proposers::Proposer>> ProposerFor(
      const v1::Campaign& campaign, const llm::LlmEndpoints* llm_endpoints = nullptr);

  void Start(Request request);
  // Answers that arrived since the last call, oldest first.
  std::vector<Finished> TakeFinished(int64_t campaign_id);
  // Requests started and not yet taken (finished ones included).
  int InFlight(int64_t campaign_id);
  int InFlight(int64_t campaign_id, int64_t thread_id);
  // Cancels the campaign's requests and drops everything kept for it.
  void Forget(int64_t campaign_id);

  // Why the thread's last answer was unusable ("" if it was fine); shown to
  // the model in the thread's next prompt.
  void SetAnswerProblem(int64_t campaign_id, int64_t thread_id, const std::string& problem);

  // Counts the campaign's requests that failed in a row (reset by any
  // answer).
  void RecordRequest(int64_t campaign_id, bool failed);
  int FailuresInARow(int64_t campaign_id);

 private:
  struct CampaignState {
    std::shared_ptr<proposers::Proposer> proposer;
    std::shared_ptr<std::atomic<bool>> cancelled = std::make_shared<std::atomic<bool>>(false);
    std::map<int64_t, int> in_flight_by_thread;
    std::vector<Finished> finished;
    std::map<int64_t, std::string> answer_problem_by_thread;
    int consecutive_failures = 0;
  };
  struct Runner {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  void ReapLocked();

  std::mutex mu_;
  std::map<int64_t, CampaignState> campaigns_;
  std::list<Runner> runners_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_PROPOSAL_POOL_H_
