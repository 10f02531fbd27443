// The workers' side of the coordinator: registration, heartbeats, job leases
// and reports. A worker pulls jobs; each lease has a deadline on the
// coordinator's clock, renewed by heartbeats, and a lease that lapses puts
// the job back in the queue (or fails it after max_attempts leases).
//
// Which campaign a worker's next job comes from is the scheduler's
// (scheduler.h) over the running campaigns, refreshed by the research loop;
// a leased job is filled in with its campaign's problem, harness and
// baselines and its candidate's solution, none of which change once stored,
// so those are cached here.
#ifndef RATCHET_COORDINATOR_WORKER_GATEWAY_H_
#define RATCHET_COORDINATOR_WORKER_GATEWAY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/coordinator_options.h"
#include "coordinator/event_log.h"
#include "coordinator/group_commit.h"
#include "coordinator/job_baselines.h"
#include "coordinator/scheduler.h"
#include "coordinator/store/store.h"
#include "coordinator/wakeup.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

class WorkerGateway {
 public:
  // Uses options' clock, lease_ms, heartbeat_ms, max_attempts, group_commit.
  WorkerGateway(store::Store* store, const CoordinatorOptions& options, Wakeup* wakeup,
                EventLog* events, CoordinatorMetrics* metrics, JobBaselines* baselines);
  WorkerGateway(const WorkerGateway&) = delete;
  WorkerGateway& operator=(const WorkerGateway&) = delete;

  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(const v1::HeartbeatRequest& request);
  // A job of the fairest campaign the worker can run, waiting up to wait_ms
  // (at most 30 s) for one; nullopt when none came.
  absl::StatusOr<std::optional<v1::Job>> AcquireJob(const std::string& worker_id, int wait_ms);
  // Stores the report unprocessed (the research loop applies it).
  absl::StatusOr<v1::CompleteJobResponse> CompleteJob(const v1::CompleteJobRequest& request);
  // Every worker ever registered, with whether it heartbeated within a lease.
  absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers();

  // Leases past their deadline go back to the queue, or fail at the attempt
  // cap; returns the jobs that failed, for the research loop to account for.
  absl::StatusOr<std::vector<v1::Job>> ExpireLeases();

  // The running campaigns the scheduler picks from (of `campaigns`, all).
  void RefreshSchedulable(const std::vector<v1::Campaign>& campaigns);
  // The jobs leased per campaign, recounted by the store: corrects any drift
  // of the counts kept as jobs are leased and completed.
  void SetLeasedCounts(std::map<int64_t, int> leased);
  // Workers that heartbeated within a lease period.
  int ConnectedWorkers();
  const GroupCommit& commits() const { return group_commit_; }

 private:
  void Heard(const std::string& worker_id, int64_t now);
  // A replay avoids the worker that produced the claim, unless no other is
  // there.
  bool OtherWorkerConnected(const std::string& worker_id);
  // The campaigns `hardware` can run, in the scheduler's order.
  // The campaigns a worker may take jobs of, in order; a worker whose NCCL
  // bus bandwidth is far below its connected peers' (node_health.h) is not
  // offered multi-process training campaigns.
  absl::StatusOr<std::vector<int64_t>> CampaignsFor(const std::string& worker_id,
                                                    const v1::Hardware& hardware);
  // A leased job with what the worker needs to run it.
  absl::StatusOr<v1::Job> Fill(v1::Job job, const v1::Hardware& hardware,
                               const std::string& worker_id);
  // Training progress of jobs the worker holds, as campaign events: at most
  // one per job per kProgressEventMs of the coordinator's clock, the figures
  // bounded and printed by the coordinator (docs/training.md, "Progress").
  void NoteProgress(const std::map<int64_t, const v1::JobProgress*>& latest, int64_t now);

  store::Store* const store_;
  const Clock* const clock_;
  const int64_t lease_ms_;
  const int64_t heartbeat_ms_;
  const int max_attempts_;
  Wakeup* const wakeup_;
  EventLog* const events_;
  CoordinatorMetrics* const metrics_;
  JobBaselines* const baselines_;
  // Worker-side state transitions share transactions through this.
  GroupCommit group_commit_;

  std::mutex heard_mu_;  // guards the two below
  std::map<std::string, int64_t> last_heartbeat_ms_;
  std::mt19937_64 id_rng_;  // worker id suffixes

  // Per training job that reported progress: when its last event was, and
  // what the events call it (looked up once). Pruned as jobs go quiet.
  struct ProgressNote {
    int64_t emitted_ms = 0;
    int64_t campaign_id = 0;  // 0: not looked up yet; -1: not a training job
    std::string label;        // "#5 [LR_SCALE 1→3]"
  };
  std::mutex progress_mu_;  // guards progress_
  std::map<int64_t, ProgressNote> progress_;

  std::mutex schedule_mu_;  // guards everything below
  bool schedulable_loaded_ = false;
  std::vector<SchedulableCampaign> schedulable_;
  std::map<int64_t, int> leased_by_campaign_;
  // Each campaign's latest lease by number (CampaignOrder's second key).
  std::map<int64_t, uint64_t> last_served_;
  uint64_t leases_ = 0;
  std::map<std::string, v1::Hardware> worker_hardware_;
  std::map<int64_t, std::shared_ptr<const v1::CampaignSpec>> specs_;
  std::map<int64_t, std::shared_ptr<const v1::Solution>> solutions_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_WORKER_GATEWAY_H_
