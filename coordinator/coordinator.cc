#include "coordinator/coordinator.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "coordinator/multi_fidelity.h"
#include "coordinator/proposers/knob_space.h"
#include "coordinator/proposers/proposer.h"
#include "spec/defaults.h"
#include "spec/frozen_files.h"
#include "spec/names.h"
#include "spec/validation.h"

namespace ratchet::coordinator {

Coordinator::Coordinator(store::Store* store, CoordinatorOptions options,
                         std::shared_ptr<prometheus::Registry> registry)
    : store_(store),
      options_(std::move(options)),
      clock_(options_.clock),
      registry_(std::move(registry)),
      events_(clock_, &wakeup_, store),
      metrics_(*registry_),
      jobs_(store, clock_),
      baselines_(store, clock_),
      experience_(store, clock_, &events_),
      views_(store),
      gateway_(store, options_, &wakeup_, &events_, &metrics_, &baselines_),
      desk_(store, clock_, options_.verification_lease_ms, &wakeup_, &events_, &metrics_, &jobs_,
            &experience_),
      intake_(store, clock_, &events_, &baselines_, &experience_, &desk_, &jobs_),
      sleep_(store, clock_, &events_, &jobs_),
      proposals_(store, clock_, options_.llm_endpoints, &wakeup_, &events_, &metrics_, &jobs_,
                 &experience_),
      research_(store, clock_, &events_, &metrics_,
                {&gateway_, &intake_, &proposals_, &desk_, &sleep_}) {}

Coordinator::~Coordinator() { Stop(); }

void Coordinator::Start() {
  loop_ = std::thread([this] { Loop(); });
}

void Coordinator::Stop() {
  wakeup_.Stop();
  if (loop_.joinable()) loop_.join();
}

void Coordinator::Loop() {
  while (true) {
    wakeup_.WaitFor(options_.tick_ms);
    if (wakeup_.stopping()) return;
    absl::Status status = RunOnce();
    if (!status.ok())
      std::fprintf(stderr, "coordinator: research loop: %s\n", status.ToString().c_str());
  }
}

absl::Status Coordinator::RunOnce() {
  std::lock_guard<std::mutex> research(research_mu_);
  return research_.Tick();
}

// ---------------------------------------------------------------------------
// Clients.

absl::StatusOr<v1::Campaign> Coordinator::SubmitCampaign(
    const v1::CampaignSpec& input,
    const std::function<absl::Status(const v1::CampaignSpec&)>& admit) {
  // The spec's rules (spec/): checked as sent (an older client's words
  // read as the enums they name), then completed with the defaults that
  // every client gets.
  v1::CampaignSpec spec = input;
  spec::UpgradeLegacyFields(&spec);
  if (absl::Status s = spec::ValidateCampaignSpec(spec); !s.ok()) return s;
  spec::ApplyDefaults(&spec);
  if (admit)
    if (absl::Status s = admit(spec); !s.ok()) return s;
  if (spec.task() == v1::TASK_SLEEP) return SubmitSleepCampaign(std::move(spec));
  if (auto p = proposers::MakeProposer(spec, options_.llm_endpoints.get()); !p.ok())
    return p.status();

  v1::Solution baseline = spec.baseline();
  auto space = proposers::ParseKnobSpace(baseline);
  if (!space.ok())
    return absl::InvalidArgumentError(absl::StrCat("baseline: ", space.status().message()));
  if (auto s = proposers::NormalizeKnobs(*space, &baseline); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("baseline: ", s.message()));
  *spec.mutable_baseline() = baseline;  // knobs explicit, as every candidate's
  if (spec::IsTraining(spec.task())) {
    // What candidates may not change, fixed now (whatever the request said):
    // the worker refuses a job that differs in any of it.
    v1::TrainingSettings* training = spec.mutable_training();
    training->clear_frozen();
    const std::map<std::string, std::string> files(baseline.files().begin(),
                                                   baseline.files().end());
    for (auto& [path, hash] : spec::FrozenHashes(files, *training))
      (*training->mutable_frozen())[path] = hash;
  }

  std::lock_guard<std::mutex> research(research_mu_);
  v1::Campaign campaign;
  *campaign.mutable_spec() = spec;
  campaign.set_state(v1::CAMPAIGN_RUNNING);
  campaign.set_created_unix_ms(clock_->NowUnixMs());
  campaign.set_baseline_score(-1);
  campaign.set_best_score(-1);
  int64_t campaign_id = 0;
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    auto id = store_->CreateCampaign(campaign);
    if (!id.ok()) return id.status();
    campaign_id = *id;
    campaign.set_id(campaign_id);
    for (int i = 0; i < spec.threads(); ++i) {
      v1::ResearchThread thread;
      thread.set_campaign_id(campaign_id);
      thread.set_index(i);
      if (auto t = store_->CreateThread(thread); !t.ok()) return t.status();
    }
    v1::Candidate candidate;
    candidate.set_campaign_id(campaign_id);
    *candidate.mutable_solution() = baseline;
    candidate.set_description("baseline");
    candidate.set_content_hash(proposers::ContentHash(baseline));
    candidate.set_status(v1::CANDIDATE_PROPOSED);
    candidate.set_score(-1);
    candidate.set_created_unix_ms(clock_->NowUnixMs());
    auto cid = store_->CreateCandidate(candidate);
    if (!cid.ok()) return cid.status();
    campaign.set_baseline_candidate_id(*cid);
    if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;
    // Multi-fidelity: the baseline at every fraction too, so that each rung
    // starts with a reference.
    for (double fidelity : LowFidelities(spec))
      if (auto j = jobs_.EnqueueEvaluation(campaign_id, *cid, fidelity); !j.ok())
        return j.status();
    if (spec.task() == v1::TASK_KERNEL || spec.task() == v1::TASK_UNSPECIFIED)
      return jobs_.EnqueueEvaluation(campaign_id, *cid, 0, /*shared_inputs=*/true).status();
    return jobs_.Enqueue(campaign_id, *cid, v1::JOB_EVALUATE).status();
  });
  if (!s.ok()) return s;
  events_.Emit(campaign_id,
               absl::StrCat("campaign ", campaign_id, " '", spec.name(), "' submitted: ",
                            spec.problem().name(), ", ", spec.threads(), " threads, ",
                            spec::Name(spec.proposer()), ", budget ",
                            spec.budget().max_evaluations(), " evaluations"));
  wakeup_.Notify();
  return GetCampaign(campaign_id);
}

absl::StatusOr<v1::Campaign> Coordinator::SubmitSleepCampaign(v1::CampaignSpec spec) {
  // Defaults were applied by SubmitCampaign (spec/defaults.h).
  if (spec.sleep_ms() < 0) return absl::InvalidArgumentError("spec.sleep_ms must be at least 0");
  spec.set_threads(0);
  std::lock_guard<std::mutex> research(research_mu_);
  auto id = sleep_.Create(spec);
  if (!id.ok()) return id.status();
  wakeup_.Notify();
  return GetCampaign(*id);
}

absl::StatusOr<v1::Campaign> Coordinator::GetCampaign(int64_t id) {
  return views_.GetCampaign(id);
}

absl::StatusOr<std::vector<v1::Campaign>> Coordinator::ListCampaigns() {
  return views_.ListCampaigns();
}

absl::StatusOr<store::Store::OwnerUsage> Coordinator::GetOwnerUsage(const std::string& owner) {
  return store_->GetOwnerUsage(owner);
}

absl::StatusOr<v1::Leaderboard> Coordinator::GetLeaderboard(int64_t campaign_id, int limit) {
  return views_.GetLeaderboard(campaign_id, limit);
}

absl::StatusOr<v1::CandidateDetail> Coordinator::GetCandidate(int64_t candidate_id) {
  return views_.GetCandidate(candidate_id);
}

absl::StatusOr<v1::Campaign> Coordinator::ChangeCampaign(
    int64_t campaign_id, const std::string& event,
    const std::function<absl::Status(v1::Campaign&)>& change) {
  {
    std::lock_guard<std::mutex> research(research_mu_);
    absl::Status s = store_->Transaction([&]() -> absl::Status {
      auto campaign = store_->GetCampaign(campaign_id);
      if (!campaign.ok()) return campaign.status();
      if (auto s = change(*campaign); !s.ok()) return s;
      return store_->UpdateCampaign(*campaign);
    });
    if (!s.ok()) return s;
  }
  events_.Emit(campaign_id, event);
  return GetCampaign(campaign_id);
}

absl::StatusOr<v1::Campaign> Coordinator::CancelCampaign(int64_t campaign_id) {
  auto cancel = [&](v1::Campaign& campaign) -> absl::Status {
    if (campaign.state() != v1::CAMPAIGN_RUNNING && campaign.state() != v1::CAMPAIGN_PAUSED)
      return absl::FailedPreconditionError(absl::StrCat(
          "campaign ", campaign_id, " is already ", CampaignStateName(campaign.state())));
    campaign.set_state(v1::CAMPAIGN_CANCELLED);
    campaign.set_message("cancelled by a client");
    campaign.set_finished_unix_ms(clock_->NowUnixMs());
    return store_->FailOpenJobs(campaign_id);
  };
  return ChangeCampaign(campaign_id, "campaign cancelled", cancel);
}

absl::StatusOr<v1::Campaign> Coordinator::PauseCampaign(int64_t campaign_id) {
  auto pause = [&](v1::Campaign& campaign) -> absl::Status {
    if (campaign.state() != v1::CAMPAIGN_RUNNING)
      return absl::FailedPreconditionError(absl::StrCat(
          "campaign ", campaign_id, " is ", CampaignStateName(campaign.state()), ", not running"));
    // The store leases jobs of running campaigns only, and the loop advances
    // running campaigns only: the state alone pauses both, and being stored,
    // survives a coordinator restart.
    campaign.set_state(v1::CAMPAIGN_PAUSED);
    campaign.set_paused_unix_ms(clock_->NowUnixMs());
    return absl::OkStatus();
  };
  return ChangeCampaign(campaign_id,
                        "campaign paused: no new proposals or leases; running jobs finish", pause);
}

absl::StatusOr<v1::Campaign> Coordinator::ResumeCampaign(int64_t campaign_id) {
  auto resume = [&](v1::Campaign& campaign) -> absl::Status {
    if (campaign.state() != v1::CAMPAIGN_PAUSED)
      return absl::FailedPreconditionError(absl::StrCat(
          "campaign ", campaign_id, " is ", CampaignStateName(campaign.state()), ", not paused"));
    const int64_t paused_ms =
        std::max<int64_t>(0, clock_->NowUnixMs() - campaign.paused_unix_ms());
    campaign.set_paused_seconds(campaign.paused_seconds() + paused_ms / 1000.0);
    campaign.set_paused_unix_ms(0);
    campaign.set_state(v1::CAMPAIGN_RUNNING);
    return absl::OkStatus();
  };
  auto resumed = ChangeCampaign(campaign_id, "campaign resumed", resume);
  if (resumed.ok()) wakeup_.Notify();
  return resumed;
}

absl::StatusOr<std::vector<v1::WorkerInfo>> Coordinator::ListWorkers() {
  return gateway_.ListWorkers();
}

std::vector<CampaignEventRecord> Coordinator::WaitForEvents(int64_t campaign_id,
                                                            int64_t* cursor, int wait_ms) {
  return events_.WaitForEvents(campaign_id, cursor, wait_ms);
}

absl::StatusOr<std::vector<store::Store::Event>> Coordinator::ListEvents(int64_t campaign_id,
                                                                         int64_t after_seq,
                                                                         int limit) {
  if (auto campaign = store_->GetCampaign(campaign_id); !campaign.ok()) return campaign.status();
  if (limit <= 0 || limit > kMaxEventsPerList) limit = kMaxEventsPerList;
  events_.Flush();  // what was emitted so far is in the store
  return store_->ListEvents(campaign_id, after_seq, limit);
}

// ---------------------------------------------------------------------------
// Workers.

absl::StatusOr<v1::RegisterWorkerResponse> Coordinator::RegisterWorker(
    const v1::RegisterWorkerRequest& request) {
  return gateway_.RegisterWorker(request);
}

absl::StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(
    const v1::HeartbeatRequest& request) {
  return gateway_.Heartbeat(request);
}

absl::StatusOr<std::optional<v1::Job>> Coordinator::AcquireJob(const std::string& worker_id,
                                                               int wait_ms) {
  return gateway_.AcquireJob(worker_id, wait_ms);
}

absl::StatusOr<v1::CompleteJobResponse> Coordinator::CompleteJob(
    const v1::CompleteJobRequest& request) {
  return gateway_.CompleteJob(request);
}

// ---------------------------------------------------------------------------
// Verifiers.

absl::StatusOr<v1::AcquireVerificationResponse> Coordinator::AcquireVerification(
    const std::string& verifier_id, int wait_ms) {
  return desk_.AcquireVerification(verifier_id, wait_ms);
}

absl::StatusOr<v1::ReportVerdictResponse> Coordinator::ReportVerdict(
    const v1::ReportVerdictRequest& request) {
  std::lock_guard<std::mutex> research(research_mu_);
  return desk_.ReportVerdict(request);
}

}  // namespace ratchet::coordinator
