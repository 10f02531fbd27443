#include "coordinator/evaluation_intake.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/names.h"
#include "coordinator/multi_fidelity.h"

namespace ratchet::coordinator {

EvaluationIntake::EvaluationIntake(store::Store* store, const Clock* clock, EventLog* events,
                                   JobBaselines* baselines, Experience* experience,
                                   VerificationDesk* desk, JobQueue* jobs)
    : store_(store),
      clock_(clock),
      events_(events),
      baselines_(baselines),
      experience_(experience),
      desk_(desk),
      jobs_(jobs) {}

absl::Status EvaluationIntake::Apply(const v1::Evaluation& evaluation) {
  Texts texts;
  std::string baselines_changed;  // their cache key, when measurements were added
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    texts = Texts();
    baselines_changed.clear();
    auto campaign = store_->GetCampaign(evaluation.campaign_id());
    if (!campaign.ok()) return campaign.status();
    auto candidate = store_->GetCandidate(evaluation.candidate_id());
    if (!candidate.ok()) return candidate.status();
    const std::string outcome = OutcomeName(evaluation.outcome());
    const bool ok = evaluation.outcome() == v1::OUTCOME_OK;
    // Every job's time counts against the GPU-seconds budget, replays too:
    // verification spends the same machines.
    campaign->set_gpu_seconds(campaign->gpu_seconds() + std::max(0.0, evaluation.wall_seconds()));
    if (!evaluation.stage_seconds().empty()) {
      for (const auto& [stage, seconds] : evaluation.stage_seconds())
        (*campaign->mutable_stage_seconds())[stage] += std::max(0.0, seconds);
      campaign->set_staged_jobs(campaign->staged_jobs() + 1);
    }
    if (evaluation.kind() == v1::JOB_REPLAY) {
      texts.event = absl::StrCat("replay of #", candidate->id(), " on ", evaluation.worker_id(),
                                 ": ", outcome, ok ? " " + ShortScore(evaluation.score()) : "");
      if (auto s = store_->UpdateCampaign(*campaign); !s.ok()) return s;
      return store_->MarkEvaluationProcessed(evaluation.id());
    }
    // Only evaluations measure baselines: a replay runs against the stored
    // one and never adds to it.
    if (ok)
      if (auto s = baselines_->Record(*campaign, evaluation, &texts.baselines,
                                      &baselines_changed);
          !s.ok())
        return s;
    campaign->set_evaluations(campaign->evaluations() + 1);
    (*campaign->mutable_outcomes())[outcome] += 1;
    // The job's fidelity, as the coordinator queued it (not as reported).
    double fidelity = 1;
    if (!LowFidelities(campaign->spec()).empty()) {
      auto job = store_->GetJob(evaluation.job_id());
      if (!job.ok()) return job.status();
      fidelity = FidelityOf(*job);
    }
    if (fidelity < 1 && (ok || candidate->id() == campaign->baseline_candidate_id())) {
      if (auto s = ApplyLowFidelity(*campaign, *candidate, evaluation, fidelity, &texts); !s.ok())
        return s;
      if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
      if (auto s = store_->UpdateCampaign(*campaign); !s.ok()) return s;
      return store_->MarkEvaluationProcessed(evaluation.id());
    }
    candidate->set_score(ok ? evaluation.score() : -1);
    candidate->set_status(ok ? v1::CANDIDATE_EVALUATED : v1::CANDIDATE_FAILED);
    auto threads = store_->ListThreads(campaign->id());
    if (!threads.ok()) return threads.status();
    absl::Status applied =
        candidate->id() == campaign->baseline_candidate_id()
            ? ApplyBaseline(*campaign, *candidate, evaluation, *threads, &texts)
            : ApplyToThread(*campaign, *candidate, evaluation, *threads, &texts);
    if (!applied.ok()) return applied;
    if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
    if (auto s = store_->UpdateCampaign(*campaign); !s.ok()) return s;
    return store_->MarkEvaluationProcessed(evaluation.id());
  });
  if (!s.ok()) return s;
  if (!baselines_changed.empty()) baselines_->Forget(baselines_changed);
  for (const std::string* text : {&texts.event, &texts.baselines, &texts.experience})
    if (!text->empty()) events_->Emit(evaluation.campaign_id(), *text);
  return absl::OkStatus();
}

namespace {

// What a run scored, as people read it: a training run's BPB (and time), a
// kernel's SOL score.
std::string RunFigure(const v1::Evaluation& evaluation) {
  if (!evaluation.has_training()) return ShortScore(evaluation.score());
  const v1::TrainingRun& t = evaluation.training();
  return absl::StrFormat("BPB %.4f, loss %.4f, %.1f s", t.bpb(), t.loss(), t.training_seconds());
}

}  // namespace

absl::Status EvaluationIntake::ApplyBaseline(v1::Campaign& campaign, v1::Candidate& candidate,
                                             const v1::Evaluation& evaluation,
                                             std::vector<v1::ResearchThread>& threads,
                                             Texts* texts) {
  if (evaluation.outcome() != v1::OUTCOME_OK) {
    campaign.set_state(v1::CAMPAIGN_FAILED);
    campaign.set_message(absl::StrCat("the baseline did not evaluate: ",
                                      OutcomeName(evaluation.outcome()), ": ",
                                      evaluation.message().substr(0, 2000)));
    campaign.set_finished_unix_ms(clock_->NowUnixMs());
    texts->event = campaign.message();
    return absl::OkStatus();
  }
  candidate.set_status(v1::CANDIDATE_BASELINE);
  campaign.set_baseline_score(evaluation.score());
  campaign.set_best_candidate_id(candidate.id());
  campaign.set_best_score(evaluation.score());
  campaign.set_best_verified(false);
  for (auto& thread : threads) {
    thread.set_incumbent_candidate_id(candidate.id());
    thread.set_incumbent_score(evaluation.score());
    if (auto s = store_->UpdateThread(thread); !s.ok()) return s;
  }
  texts->event = absl::StrCat("baseline #", candidate.id(), " evaluated on ",
                              evaluation.worker_id(), ": ",
                              evaluation.has_training() ? "" : "SOL score ",
                              RunFigure(evaluation));
  auto noted = experience_->Note(&campaign);
  if (!noted.ok()) return noted.status();
  texts->experience = *std::move(noted);
  return absl::OkStatus();
}

absl::Status EvaluationIntake::ApplyLowFidelity(v1::Campaign& campaign, v1::Candidate& candidate,
                                                const v1::Evaluation& evaluation, double fidelity,
                                                Texts* texts) {
  const bool ok = evaluation.outcome() == v1::OUTCOME_OK;
  v1::Rung* rung = RungOf(&campaign, fidelity);
  const std::string at = absl::StrFormat("at fidelity %g", fidelity);
  if (candidate.id() == campaign.baseline_candidate_id()) {
    // A reference for the rung; the baseline's full run decides the rest.
    if (ok) rung->add_scores(evaluation.score());
    texts->event = absl::StrCat("baseline #", candidate.id(), " ", at, ": ",
                                ok ? RunFigure(evaluation) : OutcomeName(evaluation.outcome()));
    return absl::OkStatus();
  }
  rung->add_scores(evaluation.score());
  texts->event = absl::StrCat("#", candidate.id(), " [", candidate.description(), "] ", at, ": ",
                              RunFigure(evaluation));
  if (Promote(*rung, evaluation.score(), campaign.spec().training().halving())) {
    const double next = NextFidelity(campaign.spec(), fidelity);
    auto job = jobs_->EnqueueEvaluation(campaign.id(), candidate.id(), next);
    if (!job.ok()) return job.status();
    rung->set_promoted(rung->promoted() + 1);
    absl::StrAppend(&texts->event, " -> promoted to fidelity ", next > 0 ? next : 1.0);
    return absl::OkStatus();  // still PROPOSED: its next run is queued
  }
  rung->set_stopped(rung->stopped() + 1);
  candidate.set_status(v1::CANDIDATE_STOPPED);
  candidate.set_score(-1);  // a short run's score is not comparable with full ones
  absl::StrAppend(&texts->event, " -> stopped (not among the best 1/",
                  campaign.spec().training().halving(), " ", at, ")");
  return absl::OkStatus();
}

absl::Status EvaluationIntake::ApplyToThread(v1::Campaign& campaign, v1::Candidate& candidate,
                                             const v1::Evaluation& evaluation,
                                             std::vector<v1::ResearchThread>& threads,
                                             Texts* texts) {
  const std::string outcome = OutcomeName(evaluation.outcome());
  const bool ok = evaluation.outcome() == v1::OUTCOME_OK;
  v1::ResearchThread* thread = nullptr;
  for (auto& t : threads)
    if (t.id() == candidate.thread_id()) thread = &t;
  if (thread == nullptr)
    return absl::InternalError(
        absl::StrCat("candidate ", candidate.id(), " names a missing thread"));
  thread->set_evaluations(thread->evaluations() + 1);
  std::string& event = texts->event;
  event = absl::StrCat("t", thread->index(), " #", candidate.id(), " [",
                       candidate.description(), "]: ", outcome);
  if (ok) {
    double gain = thread->incumbent_score() > 0
                      ? evaluation.score() / thread->incumbent_score() - 1.0
                      : 1.0;
    absl::StrAppend(&event, " ", RunFigure(evaluation),
                    absl::StrFormat(" (%+.1f%% vs incumbent)", 100.0 * gain));
    if (gain > campaign.spec().verification().min_gain()) {
      auto claim = desk_->OpenClaim(campaign, *thread, evaluation);
      if (!claim.ok()) return claim.status();
      candidate.set_status(v1::CANDIDATE_VERIFYING);
      absl::StrAppend(&event, " -> verifying (claim ", *claim, ", replays queued)");
    }
  } else if (!evaluation.message().empty()) {
    std::string first_line = evaluation.message().substr(0, evaluation.message().find('\n'));
    absl::StrAppend(&event, ": ", first_line.substr(0, 160));
  }
  // A claim's lesson waits for its verdict; anything else is learned now.
  if (candidate.status() != v1::CANDIDATE_VERIFYING)
    if (auto s = experience_->RecordLessons(campaign, candidate, ok ? evaluation.score() : -1,
                                            outcome, "");
        !s.ok())
      return s;
  return store_->UpdateThread(*thread);
}

absl::Status EvaluationIntake::JobFailed(const v1::Job& job) {
  if (job.kind() != v1::JOB_EVALUATE) return absl::OkStatus();
  return store_->Transaction([&]() -> absl::Status {
    auto campaign = store_->GetCampaign(job.campaign_id());
    if (!campaign.ok()) return campaign.status();
    auto candidate = store_->GetCandidate(job.candidate_id());
    if (!candidate.ok()) return candidate.status();
    candidate->set_status(v1::CANDIDATE_FAILED);
    candidate->set_score(-1);
    if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
    campaign->set_evaluations(campaign->evaluations() + 1);
    (*campaign->mutable_outcomes())["lease_lapsed"] += 1;
    if (campaign->baseline_candidate_id() == candidate->id()) {
      campaign->set_state(v1::CAMPAIGN_FAILED);
      campaign->set_message("the baseline's job failed: its leases lapsed repeatedly");
      campaign->set_finished_unix_ms(clock_->NowUnixMs());
    }
    return store_->UpdateCampaign(*campaign);
  });
}

}  // namespace ratchet::coordinator
