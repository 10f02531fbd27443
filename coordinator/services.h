// gRPC front ends of the coordinator: thin adapters from the generated
// service interfaces to Coordinator, mapping absl::Status to grpc::Status.
#ifndef RATCHET_COORDINATOR_SERVICES_H_
#define RATCHET_COORDINATOR_SERVICES_H_

#include "coordinator/coordinator.h"
#include "ratchet/v1/ratchet.grpc.pb.h"

namespace ratchet::coordinator {

grpc::Status ToGrpc(const absl::Status& status);

class CoordinatorServiceImpl final : public v1::CoordinatorService::Service {
 public:
  explicit CoordinatorServiceImpl(Coordinator* c) : c_(c) {}
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

 private:
  Coordinator* c_;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  explicit WorkerServiceImpl(Coordinator* c) : c_(c) {}
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
};

class VerifierServiceImpl final : public v1::VerifierService::Service {
 public:
  explicit VerifierServiceImpl(Coordinator* c) : c_(c) {}
  grpc::Status AcquireVerification(grpc::ServerContext*, const v1::AcquireVerificationRequest*,
                                   v1::AcquireVerificationResponse*) override;
  grpc::Status RequestReplays(grpc::ServerContext*, const v1::RequestReplaysRequest*,
                              v1::RequestReplaysResponse*) override;
  grpc::Status GetReplays(grpc::ServerContext*, const v1::GetReplaysRequest*,
                          v1::GetReplaysResponse*) override;
  grpc::Status ReportVerdict(grpc::ServerContext*, const v1::ReportVerdictRequest*,
                             v1::ReportVerdictResponse*) override;

 private:
  Coordinator* c_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_SERVICES_H_
