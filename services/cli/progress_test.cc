// The progress display and the report's plot, fed campaigns as the
// coordinator sends them; no clock is read (times are given).
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "services/cli/plot.h"
#include "services/cli/progress.h"

namespace ratchet::cli {
namespace {

v1::Campaign Running(int evaluations, int max_evaluations) {
  v1::Campaign c;
  c.set_id(7);
  c.mutable_spec()->set_name("demo");
  c.mutable_spec()->mutable_budget()->set_max_evaluations(max_evaluations);
  c.set_state(v1::CAMPAIGN_RUNNING);
  c.set_created_unix_ms(1'000'000);
  c.set_baseline_candidate_id(1);
  c.set_baseline_score(0.5);
  c.set_best_candidate_id(1);
  c.set_best_score(0.5);
  c.set_evaluations(evaluations);
  return c;
}

TEST(ProgressTest, EtaFromTheRateSoFar) {
  // 10 of 50 evaluations in 100 s: 6/min, 40 more take 400 s.
  const ProgressFigures f = EstimateProgress(Running(10, 50), 100);
  EXPECT_DOUBLE_EQ(f.fraction, 0.2);
  EXPECT_DOUBLE_EQ(f.evals_per_minute, 6);
  EXPECT_DOUBLE_EQ(f.eta_seconds, 400);
}

TEST(ProgressTest, WhicheverBudgetEndsFirst) {
  v1::Campaign c = Running(10, 50);
  c.mutable_spec()->mutable_budget()->set_max_wall_seconds(160);
  const ProgressFigures f = EstimateProgress(c, 100);
  EXPECT_DOUBLE_EQ(f.fraction, 100.0 / 160);
  EXPECT_DOUBLE_EQ(f.eta_seconds, 60);
}

TEST(ProgressTest, NoRateBeforeTheFirstEvaluation) {
  const ProgressFigures f = EstimateProgress(Running(0, 50), 30);
  EXPECT_EQ(f.evals_per_minute, 0);
  EXPECT_LT(f.eta_seconds, 0);
  EXPECT_FALSE(absl::StrContains(ProgressLine(Running(0, 50), 30, 200), "ETA"));
}

TEST(ProgressTest, PausesDoNotCount) {
  v1::Campaign c = Running(1, 5);
  c.set_paused_seconds(20);
  EXPECT_DOUBLE_EQ(CampaignActiveSeconds(c, 1'000'000 + 100'000), 80);
  c.set_paused_unix_ms(1'000'000 + 90'000);  // paused 10 s ago
  EXPECT_DOUBLE_EQ(CampaignActiveSeconds(c, 1'000'000 + 100'000), 70);
}

TEST(ProgressTest, TheLineShowsBarBudgetBestRateAndEta) {
  v1::Campaign c = Running(25, 50);
  c.set_best_candidate_id(12);
  c.set_best_score(0.75);
  c.set_best_verified(true);
  const std::string line = ProgressLine(c, 300, 200);
  EXPECT_TRUE(absl::StartsWith(line, "[##########..........] 25/50 evals")) << line;
  EXPECT_TRUE(absl::StrContains(line, "best 0.7500 (+50.0%, verified #12)")) << line;
  EXPECT_TRUE(absl::StrContains(line, "5.0/min")) << line;
  EXPECT_TRUE(absl::StrContains(line, "ETA 5m00s")) << line;
  EXPECT_LE(ProgressLine(c, 300, 40).size(), 40u);
}

TEST(ProgressTest, PlainOutputPrintsOnlyNews) {
  std::ostringstream out;
  ProgressDisplay display(out, /*terminal=*/false);
  v1::Campaign c = Running(3, 50);
  display.Update(c, 10);
  display.Update(c, 11);  // only the clock moved
  display.Update(c, 12);
  c.set_evaluations(4);
  display.Update(c, 13);
  display.Update(c, 80);  // a minute without news: one line to say it is alive
  std::string text = out.str();
  int lines = 0;
  for (char ch : text) lines += ch == '\n';
  EXPECT_EQ(lines, 3) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos);
}

TEST(ProgressTest, TerminalOutputRedrawsOneLineUnderTheEvents) {
  std::ostringstream out;
  ProgressDisplay display(out, /*terminal=*/true, 120);
  v1::Campaign c = Running(3, 50);
  display.Update(c, 10);
  display.Line("12:00:01  #4 evaluated: ok 0.61");
  c.set_evaluations(4);
  display.Update(c, 12);
  display.Finish();
  const std::string text = out.str();
  // The status is erased before the event and drawn again after it.
  const size_t event = text.find("\r\x1b[K12:00:01  #4 evaluated");
  ASSERT_NE(event, std::string::npos) << text;
  EXPECT_NE(text.find("4/50 evals", event), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');
}

TEST(PlotTest, BestScoreSeriesFromEvaluationsAndVerdicts) {
  v1::Campaign c = Running(3, 50);
  std::vector<v1::CandidateDetail> details(3);
  auto eval = [](v1::CandidateDetail* d, int64_t ms, double score) {
    v1::Evaluation* e = d->add_evaluations();
    e->set_kind(v1::JOB_EVALUATE);
    e->set_outcome(v1::OUTCOME_OK);
    e->set_created_unix_ms(ms);
    e->set_score(score);
  };
  eval(&details[0], 1'000'000 + 10'000, 0.5);  // the baseline
  eval(&details[1], 1'000'000 + 70'000, 0.8);
  details[1].mutable_candidate()->set_score(0.8);
  v1::Verification* v = details[1].add_verifications();
  v->set_outcome(v1::VERDICT_ACCEPTED);
  v->set_decided_unix_ms(1'000'000 + 130'000);
  eval(&details[2], 1'000'000 + 40'000, 0.6);
  v1::Evaluation* replay = details[2].add_evaluations();  // replays are not research
  replay->set_kind(v1::JOB_REPLAY);
  replay->set_outcome(v1::OUTCOME_OK);
  replay->set_score(0.9);

  const ScoreHistory h = HistoryOf(c, details);
  ASSERT_EQ(h.evaluations.size(), 3u);
  EXPECT_DOUBLE_EQ(h.evaluations[1].score, 0.6);  // in time order
  EXPECT_DOUBLE_EQ(h.evaluations[2].seconds, 70);
  ASSERT_EQ(h.verified.size(), 1u);
  EXPECT_DOUBLE_EQ(h.verified[0].seconds, 130);
  EXPECT_EQ(h.verified[0].evaluation, 3);
  EXPECT_DOUBLE_EQ(h.baseline, 0.5);

  const std::string svg = ScorePlotSvg(h);
  EXPECT_TRUE(absl::StartsWith(svg, "<svg")) << svg.substr(0, 80);
  EXPECT_TRUE(absl::StrContains(svg, "best verified"));
  EXPECT_TRUE(absl::StrContains(svg, "</svg>"));
  int dots = 0;
  for (size_t at = svg.find("<circle"); at != std::string::npos; at = svg.find("<circle", at + 1))
    ++dots;
  EXPECT_EQ(dots, 2 * 3 + 1);  // every evaluation in both panels, and the legend's
}

TEST(PlotTest, ANameCannotBreakTheDocument) {
  ScoreHistory h;
  h.title = "a <b> & \"c\"";
  const std::string svg = ScorePlotSvg(h);
  EXPECT_TRUE(absl::StrContains(svg, "a &lt;b&gt; &amp; &quot;c&quot;"));
}

}  // namespace
}  // namespace ratchet::cli
