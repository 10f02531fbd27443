#include "services/verifier/training_verdict.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/verifier/verdict.h"

namespace ratchet::verifier {
namespace {

constexpr int64_t kCandidate = 7, kIncumbent = 3;
constexpr double kTarget = 3.28;

v1::Verification Claim(v1::Task task, double min_gain = 0.01) {
  v1::Verification v;
  v.set_id(1);
  v.set_candidate_id(kCandidate);
  v.set_incumbent_candidate_id(kIncumbent);
  v.set_task(task);
  if (task == v1::TASK_TRAIN_TARGET) v.set_target_loss(kTarget);
  v.set_claimed_score(0.59);
  v.mutable_policy()->set_replays(3);
  v.mutable_policy()->set_min_gain(min_gain);
  return v;
}

struct Replay {
  double bpb = 1.75, loss = 3.25, seconds = 300;
  v1::Outcome outcome = v1::OUTCOME_OK;
  std::string eval_outcome = "ok", message;
  uint64_t seed = 0;  // 0: a fresh one, from the job id
};

// A run that ended ok with these figures.
Replay Ran(double bpb, double loss, double seconds, uint64_t seed = 0) {
  Replay run;
  run.bpb = bpb;
  run.loss = loss;
  run.seconds = seconds;
  run.seed = seed;
  return run;
}

// One replay job, done, with its training run's evaluation and the score the
// worker would give it (1 / bpb; 3600 / seconds once below the target).
void AddRun(v1::ReplayBundle* r, v1::Task task, int64_t candidate, const Replay& run) {
  auto* job = r->add_jobs();
  job->set_id(r->jobs_size());
  job->set_candidate_id(candidate);
  job->set_state(v1::JOB_DONE);
  job->set_seed(run.seed ? run.seed : 1000 + job->id());
  auto* e = r->add_evaluations();
  e->set_job_id(job->id());
  e->set_candidate_id(candidate);
  e->set_worker_id(candidate == kCandidate ? "worker-b" : "worker-a");
  e->set_outcome(run.outcome);
  e->set_message(run.message);
  v1::TrainingRun* t = e->mutable_training();
  t->set_seed(job->seed());
  t->set_training_outcome(run.outcome == v1::OUTCOME_OK ? "ok" : "crash");
  t->set_eval_outcome(run.eval_outcome);
  if (run.outcome != v1::OUTCOME_OK) return;
  t->set_bpb(run.bpb);
  t->set_loss(run.loss);
  t->set_training_seconds(run.seconds);
  t->set_target_loss(task == v1::TASK_TRAIN_TARGET ? kTarget : 0);
  t->set_reached_target(run.loss < kTarget);
  e->set_score(task == v1::TASK_TRAIN_BUDGET ? 1 / run.bpb
                                             : (run.loss < kTarget ? 3600 / run.seconds : 0));
}

// Budget runs: the bpb given, the loss following it.
void AddBudget(v1::ReplayBundle* r, int64_t candidate, const std::vector<double>& bpbs) {
  for (double b : bpbs) AddRun(r, v1::TASK_TRAIN_BUDGET, candidate, Ran(b, 1.9 * b, 300));
}

// Target runs: seconds with the losses given.
void AddTarget(v1::ReplayBundle* r, int64_t candidate, const std::vector<double>& seconds,
               const std::vector<double>& losses) {
  for (size_t i = 0; i < seconds.size(); ++i)
    AddRun(r, v1::TASK_TRAIN_TARGET, candidate, Ran(1.7, losses[i], seconds[i]));
}

TEST(TrainingVerdict, AcceptsAnHonestBudgetImprovement) {
  v1::ReplayBundle r;
  AddBudget(&r, kCandidate, {1.712, 1.709, 1.711});
  AddBudget(&r, kIncumbent, {1.790, 1.785, 1.788});
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_BUDGET), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  EXPECT_EQ(v.reason(), "");
  EXPECT_NE(v.detail().find("candidate bpb [1.7120, 1.7090, 1.7110] median 1.7110, "
                            "incumbent [1.7900, 1.7850, 1.7880] median 1.7880, gain +4.5%"),
            std::string::npos)
      << v.detail();
  EXPECT_NE(v.detail().find("Welch t="), std::string::npos) << v.detail();
  // The scores kept are the runs' own (1 / bpb), not the figures.
  ASSERT_EQ(v.candidate_scores_size(), 3);
  EXPECT_DOUBLE_EQ(v.candidate_scores(0), 1 / 1.712);
  ASSERT_EQ(v.incumbent_scores_size(), 3);
  EXPECT_DOUBLE_EQ(v.incumbent_scores(1), 1 / 1.785);
}

TEST(TrainingVerdict, FillsTheEvidence) {
  v1::ReplayBundle r;
  AddBudget(&r, kCandidate, {1.712, 1.709, 1.711});
  AddBudget(&r, kIncumbent, {1.790, 1.785, 1.788});
  const v1::Verification v = DecideTraining(Claim(v1::TASK_TRAIN_BUDGET), r);
  const v1::VerdictEvidence& ev = v.evidence();
  EXPECT_EQ(ev.figure(), "bpb");
  EXPECT_DOUBLE_EQ(ev.candidate_median(), 1.711);
  EXPECT_DOUBLE_EQ(ev.incumbent_median(), 1.788);
  EXPECT_NEAR(ev.relative_gain(), 1.788 / 1.711 - 1, 1e-12);
  EXPECT_GT(ev.welch_t(), 10);
  EXPECT_GT(ev.welch_df(), 1);
  EXPECT_LT(ev.p_value(), 0.001);
  EXPECT_GT(ev.effect_size(), 10);
  // The incumbent's relative spread, this verification's only noise evidence.
  EXPECT_GT(ev.noise_floor(), 0.0005);
  EXPECT_LT(ev.noise_floor(), 0.005);
  EXPECT_EQ(ev.noise_floor_df(), 2);
  EXPECT_EQ(ev.noise_floor_key(), "this verification's incumbent replays");
  EXPECT_DOUBLE_EQ(ev.required_gain(), std::max(0.01, 2 * ev.noise_floor()));
  EXPECT_EQ(ev.failed_check(), "");
  EXPECT_EQ(ev.replays_requested(), 3);
  ASSERT_EQ(ev.replay_workers_size(), 1);
  EXPECT_EQ(ev.replay_workers(0), "worker-b");
  EXPECT_EQ(std::vector<std::string>(ev.tiers().begin(), ev.tiers().end()),
            (std::vector<std::string>{"guards", "replay"}));
  // One look, at the campaign's significance.
  EXPECT_EQ(ev.looks(), 1);
  EXPECT_EQ(ev.planned_looks(), 1);
  EXPECT_DOUBLE_EQ(ev.look_significance(), kDefaultSignificance);
  EXPECT_EQ(ev.target_p_value(), 0);  // train-budget has no target
}

TEST(TrainingVerdict, RejectsAnAANoise) {
  // The same code twice: no gain beyond the runs' spread.
  v1::ReplayBundle r;
  AddBudget(&r, kCandidate, {1.751, 1.760, 1.748});
  AddBudget(&r, kIncumbent, {1.755, 1.749, 1.758});
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_BUDGET, 0), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_NOISE) << v.detail();
  EXPECT_EQ(v.reason(), "noise");
  EXPECT_EQ(v.evidence().failed_check(), "noise");
  EXPECT_GT(v.evidence().p_value(), 0.05);
}

TEST(TrainingVerdict, RejectsAGainWithinTheStoredNoiseFloor) {
  v1::ReplayBundle r;
  AddBudget(&r, kCandidate, {1.712, 1.709, 1.711});
  AddBudget(&r, kIncumbent, {1.790, 1.785, 1.788});
  (*r.mutable_worker_hardware())["worker-b"] = "cpu-x";
  v1::NoiseFloor* f = r.add_noise_floors();
  f->set_problem("gpt_tiny");
  f->set_workload("score");
  f->set_hardware("cpu-x");
  f->set_relative_sd(0.05);
  f->set_sum_squares(0.05 * 0.05 * 30);
  f->set_degrees_of_freedom(30);
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_BUDGET), r);
  EXPECT_EQ(v.reason(), "below-noise-floor") << v.detail();
  EXPECT_EQ(v.evidence().noise_floor_key(), "gpt_tiny | cpu-x");
  EXPECT_EQ(v.evidence().noise_floor_df(), 32);  // the stored 30 and the incumbent's 2
  EXPECT_GT(v.evidence().required_gain(), 0.09);
}

TEST(TrainingVerdict, OneReplayASideNeedsEveryRunBetter) {
  v1::ReplayBundle better;
  AddBudget(&better, kCandidate, {1.709});
  AddBudget(&better, kIncumbent, {1.788});
  v1::Verification claim = Claim(v1::TASK_TRAIN_BUDGET);
  claim.mutable_policy()->set_replays(1);
  EXPECT_EQ(Decide(claim, better).outcome(), v1::VERDICT_ACCEPTED);
  v1::ReplayBundle overlapping;
  AddBudget(&overlapping, kCandidate, {1.709, 1.800});
  AddBudget(&overlapping, kIncumbent, {1.788});
  EXPECT_EQ(Decide(claim, overlapping).reason(), "noise");
}

// A candidate run that ended with `outcome` (the evaluator's verdict and
// the harness's message as given).
Replay Failed(v1::Outcome outcome, const std::string& eval_outcome = "",
           const std::string& message = "") {
  Replay run;
  run.outcome = outcome;
  run.eval_outcome = eval_outcome;
  run.message = message;
  return run;
}

// Two good candidate replays, one that ended as `bad`, and three incumbent
// replays: the verdict.
v1::Verification WithOneBadReplay(const Replay& bad) {
  v1::ReplayBundle r;
  AddBudget(&r, kCandidate, {1.712, 1.709});
  AddRun(&r, v1::TASK_TRAIN_BUDGET, kCandidate, bad);
  AddBudget(&r, kIncumbent, {1.790, 1.785, 1.788});
  return Decide(Claim(v1::TASK_TRAIN_BUDGET), r);
}

TEST(TrainingVerdict, RejectsAFrozenEditAsAHack) {
  const v1::Verification v = WithOneBadReplay(
      Failed(v1::OUTCOME_FROZEN_EDIT, "", "frozen file changed: training/eval/evaluate.py"));
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK);
  EXPECT_EQ(v.reason(), "frozen-edit");
  EXPECT_EQ(v.evidence().failed_check(), "frozen-edit");
  EXPECT_NE(v.detail().find("evaluate.py"), std::string::npos) << v.detail();
}

TEST(TrainingVerdict, RejectsACausalLeakAsAHack) {
  const v1::Verification v = WithOneBadReplay(
      Failed(v1::OUTCOME_WRONG_ANSWER, "causal-leak", "outputs depend on later tokens"));
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK);
  EXPECT_EQ(v.reason(), "causal-leak");
  // Named only in the message, as an evaluator that wrote no outcome would.
  const v1::Verification by_message = WithOneBadReplay(
      Failed(v1::OUTCOME_WRONG_ANSWER, "", "causal-leak: row 3 changed by 0.41"));
  EXPECT_EQ(by_message.reason(), "causal-leak");
}

TEST(TrainingVerdict, RejectsMemorizedValidationAsAHack) {
  const v1::Verification v = WithOneBadReplay(Failed(
      v1::OUTCOME_WRONG_ANSWER, "memorized-validation",
      "the validation loss 0.41 is far below the held-out loss 4.40: the model knows the "
      "validation text"));
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK);
  EXPECT_EQ(v.reason(), "memorized-validation");
  const v1::Verification by_message = WithOneBadReplay(
      Failed(v1::OUTCOME_WRONG_ANSWER, "", "memorized-validation: the validation loss ..."));
  EXPECT_EQ(by_message.reason(), "memorized-validation");
}

TEST(TrainingVerdict, RejectsANonFiniteLossAsWrong) {
  for (const char* eval : {"non-finite", "collapsed", "bad-output"}) {
    const v1::Verification v =
        WithOneBadReplay(Failed(v1::OUTCOME_WRONG_ANSWER, eval, "the evaluator refused it"));
    EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_WRONG) << eval;
    EXPECT_EQ(v.reason(), "wrong-on-replay") << eval;
  }
}

TEST(TrainingVerdict, RejectsACrashOrOverBudgetRunAsFlaky) {
  for (v1::Outcome o : {v1::OUTCOME_CRASH, v1::OUTCOME_TIMEOUT, v1::OUTCOME_HARNESS_ERROR}) {
    const v1::Verification v = WithOneBadReplay(Failed(o, "", "rank 1 exited with signal 9"));
    EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_FLAKY) << v1::Outcome_Name(o);
    EXPECT_EQ(v.reason(), "failed-on-replay") << v1::Outcome_Name(o);
  }
  // A replay job that never produced an evaluation.
  v1::ReplayBundle r;
  AddBudget(&r, kCandidate, {1.712, 1.709, 1.711});
  AddBudget(&r, kIncumbent, {1.790, 1.785, 1.788});
  r.mutable_jobs(1)->set_state(v1::JOB_FAILED);
  r.mutable_evaluations()->erase(r.mutable_evaluations()->begin() + 1);
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_BUDGET), r);
  EXPECT_EQ(v.reason(), "failed-on-replay");
  EXPECT_NE(v.detail().find("never completed"), std::string::npos) << v.detail();
}

TEST(TrainingVerdict, HackOutranksWrongAndFlaky) {
  v1::ReplayBundle r;
  AddRun(&r, v1::TASK_TRAIN_BUDGET, kCandidate, Failed(v1::OUTCOME_CRASH));
  AddRun(&r, v1::TASK_TRAIN_BUDGET, kCandidate, Failed(v1::OUTCOME_WRONG_ANSWER, "non-finite"));
  AddRun(&r, v1::TASK_TRAIN_BUDGET, kCandidate, Failed(v1::OUTCOME_FROZEN_EDIT));
  AddRun(&r, v1::TASK_TRAIN_BUDGET, kIncumbent, Failed(v1::OUTCOME_CRASH));
  EXPECT_EQ(Decide(Claim(v1::TASK_TRAIN_BUDGET), r).reason(), "frozen-edit");
}

TEST(TrainingVerdict, RejectsAFailedIncumbentAsFlaky) {
  v1::ReplayBundle r;
  AddBudget(&r, kCandidate, {1.712, 1.709, 1.711});
  AddBudget(&r, kIncumbent, {1.790, 1.785});
  AddRun(&r, v1::TASK_TRAIN_BUDGET, kIncumbent, Failed(v1::OUTCOME_TIMEOUT, "", "over budget"));
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_BUDGET), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_FLAKY);
  EXPECT_EQ(v.reason(), "incumbent-failed");
  EXPECT_NE(v.detail().find("over budget"), std::string::npos) << v.detail();
}

TEST(TrainingVerdict, RejectsARunThatIgnoresItsSeed) {
  // Three fresh seeds, one bit-identical result: one lucky draw replayed.
  v1::ReplayBundle r;
  for (int i = 0; i < 3; ++i) AddRun(&r, v1::TASK_TRAIN_BUDGET, kCandidate, Ran(1.601, 3.0411, 300));
  AddBudget(&r, kIncumbent, {1.790, 1.785, 1.788});
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_BUDGET), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK) << v.detail();
  EXPECT_EQ(v.reason(), "ignores-seed");
  EXPECT_NE(v.detail().find("seeds [1001, 1002, 1003]"), std::string::npos) << v.detail();

  // An incumbent as deterministic (it never used a seed either) is no
  // evidence against the candidate.
  v1::ReplayBundle deterministic;
  for (int i = 0; i < 3; ++i)
    AddRun(&deterministic, v1::TASK_TRAIN_BUDGET, kCandidate, Ran(1.601, 3.0411, 300));
  for (int i = 0; i < 3; ++i)
    AddRun(&deterministic, v1::TASK_TRAIN_BUDGET, kIncumbent, Ran(1.788, 3.3972, 300));
  EXPECT_EQ(Decide(Claim(v1::TASK_TRAIN_BUDGET), deterministic).outcome(),
            v1::VERDICT_ACCEPTED);

  // Nor are identical results from one seed given twice.
  v1::ReplayBundle same_seed;
  for (int i = 0; i < 2; ++i)
    AddRun(&same_seed, v1::TASK_TRAIN_BUDGET, kCandidate, Ran(1.601, 3.0411, 300, 42));
  AddBudget(&same_seed, kIncumbent, {1.790, 1.785, 1.788});
  EXPECT_NE(Decide(Claim(v1::TASK_TRAIN_BUDGET), same_seed).reason(), "ignores-seed");
}

TEST(TrainingVerdict, AcceptsATargetReachedFaster) {
  v1::ReplayBundle r;
  AddTarget(&r, kCandidate, {300, 305, 302}, {3.250, 3.255, 3.252});
  AddTarget(&r, kIncumbent, {360, 365, 358}, {3.251, 3.249, 3.253});
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_TARGET), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  const v1::VerdictEvidence& ev = v.evidence();
  EXPECT_EQ(ev.figure(), "training_seconds");
  EXPECT_DOUBLE_EQ(ev.candidate_median(), 302);
  EXPECT_DOUBLE_EQ(ev.incumbent_median(), 360);
  EXPECT_NEAR(ev.relative_gain(), 360.0 / 302 - 1, 1e-12);
  EXPECT_NEAR(ev.candidate_mean_loss(), 3.2523333, 1e-6);
  // t = (3.28 - 3.25233) / (0.0025166 / sqrt 3) = 19.04 on 2 df.
  EXPECT_NEAR(ev.target_t(), 19.04, 0.01);
  EXPECT_LT(ev.target_p_value(), kTargetSignificance);
  EXPECT_GT(ev.target_p_value(), 0.001);
  EXPECT_NE(v.detail().find("candidate training_seconds [300.00, 305.00, 302.00] median 302.00"),
            std::string::npos)
      << v.detail();
  EXPECT_NE(v.detail().find("candidate losses [3.2500, 3.2550, 3.2520] mean 3.2523"),
            std::string::npos)
      << v.detail();
  EXPECT_DOUBLE_EQ(v.candidate_scores(0), 3600.0 / 300);
}

TEST(TrainingVerdict, RejectsATargetNotSignificantlyReached) {
  // Faster, and below the target on average, but not beyond the losses'
  // spread: t = 0.76 on 2 df.
  v1::ReplayBundle r;
  AddTarget(&r, kCandidate, {300, 305, 302}, {3.27, 3.29, 3.26});
  AddTarget(&r, kIncumbent, {360, 365, 358}, {3.251, 3.249, 3.253});
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_TARGET), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_NOISE) << v.detail();
  EXPECT_EQ(v.reason(), "target-not-reached");
  EXPECT_EQ(v.evidence().failed_check(), "target-not-reached");
  EXPECT_NEAR(v.evidence().candidate_mean_loss(), 3.2733333, 1e-6);
  EXPECT_NEAR(v.evidence().target_t(), 0.756, 0.001);
  EXPECT_GT(v.evidence().target_p_value(), 0.2);
  EXPECT_NE(v.detail().find("candidate losses [3.2700, 3.2900, 3.2600] mean 3.2733 against "
                            "the target 3.2800"),
            std::string::npos)
      << v.detail();

  // A single replay cannot show it at all.
  v1::ReplayBundle one;
  AddTarget(&one, kCandidate, {300}, {3.20});
  AddTarget(&one, kIncumbent, {360}, {3.25});
  v1::Verification claim = Claim(v1::TASK_TRAIN_TARGET);
  claim.mutable_policy()->set_replays(1);
  EXPECT_EQ(Decide(claim, one).reason(), "target-not-reached");
}

TEST(TrainingVerdict, AcceptsReachingATargetTheIncumbentMisses) {
  // Slower, but the incumbent's runs end above the target on average: they
  // have no time to target, and the candidate's do.
  v1::ReplayBundle r;
  AddTarget(&r, kCandidate, {400, 405, 402}, {3.250, 3.255, 3.252});
  AddTarget(&r, kIncumbent, {360, 365, 358}, {3.290, 3.285, 3.300});
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_TARGET), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  EXPECT_NE(v.detail().find("the incumbent does not reach the target (incumbent losses "
                            "[3.2900, 3.2850, 3.3000] mean 3.2917"),
            std::string::npos)
      << v.detail();
  EXPECT_LT(v.evidence().target_p_value(), kTargetSignificance);

  // An incumbent below the target on average, if not significantly, keeps
  // its times: the slower candidate is not better.
  v1::ReplayBundle close;
  AddTarget(&close, kCandidate, {400, 405, 402}, {3.250, 3.255, 3.252});
  AddTarget(&close, kIncumbent, {360, 365, 358}, {3.270, 3.285, 3.260});
  const v1::Verification slower = Decide(Claim(v1::TASK_TRAIN_TARGET), close);
  EXPECT_EQ(slower.outcome(), v1::VERDICT_REJECTED_NOISE) << slower.detail();
  EXPECT_EQ(slower.reason(), "noise");
}

TEST(TrainingVerdict, RejectsAFasterRunWithinTheMinimumGain) {
  v1::ReplayBundle r;
  AddTarget(&r, kCandidate, {350, 351, 352}, {3.250, 3.255, 3.252});
  AddTarget(&r, kIncumbent, {355, 356, 357}, {3.251, 3.249, 3.253});
  const v1::Verification v = Decide(Claim(v1::TASK_TRAIN_TARGET, 0.05), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_NOISE) << v.detail();
  EXPECT_EQ(v.reason(), "below-min-gain");
  EXPECT_LT(v.evidence().p_value(), 0.05);  // significant, but small
  EXPECT_NEAR(v.evidence().relative_gain(), 356.0 / 351 - 1, 1e-12);
}

TEST(TrainingVerdict, AsksForNoMoreReplays) {
  // Promising but not significant: a kernel claim would get another look.
  v1::ReplayBundle r;
  AddBudget(&r, kCandidate, {1.70, 1.76, 1.72});
  AddBudget(&r, kIncumbent, {1.79, 1.74, 1.80});
  const v1::Verification claim = Claim(v1::TASK_TRAIN_BUDGET);
  EXPECT_EQ(Decide(claim, r).reason(), "noise");
  EXPECT_EQ(MoreReplaysWanted(claim, r), 0);
  EXPECT_EQ(ReplaysWanted(claim, r), 0);
  // Before the first look, the replays the policy asks for.
  v1::ReplayBundle fewer;
  AddBudget(&fewer, kCandidate, {1.70});
  AddBudget(&fewer, kIncumbent, {1.79});
  EXPECT_EQ(ReplaysWanted(claim, fewer), 3);
}

}  // namespace
}  // namespace ratchet::verifier
