// gRPC front ends of the coordinator: thin adapters from the generated
// service interfaces to Coordinator, mapping absl::Status to grpc::Status.
// Each call is authorized here first (docs/security.md): clients by role,
// workers and verifiers as themselves only. A null Authenticator serves
// openly (every caller may do everything): in-process use and loopback.
#ifndef RATCHET_COORDINATOR_SERVICES_H_
#define RATCHET_COORDINATOR_SERVICES_H_

#include <map>
#include <mutex>
#include <string>

#include "coordinator/coordinator.h"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "common/auth.h"

namespace ratchet::coordinator {

grpc::Status ToGrpc(const absl::Status& status);

// What one client may hold at once; 0: no limit.
struct ClientLimits {
  int campaigns_per_client = 20;  // running or paused
  int streams_per_client = 16;    // WatchCampaign streams open
  // Jobs its running or paused campaigns hold queued or leased, counting
  // what a submit would queue at once.
  int64_t queued_jobs_per_client = 10'000;
  // Serialized specs (problems and baselines, mostly) of its running or
  // paused campaigns: the store and the coordinator's caches hold them.
  int64_t spec_bytes_per_client = int64_t{64} << 20;
};

// The jobs a campaign of `spec` (defaults applied) may hold queued at once:
// a sleep campaign queues its whole budget at submit; a research campaign its
// baseline's evaluations, then up to in_flight_per_thread for each thread.
int64_t JobsQueuedAtOnce(const v1::CampaignSpec& spec);

class CoordinatorServiceImpl final : public v1::CoordinatorService::Service {
 public:
  explicit CoordinatorServiceImpl(Coordinator* c, const auth::Authenticator* auth = nullptr,
                                  ClientLimits limits = {})
      : c_(c), auth_(auth), limits_(limits) {}
  grpc::Status SubmitCampaign(grpc::ServerContext*, const v1::SubmitCampaignRequest*,
                              v1::Campaign*) override;
  grpc::Status GetCampaign(grpc::ServerContext*, const v1::GetCampaignRequest*,
                           v1::Campaign*) override;
  grpc::Status ListCampaigns(grpc::ServerContext*, const v1::ListCampaignsRequest*,
                             v1::ListCampaignsResponse*) override;
  grpc::Status WatchCampaign(grpc::ServerContext*, const v1::WatchCampaignRequest*,
                             grpc::ServerWriter<v1::CampaignEvent>*) override;
  grpc::Status GetLeaderboard(grpc::ServerContext*, const v1::GetLeaderboardRequest*,
                              v1::Leaderboard*) override;
  grpc::Status GetCandidate(grpc::ServerContext*, const v1::GetCandidateRequest*,
                            v1::CandidateDetail*) override;
  grpc::Status CancelCampaign(grpc::ServerContext*, const v1::CancelCampaignRequest*,
                              v1::Campaign*) override;
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse*) override;
  grpc::Status PauseCampaign(grpc::ServerContext*, const v1::PauseCampaignRequest*,
                             v1::Campaign*) override;
  grpc::Status ResumeCampaign(grpc::ServerContext*, const v1::ResumeCampaignRequest*,
                              v1::Campaign*) override;
  grpc::Status ListEvents(grpc::ServerContext*, const v1::ListEventsRequest*,
                          v1::ListEventsResponse*) override;

 private:
  // Holds one of a client's watch streams while it lives; ok() false when
  // the client already holds its limit.
  class StreamSlot {
   public:
    StreamSlot(CoordinatorServiceImpl* s, std::string client);
    ~StreamSlot();
    bool ok() const { return ok_; }

   private:
    CoordinatorServiceImpl* s_;
    std::string client_;
    bool ok_ = false;
  };

  // Admins, and a campaign's owner, may pause, resume and cancel it.
  absl::Status MayChange(const auth::Principal& p, int64_t campaign_id);
  // The client's limits (ClientLimits) with a campaign of `jobs` queued at
  // once and a spec of `bytes` added. Call with submit_mu_ held until the
  // campaign is created, so that concurrent submits cannot each pass on the
  // same count.
  absl::Status CheckClientLimits(const auth::Principal& p, int64_t jobs, int64_t bytes);

  Coordinator* c_;
  const auth::Authenticator* auth_;
  ClientLimits limits_;
  std::mutex submit_mu_;  // held across a submit's limit check and its creation
  std::mutex streams_mu_;
  std::map<std::string, int> streams_;  // client -> open watch streams
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  explicit WorkerServiceImpl(Coordinator* c, const auth::Authenticator* auth = nullptr)
      : c_(c), auth_(auth) {}
  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest*,
                              v1::RegisterWorkerResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest*,
                         v1::HeartbeatResponse*) override;
  grpc::Status AcquireJob(grpc::ServerContext*, const v1::AcquireJobRequest*,
                          v1::AcquireJobResponse*) override;
  grpc::Status CompleteJob(grpc::ServerContext*, const v1::CompleteJobRequest*,
                           v1::CompleteJobResponse*) override;

 private:
  Coordinator* c_;
  const auth::Authenticator* auth_;
};

class VerifierServiceImpl final : public v1::VerifierService::Service {
 public:
  explicit VerifierServiceImpl(Coordinator* c, const auth::Authenticator* auth = nullptr)
      : c_(c), auth_(auth) {}
  grpc::Status AcquireVerification(grpc::ServerContext*, const v1::AcquireVerificationRequest*,
                                   v1::AcquireVerificationResponse*) override;
  grpc::Status ReportVerdict(grpc::ServerContext*, const v1::ReportVerdictRequest*,
                             v1::ReportVerdictResponse*) override;

 private:
  Coordinator* c_;
  const auth::Authenticator* auth_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_SERVICES_H_
