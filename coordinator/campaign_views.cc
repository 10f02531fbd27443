#include "coordinator/campaign_views.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "common/names.h"

namespace ratchet::coordinator {

absl::Status CampaignViews::Decorate(v1::Campaign* campaign, const JobTally* tally) {
  auto threads = store_->ListThreads(campaign->id());
  if (!threads.ok()) return threads.status();
  campaign->clear_threads();
  for (const auto& t : *threads) *campaign->add_threads() = t;
  if (tally == nullptr) {
    auto jobs = store_->ListJobs(campaign->id());
    if (!jobs.ok()) return jobs.status();
    int queued = 0, running = 0;
    for (const auto& j : *jobs) {
      if (j.state() == v1::JOB_QUEUED) ++queued;
      if (j.state() == v1::JOB_LEASED) ++running;
    }
    campaign->set_jobs_queued(queued);
    campaign->set_jobs_running(running);
  } else {
    auto it = tally->find(campaign->id());
    campaign->set_jobs_queued(it == tally->end() ? 0 : static_cast<int>(it->second.first));
    campaign->set_jobs_running(it == tally->end() ? 0 : static_cast<int>(it->second.second));
  }
  auto verifications = store_->ListVerifications(campaign->id());
  if (!verifications.ok()) return verifications.status();
  std::map<std::pair<std::string, std::string>, int> counts;
  for (const auto& v : *verifications) {
    if (v.outcome() == v1::VERDICT_ACCEPTED) counts[{"accepted", ""}]++;
    if (IsRejected(v.outcome())) counts[{VerdictName(v.outcome()), v.reason()}]++;
    if (v.outcome() == v1::VERDICT_PENDING) counts[{"pending", ""}]++;
  }
  campaign->clear_verdicts();
  for (const auto& [key, n] : counts) {
    auto* vc = campaign->add_verdicts();
    vc->set_outcome(key.first);
    vc->set_reason(key.second);
    vc->set_count(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Campaign> CampaignViews::GetCampaign(int64_t id) {
  auto campaign = store_->GetCampaign(id);
  if (!campaign.ok()) return campaign.status();
  if (auto s = Decorate(&*campaign); !s.ok()) return s;
  return campaign;
}

absl::StatusOr<std::vector<v1::Campaign>> CampaignViews::ListCampaigns() {
  // Summaries and one grouped count of jobs: a listing reads neither the
  // specs' megabytes nor any job record.
  auto campaigns = store_->ListCampaignSummaries();
  if (!campaigns.ok()) return campaigns.status();
  auto counts = store_->CountJobs();
  if (!counts.ok()) return counts.status();
  JobTally tally;
  for (const auto& n : *counts) {
    if (n.state == v1::JOB_QUEUED) tally[n.campaign_id].first += n.count;
    if (n.state == v1::JOB_LEASED) tally[n.campaign_id].second += n.count;
  }
  for (auto& c : *campaigns)
    if (auto s = Decorate(&c, &tally); !s.ok()) return s;
  return campaigns;
}

absl::StatusOr<v1::Leaderboard> CampaignViews::GetLeaderboard(int64_t campaign_id, int limit) {
  if (auto c = store_->GetCampaign(campaign_id); !c.ok()) return c.status();
  auto candidates = store_->ListCandidates(campaign_id);
  if (!candidates.ok()) return candidates.status();
  std::vector<v1::Candidate> ranked;
  for (const auto& c : *candidates)
    if (c.score() >= 0) ranked.push_back(c);
  // Verified first (accepted and the baseline), then by score.
  auto verified = [](const v1::Candidate& c) {
    return c.status() == v1::CANDIDATE_ACCEPTED || c.status() == v1::CANDIDATE_BASELINE;
  };
  std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
    if (verified(a) != verified(b)) return verified(a);
    return a.score() > b.score();
  });
  v1::Leaderboard board;
  board.set_campaign_id(campaign_id);
  for (const auto& c : ranked) {
    if (limit > 0 && board.entries_size() >= limit) break;
    auto* e = board.add_entries();
    *e->mutable_candidate() = c;
    e->mutable_candidate()->mutable_solution()->clear_files();  // keep it small
    e->set_score(c.score());
    e->set_verified(c.status() == v1::CANDIDATE_ACCEPTED);
  }
  return board;
}

absl::StatusOr<v1::CandidateDetail> CampaignViews::GetCandidate(int64_t candidate_id) {
  auto candidate = store_->GetCandidate(candidate_id);
  if (!candidate.ok()) return candidate.status();
  v1::CandidateDetail detail;
  *detail.mutable_candidate() = *candidate;
  auto evaluations = store_->ListEvaluationsForCandidate(candidate_id);
  if (!evaluations.ok()) return evaluations.status();
  for (const auto& e : *evaluations) *detail.add_evaluations() = e;
  auto verifications = store_->ListVerificationsForCandidate(candidate_id);
  if (!verifications.ok()) return verifications.status();
  for (const auto& v : *verifications) *detail.add_verifications() = v;
  return detail;
}

}  // namespace ratchet::coordinator
