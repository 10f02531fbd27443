#include "coordinator/verification_desk.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/noise_floor.h"
#include "spec/defaults.h"

namespace ratchet::coordinator {
namespace {

// The first round: the policy's replays a side, within what a claim may get.
int FirstRound(const v1::VerificationPolicy& policy) {
  return std::clamp(policy.replays(), 1, spec::kMaxReplaysPerSide);
}

// The most replays a side a claim may get: its policy's max_replays (the
// spec's default where left out; never below its first round), within
// kMaxReplaysPerSide.
int MaxReplays(const v1::VerificationPolicy& policy) {
  const int max = spec::AppliedVerification(policy).max_replays();
  return std::min(spec::kMaxReplaysPerSide, std::max(max, FirstRound(policy)));
}

}  // namespace

VerificationDesk::VerificationDesk(store::Store* store, const Clock* clock,
                                   int64_t verification_lease_ms, Wakeup* wakeup,
                                   EventLog* events, CoordinatorMetrics* metrics, JobQueue* jobs,
                                   Experience* experience)
    : store_(store),
      clock_(clock),
      wakeup_(wakeup),
      events_(events),
      metrics_(metrics),
      jobs_(jobs),
      experience_(experience),
      lease_ms_(verification_lease_ms) {}

absl::StatusOr<int64_t> VerificationDesk::OpenClaim(const v1::Campaign& campaign,
                                                    const v1::ResearchThread& thread,
                                                    const v1::Evaluation& evaluation) {
  v1::Verification v;
  v.set_campaign_id(campaign.id());
  v.set_candidate_id(evaluation.candidate_id());
  v.set_incumbent_candidate_id(thread.incumbent_candidate_id());
  v.set_thread_id(thread.id());
  v.set_claimed_score(evaluation.score());
  v.set_incumbent_score(thread.incumbent_score());
  v.set_claim_worker_id(evaluation.worker_id());
  v.set_outcome(v1::VERDICT_PENDING);
  v.set_created_unix_ms(clock_->NowUnixMs());
  *v.mutable_policy() = campaign.spec().verification();
  // Training claims are judged on the runs' figures (docs/training.md).
  v.set_task(campaign.spec().task());
  v.set_target_loss(campaign.spec().training().target_loss());
  auto id = store_->CreateVerification(v);
  if (!id.ok()) return id.status();
  v.set_id(*id);
  // The claim waits for these; a verifier gets it once they have all ended.
  if (auto queued = QueueReplays(v, FirstRound(v.policy())); !queued.ok())
    return queued.status();
  return *id;
}

absl::Status VerificationDesk::AbandonPending(const std::vector<v1::Verification>& verifications) {
  for (auto v : verifications) {
    if (v.outcome() != v1::VERDICT_PENDING) continue;
    // Not replayed to the end: no evidence either way, like a replay that
    // could not run.
    v.set_outcome(v1::VERDICT_REJECTED_FLAKY);
    v.set_reason("budget-ended");
    v.set_detail("the campaign's wall-clock budget ended before replays finished");
    v.mutable_evidence()->set_failed_check("budget-ended");
    v.mutable_evidence()->set_check_detail(v.detail());
    metrics_->VerdictDecided(v);
    v.set_decided_unix_ms(clock_->NowUnixMs());
    if (auto s = store_->UpdateVerification(v); !s.ok()) return s;
    auto candidate = store_->GetCandidate(v.candidate_id());
    if (!candidate.ok()) return candidate.status();
    candidate->set_status(v1::CANDIDATE_REJECTED);
    if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::AcquireVerificationResponse> VerificationDesk::AcquireVerification(
    const std::string& verifier_id, int wait_ms) {
  v1::AcquireVerificationResponse response;
  const Wakeup::Deadline deadline = Wakeup::In(std::clamp(wait_ms, 0, 30'000));
  while (true) {
    const uint64_t seen = wakeup_->generation();
    // The store hands out only claims whose replays have all ended.
    auto v = store_->AcquireVerification(verifier_id, clock_->NowUnixMs(), lease_ms_);
    if (!v.ok()) return v.status();
    if (v->has_value()) {
      auto bundle = Bundle(**v);
      if (!bundle.ok()) return bundle.status();
      *response.mutable_verification() = **std::move(v);
      *response.mutable_replays() = *std::move(bundle);
      return response;
    }
    if (!wakeup_->WaitUntil(deadline, seen, /*poll_ms=*/500)) break;
  }
  return response;
}

absl::StatusOr<int> VerificationDesk::QueueReplays(const v1::Verification& v, int per_side) {
  auto existing = store_->ListJobsForVerification(v.id());
  if (!existing.ok()) return existing.status();
  int have_candidate = 0, have_incumbent = 0;
  for (const auto& j : *existing) ++(j.candidate_id() == v.candidate_id() ? have_candidate
                                                                           : have_incumbent);
  int queued = 0;
  // Interleaved, so that candidate and incumbent see the same conditions,
  // and in pairs on one fresh seed: the two sides are compared on the same
  // inputs (a kernel's; a training run's seed), and a worker that runs both
  // makes their oracle's rounds once (worker/rounds_cache.h).
  for (int i = 0; i < per_side; ++i) {
    const uint64_t seed = jobs_->NewSeed();
    for (int64_t cid : {v.candidate_id(), v.incumbent_candidate_id()}) {
      // The claim is replayed away from the worker that made it; the
      // incumbent, which claims nothing, may run anywhere.
      const bool is_claim = cid == v.candidate_id();
      if (i < (is_claim ? have_candidate : have_incumbent)) continue;
      auto id = jobs_->Enqueue(v.campaign_id(), cid, v1::JOB_REPLAY, v.id(),
                               is_claim ? v.claim_worker_id() : "", seed);
      if (!id.ok()) return id.status();
      ++queued;
    }
  }
  return queued;
}

absl::StatusOr<v1::ReplayBundle> VerificationDesk::Bundle(const v1::Verification& v) {
  v1::ReplayBundle bundle;
  auto jobs = store_->ListJobsForVerification(v.id());
  if (!jobs.ok()) return jobs.status();
  for (const auto& job : *jobs) {
    v1::Job* listed = bundle.add_jobs();
    *listed = job;
    // The verifier judges results; the files it reads are the candidates'.
    listed->clear_problem();
    listed->clear_solution();
    auto e = store_->GetEvaluationForJob(job.id());
    if (!e.ok()) return e.status();
    if (e->has_value()) *bundle.add_evaluations() = **e;
  }
  // What the verifier needs to judge noise: each replay worker's hardware
  // and the stored floors of this problem.
  auto campaign = store_->GetCampaign(v.campaign_id());
  if (!campaign.ok()) return campaign.status();
  for (const auto& e : bundle.evaluations()) {
    if (bundle.worker_hardware().count(e.worker_id())) continue;
    auto worker = store_->GetWorker(e.worker_id());
    if (!worker.ok()) return worker.status();
    if (worker->has_value())
      (*bundle.mutable_worker_hardware())[e.worker_id()] =
          HardwareKey((*worker)->hardware(), campaign->spec().device() == v1::DEVICE_CUDA);
  }
  // The sources it screens, so that it needs no read access of its own. One
  // that is gone screens as empty rather than keep the claim from a verdict.
  for (auto [id, solution] : {std::pair{v.candidate_id(), bundle.mutable_candidate_solution()},
                              std::pair{v.incumbent_candidate_id(),
                                        bundle.mutable_incumbent_solution()}}) {
    auto candidate = store_->GetCandidate(id);
    if (absl::IsNotFound(candidate.status())) continue;
    if (!candidate.ok()) return candidate.status();
    *solution = candidate->solution();
  }
  auto floors = store_->ListNoiseFloors(campaign->spec().problem().name());
  if (absl::IsUnimplemented(floors.status())) return bundle;
  if (!floors.ok()) return floors.status();
  for (const auto& f : *floors) *bundle.add_noise_floors() = f;
  return bundle;
}

absl::Status VerificationDesk::Holds(const v1::Verification& stored,
                                     const std::string& verifier_id) {
  if (stored.verifier_id().empty())
    return absl::PermissionDeniedError(
        absl::StrCat("verification ", stored.id(), " is held by no verifier (it is waiting "
                     "for replays), not by '", verifier_id, "'"));
  if (stored.verifier_id() != verifier_id)
    return absl::PermissionDeniedError(absl::StrCat("verification ", stored.id(),
                                                    " is leased to '", stored.verifier_id(),
                                                    "', not '", verifier_id, "'"));
  // A lapsed lease lets another verifier take the claim, so it no longer
  // counts even before one does.
  if (stored.lease_deadline_unix_ms() < clock_->NowUnixMs())
    return absl::PermissionDeniedError(absl::StrCat("the lease of '", verifier_id,
                                                    "' on verification ", stored.id(),
                                                    " has lapsed"));
  return absl::OkStatus();
}

absl::StatusOr<std::string> VerificationDesk::MoreReplays(v1::Verification v, int replays) {
  if (replays < 1 || replays > spec::kMaxReplaysPerSide)
    return absl::InvalidArgumentError(
        absl::StrCat("replays must be between 1 and ", spec::kMaxReplaysPerSide, " a side"));
  const int per_side = std::min(replays, MaxReplays(v.policy()));
  auto queued = QueueReplays(v, per_side);
  if (!queued.ok()) return queued.status();
  // Nothing to wait for would hand the same bundle out again at once.
  if (*queued == 0)
    return absl::FailedPreconditionError(absl::StrCat(
        "verification ", v.id(), " already has ", per_side, " replays a side, the most its "
        "policy allows is ", MaxReplays(v.policy()), ": decide it"));
  // Back to waiting: no holder, so nobody decides before the new replays
  // end; then any verifier may take it.
  const std::string holder = v.verifier_id();
  v.clear_verifier_id();
  v.set_lease_deadline_unix_ms(0);
  if (auto s = store_->UpdateVerification(v); !s.ok()) return s;
  return absl::StrCat("claim ", v.id(), ": promising, not yet significant: ", holder,
                      " raises the replays of #", v.candidate_id(), " and incumbent #",
                      v.incumbent_candidate_id(), " to ", per_side, "x each");
}

absl::StatusOr<v1::ReportVerdictResponse> VerificationDesk::ReportVerdict(
    const v1::ReportVerdictRequest& request) {
  v1::ReportVerdictResponse response;
  const v1::Verification& verdict = request.verification();
  const bool more = verdict.outcome() == v1::VERDICT_MORE_REPLAYS;
  if (verdict.outcome() != v1::VERDICT_ACCEPTED && !IsRejected(verdict.outcome()) && !more)
    return absl::InvalidArgumentError(
        "a verdict must be accepted, one of the rejections, or more-replays");
  std::string event;
  int64_t campaign_id = 0;
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    event.clear();  // a retried transaction starts over
    auto stored = store_->GetVerification(verdict.id());
    if (!stored.ok()) return stored.status();
    campaign_id = stored->campaign_id();
    if (stored->outcome() != v1::VERDICT_PENDING) {
      response.set_accepted(false);
      response.set_message("already decided");
      return absl::OkStatus();
    }
    // Only the verifier holding the lease decides, and only on the replays
    // this coordinator handed out (docs/security.md).
    if (auto s = Holds(*stored, request.verifier_id()); !s.ok()) return s;
    if (auto s = VerdictMatchesReplays(*stored, verdict); !s.ok()) return s;
    if (more) {
      auto raised = MoreReplays(*stored, request.replays());
      if (!raised.ok()) return raised.status();
      event = *std::move(raised);
      response.set_accepted(true);
      response.set_message("more replays queued");
      return absl::OkStatus();
    }
    v1::Verification v = *stored;
    v.set_outcome(verdict.outcome());
    v.set_reason(verdict.reason());
    v.set_detail(verdict.detail());
    *v.mutable_candidate_scores() = verdict.candidate_scores();
    *v.mutable_incumbent_scores() = verdict.incumbent_scores();
    *v.mutable_evidence() = verdict.evidence();
    v.set_verifier_id(request.verifier_id());
    v.set_decided_unix_ms(clock_->NowUnixMs());
    if (auto s = RecordVerdict(v); !s.ok()) return s;
    auto applied = ApplyVerdict(v);
    if (!applied.ok()) return applied.status();
    event = *std::move(applied);
    metrics_->VerdictDecided(v);
    response.set_accepted(true);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!event.empty()) events_->Emit(campaign_id, event);
  wakeup_->Notify();
  return response;
}

absl::Status VerificationDesk::VerdictMatchesReplays(const v1::Verification& stored,
                                                     const v1::Verification& verdict) {
  auto jobs = store_->ListJobsForVerification(stored.id());
  if (!jobs.ok()) return jobs.status();
  std::vector<double> candidate, incumbent;  // the replays' scores, each usable once
  for (const auto& job : *jobs) {
    auto e = store_->GetEvaluationForJob(job.id());
    if (!e.ok()) return e.status();
    if (!e->has_value()) continue;
    (job.candidate_id() == stored.candidate_id() ? candidate : incumbent)
        .push_back((*e)->score());
  }
  auto match = [&](const google::protobuf::RepeatedField<double>& reported,
                   std::vector<double>* pool, const char* side) -> absl::Status {
    for (double x : reported) {
      auto it = std::find_if(pool->begin(), pool->end(), [x](double y) {
        return std::fabs(x - y) <= 1e-9 * std::max(1.0, std::fabs(y));
      });
      if (it == pool->end())
        return absl::InvalidArgumentError(absl::StrCat(
            "the verdict's ", side, " score ", x, " is not the score of any replay of claim ",
            stored.id(), " that this coordinator handed out (or is counted twice)"));
      pool->erase(it);
    }
    return absl::OkStatus();
  };
  if (auto s = match(verdict.candidate_scores(), &candidate, "candidate"); !s.ok()) return s;
  if (auto s = match(verdict.incumbent_scores(), &incumbent, "incumbent"); !s.ok()) return s;
  if (verdict.outcome() == v1::VERDICT_ACCEPTED &&
      (verdict.candidate_scores().empty() || verdict.incumbent_scores().empty()))
    return absl::InvalidArgumentError(
        "an acceptance rests on replays of both the candidate and the incumbent");
  return absl::OkStatus();
}

absl::Status VerificationDesk::RecordVerdict(const v1::Verification& v) {
  if (auto s = store_->UpdateVerification(v); !s.ok()) return s;
  // A claim is handed out only once its replays ended, but one leased before
  // the coordinator queued replays itself may still have some: nobody needs
  // them now.
  auto replay_jobs = store_->ListJobsForVerification(v.id());
  if (!replay_jobs.ok()) return replay_jobs.status();
  for (v1::Job job : *replay_jobs) {
    if (job.state() != v1::JOB_QUEUED) continue;
    job.set_state(v1::JOB_FAILED);
    if (auto s = store_->UpdateJob(job); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> VerificationDesk::ApplyVerdict(const v1::Verification& v) {
  auto candidate = store_->GetCandidate(v.candidate_id());
  if (!candidate.ok()) return candidate.status();
  auto campaign = store_->GetCampaign(v.campaign_id());
  if (!campaign.ok()) return campaign.status();
  if (auto s = UpdateNoiseFloors(v, *campaign); !s.ok()) return s;
  const bool accepted = v.outcome() == v1::VERDICT_ACCEPTED;
  candidate->set_status(accepted ? v1::CANDIDATE_ACCEPTED : v1::CANDIDATE_REJECTED);
  std::string event;
  if (accepted) {
    // The verified score is the replays' median, never the claim.
    std::vector<double> scores(v.candidate_scores().begin(), v.candidate_scores().end());
    std::sort(scores.begin(), scores.end());
    const size_t n = scores.size();
    double verified = n == 0       ? candidate->score()
                      : n % 2 == 1 ? scores[n / 2]
                                   : 0.5 * (scores[n / 2 - 1] + scores[n / 2]);
    candidate->set_score(verified);
    auto threads = store_->ListThreads(v.campaign_id());
    if (!threads.ok()) return threads.status();
    for (auto& thread : *threads) {
      if (thread.id() != v.thread_id()) continue;
      thread.set_accepted(thread.accepted() + 1);
      if (verified > thread.incumbent_score() ||
          thread.incumbent_candidate_id() == v.incumbent_candidate_id()) {
        thread.set_incumbent_candidate_id(candidate->id());
        thread.set_incumbent_score(verified);
      }
      if (auto s = store_->UpdateThread(thread); !s.ok()) return s;
    }
    if (!campaign->best_verified() || verified > campaign->best_score()) {
      campaign->set_best_candidate_id(candidate->id());
      campaign->set_best_score(verified);
      campaign->set_best_verified(true);
      if (auto s = store_->UpdateCampaign(*campaign); !s.ok()) return s;
    }
    event = absl::StrCat("verdict on #", candidate->id(), " [", candidate->description(),
                         "]: ACCEPTED, verified score ", ShortScore(verified), " (", v.detail(),
                         ")");
  } else {
    event = absl::StrCat("verdict on #", candidate->id(), " [", candidate->description(),
                         "]: ", VerdictName(v.outcome()), " (", v.reason(), "): ", v.detail());
  }
  if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
  // The claim's lesson, with the verified score when it was accepted.
  const bool hack = v.outcome() == v1::VERDICT_REJECTED_HACK ||
                    v.outcome() == v1::VERDICT_REJECTED_WRONG;
  if (auto s = experience_->RecordLessons(*campaign, *candidate,
                                          hack ? -1 : candidate->score(), "ok",
                                          VerdictName(v.outcome()));
      !s.ok())
    return s;
  return event;
}

absl::Status VerificationDesk::UpdateNoiseFloors(const v1::Verification& v,
                                                 const v1::Campaign& campaign) {
  // The incumbent's replays are repeated runs of one unchanged solution:
  // their spread, per workload and hardware, is the noise floor's evidence.
  auto jobs = store_->ListJobsForVerification(v.id());
  if (!jobs.ok()) return jobs.status();
  std::map<std::pair<std::string, std::string>, std::vector<double>> groups;
  for (const auto& job : *jobs) {
    if (job.candidate_id() != v.incumbent_candidate_id()) continue;
    auto e = store_->GetEvaluationForJob(job.id());
    if (!e.ok()) return e.status();
    if (!e->has_value() || (*e)->outcome() != v1::OUTCOME_OK) continue;
    auto worker = store_->GetWorker((*e)->worker_id());
    if (!worker.ok()) return worker.status();
    const std::string hw = worker->has_value()
                               ? HardwareKey((*worker)->hardware(),
                                             campaign.spec().device() == v1::DEVICE_CUDA)
                               : "unknown";
    // A train-target run that missed its target scores 0: not a spread.
    if ((*e)->score() > 0) groups[{"score", hw}].push_back((*e)->score());
    for (const auto& w : (*e)->workloads())
      if (w.t_k_ns() > 0) groups[{w.axes(), hw}].push_back(w.t_k_ns());
  }
  auto floors = store_->ListNoiseFloors(campaign.spec().problem().name());
  if (absl::IsUnimplemented(floors.status())) return absl::OkStatus();
  if (!floors.ok()) return floors.status();
  const int64_t now = clock_->NowUnixMs();
  for (const auto& [key, values] : groups) {
    if (values.size() < 2) continue;
    v1::NoiseFloor floor;
    floor.set_problem(campaign.spec().problem().name());
    floor.set_workload(key.first);
    floor.set_hardware(key.second);
    for (const auto& f : *floors)
      if (f.workload() == key.first && f.hardware() == key.second) floor = f;
    AddNoiseGroup(values, now, &floor);
    if (auto s = store_->UpsertNoiseFloor(floor); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace ratchet::coordinator
