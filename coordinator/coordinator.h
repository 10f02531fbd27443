// The coordinator owns campaigns and runs the research loop for each of them
// (brief §2). All durable state lives in the Store; this class keeps only what
// can be rebuilt after a restart (connected workers, recent events for
// watchers).
//
// The research loop, per running campaign:
//   baseline job → evaluated → every thread's incumbent = baseline
//   each thread keeps `in_flight_per_thread` candidates proposed and queued
//   an evaluation that beats its thread's incumbent by the campaign's
//   min_gain becomes a Verification; a verifier replays it and reports a
//   verdict; only an accepted verdict moves the incumbent.
//   when the budget is spent and the work drained, the campaign finishes.
#ifndef RATCHET_COORDINATOR_COORDINATOR_H_
#define RATCHET_COORDINATOR_COORDINATOR_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/group_commit.h"
#include "coordinator/proposal_pool.h"
#include "coordinator/scheduler.h"
#include "coordinator/store/store.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

struct CoordinatorOptions {
  int64_t lease_ms = 30'000;               // a job lease without renewal
  int64_t heartbeat_ms = 3'000;            // what workers are told to use
  int max_attempts = 3;                    // leases per job before it fails
  int64_t verification_lease_ms = 600'000; // a verifier's hold on a claim
  int64_t tick_ms = 200;                   // research loop period
  // Batching of AcquireJob/CompleteJob/heartbeat transitions (group_commit.h).
  GroupCommitOptions group_commit;
  // The operator's LLM endpoints (--llm-endpoints); an llm spec names one.
  // Null: none, and every llm campaign is refused.
  std::shared_ptr<const llm::LlmEndpoints> llm_endpoints;
};

struct CampaignEventRecord {
  int64_t seq = 0;
  int64_t campaign_id = 0;
  int64_t unix_ms = 0;
  std::string text;
};

class Coordinator {
 public:
  Coordinator(store::Store* store, CoordinatorOptions options,
              std::shared_ptr<prometheus::Registry> registry);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Starts the research loop; resumes every running campaign from the store.
  void Start();
  void Stop();

  // ---- Clients.
  absl::StatusOr<v1::Campaign> SubmitCampaign(const v1::CampaignSpec& spec);
  absl::StatusOr<v1::Campaign> GetCampaign(int64_t id);
  absl::StatusOr<std::vector<v1::Campaign>> ListCampaigns();
  absl::StatusOr<v1::Leaderboard> GetLeaderboard(int64_t campaign_id, int limit);
  absl::StatusOr<v1::CandidateDetail> GetCandidate(int64_t candidate_id);
  absl::StatusOr<v1::Campaign> CancelCampaign(int64_t campaign_id);
  // A paused campaign makes no proposals and leases no jobs; jobs already
  // running finish and are applied. Paused time does not count as wall time.
  absl::StatusOr<v1::Campaign> PauseCampaign(int64_t campaign_id);
  absl::StatusOr<v1::Campaign> ResumeCampaign(int64_t campaign_id);
  absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers();
  // Events of the campaign after `*cursor` (a sequence number), waiting up to
  // wait_ms for one; advances the cursor.
  std::vector<CampaignEventRecord> WaitForEvents(int64_t campaign_id, int64_t* cursor,
                                                 int wait_ms);

  // ---- Workers.
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<std::optional<v1::Job>> AcquireJob(const std::string& worker_id,
                                                    int wait_ms);
  absl::StatusOr<v1::CompleteJobResponse> CompleteJob(const v1::CompleteJobRequest& request);

  // ---- Verifiers.
  absl::StatusOr<std::optional<v1::Verification>> AcquireVerification(
      const std::string& verifier_id, int wait_ms);
  absl::StatusOr<std::vector<int64_t>> RequestReplays(int64_t verification_id,
                                                      const std::string& verifier_id,
                                                      int replays);
  absl::StatusOr<v1::GetReplaysResponse> GetReplays(int64_t verification_id);
  absl::StatusOr<v1::ReportVerdictResponse> ReportVerdict(
      const v1::ReportVerdictRequest& request);

 private:
  void Loop();
  absl::Status Tick();
  absl::Status ExpireLeases();
  absl::Status ProcessEvaluation(const v1::Evaluation& evaluation);
  absl::Status AdvanceCampaign(int64_t campaign_id);
  // A client's state change (cancel, pause, resume): reads the campaign,
  // applies `change` and stores it in one transaction under the research
  // lock, then emits `event`; returns the campaign as it is now.
  absl::StatusOr<v1::Campaign> ChangeCampaign(
      int64_t campaign_id, const std::string& event,
      const std::function<absl::Status(v1::Campaign&)>& change);
  // Task "sleep" (load tests, docs/cluster.md): every job is queued at
  // submission and a job's report only counts; no proposals, no verdicts.
  absl::StatusOr<v1::Campaign> SubmitSleepCampaign(v1::CampaignSpec spec);
  absl::Status ProcessSleepEvaluations(const std::vector<v1::Evaluation>& evaluations);
  absl::Status AdvanceSleepCampaign(v1::Campaign campaign);
  // Adds a decided verification's incumbent replays to the noise floors.
  absl::Status UpdateNoiseFloors(const v1::Verification& v, const v1::Campaign& campaign);
  // Every score a verdict reports is the score of a distinct replay of the
  // claim's verification (candidate or incumbent side) that this coordinator
  // handed out; an acceptance needs both sides.
  absl::Status VerdictMatchesReplays(const v1::Verification& stored,
                                     const v1::Verification& verdict);
  // Baselines (stored_baselines.h): an ok evaluation (never a replay) whose harness
  // timed T_b itself adds its measurements to the baselines of its problem on
  // its worker's hardware and software, until they freeze. Inside the
  // evaluation's transaction; sets *event when one froze and *changed to the
  // stored_baselines_ key to drop once the transaction commits.
  absl::Status RecordBaselines(const v1::Campaign& campaign, const v1::Evaluation& evaluation,
                               std::string* event, std::string* changed);
  // The frozen baselines of every workload of the campaign's problem on the
  // worker's hardware (for Job.baselines); empty when some are missing.
  absl::StatusOr<std::vector<v1::Baseline>> BaselinesForJob(int64_t campaign_id,
                                                            const v1::CampaignSpec& spec,
                                                            const v1::Hardware& hardware,
                                                            const std::string& worker_id);
  absl::Status ProposeForThread(v1::Campaign& campaign, v1::ResearchThread& thread,
                                const std::vector<v1::Candidate>& history,
                                bool* proposed);
  // Experience: one lesson per knob the candidate changed against its parent
  // (or one for a code change), with its effect and, for a claim, the verdict.
  absl::Status RecordLessons(v1::Campaign& campaign, const v1::Candidate& candidate,
                             double score, const std::string& outcome,
                             const std::string& verdict);
  // Islands: offers the thread's incumbent to the next thread, which adopts
  // it when it beats its own.
  absl::Status Migrate(v1::Campaign& campaign, const v1::ResearchThread& donor);
  // Slow (llm) proposals: starts one for the thread in the proposal pool.
  absl::Status StartProposal(const v1::Campaign& campaign, const v1::ResearchThread& thread,
                             const std::vector<v1::Candidate>& history);
  // Turns the pool's finished answers into candidates and accounts for their
  // cost. Sets *ended (and *failed) when no more proposals may be made.
  absl::Status CollectProposals(v1::Campaign& campaign, int* open_evaluations,
                                std::map<int64_t, int>* open_by_candidate,
                                std::string* ended, bool* failed);
  // Stores a proposed candidate and queues its evaluation; 0 if an identical
  // candidate exists already (never evaluated twice).
  absl::StatusOr<int64_t> AddCandidate(const v1::Campaign& campaign, int64_t thread_id,
                                       int64_t parent_id, proposers::Proposal proposal);
  absl::StatusOr<int64_t> EnqueueJob(const v1::Campaign& campaign, int64_t candidate_id,
                                     v1::JobKind kind, int64_t verification_id,
                                     const std::string& avoid_worker_id);
  // Fills in the derived fields (threads, job counts, verdict counts).
  absl::Status Decorate(v1::Campaign* campaign);
  void Emit(int64_t campaign_id, const std::string& text);
  void Wake();
  bool OtherWorkerConnected(const std::string& worker_id);
  void UpdateGauges();
  uint64_t FreshSeed();

  store::Store* const store_;
  const CoordinatorOptions options_;

  // Serialises every change to research state (campaigns, threads,
  // candidates, verdicts) so the loop and RPC handlers never interleave.
  std::mutex research_mu_;

  std::mutex mu_;  // guards everything below
  std::condition_variable wake_;
  bool stopping_ = false;
  std::map<std::string, int64_t> last_heartbeat_ms_;
  std::deque<CampaignEventRecord> events_;
  int64_t next_event_seq_ = 1;
  std::mt19937_64 seed_rng_;
  std::thread loop_;
  int64_t gauges_updated_ms_ = 0;  // touched by the loop thread only

  // Metrics.
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Gauge>* jobs_gauge_;
  prometheus::Family<prometheus::Counter>* evaluations_counter_;
  prometheus::Family<prometheus::Counter>* verdicts_counter_;
  prometheus::Family<prometheus::Gauge>* best_score_gauge_;
  prometheus::Gauge* workers_connected_;
  prometheus::Counter* lease_expiries_;
  prometheus::Family<prometheus::Counter>* llm_tokens_counter_;
  prometheus::Family<prometheus::Counter>* llm_cost_counter_;
  prometheus::Family<prometheus::Counter>* llm_answers_counter_;
  prometheus::Counter* commit_batches_;
  prometheus::Counter* commit_transitions_;
  int64_t counted_batches_ = 0;      // loop thread only
  int64_t counted_transitions_ = 0;  // loop thread only

  // Worker-side state transitions share transactions through this.
  GroupCommit group_commit_;

  // The scheduler's view of the running campaigns (scheduler.h): refreshed
  // from the store every tick; leased counts adjusted as jobs are leased and
  // completed between the once-a-second recounts.
  void RefreshSchedulable(const std::vector<v1::Campaign>& campaigns);
  std::mutex schedule_mu_;
  bool schedulable_loaded_ = false;
  std::vector<SchedulableCampaign> schedulable_;
  std::map<int64_t, int> leased_by_campaign_;
  // What AcquireJob needs besides the lease, none of which changes once
  // stored: a worker's hardware, a campaign's spec, a candidate's solution.
  std::map<std::string, v1::Hardware> worker_hardware_;
  std::map<int64_t, std::shared_ptr<const v1::CampaignSpec>> specs_;
  std::map<int64_t, std::shared_ptr<const v1::Solution>> solutions_;
  // Baselines for AcquireJob: a campaign's problem key and workload keys; the
  // stored baselines of (problem key, hardware key), re-read when older than
  // a few seconds or when this coordinator changed them; the software each
  // worker's harness last reported (its jobs get that software's baselines).
  struct BaselineKeys {
    std::string problem;
    std::vector<std::string> workloads;
  };
  struct StoredBaselines {
    std::vector<v1::Baseline> baselines;
    int64_t loaded_ms = 0;
  };
  std::map<int64_t, std::shared_ptr<const BaselineKeys>> baseline_keys_;
  std::map<std::string, std::shared_ptr<const StoredBaselines>> stored_baselines_;
  std::map<std::string, std::string> worker_software_;

  // Declared last: destroyed first, so its threads stop before the rest.
  ProposalPool proposal_pool_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_COORDINATOR_H_
