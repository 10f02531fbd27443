#include "services/verifier/training_verdict.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "services/verifier/findings.h"
#include "services/verifier/verdict.h"
#include "services/verifier/welch.h"

namespace ratchet::verifier {
namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void MeanSd(const std::vector<double>& v, double* mean, double* sd) {
  double sum = 0;
  for (double x : v) sum += x;
  *mean = sum / v.size();
  double ss = 0;
  for (double x : v) ss += (x - *mean) * (x - *mean);
  *sd = v.size() > 1 ? std::sqrt(ss / (v.size() - 1)) : 0;
}

// "[1.7120, 1.7090]": bits per byte to four places, seconds to two.
std::string List(const std::vector<double>& v, int places) {
  return absl::StrCat("[", absl::StrJoin(v, ", ", [places](std::string* out, double x) {
    absl::StrAppend(out, absl::StrFormat("%.*f", places, x));
  }), "]");
}

std::string FirstLine(const std::string& s, size_t limit = 600) {
  return s.substr(0, s.find('\n')).substr(0, limit);
}

// The evaluator's checks that a model reads the answer: outputs at a
// position that change with later tokens (causal-leak), or a validation loss
// far below the held-out split's (memorized-validation: it carries the
// validation text). The name of the one that fired, or "".
std::string ReadsTheAnswer(const v1::Evaluation& e) {
  for (const char* check : {"causal-leak", "memorized-validation"})
    if (e.training().eval_outcome() == check || absl::StartsWith(e.message(), check))
      return check;
  return "";
}

// Whether runs given different seeds answered them: kIdentical when two or
// more runs with two or more distinct seeds gave exactly the same bpb and
// loss (bit for bit: different seeds, honestly used, change the last bits
// at least), kVaried when they did not, kTooFew when there is no telling.
enum class SeedResponse { kTooFew, kIdentical, kVaried };
SeedResponse Seeds(const std::vector<const v1::TrainingRun*>& runs) {
  std::set<uint64_t> seeds;
  for (const v1::TrainingRun* r : runs) seeds.insert(r->seed());
  if (runs.size() < 2 || seeds.size() < 2) return SeedResponse::kTooFew;
  for (const v1::TrainingRun* r : runs)
    if (r->bpb() != runs[0]->bpb() || r->loss() != runs[0]->loss()) return SeedResponse::kVaried;
  return SeedResponse::kIdentical;
}

// The speedrun's test that runs reach a target loss: one-sided one-sample
// t-test that the mean loss is below it.
struct TargetTest {
  double mean = 0, t = 0, p = 1;
  std::string text;  // "losses [..] mean .. against the target ..: t= df= p= (needs < ..)"
};
TargetTest TestTarget(const std::vector<double>& losses, double target) {
  TargetTest r;
  double sd;
  MeanSd(losses, &r.mean, &sd);
  const double n = losses.size();
  if (sd > 0) {
    r.t = (target - r.mean) / (sd / std::sqrt(n));
    r.p = StudentTUpperTail(r.t, n - 1);
  } else {  // no spread: the mean decides
    r.t = r.mean < target ? std::numeric_limits<double>::infinity() : 0;
    r.p = r.mean < target ? 0 : 1;
  }
  r.text = absl::StrFormat("losses %s mean %.4f against the target %.4f: t=%.2f df=%.0f p=%.2g "
                           "(needs < %g)",
                           List(losses, 4), r.mean, target, r.t, n - 1, r.p, kTargetSignificance);
  return r;
}

}  // namespace

v1::Verification DecideTraining(const v1::Verification& claim, const v1::ReplayBundle& replays) {
  v1::Verification v = claim;
  v1::VerdictEvidence* ev = v.mutable_evidence();
  const v1::VerificationPolicy policy = spec::AppliedVerification(claim.policy());
  const bool target = claim.task() == v1::TASK_TRAIN_TARGET;
  const std::string figure = target ? "training_seconds" : "bpb";
  const int places = target ? 2 : 4;
  const double sigmas = policy.noise_sigmas();
  // One look (MoreReplaysWanted asks for no more), so no correction over
  // looks: the campaign's significance itself. LookSignificance would divide
  // it by the looks the policy allows a kernel claim.
  const double alpha = policy.significance();
  const int per_side = ReplaysPerSide(claim, replays);
  ev->set_figure(figure);
  ev->set_planned_looks(1);
  ev->set_looks(1);
  ev->set_look_significance(alpha);
  ev->set_replays_requested(std::max(claim.evidence().replays_requested(), per_side));
  // Training runs have the harness's own checks and the replays; the
  // adversarial and independent-timing tiers are phases of the kernel
  // harnesses, which training runs do not go through.
  ev->clear_tiers();
  for (int i = 0; i < spec::kAlwaysOnTiers; ++i) ev->add_tiers(kTiers[i]);

  std::map<int64_t, const v1::Evaluation*> by_job;
  for (const auto& e : replays.evaluations()) by_job[e.job_id()] = &e;

  std::vector<double> cand, inc;  // figures, lower is better
  std::vector<double> cand_losses, inc_losses;
  std::vector<const v1::TrainingRun*> cand_runs, inc_runs;
  Problem hack, wrong, flaky, inc_problem;
  std::set<std::string> hardware;  // of the candidate's replays
  for (const auto& job : replays.jobs()) {
    const bool is_candidate = job.candidate_id() == claim.candidate_id();
    auto it = by_job.find(job.id());
    if (it == by_job.end()) {
      Note(is_candidate ? &flaky : &inc_problem, v1::VERDICT_REJECTED_FLAKY,
           is_candidate ? "failed-on-replay" : "incumbent-failed",
           absl::StrCat("replay job ", job.id(), " never completed"));
      continue;
    }
    const v1::Evaluation& e = *it->second;
    const std::string where = absl::StrCat("replay job ", job.id(), " on ", e.worker_id());
    std::vector<std::string> outcomes;  // the launcher's and the evaluator's words
    if (!e.training().training_outcome().empty())
      outcomes.push_back(absl::StrCat("training ", e.training().training_outcome()));
    if (!e.training().eval_outcome().empty())
      outcomes.push_back(absl::StrCat("evaluation ", e.training().eval_outcome()));
    const std::string what = absl::StrCat(
        where, ": outcome ", v1::Outcome_Name(e.outcome()),
        outcomes.empty() ? "" : absl::StrCat(" (", absl::StrJoin(outcomes, ", "), ")"), ": ",
        FirstLine(e.message()));
    if (!is_candidate) {
      if (e.outcome() == v1::OUTCOME_OK) {
        inc.push_back(target ? e.training().training_seconds() : e.training().bpb());
        inc_losses.push_back(e.training().loss());
        inc_runs.push_back(&e.training());
        v.add_incumbent_scores(e.score());
      } else {
        Note(&inc_problem, v1::VERDICT_REJECTED_FLAKY, "incumbent-failed", what);
      }
      continue;
    }
    if (auto hw = replays.worker_hardware().find(e.worker_id());
        hw != replays.worker_hardware().end())
      hardware.insert(hw->second);
    if (std::find(ev->replay_workers().begin(), ev->replay_workers().end(), e.worker_id()) ==
        ev->replay_workers().end())
      ev->add_replay_workers(e.worker_id());
    if (e.outcome() == v1::OUTCOME_FROZEN_EDIT) {
      Note(&hack, v1::VERDICT_REJECTED_HACK, "frozen-edit", what);
    } else if (const std::string check = ReadsTheAnswer(e);
               e.outcome() == v1::OUTCOME_WRONG_ANSWER && !check.empty()) {
      Note(&hack, v1::VERDICT_REJECTED_HACK, check, what);
    } else if (e.outcome() == v1::OUTCOME_WRONG_ANSWER) {
      Note(&wrong, v1::VERDICT_REJECTED_WRONG, "wrong-on-replay", what);
    } else if (e.outcome() != v1::OUTCOME_OK) {
      // Over its budget, crashed, bad phase marks, a harness error: the
      // claim could not be replayed, which says nothing of cheating.
      Note(&flaky, v1::VERDICT_REJECTED_FLAKY, "failed-on-replay", what);
    } else {
      cand.push_back(target ? e.training().training_seconds() : e.training().bpb());
      cand_losses.push_back(e.training().loss());
      cand_runs.push_back(&e.training());
      v.add_candidate_scores(e.score());
    }
  }
  // A run that ignores the seed it is given replays one lucky draw however
  // often it is replayed. Only where the incumbent's runs show that seeds
  // change the figures (a deterministic baseline would not).
  if (Seeds(cand_runs) == SeedResponse::kIdentical && Seeds(inc_runs) == SeedResponse::kVaried) {
    std::vector<double> inc_bpb;
    for (const v1::TrainingRun* r : inc_runs) inc_bpb.push_back(r->bpb());
    const std::string seeds =
        absl::StrJoin(cand_runs, ", ", [](std::string* out, const v1::TrainingRun* r) {
          absl::StrAppend(out, r->seed());
        });
    Note(&hack, v1::VERDICT_REJECTED_HACK, "ignores-seed",
         absl::StrFormat("%d candidate replays with seeds [%s] all gave bpb %.10g and loss "
                         "%.10g exactly, while the incumbent's replays differ from seed to seed "
                         "(bpb %s): the run ignores the seed it is given",
                         cand_runs.size(), seeds, cand_runs[0]->bpb(), cand_runs[0]->loss(),
                         List(inc_bpb, 4)));
  }

  auto reject = [&](const Problem& p) { return Reject(p, v); };
  if (const Problem* found = FirstFound({&hack, &wrong, &flaky, &inc_problem})) return reject(*found);
  if (inc.empty() || cand.empty())
    return reject({v1::VERDICT_REJECTED_FLAKY, "incumbent-failed", "no replay figures to compare"});

  const double med_cand = Median(cand), med_inc = Median(inc);
  // Lower is better: the gain is how much more the incumbent's figure is.
  const double gain = med_cand > 0 ? med_inc / med_cand - 1.0 : 0.0;
  ev->set_candidate_median(med_cand);
  ev->set_incumbent_median(med_inc);
  ev->set_relative_gain(gain);
  ev->set_p_value(1);

  // The stored floor is of the runs' scores (1 / bpb, 3600 / seconds), whose
  // relative spread is the figure's to first order, so it pools with the
  // relative spread of the incumbent's figures here.
  const v1::NoiseFloor floor = PooledNoiseFloor(replays, hardware, inc, ev);
  const double required = std::max(policy.min_gain(), sigmas * floor.relative_sd());
  ev->set_required_gain(required);

  std::string evidence = absl::StrFormat(
      "replays: candidate %s %s median %.*f, incumbent %s median %.*f, gain %+.1f%%; "
      "claimed score %.4f; noise floor %.2f%% (%.0f df, %s), required gain %.1f%%",
      figure, List(cand, places), places, med_cand, List(inc, places), places, med_inc,
      100 * gain, claim.claimed_score(), 100 * floor.relative_sd(), floor.degrees_of_freedom(),
      ev->noise_floor_key(), 100 * required);
  bool significant;
  if (cand.size() >= 2 && inc.size() >= 2) {
    // One-sided: the incumbent's figure greater than the candidate's.
    const WelchResult w = WelchGreater(inc, cand);
    significant = w.p < alpha;
    ev->set_welch_t(w.t);
    ev->set_welch_df(w.df);
    ev->set_p_value(w.p);
    ev->set_effect_size(w.effect);
    absl::StrAppend(&evidence,
                    absl::StrFormat("; Welch t=%.2f df=%.1f p=%.2g (needs < %g), effect size "
                                    "d=%.2f",
                                    w.t, w.df, w.p, alpha, w.effect));
  } else {
    // No variance to test with one replay on a side: every candidate run
    // must beat every incumbent run.
    significant = *std::max_element(cand.begin(), cand.end()) <
                  *std::min_element(inc.begin(), inc.end());
    absl::StrAppend(&evidence, "; too few replays for a t-test, spread rule used");
  }

  if (target) {
    // The target first: a time to a loss the runs did not reach is no time.
    if (cand_losses.size() < 2)
      return reject({v1::VERDICT_REJECTED_NOISE, "target-not-reached",
                     absl::StrFormat("one candidate replay (loss %s, target %.4f) is too few "
                                     "to test that the mean loss is below the target; %s",
                                     List(cand_losses, 4), claim.target_loss(), evidence)});
    const TargetTest cand_test = TestTarget(cand_losses, claim.target_loss());
    ev->set_candidate_mean_loss(cand_test.mean);
    ev->set_target_t(cand_test.t);
    ev->set_target_p_value(cand_test.p);
    const std::string losses = absl::StrCat("candidate ", cand_test.text);
    if (!(cand_test.p < kTargetSignificance))
      return reject({v1::VERDICT_REJECTED_NOISE, "target-not-reached",
                     absl::StrCat("mean loss not significantly below the target: ", losses,
                                  "; ", evidence)});
    evidence = absl::StrCat(losses, "; ", evidence);
    // An incumbent whose replays miss the target on average (a baseline
    // placed too high, say) has no time to target: a candidate that reaches
    // it is the better, however long it took. One that reaches it on average,
    // if not significantly, keeps its times: they are compared below.
    const TargetTest inc_test = TestTarget(inc_losses, claim.target_loss());
    if (inc_test.mean >= claim.target_loss()) {
      v.set_outcome(v1::VERDICT_ACCEPTED);
      v.clear_reason();
      v.set_detail(absl::StrCat("the incumbent does not reach the target (incumbent ",
                                inc_test.text, "); the candidate does: ", evidence));
      ev->clear_failed_check();
      ev->clear_check_detail();
      return v;
    }
  }
  if (!significant)
    return reject({v1::VERDICT_REJECTED_NOISE, "noise",
                   absl::StrCat("improvement not beyond the noise: ", evidence)});
  if (gain < policy.min_gain())
    return reject({v1::VERDICT_REJECTED_NOISE, "below-min-gain",
                   absl::StrFormat("gain %.1f%% below the campaign's minimum %.1f%%; %s",
                                   100 * gain, 100 * policy.min_gain(), evidence)});
  if (gain < required)
    return reject({v1::VERDICT_REJECTED_NOISE, "below-noise-floor",
                   absl::StrFormat("gain %.1f%% within %g noise floors (%.2f%% each); %s",
                                   100 * gain, sigmas, 100 * floor.relative_sd(), evidence)});
  v.set_outcome(v1::VERDICT_ACCEPTED);
  v.clear_reason();
  v.set_detail(evidence);
  ev->clear_failed_check();
  ev->clear_check_detail();
  return v;
}

}  // namespace ratchet::verifier
