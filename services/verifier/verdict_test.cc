#include "services/verifier/verdict.h"

#include <map>
#include <string>

#include "gtest/gtest.h"

namespace ratchet::verifier {
namespace {

constexpr int64_t kCandidate = 7, kIncumbent = 3;

v1::Verification Claim(double min_gain = 0.0) {
  v1::Verification v;
  v.set_id(1);
  v.set_candidate_id(kCandidate);
  v.set_incumbent_candidate_id(kIncumbent);
  v.set_claimed_score(0.9);
  v.mutable_policy()->set_min_gain(min_gain);
  return v;
}

// One replay job per score, done with outcome OK unless given another.
void AddReplay(v1::GetReplaysResponse* r, int64_t candidate, double score,
               v1::Outcome outcome = v1::OUTCOME_OK) {
  auto* job = r->add_jobs();
  job->set_id(r->jobs_size());
  job->set_candidate_id(candidate);
  job->set_state(v1::JOB_DONE);
  auto* e = r->add_evaluations();
  e->set_job_id(job->id());
  e->set_candidate_id(candidate);
  e->set_outcome(outcome);
  e->set_score(outcome == v1::OUTCOME_OK ? score : 0);
}

TEST(Verdict, AcceptsAnImprovementBeyondTheSpread) {
  v1::GetReplaysResponse r;
  for (double s : {0.61, 0.63, 0.62}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.52, 0.51}) AddReplay(&r, kIncumbent, s);
  ASSERT_TRUE(ReplaysFinished(r));
  v1::Verification v = Decide(Claim(0.02), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  EXPECT_EQ(v.candidate_scores_size(), 3);
  EXPECT_NE(v.detail().find("median 0.6200"), std::string::npos) << v.detail();
}

TEST(Verdict, RejectsOverlappingScoresAsNoise) {
  v1::GetReplaysResponse r;
  for (double s : {0.55, 0.70, 0.49}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.52, 0.56}) AddReplay(&r, kIncumbent, s);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_NOISE);
  EXPECT_EQ(v.reason(), "noise");
  EXPECT_GT(v.evidence().p_value(), 0.05);
  EXPECT_GT(v.evidence().noise_floor(), 0.0);
}

TEST(Verdict, RejectsASmallGainBelowTheMinimum) {
  v1::GetReplaysResponse r;
  for (double s : {0.511, 0.512, 0.513}) AddReplay(&r, kCandidate, s);
  for (double s : {0.500, 0.501, 0.502}) AddReplay(&r, kIncumbent, s);
  v1::Verification v = Decide(Claim(0.05), r);
  EXPECT_EQ(v.reason(), "below-min-gain");
}

TEST(Verdict, RejectsAWrongAnswerOnReplay) {
  v1::GetReplaysResponse r;
  AddReplay(&r, kCandidate, 0.9);
  AddReplay(&r, kCandidate, 0, v1::OUTCOME_WRONG_ANSWER);
  AddReplay(&r, kIncumbent, 0.5);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_WRONG);
  EXPECT_EQ(v.reason(), "wrong-on-replay");
  EXPECT_EQ(v.evidence().failed_check(), "wrong-on-replay");
}

TEST(Verdict, RejectsACrashOrLostReplay) {
  v1::GetReplaysResponse r;
  AddReplay(&r, kCandidate, 0, v1::OUTCOME_CRASH);
  AddReplay(&r, kIncumbent, 0.5);
  EXPECT_EQ(Decide(Claim(), r).reason(), "failed-on-replay");
  EXPECT_EQ(Decide(Claim(), r).outcome(), v1::VERDICT_REJECTED_FLAKY);

  v1::GetReplaysResponse lost;
  auto* job = lost.add_jobs();
  job->set_id(1);
  job->set_candidate_id(kCandidate);
  job->set_state(v1::JOB_FAILED);
  AddReplay(&lost, kIncumbent, 0.5);
  EXPECT_EQ(Decide(Claim(), lost).reason(), "failed-on-replay");
}

TEST(Verdict, IncumbentFailureIsNotAWinForTheCandidate) {
  v1::GetReplaysResponse r;
  AddReplay(&r, kCandidate, 0.9);
  AddReplay(&r, kIncumbent, 0, v1::OUTCOME_TIMEOUT);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_FLAKY);
  EXPECT_EQ(v.reason(), "incumbent-failed");
}

TEST(Verdict, RejectsATimeBelowTheSpeedOfLightAndDisagreeingClocks) {
  for (const char* flag : {"below-sol", "timing-disagreement"}) {
    v1::GetReplaysResponse r;
    for (double s : {0.95, 0.96}) AddReplay(&r, kCandidate, s);
    for (double s : {0.50, 0.51}) AddReplay(&r, kIncumbent, s);
    auto* w = r.mutable_evaluations(1)->add_workloads();
    w->set_index(2);
    w->add_flags(flag);
    v1::Verification v = Decide(Claim(), r);
    EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK) << flag;
    EXPECT_EQ(v.reason(), flag);
    EXPECT_NE(v.detail().find("workload 2"), std::string::npos) << v.detail();
  }
  // The same flag on the incumbent does not count against the candidate.
  v1::GetReplaysResponse r;
  for (double s : {0.95, 0.96}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.51}) AddReplay(&r, kIncumbent, s);
  r.mutable_evaluations(2)->add_workloads()->add_flags("below-sol");
  EXPECT_EQ(Decide(Claim(), r).outcome(), v1::VERDICT_ACCEPTED);
}

TEST(Verdict, HackFlagsOnAWrongReplayAreRejectedAsHacks) {
  v1::GetReplaysResponse r;
  AddReplay(&r, kCandidate, 0.9);
  AddReplay(&r, kCandidate, 0, v1::OUTCOME_WRONG_ANSWER);
  for (double s : {0.50, 0.51}) AddReplay(&r, kIncumbent, s);
  auto* w = r.mutable_evaluations(1)->add_workloads();
  w->add_flags("cached-answer");
  r.mutable_evaluations(1)->set_message("cached-answer: workload 0 verify rep 2 (A')");
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK);
  EXPECT_EQ(v.reason(), "cached-answer");
  // The CUDA harness names spawned threads in its message.
  r.mutable_evaluations(1)->clear_workloads();
  r.mutable_evaluations(1)->set_message("workload 0 round 1: spawned-threads: 1 thread");
  EXPECT_EQ(Decide(Claim(), r).reason(), "spawned-threads");
}

TEST(Verdict, InProcessTimingFasterThanTheWorkersClockIsAHack) {
  v1::GetReplaysResponse r;
  for (double s : {0.95, 0.96}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.51}) AddReplay(&r, kIncumbent, s);
  auto* w = r.mutable_evaluations(0)->add_workloads();
  w->set_t_k_ns(1000);
  w->set_t_k_independent_ns(1400);  // within x1.5
  w->set_independent_calls(512);
  v1::Verification ok = Decide(Claim(), r);
  EXPECT_EQ(ok.outcome(), v1::VERDICT_ACCEPTED) << ok.detail();
  ASSERT_EQ(ok.evidence().timings_size(), 1);
  EXPECT_EQ(ok.evidence().timings(0).t_outside_ns(), 1400);
  w->set_t_k_independent_ns(8000);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK);
  EXPECT_EQ(v.reason(), "timing-disagreement");
  EXPECT_NE(v.detail().find("8000 ns"), std::string::npos) << v.detail();
  // A tolerance of 9 lets it through.
  v1::Verification lax = Claim();
  lax.mutable_policy()->set_timing_tolerance(9);
  EXPECT_EQ(Decide(lax, r).outcome(), v1::VERDICT_ACCEPTED);
}

TEST(Verdict, TheIncumbentsOwnRatioCalibratesTheOutsideClock) {
  // A busy machine: the incumbent reads x2 slower from outside too.
  v1::GetReplaysResponse r;
  for (double s : {0.95, 0.96}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.51}) AddReplay(&r, kIncumbent, s);
  for (int i = 0; i < 4; ++i) {
    auto* w = r.mutable_evaluations(i)->add_workloads();
    w->set_t_k_ns(1000);
    w->set_t_k_independent_ns(i < 2 ? 2600 : 2000);  // candidate x2.6, incumbent x2
  }
  EXPECT_EQ(Decide(Claim(), r).outcome(), v1::VERDICT_ACCEPTED) << Decide(Claim(), r).detail();
  r.mutable_evaluations(0)->mutable_workloads(0)->set_t_k_independent_ns(3100);  // x3.1 > 2 x 1.5
  // On one replay of two: a busy spell or a timer not to be trusted; not
  // accepted, not called a hack.
  v1::Verification once = Decide(Claim(), r);
  EXPECT_EQ(once.outcome(), v1::VERDICT_REJECTED_FLAKY);
  EXPECT_EQ(once.reason(), "timing-unsteady");
  EXPECT_NE(once.detail().find("on 1 of 2 timed replays"), std::string::npos) << once.detail();
  // A claim that is noise anyway says so.
  v1::GetReplaysResponse level = r;
  for (int i : {0, 1}) level.mutable_evaluations(i)->set_score(0.505);
  EXPECT_EQ(Decide(Claim(), level).outcome(), v1::VERDICT_REJECTED_NOISE);
  // On every replay: a tampered timer.
  r.mutable_evaluations(1)->mutable_workloads(0)->set_t_k_independent_ns(3200);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK);
  EXPECT_EQ(v.reason(), "timing-disagreement");
  EXPECT_NE(v.detail().find("the incumbent's own ratio x2.00"), std::string::npos) << v.detail();
  // Before any incumbent replay is timed, the outside clock decides nothing early.
  v1::GetReplaysResponse partial;
  AddReplay(&partial, kCandidate, 0.95);
  auto* w = partial.mutable_evaluations(0)->add_workloads();
  w->set_t_k_ns(1000);
  w->set_t_k_independent_ns(8000);
  partial.add_jobs()->set_state(v1::JOB_QUEUED);
  partial.mutable_jobs(1)->set_candidate_id(kIncumbent);
  partial.mutable_jobs(1)->set_id(2);
  EXPECT_FALSE(DecidedByHackEvidence(Claim(), partial));
  // The incumbent's replay finishes, timed from outside as well.
  partial.mutable_jobs(1)->set_state(v1::JOB_DONE);
  auto* inc = partial.add_evaluations();
  inc->set_job_id(2);
  inc->set_candidate_id(kIncumbent);
  inc->set_outcome(v1::OUTCOME_OK);
  inc->set_score(0.5);
  auto* iw = inc->add_workloads();
  iw->set_t_k_ns(1000);
  iw->set_t_k_independent_ns(1100);
  EXPECT_TRUE(DecidedByHackEvidence(Claim(), partial));
}

TEST(Verdict, AGainWithinTheNoiseFloorIsNoise) {
  v1::GetReplaysResponse r;
  for (double s : {0.530, 0.531, 0.532}) AddReplay(&r, kCandidate, s);
  for (double s : {0.500, 0.501, 0.502}) AddReplay(&r, kIncumbent, s);
  EXPECT_EQ(Decide(Claim(), r).outcome(), v1::VERDICT_ACCEPTED);
  // The same replays on a machine known to swing by 5%.
  auto* f = r.add_noise_floors();
  f->set_problem("p");
  f->set_workload("score");
  f->set_hardware("cpu-x");
  f->set_sum_squares(0.05 * 0.05 * 40);
  f->set_degrees_of_freedom(40);
  f->set_relative_sd(0.05);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_NOISE);
  EXPECT_EQ(v.reason(), "below-noise-floor");
  EXPECT_NEAR(v.evidence().noise_floor(), 0.05, 0.005);
  EXPECT_NEAR(v.evidence().required_gain(), 0.10, 0.01);
}

TEST(Verdict, ReplayCountDoublesOnScreeningUpToTheCap) {
  v1::VerificationPolicy p;
  p.set_replays(3);
  EXPECT_EQ(ReplayCount(p, false), 3);
  EXPECT_EQ(ReplayCount(p, true), 6);
  p.set_max_replays(4);
  EXPECT_EQ(ReplayCount(p, true), 4);
  EXPECT_TRUE(TierEnabled(p, "adversarial"));
  p.add_tiers("independent-timing");
  EXPECT_FALSE(TierEnabled(p, "adversarial"));
  EXPECT_TRUE(TierEnabled(p, "replay"));
}

TEST(Verdict, NotFinishedWhileAJobIsOpen) {
  v1::GetReplaysResponse r;
  AddReplay(&r, kCandidate, 0.9);
  r.add_jobs()->set_state(v1::JOB_LEASED);
  EXPECT_FALSE(ReplaysFinished(r));
  EXPECT_FALSE(ReplaysFinished(v1::GetReplaysResponse()));
}

TEST(Verdict, OneReplayCaughtHackingDecidesEarly) {
  v1::GetReplaysResponse r;
  AddReplay(&r, kCandidate, 0, v1::OUTCOME_WRONG_ANSWER);
  r.mutable_evaluations(0)->add_workloads()->add_flags("stale-output");
  // The incumbent's replay and a second candidate replay still queued.
  for (int64_t who : {kIncumbent, kCandidate}) {
    auto* job = r.add_jobs();
    job->set_id(r.jobs_size());
    job->set_candidate_id(who);
    job->set_state(v1::JOB_QUEUED);
  }
  EXPECT_FALSE(ReplaysFinished(r));
  EXPECT_TRUE(DecidedByHackEvidence(Claim(), r));
  EXPECT_EQ(Decide(Claim(), r).reason(), "stale-output");
  // A wrong answer without hack evidence waits for the rest (a later replay
  // may still show a hack, which outranks it).
  r.mutable_evaluations(0)->clear_workloads();
  EXPECT_FALSE(DecidedByHackEvidence(Claim(), r));
}

TEST(Verdict, ScreeningRaisesReplaysAndIsNamedInTheVerdict) {
  v1::Verification claim = Claim(0.02);
  claim.mutable_policy()->set_replays(2);
  claim.mutable_policy()->set_max_replays(3);
  const std::map<std::string, std::string> incumbent = {{"kernel.cc", "int f() { return 0; }\n"}};
  const std::map<std::string, std::string> candidate = {
      {"kernel.cc", "#include <thread>\nint f() { std::thread t([]{}); t.join(); return 0; }\n"}};
  const v1::Verification screened = ScreenClaim(claim, candidate, incumbent);
  EXPECT_EQ(screened.evidence().replays_requested(), 3);  // doubled, then capped
  ASSERT_GT(screened.evidence().screening_flags_size(), 0);
  EXPECT_NE(screened.evidence().screening_flags(0).find("threads"), std::string::npos);
  EXPECT_EQ(ScreenClaim(claim, incumbent, incumbent).evidence().replays_requested(), 2);

  v1::GetReplaysResponse r;
  for (double s : {0.61, 0.63, 0.62}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.52, 0.51}) AddReplay(&r, kIncumbent, s);
  const v1::Verification verdict = Judge(screened, r);
  EXPECT_EQ(verdict.outcome(), v1::VERDICT_ACCEPTED) << verdict.detail();
  EXPECT_NE(verdict.detail().find("screening flagged (replays raised to 3): threads"),
            std::string::npos)
      << verdict.detail();
}

}  // namespace
}  // namespace ratchet::verifier
