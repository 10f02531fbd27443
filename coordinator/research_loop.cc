#include "coordinator/research_loop.h"

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "coordinator/job_queue.h"

namespace ratchet::coordinator {

ResearchLoop::ResearchLoop(store::Store* store, const Clock* clock, EventLog* events,
                           CoordinatorMetrics* metrics, const Parts& parts)
    : store_(store), clock_(clock), events_(events), metrics_(metrics), parts_(parts) {}

absl::Status ResearchLoop::Tick() {
  if (auto s = ExpireLeases(); !s.ok()) return s;
  auto unprocessed = store_->ListUnprocessedEvaluations();
  if (!unprocessed.ok()) return unprocessed.status();
  // Summaries: a tick needs each campaign's state and settings, not its
  // problem and baseline (megabytes each, five times a second); a campaign
  // that advances reads itself whole.
  auto campaigns = store_->ListCampaignSummaries();
  if (!campaigns.ok()) return campaigns.status();
  parts_.gateway->RefreshSchedulable(*campaigns);
  std::set<int64_t> sleep_campaigns;
  for (const auto& campaign : *campaigns)
    if (campaign.spec().task() == v1::TASK_SLEEP) sleep_campaigns.insert(campaign.id());
  std::vector<v1::Evaluation> sleep_evaluations;
  for (const auto& evaluation : *unprocessed) {
    if (sleep_campaigns.count(evaluation.campaign_id())) {
      sleep_evaluations.push_back(evaluation);
      continue;
    }
    if (auto s = parts_.intake->Apply(evaluation); !s.ok()) return s;
  }
  if (auto s = parts_.sleep->ProcessEvaluations(sleep_evaluations); !s.ok()) return s;
  for (const auto& campaign : *campaigns) {
    if (campaign.state() != v1::CAMPAIGN_RUNNING) {
      parts_.proposals->Forget(campaign.id());  // answers no longer wanted
      continue;
    }
    absl::Status s = campaign.spec().task() == v1::TASK_SLEEP ? parts_.sleep->Advance(campaign)
                                                       : AdvanceCampaign(campaign.id());
    if (!s.ok()) return s;
  }
  // Gauges rescan every job; once a second is fresh enough for a scrape.
  const int64_t now = clock_->NowUnixMs();
  if (now - gauges_updated_ms_ >= 1000) {
    gauges_updated_ms_ = now;
    auto leased = metrics_->UpdateGauges(store_, parts_.gateway->commits(),
                                         parts_.gateway->ConnectedWorkers());
    if (leased.has_value()) parts_.gateway->SetLeasedCounts(*std::move(leased));
  }
  return absl::OkStatus();
}

absl::Status ResearchLoop::ExpireLeases() {
  auto failed = parts_.gateway->ExpireLeases();
  if (!failed.ok()) return failed.status();
  for (const auto& job : *failed)
    if (auto s = parts_.intake->JobFailed(job); !s.ok()) return s;
  return absl::OkStatus();
}

absl::StatusOr<ResearchLoop::OpenWork> ResearchLoop::CountOpenWork(int64_t campaign_id) {
  OpenWork work;
  auto jobs = store_->ListJobs(campaign_id);
  if (!jobs.ok()) return jobs.status();
  auto verifications = store_->ListVerifications(campaign_id);
  if (!verifications.ok()) return verifications.status();
  for (const auto& job : *jobs)
    if (IsOpen(job) && job.kind() == v1::JOB_EVALUATE) {
      ++work.evaluations;
      ++work.by_candidate[job.candidate_id()];
    }
  // A job reported after this tick applied the evaluations is DONE above but
  // not yet in campaign->evaluations(): it is still in flight, or the budget
  // and the per-thread limit would be overspent (and the campaign could end
  // before applying it). Listed after the jobs, so none is missed; one
  // counted twice only delays a proposal to the next tick.
  auto unapplied = store_->ListUnprocessedEvaluations();
  if (!unapplied.ok()) return unapplied.status();
  for (const auto& e : *unapplied)
    if (e.campaign_id() == campaign_id && e.kind() == v1::JOB_EVALUATE) {
      ++work.evaluations;
      ++work.by_candidate[e.candidate_id()];
    }
  for (const auto& v : *verifications)
    if (v.outcome() == v1::VERDICT_PENDING) ++work.pending_verifications;
  work.verifications = *std::move(verifications);
  return work;
}

ResearchLoop::Spent ResearchLoop::SpentOf(const v1::Campaign& campaign) const {
  const v1::Budget& budget = campaign.spec().budget();
  Spent spent;
  // Time spent paused is not research time.
  spent.elapsed_s = (clock_->NowUnixMs() - campaign.created_unix_ms()) / 1000.0 -
                    campaign.paused_seconds();
  spent.wall = budget.max_wall_seconds() > 0 && spent.elapsed_s >= budget.max_wall_seconds();
  spent.gpu = budget.max_gpu_seconds() > 0 && campaign.gpu_seconds() >= budget.max_gpu_seconds();
  spent.overdue = spent.wall && spent.elapsed_s >= budget.max_wall_seconds() * 1.25 + 30;
  return spent;
}

absl::Status ResearchLoop::AdvanceCampaign(int64_t campaign_id) {
  auto campaign = store_->GetCampaign(campaign_id);
  if (!campaign.ok()) return campaign.status();
  if (campaign->state() != v1::CAMPAIGN_RUNNING) return absl::OkStatus();
  if (campaign->baseline_score() < 0) return absl::OkStatus();  // baseline still running

  auto work = CountOpenWork(campaign_id);
  if (!work.ok()) return work.status();
  const auto& spec = campaign->spec();
  const Spent spent = SpentOf(*campaign);
  // Slow (llm) proposals answer on later ticks: what has arrived becomes
  // candidates now, and the requests still out count against the budget.
  std::string proposing_ended;  // why no more proposals will be made, if so
  bool proposing_failed = false;
  if (spec.proposer() == v1::PROPOSER_LLM) {
    if (auto s = parts_.proposals->CollectProposals(*campaign, &work->evaluations,
                                                    &work->by_candidate, &proposing_ended,
                                                    &proposing_failed);
        !s.ok())
      return s;
    if (spent.wall || spent.gpu) parts_.proposals->Forget(campaign_id);
    work->proposals = parts_.proposals->InFlight(campaign_id);
  }
  bool evaluations_spent = campaign->evaluations() + work->evaluations + work->proposals >=
                           spec.budget().max_evaluations();

  bool exhausted = false;
  if (!spent.wall && !spent.gpu && !evaluations_spent && proposing_ended.empty()) {
    bool any_proposed = false;
    if (auto s = ProposeRound(*campaign, &*work, &evaluations_spent, &any_proposed); !s.ok())
      return s;
    if (!evaluations_spent) {
      // Every thread's neighbourhood is exhausted and nothing is in flight:
      // no proposal can ever be made again, so the campaign ends here.
      if (any_proposed || work->proposals > 0 || work->evaluations > 0 ||
          work->pending_verifications > 0)
        return absl::OkStatus();
      exhausted = true;
    }
  }

  if (spent.overdue && (work->evaluations > 0 || work->pending_verifications > 0))
    if (auto s = AbandonOverdue(campaign_id, &*work); !s.ok()) return s;
  if (work->evaluations > 0 || work->pending_verifications > 0 || work->proposals > 0)
    return absl::OkStatus();

  // Budget spent and the work drained: the campaign is done.
  return Finish(
      *campaign, proposing_failed,
      !proposing_ended.empty() ? proposing_ended
      : exhausted              ? "search space exhausted: every reachable candidate was tried"
      : spent.wall             ? "wall-clock budget reached"
      : spent.gpu              ? absl::StrFormat("GPU-seconds budget reached (%.1f s of %.1f s)",
                                                 campaign->gpu_seconds(),
                                                 spec.budget().max_gpu_seconds())
                               : absl::StrCat("evaluation budget reached (",
                                              campaign->evaluations(), ")"));
}

absl::Status ResearchLoop::ProposeRound(v1::Campaign& campaign, OpenWork* work,
                                        bool* evaluations_spent, bool* any_proposed) {
  const v1::CampaignSpec& spec = campaign.spec();
  const bool slow_proposer = spec.proposer() == v1::PROPOSER_LLM;
  auto threads = store_->ListThreads(campaign.id());
  if (!threads.ok()) return threads.status();
  auto history = store_->ListCandidates(campaign.id());
  if (!history.ok()) return history.status();
  std::map<int64_t, int> open_by_thread;
  for (const auto& c : *history)
    if (work->by_candidate.count(c.id())) open_by_thread[c.thread_id()] += 1;
  const int per_thread = std::max(1, spec.in_flight_per_thread());
  bool progress = true;
  while (progress && !*evaluations_spent) {
    progress = false;
    for (auto& thread : *threads) {
      if (campaign.evaluations() + work->evaluations + work->proposals >=
          spec.budget().max_evaluations()) {
        *evaluations_spent = true;
        break;
      }
      if (slow_proposer) {
        if (open_by_thread[thread.id()] +
                    parts_.proposals->InFlight(campaign.id(), thread.id()) >=
                per_thread ||
            work->proposals >= std::max(1, spec.llm().max_concurrency()))
          continue;
        if (auto s = parts_.proposals->StartProposal(campaign, thread, *history); !s.ok())
          return s;
        *any_proposed = true;
        ++work->proposals;
        progress = true;
        continue;
      }
      if (open_by_thread[thread.id()] >= per_thread) continue;
      bool proposed = false;
      if (auto s = parts_.proposals->ProposeForThread(campaign, thread, *history, &proposed);
          !s.ok())
        return s;
      if (proposed) {
        *any_proposed = true;
        ++work->evaluations;
        ++open_by_thread[thread.id()];
        progress = true;
        auto refreshed = store_->ListCandidates(campaign.id());
        if (!refreshed.ok()) return refreshed.status();
        *history = std::move(*refreshed);
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ResearchLoop::AbandonOverdue(int64_t campaign_id, OpenWork* work) {
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    if (auto s = store_->FailOpenJobs(campaign_id); !s.ok()) return s;
    return parts_.desk->AbandonPending(work->verifications);
  });
  if (!s.ok()) return s;
  events_->Emit(campaign_id, "wall-clock budget overrun: open jobs and claims abandoned");
  work->evaluations = 0;
  work->pending_verifications = 0;
  return absl::OkStatus();
}

absl::Status ResearchLoop::Finish(v1::Campaign& campaign, bool failed,
                                  const std::string& message) {
  campaign.set_state(failed ? v1::CAMPAIGN_FAILED : v1::CAMPAIGN_FINISHED);
  campaign.set_finished_unix_ms(clock_->NowUnixMs());
  campaign.set_message(message);
  // Replays that no longer matter (none should be open) are failed too.
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    if (auto s = store_->FailOpenJobs(campaign.id()); !s.ok()) return s;
    return store_->UpdateCampaign(campaign);
  });
  if (!s.ok()) return s;
  events_->Emit(campaign.id(),
                absl::StrCat("campaign finished: ", campaign.message(), "; best ",
                             ShortScore(campaign.best_score()), " (#",
                             campaign.best_candidate_id(),
                             campaign.best_verified() ? ", verified" : ", baseline",
                             ") vs baseline ", ShortScore(campaign.baseline_score())));
  return absl::OkStatus();
}

}  // namespace ratchet::coordinator
