// The coordinator owns campaigns and runs the research loop for each of them
// (docs/architecture.md). All durable state lives in the Store; the
// coordinator keeps only what can be rebuilt after a restart (connected
// workers, recent events for watchers, caches); events are written through
// to the store (event_log.h).
//
// This class is the facade the gRPC services call (services.h). It wires up
// the parts, each behind a narrow interface, and serialises every change to
// research state with one lock:
//   WorkerGateway      workers: register, heartbeat, leases, reports
//   VerificationDesk   claims, replays, verdicts, noise floors
//   ResearchLoop       one tick: reports applied (EvaluationIntake), every
//                      campaign advanced (Proposals, budgets), gauges
//   Experience         lessons and migration between threads
//   SleepCampaigns     the "sleep" load-test task
//   EventLog, CoordinatorMetrics, JobQueue, JobBaselines, CampaignViews
// Every time of day it decides by comes from options.clock.
#ifndef RATCHET_COORDINATOR_COORDINATOR_H_
#define RATCHET_COORDINATOR_COORDINATOR_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/campaign_views.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/evaluation_intake.h"
#include "coordinator/event_log.h"
#include "coordinator/experience.h"
#include "coordinator/job_baselines.h"
#include "coordinator/job_queue.h"
#include "coordinator/proposals.h"
#include "coordinator/research_loop.h"
#include "coordinator/sleep_campaigns.h"
#include "coordinator/store/store.h"
#include "coordinator/verification_desk.h"
#include "coordinator/wakeup.h"
#include "coordinator/worker_gateway.h"
#include "prometheus/registry.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

class Coordinator {
 public:
  Coordinator(store::Store* store, CoordinatorOptions options,
              std::shared_ptr<prometheus::Registry> registry);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Starts the research loop's thread, which ticks every tick_ms (sooner
  // when something changed); it resumes every running campaign from the
  // store.
  void Start();
  void Stop();
  // One tick of the research loop, as that thread runs it: for tests, which
  // start no thread and move a FakeClock instead.
  absl::Status RunOnce();

  // ---- Clients.
  // `admit`, when set, sees the spec once it is validated and completed with
  // defaults, before anything is stored; an error from it refuses the submit
  // (the per-client limits, services.h).
  absl::StatusOr<v1::Campaign> SubmitCampaign(
      const v1::CampaignSpec& spec,
      const std::function<absl::Status(const v1::CampaignSpec&)>& admit = nullptr);
  absl::StatusOr<v1::Campaign> GetCampaign(int64_t id);
  // Every campaign as a listing shows it: no problems or baselines.
  absl::StatusOr<std::vector<v1::Campaign>> ListCampaigns();
  // What a client's running or paused campaigns hold, for its limits.
  absl::StatusOr<store::Store::OwnerUsage> GetOwnerUsage(const std::string& owner);
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
  // The campaign's stored events with seq > after_seq, oldest first, at most
  // `limit` (0 or above kMaxEventsPerList: kMaxEventsPerList); every event
  // emitted before the call is among them. NotFound for an unknown campaign.
  static constexpr int kMaxEventsPerList = 1'000;
  absl::StatusOr<std::vector<store::Store::Event>> ListEvents(int64_t campaign_id,
                                                              int64_t after_seq, int limit);

  // ---- Workers.
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  absl::StatusOr<std::optional<v1::Job>> AcquireJob(const std::string& worker_id,
                                                    int wait_ms);
  absl::StatusOr<v1::CompleteJobResponse> CompleteJob(const v1::CompleteJobRequest& request);

  // ---- Verifiers.
  // A claim whose replays have all ended, leased to the verifier, with its
  // bundle (no verification when none came within wait_ms).
  absl::StatusOr<v1::AcquireVerificationResponse> AcquireVerification(
      const std::string& verifier_id, int wait_ms);
  // A verdict, or VERDICT_MORE_REPLAYS: the coordinator queues them.
  absl::StatusOr<v1::ReportVerdictResponse> ReportVerdict(
      const v1::ReportVerdictRequest& request);

 private:
  void Loop();
  // A client's state change (cancel, pause, resume): reads the campaign,
  // applies `change` and stores it in one transaction under the research
  // lock, then emits `event`; returns the campaign as it is now.
  absl::StatusOr<v1::Campaign> ChangeCampaign(
      int64_t campaign_id, const std::string& event,
      const std::function<absl::Status(v1::Campaign&)>& change);
  absl::StatusOr<v1::Campaign> SubmitSleepCampaign(v1::CampaignSpec spec);

  store::Store* const store_;
  const CoordinatorOptions options_;
  const Clock* const clock_;
  const std::shared_ptr<prometheus::Registry> registry_;

  // Serialises every change to research state (campaigns, threads,
  // candidates, verdicts) so the loop and RPC handlers never interleave.
  std::mutex research_mu_;

  // The parts, each built on those above it.
  Wakeup wakeup_;
  EventLog events_;
  CoordinatorMetrics metrics_;
  JobQueue jobs_;
  JobBaselines baselines_;
  Experience experience_;
  CampaignViews views_;
  WorkerGateway gateway_;
  VerificationDesk desk_;
  EvaluationIntake intake_;
  SleepCampaigns sleep_;
  Proposals proposals_;  // its pool's threads stop before the parts above go
  ResearchLoop research_;
  std::thread loop_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_COORDINATOR_H_
