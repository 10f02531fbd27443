#include "coordinator/services.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "coordinator/multi_fidelity.h"

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

using auth::Principal;
using auth::Role;

// The caller, if it may act as `role`.
absl::StatusOr<Principal> Authorize(const auth::Authenticator* a,
                                    const grpc::ServerContext* ctx, Role role) {
  if (a == nullptr) return Principal{"anonymous", Role::kAdmin, /*open=*/true};
  return a->Require(ctx, role);
}

// A worker or verifier acts under its own name only: the id in the request
// must be the identity its certificate proves.
grpc::Status AsItself(const Principal& p, const std::string& claimed, const char* field) {
  if (p.open || claimed == p.name) return grpc::Status::OK;
  return grpc::Status(grpc::PERMISSION_DENIED,
                      absl::StrCat(field, " '", claimed, "' is not the caller's identity '",
                                   p.name, "'"));
}

}  // namespace

int64_t JobsQueuedAtOnce(const v1::CampaignSpec& spec) {
  if (spec.task() == v1::TASK_SLEEP) return std::max(0, spec.budget().max_evaluations());
  const int64_t baseline_jobs = 1 + static_cast<int64_t>(LowFidelities(spec).size());
  return baseline_jobs +
         int64_t{std::max(0, spec.threads())} * std::max(0, spec.in_flight_per_thread());
}

#define RATCHET_AUTHORIZE(principal, role)                            \
  auto principal##_or = Authorize(auth_, ctx, role);                  \
  if (!principal##_or.ok()) return ToGrpc(principal##_or.status());   \
  [[maybe_unused]] const Principal& principal = *principal##_or

CoordinatorServiceImpl::StreamSlot::StreamSlot(CoordinatorServiceImpl* s, std::string client)
    : s_(s), client_(std::move(client)) {
  std::lock_guard<std::mutex> lock(s_->streams_mu_);
  int& open = s_->streams_[client_];
  ok_ = s_->limits_.streams_per_client <= 0 || open < s_->limits_.streams_per_client;
  if (ok_) ++open;
}

CoordinatorServiceImpl::StreamSlot::~StreamSlot() {
  if (!ok_) return;
  std::lock_guard<std::mutex> lock(s_->streams_mu_);
  if (--s_->streams_[client_] == 0) s_->streams_.erase(client_);
}

absl::Status CoordinatorServiceImpl::MayChange(const Principal& p, int64_t campaign_id) {
  if (p.open || p.role == Role::kAdmin) return absl::OkStatus();
  auto campaign = c_->GetCampaign(campaign_id);
  if (!campaign.ok()) return campaign.status();
  if (p.Owns(campaign->spec().owner())) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat("campaign ", campaign_id, " belongs to '",
                                                  campaign->spec().owner(), "', not to ",
                                                  p.name));
}

absl::Status CoordinatorServiceImpl::CheckClientLimits(const Principal& p, int64_t jobs,
                                                       int64_t bytes) {
  auto usage = c_->GetOwnerUsage(p.name);
  if (!usage.ok()) return usage.status();
  if (limits_.campaigns_per_client > 0 &&
      usage->active_campaigns >= limits_.campaigns_per_client)
    return absl::ResourceExhaustedError(absl::StrCat(
        p.name, " has ", usage->active_campaigns,
        " campaigns running or paused, the most one client may have (",
        "--max-campaigns-per-client); cancel one or wait for one to finish"));
  if (limits_.queued_jobs_per_client > 0 &&
      usage->open_jobs + jobs > limits_.queued_jobs_per_client)
    return absl::ResourceExhaustedError(absl::StrCat(
        "this campaign would queue ", jobs, " jobs and ", p.name, "'s campaigns hold ",
        usage->open_jobs, " queued or running; one client may have at most ",
        limits_.queued_jobs_per_client, " (--max-queued-jobs-per-client)"));
  if (limits_.spec_bytes_per_client > 0 &&
      usage->spec_bytes + bytes > limits_.spec_bytes_per_client)
    return absl::ResourceExhaustedError(absl::StrCat(
        "this spec has ", bytes, " bytes and ", p.name,
        "'s running or paused campaigns hold ", usage->spec_bytes,
        "; one client may have at most ", limits_.spec_bytes_per_client,
        " bytes of specs (--max-spec-bytes-per-client); cancel one or wait for one to finish"));
  return absl::OkStatus();
}

// ---- CoordinatorService

grpc::Status CoordinatorServiceImpl::SubmitCampaign(grpc::ServerContext* ctx,
                                                    const v1::SubmitCampaignRequest* req,
                                                    v1::Campaign* resp) {
  RATCHET_AUTHORIZE(p, Role::kSubmit);
  v1::CampaignSpec spec = req->spec();
  spec.set_owner(p.name);  // whatever the request said
  // The limits are checked on the spec as validated and completed, and
  // under one lock with its creation.
  std::lock_guard<std::mutex> submitting(submit_mu_);
  return Reply(c_->SubmitCampaign(spec,
                                  [&](const v1::CampaignSpec& checked) {
                                    return CheckClientLimits(
                                        p, JobsQueuedAtOnce(checked),
                                        static_cast<int64_t>(checked.ByteSizeLong()));
                                  }),
               resp);
}

grpc::Status CoordinatorServiceImpl::GetCampaign(grpc::ServerContext* ctx,
                                                 const v1::GetCampaignRequest* req,
                                                 v1::Campaign* resp) {
  RATCHET_AUTHORIZE(p, Role::kRead);
  return Reply(c_->GetCampaign(req->campaign_id()), resp);
}

grpc::Status CoordinatorServiceImpl::ListCampaigns(grpc::ServerContext* ctx,
                                                   const v1::ListCampaignsRequest*,
                                                   v1::ListCampaignsResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kRead);
  auto campaigns = c_->ListCampaigns();  // summaries: no problems or baselines
  if (!campaigns.ok()) return ToGrpc(campaigns.status());
  for (auto& c : *campaigns) *resp->add_campaigns() = std::move(c);
  return grpc::Status::OK;
}

grpc::Status CoordinatorServiceImpl::WatchCampaign(grpc::ServerContext* ctx,
                                                   const v1::WatchCampaignRequest* req,
                                                   grpc::ServerWriter<v1::CampaignEvent>* w) {
  RATCHET_AUTHORIZE(p, Role::kRead);
  // Each stream holds one of the server's threads: a client gets a few.
  StreamSlot slot(this, p.name);
  if (!slot.ok())
    return grpc::Status(grpc::RESOURCE_EXHAUSTED,
                        absl::StrCat(p.name, " already watches ", limits_.streams_per_client,
                                     " campaigns, the most one client may (",
                                     "--max-streams-per-client)"));
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

grpc::Status CoordinatorServiceImpl::GetLeaderboard(grpc::ServerContext* ctx,
                                                    const v1::GetLeaderboardRequest* req,
                                                    v1::Leaderboard* resp) {
  RATCHET_AUTHORIZE(p, Role::kRead);
  return Reply(c_->GetLeaderboard(req->campaign_id(), req->limit()), resp);
}

grpc::Status CoordinatorServiceImpl::GetCandidate(grpc::ServerContext* ctx,
                                                  const v1::GetCandidateRequest* req,
                                                  v1::CandidateDetail* resp) {
  RATCHET_AUTHORIZE(p, Role::kRead);
  return Reply(c_->GetCandidate(req->candidate_id()), resp);
}

grpc::Status CoordinatorServiceImpl::CancelCampaign(grpc::ServerContext* ctx,
                                                    const v1::CancelCampaignRequest* req,
                                                    v1::Campaign* resp) {
  RATCHET_AUTHORIZE(p, Role::kSubmit);
  if (auto s = MayChange(p, req->campaign_id()); !s.ok()) return ToGrpc(s);
  return Reply(c_->CancelCampaign(req->campaign_id()), resp);
}

grpc::Status CoordinatorServiceImpl::PauseCampaign(grpc::ServerContext* ctx,
                                                   const v1::PauseCampaignRequest* req,
                                                   v1::Campaign* resp) {
  RATCHET_AUTHORIZE(p, Role::kSubmit);
  if (auto s = MayChange(p, req->campaign_id()); !s.ok()) return ToGrpc(s);
  return Reply(c_->PauseCampaign(req->campaign_id()), resp);
}

grpc::Status CoordinatorServiceImpl::ResumeCampaign(grpc::ServerContext* ctx,
                                                    const v1::ResumeCampaignRequest* req,
                                                    v1::Campaign* resp) {
  RATCHET_AUTHORIZE(p, Role::kSubmit);
  if (auto s = MayChange(p, req->campaign_id()); !s.ok()) return ToGrpc(s);
  return Reply(c_->ResumeCampaign(req->campaign_id()), resp);
}

grpc::Status CoordinatorServiceImpl::ListWorkers(grpc::ServerContext* ctx,
                                                 const v1::ListWorkersRequest*,
                                                 v1::ListWorkersResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kRead);
  auto workers = c_->ListWorkers();
  if (!workers.ok()) return ToGrpc(workers.status());
  for (auto& w : *workers) *resp->add_workers() = std::move(w);
  return grpc::Status::OK;
}

grpc::Status CoordinatorServiceImpl::ListEvents(grpc::ServerContext* ctx,
                                                const v1::ListEventsRequest* req,
                                                v1::ListEventsResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kRead);
  auto events = c_->ListEvents(req->campaign_id(), req->after_seq(), req->limit());
  if (!events.ok()) return ToGrpc(events.status());
  for (auto& e : *events) {
    v1::StoredEvent* out = resp->add_events();
    out->set_seq(e.seq);
    out->set_unix_ms(e.unix_ms);
    out->set_text(std::move(e.text));
  }
  return grpc::Status::OK;
}

// ---- WorkerService

grpc::Status WorkerServiceImpl::RegisterWorker(grpc::ServerContext* ctx,
                                               const v1::RegisterWorkerRequest* req,
                                               v1::RegisterWorkerResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kWorker);
  if (p.open) return Reply(c_->RegisterWorker(*req), resp);
  // An authenticated worker's id is the name its certificate proves.
  v1::RegisterWorkerRequest as_itself = *req;
  as_itself.set_worker_id(p.name);
  return Reply(c_->RegisterWorker(as_itself), resp);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* ctx,
                                          const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kWorker);
  if (auto s = AsItself(p, req->worker_id(), "worker_id"); !s.ok()) return s;
  return Reply(c_->Heartbeat(*req), resp);
}

grpc::Status WorkerServiceImpl::AcquireJob(grpc::ServerContext* ctx,
                                           const v1::AcquireJobRequest* req,
                                           v1::AcquireJobResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kWorker);
  if (auto s = AsItself(p, req->worker_id(), "worker_id"); !s.ok()) return s;
  auto job = c_->AcquireJob(req->worker_id(), req->wait_ms());
  if (!job.ok()) return ToGrpc(job.status());
  if (job->has_value()) *resp->mutable_job() = std::move(**job);
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::CompleteJob(grpc::ServerContext* ctx,
                                            const v1::CompleteJobRequest* req,
                                            v1::CompleteJobResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kWorker);
  if (auto s = AsItself(p, req->worker_id(), "worker_id"); !s.ok()) return s;
  return Reply(c_->CompleteJob(*req), resp);
}

// ---- VerifierService

grpc::Status VerifierServiceImpl::AcquireVerification(
    grpc::ServerContext* ctx, const v1::AcquireVerificationRequest* req,
    v1::AcquireVerificationResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kVerifier);
  if (auto s = AsItself(p, req->verifier_id(), "verifier_id"); !s.ok()) return s;
  return Reply(c_->AcquireVerification(req->verifier_id(), req->wait_ms()), resp);
}

grpc::Status VerifierServiceImpl::ReportVerdict(grpc::ServerContext* ctx,
                                                const v1::ReportVerdictRequest* req,
                                                v1::ReportVerdictResponse* resp) {
  RATCHET_AUTHORIZE(p, Role::kVerifier);
  if (auto s = AsItself(p, req->verifier_id(), "verifier_id"); !s.ok()) return s;
  return Reply(c_->ReportVerdict(*req), resp);
}

}  // namespace ratchet::coordinator
