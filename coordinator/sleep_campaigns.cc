#include "coordinator/sleep_campaigns.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "common/names.h"

namespace ratchet::coordinator {

SleepCampaigns::SleepCampaigns(store::Store* store, const Clock* clock, EventLog* events,
                               JobQueue* jobs)
    : store_(store), clock_(clock), events_(events), jobs_(jobs) {}

absl::StatusOr<int64_t> SleepCampaigns::Create(const v1::CampaignSpec& spec) {
  v1::Campaign campaign;
  *campaign.mutable_spec() = spec;
  campaign.set_state(v1::CAMPAIGN_RUNNING);
  campaign.set_created_unix_ms(clock_->NowUnixMs());
  campaign.set_baseline_score(-1);
  campaign.set_best_score(-1);
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    auto id = store_->CreateCampaign(campaign);
    if (!id.ok()) return id.status();
    campaign.set_id(*id);
    v1::Candidate candidate;
    candidate.set_campaign_id(*id);
    candidate.set_description("sleep");
    candidate.set_status(v1::CANDIDATE_PROPOSED);
    candidate.set_score(-1);
    candidate.set_created_unix_ms(clock_->NowUnixMs());
    auto cid = store_->CreateCandidate(candidate);
    if (!cid.ok()) return cid.status();
    campaign.set_baseline_candidate_id(*cid);
    if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;
    for (int i = 0; i < spec.budget().max_evaluations(); ++i)
      if (auto j = jobs_->Enqueue(*id, *cid, v1::JOB_EVALUATE); !j.ok()) return j.status();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  events_->Emit(campaign.id(), absl::StrCat("campaign ", campaign.id(), " '", spec.name(),
                                            "' submitted: sleep ", spec.sleep_ms(), " ms x ",
                                            spec.budget().max_evaluations(), " jobs"));
  return campaign.id();
}

absl::Status SleepCampaigns::ProcessEvaluations(const std::vector<v1::Evaluation>& evaluations) {
  // A sleep job's report only counts, so a tick's reports apply in one
  // transaction rather than one each.
  if (evaluations.empty()) return absl::OkStatus();
  return store_->Transaction([&]() -> absl::Status {
    std::map<int64_t, v1::Campaign> campaigns;
    for (const auto& evaluation : evaluations) {
      auto it = campaigns.find(evaluation.campaign_id());
      if (it == campaigns.end()) {
        auto campaign = store_->GetCampaign(evaluation.campaign_id());
        if (!campaign.ok()) return campaign.status();
        it = campaigns.emplace(evaluation.campaign_id(), *std::move(campaign)).first;
      }
      v1::Campaign& campaign = it->second;
      if (evaluation.kind() == v1::JOB_EVALUATE) {
        campaign.set_evaluations(campaign.evaluations() + 1);
        (*campaign.mutable_outcomes())[OutcomeName(evaluation.outcome())] += 1;
      }
      if (auto s = store_->MarkEvaluationProcessed(evaluation.id()); !s.ok()) return s;
    }
    for (const auto& [id, campaign] : campaigns)
      if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;
    return absl::OkStatus();
  });
}

absl::Status SleepCampaigns::Advance(v1::Campaign campaign) {
  const auto& budget = campaign.spec().budget();
  const int64_t now = clock_->NowUnixMs();
  const bool done = campaign.evaluations() >= budget.max_evaluations();
  const bool wall_spent =
      budget.max_wall_seconds() > 0 &&
      (now - campaign.created_unix_ms()) / 1000.0 >= budget.max_wall_seconds();
  if (!done && !wall_spent) return absl::OkStatus();
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    // Read again: `campaign` was listed before this tick applied its reports,
    // and storing it as it is would drop their counts.
    auto fresh = store_->GetCampaign(campaign.id());
    if (!fresh.ok()) return fresh.status();
    campaign = *std::move(fresh);
    if (!done)
      if (auto s = store_->FailOpenJobs(campaign.id()); !s.ok()) return s;
    campaign.set_state(v1::CAMPAIGN_FINISHED);
    campaign.set_message(done ? "every job done" : "wall-clock budget spent");
    campaign.set_finished_unix_ms(now);
    return store_->UpdateCampaign(campaign);
  });
  if (!s.ok()) return s;
  events_->Emit(campaign.id(), absl::StrCat("campaign ", campaign.id(), " finished: ",
                                            campaign.message(), " (", campaign.evaluations(),
                                            " jobs)"));
  return absl::OkStatus();
}

}  // namespace ratchet::coordinator
