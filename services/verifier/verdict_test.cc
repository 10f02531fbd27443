#include "services/verifier/verdict.h"

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "services/verifier/welch.h"

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
void AddReplay(v1::ReplayBundle* r, int64_t candidate, double score,
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
  v1::ReplayBundle r;
  for (double s : {0.61, 0.63, 0.62}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.52, 0.51}) AddReplay(&r, kIncumbent, s);
  ASSERT_TRUE(ReplaysFinished(r));
  v1::Verification v = Decide(Claim(0.02), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  EXPECT_EQ(v.candidate_scores_size(), 3);
  EXPECT_NE(v.detail().find("median 0.6200"), std::string::npos) << v.detail();
}

TEST(Verdict, RejectsOverlappingScoresAsNoise) {
  v1::ReplayBundle r;
  for (double s : {0.55, 0.70, 0.49}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.52, 0.56}) AddReplay(&r, kIncumbent, s);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_NOISE);
  EXPECT_EQ(v.reason(), "noise");
  EXPECT_GT(v.evidence().p_value(), 0.05);
  EXPECT_GT(v.evidence().noise_floor(), 0.0);
}

TEST(Verdict, RejectsASmallGainBelowTheMinimum) {
  v1::ReplayBundle r;
  for (double s : {0.511, 0.512, 0.513}) AddReplay(&r, kCandidate, s);
  for (double s : {0.500, 0.501, 0.502}) AddReplay(&r, kIncumbent, s);
  v1::Verification v = Decide(Claim(0.05), r);
  EXPECT_EQ(v.reason(), "below-min-gain");
}

TEST(Verdict, RejectsAWrongAnswerOnReplay) {
  v1::ReplayBundle r;
  AddReplay(&r, kCandidate, 0.9);
  AddReplay(&r, kCandidate, 0, v1::OUTCOME_WRONG_ANSWER);
  AddReplay(&r, kIncumbent, 0.5);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_WRONG);
  EXPECT_EQ(v.reason(), "wrong-on-replay");
  EXPECT_EQ(v.evidence().failed_check(), "wrong-on-replay");
}

TEST(Verdict, RejectsACrashOrLostReplay) {
  v1::ReplayBundle r;
  AddReplay(&r, kCandidate, 0, v1::OUTCOME_CRASH);
  AddReplay(&r, kIncumbent, 0.5);
  EXPECT_EQ(Decide(Claim(), r).reason(), "failed-on-replay");
  EXPECT_EQ(Decide(Claim(), r).outcome(), v1::VERDICT_REJECTED_FLAKY);

  v1::ReplayBundle lost;
  auto* job = lost.add_jobs();
  job->set_id(1);
  job->set_candidate_id(kCandidate);
  job->set_state(v1::JOB_FAILED);
  AddReplay(&lost, kIncumbent, 0.5);
  EXPECT_EQ(Decide(Claim(), lost).reason(), "failed-on-replay");
}

TEST(Verdict, IncumbentFailureIsNotAWinForTheCandidate) {
  v1::ReplayBundle r;
  AddReplay(&r, kCandidate, 0.9);
  AddReplay(&r, kIncumbent, 0, v1::OUTCOME_TIMEOUT);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_FLAKY);
  EXPECT_EQ(v.reason(), "incumbent-failed");
}

TEST(Verdict, RejectsATimeBelowTheSpeedOfLightAndDisagreeingClocks) {
  for (const char* flag : {"below-sol", "timing-disagreement"}) {
    v1::ReplayBundle r;
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
  v1::ReplayBundle r;
  for (double s : {0.95, 0.96}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.51}) AddReplay(&r, kIncumbent, s);
  r.mutable_evaluations(2)->add_workloads()->add_flags("below-sol");
  EXPECT_EQ(Decide(Claim(), r).outcome(), v1::VERDICT_ACCEPTED);
}

TEST(Verdict, HackFlagsOnAWrongReplayAreRejectedAsHacks) {
  v1::ReplayBundle r;
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
  v1::ReplayBundle r;
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
  // On the only timed replay: not accepted, not yet a hack.
  EXPECT_EQ(Decide(Claim(), r).reason(), "timing-unsteady");
  *r.mutable_evaluations(1)->add_workloads() = *w;  // and on the second one too
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
  v1::ReplayBundle r;
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
  v1::ReplayBundle level = r;
  for (int i : {0, 1}) level.mutable_evaluations(i)->set_score(0.505);
  EXPECT_EQ(Decide(Claim(), level).outcome(), v1::VERDICT_REJECTED_NOISE);
  // On every replay: a tampered timer.
  r.mutable_evaluations(1)->mutable_workloads(0)->set_t_k_independent_ns(3200);
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK);
  EXPECT_EQ(v.reason(), "timing-disagreement");
  EXPECT_NE(v.detail().find("the incumbent's own ratio x2.00"), std::string::npos) << v.detail();
}

TEST(Verdict, AGainWithinTheNoiseFloorIsNoise) {
  v1::ReplayBundle r;
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
  v1::ReplayBundle r;
  AddReplay(&r, kCandidate, 0.9);
  r.add_jobs()->set_state(v1::JOB_LEASED);
  EXPECT_FALSE(ReplaysFinished(r));
  EXPECT_FALSE(ReplaysFinished(v1::ReplayBundle()));
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

  v1::ReplayBundle r;
  for (double s : {0.61, 0.63, 0.62}) AddReplay(&r, kCandidate, s);
  for (double s : {0.50, 0.52, 0.51}) AddReplay(&r, kIncumbent, s);
  const v1::Verification verdict = Judge(screened, r);
  EXPECT_EQ(verdict.outcome(), v1::VERDICT_ACCEPTED) << verdict.detail();
  EXPECT_NE(verdict.detail().find("screening flagged (replays raised to 3): threads"),
            std::string::npos)
      << verdict.detail();
}

// A claim screened as the verifier does: `replays` requested a side, up to
// `max_replays`.
v1::Verification Sequential(int replays, int max_replays, double min_gain = 0.02) {
  v1::Verification v = Claim(min_gain);
  v.mutable_policy()->set_replays(replays);
  v.mutable_policy()->set_max_replays(max_replays);
  v.mutable_evidence()->set_replays_requested(replays);
  return v;
}

// Replays interleaved as the coordinator queues them, candidate first.
v1::ReplayBundle Interleaved(const std::vector<double>& candidate,
                                   const std::vector<double>& incumbent) {
  v1::ReplayBundle r;
  for (size_t i = 0; i < std::max(candidate.size(), incumbent.size()); ++i) {
    if (i < candidate.size()) AddReplay(&r, kCandidate, candidate[i]);
    if (i < incumbent.size()) AddReplay(&r, kIncumbent, incumbent[i]);
  }
  return r;
}

TEST(VerdictSequential, TheScheduleDoublesUpToTheCapAndSplitsTheSignificance) {
  EXPECT_EQ(ReplaySchedule(Sequential(3, 20)), (std::vector<int>{3, 6, 12, 20}));
  EXPECT_EQ(ReplaySchedule(Sequential(2, 4)), (std::vector<int>{2, 4}));
  EXPECT_EQ(ReplaySchedule(Sequential(3, 3)), (std::vector<int>{3}));
  EXPECT_EQ(ReplaySchedule(Sequential(6, 4)), (std::vector<int>{6}));  // screening raised it
  EXPECT_NEAR(LookSignificance(Sequential(3, 20)), 0.05 / 4, 1e-12);
  EXPECT_NEAR(LookSignificance(Sequential(3, 3)), 0.05, 1e-12);
}

TEST(VerdictSequential, APromisingClaimGetsMoreReplaysAndIsAcceptedOnceSignificant) {
  const v1::Verification claim = Sequential(3, 12);  // looks at 3, 6, 12
  const std::vector<double> inc = {0.50, 0.52, 0.51};
  v1::ReplayBundle r = Interleaved({0.70, 0.55, 0.78}, inc);
  // +37% but one slow replay: p about 0.07, short of significance.
  const v1::Verification first = Decide(claim, r);
  EXPECT_EQ(first.outcome(), v1::VERDICT_REJECTED_NOISE) << first.detail();
  EXPECT_EQ(first.reason(), "noise");
  EXPECT_GT(first.evidence().p_value(), 0.05);
  EXPECT_EQ(MoreReplaysWanted(claim, r), 3);
  EXPECT_EQ(ReplaysPerSide(claim, r), 3);
  // Not before every replay is in.
  r.mutable_jobs(5)->set_state(v1::JOB_LEASED);
  EXPECT_EQ(MoreReplaysWanted(claim, r), 0);

  r = Interleaved({0.70, 0.55, 0.78, 0.72, 0.69, 0.74}, {0.50, 0.52, 0.51, 0.50, 0.51, 0.52});
  EXPECT_EQ(MoreReplaysWanted(claim, r), 0);
  const v1::Verification v = Decide(claim, r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  EXPECT_EQ(v.evidence().looks(), 2);
  EXPECT_EQ(v.evidence().planned_looks(), 3);
  EXPECT_EQ(v.evidence().replays_requested(), 6);
  EXPECT_NEAR(v.evidence().look_significance(), 0.05 / 3, 1e-12);
  EXPECT_NE(v.detail().find("over 3 planned looks, look 2 at 6 replays a side"),
            std::string::npos)
      << v.detail();
}

// What the verifier asks the coordinator for before it decides: the first
// look's replays when the bundle has fewer (screening doubled them, or a
// claim from an older store has none), then the next look of a promising
// claim, and 0 once there is nothing more to wait for.
TEST(VerdictSequential, ReplaysWantedTotalsASide) {
  v1::Verification claim = Sequential(3, 12);  // looks at 3, 6, 12
  EXPECT_EQ(ReplaysWanted(claim, v1::ReplayBundle()), 3);
  const v1::ReplayBundle promising = Interleaved({0.70, 0.55, 0.78}, {0.50, 0.52, 0.51});
  EXPECT_EQ(ReplaysWanted(claim, promising), 6);
  const v1::ReplayBundle flat = Interleaved({0.50, 0.53, 0.51}, {0.51, 0.50, 0.52});
  EXPECT_EQ(ReplaysWanted(claim, flat), 0);
  // Screening flagged the candidate: its first look is at 6, untested before.
  claim.mutable_evidence()->set_replays_requested(6);
  EXPECT_EQ(ReplaysWanted(claim, flat), 6);
  EXPECT_EQ(ReplaysWanted(claim, promising), 6);
  // At the last look it is decided whatever the scores.
  const v1::Verification last = Sequential(3, 3);
  EXPECT_EQ(ReplaysWanted(last, promising), 0);
}

TEST(VerdictSequential, AFlatClaimIsNoiseWithoutMoreReplays) {
  const v1::Verification claim = Sequential(3, 20);
  const v1::ReplayBundle r = Interleaved({0.50, 0.53, 0.51}, {0.51, 0.50, 0.52});
  EXPECT_EQ(MoreReplaysWanted(claim, r), 0);
  const v1::Verification v = Decide(claim, r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_NOISE);
  EXPECT_EQ(v.evidence().looks(), 1);
  // A gain below the campaign's minimum is not worth more replays either,
  // however noisy.
  const v1::ReplayBundle small = Interleaved({0.515, 0.45, 0.58}, {0.50, 0.52, 0.51});
  EXPECT_EQ(MoreReplaysWanted(Sequential(3, 20, 0.05), small), 0);
  // Nor is a promising one with another finding: those decide now.
  v1::ReplayBundle failed = Interleaved({0.70, 0.55, 0.78}, {0.50, 0.52, 0.51});
  failed.mutable_evaluations(5)->set_outcome(v1::OUTCOME_TIMEOUT);
  EXPECT_EQ(MoreReplaysWanted(claim, failed), 0);
  EXPECT_EQ(Decide(claim, failed).reason(), "incumbent-failed");
}

TEST(VerdictSequential, MaxReplaysCapsTheLooks) {
  const v1::Verification claim = Sequential(3, 6);  // looks at 3, 6
  EXPECT_EQ(MoreReplaysWanted(claim, Interleaved({0.70, 0.55, 0.78}, {0.50, 0.52, 0.51})), 3);
  // Still noisy at 6 a side: no look left, so it is decided as noise.
  const v1::ReplayBundle r = Interleaved({0.70, 0.55, 0.78, 0.40, 0.90, 0.45},
                                               {0.50, 0.52, 0.51, 0.50, 0.51, 0.52});
  EXPECT_EQ(MoreReplaysWanted(claim, r), 0);
  const v1::Verification v = Decide(claim, r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_NOISE);
  EXPECT_EQ(v.reason(), "noise");
  EXPECT_EQ(v.evidence().looks(), 2);
  EXPECT_EQ(v.evidence().planned_looks(), 2);
  // A policy without room for another look decides at the first, uncorrected.
  const v1::Verification once = Sequential(3, 3);
  const v1::ReplayBundle first = Interleaved({0.70, 0.55, 0.78}, {0.50, 0.52, 0.51});
  EXPECT_EQ(MoreReplaysWanted(once, first), 0);
  EXPECT_EQ(Decide(once, first).evidence().look_significance(), 0.05);
}

TEST(VerdictSequential, OneReplayASideWaitsForALookWithATest) {
  const v1::Verification claim = Sequential(1, 4);  // looks at 1, 2, 4
  const v1::ReplayBundle r = Interleaved({0.70}, {0.50});
  EXPECT_EQ(Decide(claim, r).outcome(), v1::VERDICT_REJECTED_NOISE);
  EXPECT_EQ(MoreReplaysWanted(claim, r), 1);
  // Without a later look, the spread rule decides as before.
  EXPECT_EQ(Decide(Sequential(1, 1), r).outcome(), v1::VERDICT_ACCEPTED);
}

// Pure noise, the same distribution on both sides, through every look the
// verifier would take: accepted at some look with probability below the
// significance with the correction, well above it without.
TEST(VerdictSequential, TheCorrectionKeepsNoiseRejectedOverManySequences) {
  v1::Verification claim = Sequential(3, 20, 0.0);  // looks at 3, 6, 12, 20
  claim.mutable_policy()->set_noise_sigmas(1e-9);   // the Welch test alone decides
  constexpr int kSequences = 2000;
  constexpr double kAlpha = 0.05;
  std::mt19937 rng(20240520);
  std::normal_distribution<double> score(0.5, 0.02);
  int accepted = 0, extended = 0, naive_accepted = 0;
  for (int s = 0; s < kSequences; ++s) {
    std::vector<double> cand(20), inc(20);
    for (int i = 0; i < 20; ++i) {
      cand[i] = score(rng);
      inc[i] = score(rng);
    }
    auto first = [](const std::vector<double>& v, int n) {
      return std::vector<double>(v.begin(), v.begin() + n);
    };
    int n = 3;
    while (true) {
      const v1::ReplayBundle r = Interleaved(first(cand, n), first(inc, n));
      const int more = MoreReplaysWanted(claim, r);
      if (more == 0) {
        accepted += Decide(claim, r).outcome() == v1::VERDICT_ACCEPTED;
        break;
      }
      ++extended;
      n += more;
    }
    // The same looks and the same promising rule, each tested at the
    // campaign's significance.
    for (int look : {3, 6, 12, 20}) {
      const std::vector<double> c = first(cand, look), b = first(inc, look);
      std::vector<double> cs = c, bs = b;
      std::sort(cs.begin(), cs.end());
      std::sort(bs.begin(), bs.end());
      const bool gain = cs[look / 2] + cs[(look - 1) / 2] >= bs[look / 2] + bs[(look - 1) / 2];
      const double p = WelchGreater(c, b).p;
      if (gain && p < kAlpha) {
        ++naive_accepted;
        break;
      }
      if (!gain || p >= 4 * kAlpha) break;
    }
  }
  EXPECT_GT(extended, kSequences / 10);  // the looks were taken
  EXPECT_LT(accepted, 0.05 * kSequences) << accepted << " of " << kSequences;
  // Without the correction the same sequences would be accepted more often.
  EXPECT_GT(naive_accepted, 0.06 * kSequences) << naive_accepted << " of " << kSequences;
  std::printf("pure noise accepted: %d of %d with the correction, %d without; %d extensions\n",
              accepted, kSequences, naive_accepted, extended);
}

// Timed replays: `candidate` and `incumbent` outside/in-process ratios, one
// per replay, on one workload timed in process at 1000 ns.
v1::ReplayBundle Timed(const std::vector<double>& candidate,
                             const std::vector<double>& incumbent) {
  v1::ReplayBundle r;
  for (size_t i = 0; i < candidate.size(); ++i) AddReplay(&r, kCandidate, 0.95 + 0.01 * i);
  for (size_t i = 0; i < incumbent.size(); ++i) AddReplay(&r, kIncumbent, 0.50 + 0.01 * i);
  for (int i = 0; i < r.evaluations_size(); ++i) {
    const bool is_candidate = static_cast<size_t>(i) < candidate.size();
    const double ratio = is_candidate ? candidate[i] : incumbent[i - candidate.size()];
    if (ratio <= 0) continue;
    auto* w = r.mutable_evaluations(i)->add_workloads();
    w->set_t_k_ns(1000);
    w->set_t_k_independent_ns(1000 * ratio);
    w->set_independent_calls(4096);
  }
  return r;
}

TEST(Verdict, OutsideMuchFasterOnEveryReplayIsAHack) {
  // Warm back-to-back calls make the incumbent x0.9; the candidate reads x0.1
  // from outside on both replays: it did less work when called back to back.
  const v1::ReplayBundle r = Timed({0.1, 0.12}, {0.9, 0.9});
  const v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK) << v.detail();
  EXPECT_EQ(v.reason(), "timing-disagreement");
  EXPECT_NE(v.detail().find("did less work when called back to back"), std::string::npos)
      << v.detail();
  EXPECT_NE(v.detail().find("the incumbent's own ratio x0.90, tolerance /3.00"),
            std::string::npos)
      << v.detail();
  // A tolerance of 9 (a band of /20) lets it through.
  v1::Verification lax = Claim();
  lax.mutable_policy()->set_timing_tolerance(9);
  EXPECT_EQ(Decide(lax, r).outcome(), v1::VERDICT_ACCEPTED);
}

TEST(Verdict, OutsideMuchFasterOnSomeReplaysIsUnsteady) {
  const v1::Verification v = Decide(Claim(), Timed({0.1, 0.85}, {0.9, 0.9}));
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_FLAKY) << v.detail();
  EXPECT_EQ(v.reason(), "timing-unsteady");
  EXPECT_NE(v.detail().find("on 1 of 2 timed replays"), std::string::npos) << v.detail();
  // Slower on one replay, faster on the other: neither holds every time.
  EXPECT_EQ(Decide(Claim(), Timed({0.1, 5.0}, {0.9, 0.9})).reason(), "timing-unsteady");
}

TEST(Verdict, AFewDisagreeingReplaysAreLeftOutOfTheScores) {
  // One replay of four read x3 slower from outside (a busy spell): it is no
  // evidence, and the verdict rests on the three whose clocks agreed.
  v1::ReplayBundle r = Timed({1.0, 3.0, 1.0, 1.0}, {1.0, 1.0, 1.0, 1.0});
  r.mutable_evaluations(1)->set_score(5.0);  // whatever it scored does not count
  const v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  EXPECT_EQ(v.candidate_scores_size(), 3);
  EXPECT_EQ(std::count(v.candidate_scores().begin(), v.candidate_scores().end(), 5.0), 0);
  EXPECT_NE(v.detail().find("left out, the worker's clock disagreeing (a busy host): replay "
                            "job 2"),
            std::string::npos)
      << v.detail();
  // The in-process figure held to the outside one is the fastest tenth when
  // the harness gives it: load that stretched the median does not count.
  v1::ReplayBundle loaded = Timed({1.0, 1.0}, {1.0, 1.0});
  loaded.mutable_evaluations(0)->mutable_workloads(0)->set_t_k_ns(3000);
  loaded.mutable_evaluations(0)->mutable_workloads(0)->set_t_k_p10_ns(1000);
  EXPECT_EQ(Decide(Claim(), loaded).outcome(), v1::VERDICT_ACCEPTED);
}

TEST(Verdict, EachDirectionIsHeldToItsOwnInProcessFigure) {
  // A two-thread candidate on a busy two-core host (figures from a demo
  // campaign): its timed calls spread from 0.54 ms (fastest tenth) to 1.05 ms
  // (median), and the outside windows fell in between. Neither direction
  // disagrees: slower is judged against the median, faster against the
  // fastest tenth.
  v1::ReplayBundle r = Timed({1.0, 1.0}, {1.0, 1.0});
  for (int i : {0, 1}) {
    auto* w = r.mutable_evaluations(i)->mutable_workloads(0);
    w->set_t_k_ns(1050602);
    w->set_t_k_p10_ns(540011);
    w->set_t_k_independent_ns(1009839);
  }
  v1::Verification v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  // Work deferred past the timed calls shows against the median as well:
  // outside x3 of it on every replay.
  for (int i : {0, 1}) r.mutable_evaluations(i)->mutable_workloads(0)->set_t_k_independent_ns(3200000);
  v = Decide(Claim(), r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK) << v.detail();
  EXPECT_NE(v.detail().find("1050602 ns per call (median)"), std::string::npos) << v.detail();
}

// One timed replay that disagrees is no hack: an honest two-thread candidate
// on a loaded two-core host once read x3.5 slower from outside on the only
// replay of a demo campaign. It is not accepted, and it is looked at again.
TEST(VerdictSequential, OneDisagreeingTimedReplayIsNotYetAHack) {
  // Two replays a side, the second not timed from outside (ratio 0).
  v1::Verification claim = Sequential(2, 4);
  v1::ReplayBundle r = Timed({3.5, 0}, {1.0, 1.0});
  v1::Verification v = Decide(claim, r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_FLAKY) << v.detail();
  EXPECT_EQ(v.reason(), "timing-unsteady");
  EXPECT_EQ(v.evidence().timed_replays(), 1);
  EXPECT_NE(v.detail().find("the only timed replay"), std::string::npos) << v.detail();
  EXPECT_EQ(MoreReplaysWanted(claim, r), 2);
  // The same on the next timed replay as well: a tampered timer.
  r = Timed({3.5, 0, 3.4, 1.0}, {1.0, 1.0, 1.0, 1.0});
  r.mutable_evaluations(3)->mutable_workloads(0)->set_t_k_independent_ns(3400);
  v = Decide(claim, r);
  EXPECT_EQ(v.outcome(), v1::VERDICT_REJECTED_HACK) << v.detail();
  EXPECT_EQ(v.reason(), "timing-disagreement");
  // Where the policy allows no more replays, the claim stays unaccepted.
  EXPECT_EQ(MoreReplaysWanted(Sequential(2, 2), Timed({3.5, 0}, {1.0, 1.0})), 0);
  EXPECT_EQ(Decide(Sequential(2, 2), Timed({3.5, 0}, {1.0, 1.0})).reason(), "timing-unsteady");
}

TEST(VerdictSequential, UnsteadyClocksGetMoreReplaysBeforeAVerdict) {
  // One of three disagreeing is too many to leave out at the first look...
  v1::Verification claim = Sequential(3, 6);
  v1::ReplayBundle r = Timed({1.0, 3.0, 1.0}, {1.0, 1.0, 1.0});
  EXPECT_EQ(Decide(claim, r).reason(), "timing-unsteady");
  EXPECT_EQ(MoreReplaysWanted(claim, r), 3);
  // ...and few enough among six.
  r = Timed({1.0, 3.0, 1.0, 1.0, 1.0, 1.0}, {1.0, 1.0, 1.0, 1.0, 1.0, 1.0});
  EXPECT_EQ(Decide(claim, r).outcome(), v1::VERDICT_ACCEPTED) << Decide(claim, r).detail();
  // Two of six stay unsteady, and the cap ends it there.
  r = Timed({1.0, 3.0, 3.0, 1.0, 1.0, 1.0}, {1.0, 1.0, 1.0, 1.0, 1.0, 1.0});
  EXPECT_EQ(Decide(claim, r).reason(), "timing-unsteady");
  EXPECT_EQ(MoreReplaysWanted(claim, r), 0);
}

// Clocks that disagree on half the replays or more are not a busy spell that
// more replays would show: the claim is decided at once, not replayed to the
// cap (the demo's two-thread candidates once took 20 replays each so).
TEST(VerdictSequential, MostlyUnsteadyClocksAreDecidedAtOnce) {
  v1::Verification claim = Sequential(4, 20);
  v1::ReplayBundle r = Timed({1.0, 3.0, 3.0, 1.0}, {1.0, 1.0, 1.0, 1.0});
  const v1::Verification v = Decide(claim, r);
  EXPECT_EQ(v.reason(), "timing-unsteady");
  EXPECT_EQ(v.evidence().timed_replays(), 4);
  EXPECT_EQ(v.evidence().disagreeing_replays(), 2);
  EXPECT_EQ(MoreReplaysWanted(claim, r), 0);
  // One of four is a minority: worth the next look.
  r = Timed({1.0, 3.0, 1.0, 1.0, 1.0}, {1.0, 1.0, 1.0, 1.0, 1.0});
  EXPECT_EQ(Decide(claim, r).evidence().disagreeing_replays(), 1);
}

TEST(Verdict, HonestFastCandidatesPassTheFasterDirection) {
  // The candidate's ratio matches the incumbent's.
  v1::Verification v = Decide(Claim(), Timed({0.85, 0.9}, {0.9, 0.88}));
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  EXPECT_NE(v.detail().find("fastest x0.85"), std::string::npos) << v.detail();
  // Warm caches help a memory-bound candidate more than its incumbent: x0.4
  // against x0.9 is within /3.
  v = Decide(Claim(), Timed({0.4, 0.45}, {0.9, 0.9}));
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  // A busy host slows the incumbent's outside run: that ratio does not
  // tighten the faster band (held at 1), only widens the slower one.
  v = Decide(Claim(), Timed({0.4, 2.5}, {2.0, 2.0}));
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
  // Without a timed incumbent replay nothing says how much warm caches give:
  // the faster direction is not judged.
  v = Decide(Claim(), Timed({0.1, 0.1}, {0, 0}));
  EXPECT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.detail();
}

}  // namespace
}  // namespace ratchet::verifier
