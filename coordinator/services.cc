#include "coordinator/services.h"

#include "services/common/clock.h"

namespace ratchet::coordinator {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

namespace {

// Copies a StatusOr's value into a response, or returns its error.
template <typename T, typename Out>
grpc::Status Reply(absl::StatusOr<T> result, Out* out) {
  if (!result.ok()) return ToGrpc(result.status());
  *out = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace

// ---- CoordinatorService

grpc::Status CoordinatorServiceImpl::SubmitCampaign(grpc::ServerContext*,
                                                    const v1::SubmitCampaignRequest* req,
                                                    v1::Campaign* resp) {
  return Reply(c_->SubmitCampaign(req->spec()), resp);
}

grpc::Status CoordinatorServiceImpl::GetCampaign(grpc::ServerContext*,
                                                 const v1::GetCampaignRequest* req,
                                                 v1::Campaign* resp) {
  return Reply(c_->GetCampaign(req->campaign_id()), resp);
}

grpc::Status CoordinatorServiceImpl::ListCampaigns(grpc::ServerContext*,
                                                   const v1::ListCampaignsRequest*,
                                                   v1::ListCampaignsResponse* resp) {
  auto campaigns = c_->ListCampaigns();
  if (!campaigns.ok()) return ToGrpc(campaigns.status());
  for (auto& c : *campaigns) *resp->add_campaigns() = std::move(c);
  return grpc::Status::OK;
}

grpc::Status CoordinatorServiceImpl::WatchCampaign(grpc::ServerContext* ctx,
                                                   const v1::WatchCampaignRequest* req,
                                                   grpc::ServerWriter<v1::CampaignEvent>* w) {
  int64_t cursor = 0;
  auto campaign = c_->GetCampaign(req->campaign_id());
  if (!campaign.ok()) return ToGrpc(campaign.status());
  // Start from now: the snapshot carries the state so far.
  c_->WaitForEvents(req->campaign_id(), &cursor, 0);
  v1::CampaignEvent first;
  *first.mutable_campaign() = *campaign;
  first.set_text("watching campaign " + std::to_string(campaign->id()));
  first.set_unix_ms(NowUnixMs());
  if (!w->Write(first)) return grpc::Status::OK;
  while (!ctx->IsCancelled() && (campaign->state() == v1::CAMPAIGN_RUNNING ||
                                 campaign->state() == v1::CAMPAIGN_PAUSED)) {
    auto events = c_->WaitForEvents(req->campaign_id(), &cursor, 1000);
    campaign = c_->GetCampaign(req->campaign_id());
    if (!campaign.ok()) return ToGrpc(campaign.status());
    if (events.empty()) {  // a heartbeat event keeps the client's view fresh
      v1::CampaignEvent e;
      *e.mutable_campaign() = *campaign;
      e.set_unix_ms(NowUnixMs());
      if (!w->Write(e)) return grpc::Status::OK;
    }
    for (const auto& record : events) {
      v1::CampaignEvent e;
      *e.mutable_campaign() = *campaign;
      e.set_text(record.text);
      e.set_unix_ms(record.unix_ms);
      if (!w->Write(e)) return grpc::Status::OK;
    }
  }
  return grpc::Status::OK;
}

grpc::Status CoordinatorServiceImpl::GetLeaderboard(grpc::ServerContext*,
                                                    const v1::GetLeaderboardRequest* req,
                                                    v1::Leaderboard* resp) {
  return Reply(c_->GetLeaderboard(req->campaign_id(), req->limit()), resp);
}

grpc::Status CoordinatorServiceImpl::GetCandidate(grpc::ServerContext*,
                                                  const v1::GetCandidateRequest* req,
                                                  v1::CandidateDetail* resp) {
  return Reply(c_->GetCandidate(req->candidate_id()), resp);
}

grpc::Status CoordinatorServiceImpl::CancelCampaign(grpc::ServerContext*,
                                                    const v1::CancelCampaignRequest* req,
                                                    v1::Campaign* resp) {
  return Reply(c_->CancelCampaign(req->campaign_id()), resp);
}

grpc::Status CoordinatorServiceImpl::PauseCampaign(grpc::ServerContext*,
                                                   const v1::PauseCampaignRequest* req,
                                                   v1::Campaign* resp) {
  return Reply(c_->PauseCampaign(req->campaign_id()), resp);
}

grpc::Status CoordinatorServiceImpl::ResumeCampaign(grpc::ServerContext*,
                                                    const v1::ResumeCampaignRequest* req,
                                                    v1::Campaign* resp) {
  return Reply(c_->ResumeCampaign(req->campaign_id()), resp);
}

grpc::Status CoordinatorServiceImpl::ListWorkers(grpc::ServerContext*,
                                                 const v1::ListWorkersRequest*,
                                                 v1::ListWorkersResponse* resp) {
  auto workers = c_->ListWorkers();
  if (!workers.ok()) return ToGrpc(workers.status());
  for (auto& w : *workers) *resp->add_workers() = std::move(w);
  return grpc::Status::OK;
}

// ---- WorkerService

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext*,
                                               const v1::RegisterWorkerRequest* req,
                                               v1::RegisterWorkerResponse* resp) {
  return Reply(c_->RegisterWorker(*req), resp);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext*,
                                          const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  return Reply(c_->Heartbeat(*req), resp);
}

grpc::Status WorkerServiceImpl::AcquireJob(grpc::ServerContext*,
                                           const v1::AcquireJobRequest* req,
                                           v1::AcquireJobResponse* resp) {
  auto job = c_->AcquireJob(req->worker_id(), req->wait_ms());
  if (!job.ok()) return ToGrpc(job.status());
  if (job->has_value()) *resp->mutable_job() = std::move(**job);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::CompleteJob(grpc::ServerContext*,
                                            const v1::CompleteJobRequest* req,
                                            v1::CompleteJobResponse* resp) {
  return Reply(c_->CompleteJob(*req), resp);
}

// ---- VerifierService

grpc::Status VerifierServiceImpl::AcquireVerification(
    grpc::ServerContext*, const v1::AcquireVerificationRequest* req,
    v1::AcquireVerificationResponse* resp) {
  auto v = c_->AcquireVerification(req->verifier_id(), req->wait_ms());
  if (!v.ok()) return ToGrpc(v.status());
  if (v->has_value()) *resp->mutable_verification() = std::move(**v);
  return grpc::Status::OK;
}

grpc::Status VerifierServiceImpl::RequestReplays(grpc::ServerContext*,
                                                 const v1::RequestReplaysRequest* req,
                                                 v1::RequestReplaysResponse* resp) {
  auto ids = c_->RequestReplays(req->verification_id(), req->verifier_id(), req->replays());
  if (!ids.ok()) return ToGrpc(ids.status());
  for (int64_t id : *ids) resp->add_job_ids(id);
  return grpc::Status::OK;
}

grpc::Status VerifierServiceImpl::GetReplays(grpc::ServerContext*,
                                             const v1::GetReplaysRequest* req,
                                             v1::GetReplaysResponse* resp) {
  return Reply(c_->GetReplays(req->verification_id()), resp);
}

grpc::Status VerifierServiceImpl::ReportVerdict(grpc::ServerContext*,
                                                const v1::ReportVerdictRequest* req,
                                                v1::ReportVerdictResponse* resp) {
  return Reply(c_->ReportVerdict(*req), resp);
}

}  // namespace ratchet::coordinator
