#include "services/cli/summary.h"

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ratchet::cli {
namespace {

namespace v1 = ratchet::v1;

// A finished campaign: baseline 0.5 (candidate 1), best 0.6 verified
// (candidate 9, BLOCK 32 -> 64 and UNROLL set), some failures and verdicts.
SummaryInput Finished() {
  SummaryInput in;
  v1::Campaign& c = in.campaign;
  c.set_id(3);
  c.mutable_spec()->set_name("demo");
  c.mutable_spec()->mutable_budget()->set_max_evaluations(30);
  c.set_state(v1::CAMPAIGN_FINISHED);
  c.set_message("budget reached");
  c.set_created_unix_ms(1'000'000);
  c.set_finished_unix_ms(1'090'500);
  c.set_baseline_candidate_id(1);
  c.set_baseline_score(0.5);
  c.set_best_candidate_id(9);
  c.set_best_score(0.6);
  c.set_best_verified(true);
  c.set_evaluations(30);
  (*c.mutable_outcomes())["OUTCOME_OK"] = 25;
  (*c.mutable_outcomes())["OUTCOME_COMPILE_ERROR"] = 2;
  (*c.mutable_outcomes())["wrong_answer"] = 3;
  auto add_verdict = [&](const std::string& outcome, const std::string& reason, int n) {
    auto* v = c.add_verdicts();
    v->set_outcome(outcome);
    v->set_reason(reason);
    v->set_count(n);
  };
  add_verdict("accepted", "", 2);
  add_verdict("rejected", "noise", 4);
  add_verdict("rejected", "wrong-on-replay", 1);

  auto* base = in.leaderboard.add_entries();
  base->mutable_candidate()->set_id(1);
  (*base->mutable_candidate()->mutable_solution()->mutable_knobs())["BLOCK"] = "32";
  base->set_score(0.5);

  v1::Candidate& best = *in.best.mutable_candidate();
  best.set_id(9);
  best.set_description("BLOCK 32->64, UNROLL 1->4");
  (*best.mutable_solution()->mutable_knobs())["BLOCK"] = "64";
  (*best.mutable_solution()->mutable_knobs())["UNROLL"] = "4";
  in.logs = ".ratchet/local-x";
  return in;
}

TEST(SummaryTest, StagesShowTheMeanPerJobInPipelineOrder) {
  SummaryInput in = Finished();
  v1::Campaign& c = in.campaign;
  (*c.mutable_stage_seconds())["timing"] = 8;
  (*c.mutable_stage_seconds())["compile"] = 4;
  (*c.mutable_stage_seconds())["oracle"] = 20;
  c.set_staged_jobs(4);
  EXPECT_NE(SummaryText(in).find(
                "  stages       compile 1.0 s, oracle 5.0 s, timing 2.0 s (mean of 4 jobs)"),
            std::string::npos)
      << SummaryText(in);
  const auto j = nlohmann::json::parse(SummaryJson(in));
  EXPECT_DOUBLE_EQ(j["stage_seconds_per_job"]["oracle"].get<double>(), 5.0);
  c.set_staged_jobs(0);
  EXPECT_EQ(SummaryText(in).find("stages"), std::string::npos);
}

TEST(SummaryTest, ASuiteHasARowPerProblemAndTheMeans) {
  SummaryInput a = Finished();
  a.campaign.mutable_spec()->mutable_problem()->set_name("rmsnorm");
  v1::Evaluation& e = *a.best.add_evaluations();
  e.set_outcome(v1::OUTCOME_OK);
  for (double t_k : {1000.0, 3000.0}) {
    v1::WorkloadResult& w = *e.add_workloads();
    w.set_t_k_ns(t_k);
    w.set_t_b_eager_ns(4000);
    w.set_t_b_compile_ns(2000);
    w.set_t_b_ns(2000);
    w.set_t_sol_ns(500);
    w.set_t_ref_kernel_ns(1500);  // graph SOL: 1 / (1 + 1000 / 1500) = 0.6
  }
  SummaryInput b = Finished();
  b.campaign.mutable_spec()->mutable_problem()->set_name("matmul");
  b.campaign.set_best_candidate_id(0);
  const std::string text = SuiteText({a, b});
  EXPECT_NE(text.find("rmsnorm"), std::string::npos) << text;
  EXPECT_NE(text.find("2.00us"), std::string::npos) << text;  // mean best T_k
  EXPECT_NE(text.find("4.00us"), std::string::npos) << text;  // mean T_b eager
  EXPECT_NE(text.find("2 problems"), std::string::npos) << text;
  EXPECT_NE(text.find("   0.600 "), std::string::npos) << text;  // the graph column
  const auto j = nlohmann::json::parse(SuiteJson({a, b}));
  ASSERT_EQ(j["problems"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["problems"][0]["best_t_k_ns"].get<double>(), 2000);
  EXPECT_TRUE(j["problems"][1]["best_score"].is_null());
  EXPECT_DOUBLE_EQ(j["mean_baseline_score"].get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j["problems"][0]["graph_score"].get<double>(), 0.6);
  EXPECT_TRUE(j["problems"][1]["graph_score"].is_null());  // no evaluation: unknown
  EXPECT_DOUBLE_EQ(j["mean_graph_score"].get<double>(), 0.6);
}

TEST(SummaryTest, NamesAreNormalised) {
  EXPECT_EQ(OutcomeName("OUTCOME_WRONG_ANSWER"), "wrong_answer");
  EXPECT_EQ(OutcomeName("timeout"), "timeout");
  EXPECT_EQ(CampaignStateName(v1::CAMPAIGN_CANCELLED), "cancelled");
}

TEST(SummaryTest, ChangedKnobsAgainstBaseline) {
  auto changed = ChangedKnobs(Finished());
  ASSERT_EQ(changed.size(), 2u);
  EXPECT_EQ(changed["BLOCK"], "32 -> 64");
  EXPECT_EQ(changed["UNROLL"], "default -> 4");
}

TEST(SummaryTest, ChangedKnobsFallBackToSpecBaseline) {
  SummaryInput in = Finished();
  in.leaderboard.Clear();  // no baseline entry: use the submitted knobs
  (*in.campaign.mutable_spec()->mutable_baseline()->mutable_knobs())["UNROLL"] = "4";
  auto changed = ChangedKnobs(in);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed["BLOCK"], "default -> 64");
}

TEST(SummaryTest, JsonHasTheDocumentedShape) {
  nlohmann::json j = nlohmann::json::parse(SummaryJson(Finished()));
  EXPECT_EQ(j["campaign"], 3);
  EXPECT_EQ(j["state"], "finished");
  EXPECT_DOUBLE_EQ(j["baseline"]["score"].get<double>(), 0.5);
  EXPECT_EQ(j["baseline"]["candidate"], 1);
  EXPECT_DOUBLE_EQ(j["best"]["score"].get<double>(), 0.6);
  EXPECT_EQ(j["best"]["candidate"], 9);
  EXPECT_EQ(j["best"]["verified"], true);
  EXPECT_EQ(j["best"]["description"], "BLOCK 32->64, UNROLL 1->4");
  EXPECT_EQ(j["best"]["knobs"]["BLOCK"], "64");
  EXPECT_EQ(j["best"]["changed_knobs"]["BLOCK"], "32 -> 64");
  EXPECT_NEAR(j["best"]["gain"].get<double>(), 0.2, 1e-12);
  EXPECT_EQ(j["evaluations"], 30);
  EXPECT_EQ(j["outcomes"]["ok"], 25);
  EXPECT_EQ(j["outcomes"]["compile_error"], 2);
  EXPECT_EQ(j["outcomes"]["wrong_answer"], 3);
  EXPECT_EQ(j["verdicts"]["accepted"], 2);
  EXPECT_EQ(j["verdicts"]["rejected"]["noise"], 4);
  EXPECT_EQ(j["verdicts"]["rejected"]["wrong-on-replay"], 1);
  EXPECT_NEAR(j["wall_seconds"].get<double>(), 90.5, 1e-9);  // from the timestamps
  EXPECT_NEAR(j["evaluations_per_hour"].get<double>(), 3600.0 * 30 / 90.5, 1e-9);
  EXPECT_EQ(j["logs"], ".ratchet/local-x");
  EXPECT_EQ(j["experience"]["mode"], "campaign");
  EXPECT_EQ(j["experience"]["lessons_written"], 0);
}

TEST(SummaryTest, ExperienceShowsLessonsWrittenAndRead) {
  SummaryInput in = Finished();
  EXPECT_EQ(SummaryText(in).find("experience"), std::string::npos);  // nothing to say
  in.campaign.set_lessons(28);
  EXPECT_NE(SummaryText(in).find("  experience   28 lessons written\n"), std::string::npos)
      << SummaryText(in);
  in.campaign.mutable_spec()->set_experience("shared");
  in.campaign.set_lessons_from_other_campaigns(14);
  EXPECT_NE(SummaryText(in).find(
                "  experience   28 lessons written; read 14 of other campaigns (shared)\n"),
            std::string::npos)
      << SummaryText(in);
  nlohmann::json j = nlohmann::json::parse(SummaryJson(in));
  EXPECT_EQ(j["experience"]["mode"], "shared");
  EXPECT_EQ(j["experience"]["lessons_written"], 28);
  EXPECT_EQ(j["experience"]["lessons_from_other_campaigns"], 14);
}

TEST(SummaryTest, JsonBeforeAnythingWasEvaluated) {
  SummaryInput in;
  in.campaign.set_id(4);
  in.campaign.set_state(v1::CAMPAIGN_FAILED);
  in.campaign.set_baseline_score(-1);
  in.wall_seconds = 2.5;
  nlohmann::json j = nlohmann::json::parse(SummaryJson(in));
  EXPECT_EQ(j["state"], "failed");
  EXPECT_TRUE(j["baseline"]["score"].is_null());
  EXPECT_TRUE(j["best"].is_null());
  EXPECT_TRUE(j["outcomes"].is_object());
  EXPECT_EQ(j["verdicts"]["accepted"], 0);
  EXPECT_TRUE(j["verdicts"]["rejected"].is_object());
  EXPECT_DOUBLE_EQ(j["wall_seconds"].get<double>(), 2.5);
}

TEST(SummaryTest, TextTellsTheStory) {
  std::string t = SummaryText(Finished());
  EXPECT_NE(t.find("campaign 3 (demo): finished - budget reached"), std::string::npos) << t;
  EXPECT_NE(t.find("baseline     SOL 0.5000  (candidate 1)"), std::string::npos) << t;
  EXPECT_NE(t.find("SOL 0.6000  (candidate 9, verified, +20.0% vs baseline)"), std::string::npos)
      << t;
  EXPECT_NE(t.find("what changed BLOCK 32->64, UNROLL 1->4"), std::string::npos) << t;
  EXPECT_NE(t.find("knobs        BLOCK: 32 -> 64, UNROLL: default -> 4"), std::string::npos) << t;
  EXPECT_NE(t.find("evaluations  30 of 30 (compile_error 2, ok 25, wrong_answer 3)"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("accepted 2, rejected 5 (noise 4, wrong-on-replay 1)"), std::string::npos)
      << t;
  EXPECT_NE(t.find("wall time    90.5 s (1193 evaluations an hour)"), std::string::npos) << t;
  EXPECT_NE(t.find("logs         .ratchet/local-x"), std::string::npos) << t;
}

// The T_b the best was scored against: the stored baseline or measured.
TEST(SummaryTest, TbPerWorkloadSaysWhetherItWasTheStoredBaseline) {
  SummaryInput in = Finished();
  auto* replay = in.best.add_evaluations();
  replay->set_id(40);
  replay->set_kind(v1::JOB_REPLAY);
  replay->set_outcome(v1::OUTCOME_OK);
  replay->add_workloads()->set_t_b_ns(999);
  auto* e = in.best.add_evaluations();
  e->set_id(31);
  e->set_kind(v1::JOB_EVALUATE);
  e->set_outcome(v1::OUTCOME_OK);
  auto* w0 = e->add_workloads();
  w0->set_index(0);
  w0->set_axes("N=64");
  w0->set_t_b_ns(1000);
  w0->set_t_b_given(true);
  w0->set_t_b_measurements(3);
  w0->set_t_b_spread(0.02);
  auto* w1 = e->add_workloads();
  w1->set_index(1);
  w1->set_axes("N=4096");
  w1->set_t_b_ns(2'500'000);
  w1->set_t_b_spread(0.011);
  EXPECT_EQ(TbSource(*w0), "stored n=3 spread 2.0%");
  EXPECT_EQ(TbSource(*w1), "measured spread 1.1%");
  EXPECT_EQ(TbSource(v1::WorkloadResult()), "-");
  ASSERT_NE(TbEvaluation(in.best), nullptr);
  EXPECT_EQ(TbEvaluation(in.best)->id(), 31);  // the evaluation, not the replay

  std::string t = SummaryText(in);
  EXPECT_NE(t.find("T_b          (evaluation #31)"), std::string::npos) << t;
  EXPECT_NE(t.find("N=64"), std::string::npos) << t;
  EXPECT_NE(t.find("    0   N=64    1.00us    stored n=3 spread 2.0%\n"), std::string::npos) << t;
  EXPECT_NE(t.find("    1   N=4096  2.50ms    measured spread 1.1%\n"), std::string::npos) << t;
  auto j = nlohmann::json::parse(SummaryJson(in));
  ASSERT_EQ(j["best"]["t_b"].size(), 2u);
  EXPECT_EQ(j["best"]["t_b"][0]["stored"], true);
  EXPECT_EQ(j["best"]["t_b"][0]["measurements"], 3);
  EXPECT_DOUBLE_EQ(j["best"]["t_b"][1]["t_b_ns"].get<double>(), 2.5e6);
  EXPECT_EQ(j["best"]["t_b"][1]["stored"], false);
}

TEST(SummaryTest, TextWhenBaselineStaysBest) {
  SummaryInput in = Finished();
  in.campaign.set_best_candidate_id(1);
  in.campaign.set_best_score(0.5);
  std::string t = SummaryText(in);
  EXPECT_NE(t.find("the baseline; no verified improvement"), std::string::npos) << t;
  nlohmann::json j = nlohmann::json::parse(SummaryJson(in));
  EXPECT_EQ(j["best"]["is_baseline"], true);
  EXPECT_TRUE(j["best"]["changed_knobs"].empty());  // detail is of another candidate
}

TEST(SummaryTest, UnverifiedBestIsFlagged) {
  SummaryInput in = Finished();
  in.campaign.set_best_verified(false);
  EXPECT_NE(SummaryText(in).find("NOT verified"), std::string::npos);
}

}  // namespace
}  // namespace ratchet::cli

namespace ratchet::cli {
namespace {

TEST(LlmLine, ShowsSpendAndAnswersForLlmCampaignsOnly) {
  ratchet::v1::Campaign c;
  EXPECT_EQ(LlmLine(c), "");
  c.mutable_spec()->set_proposer(v1::PROPOSER_LLM);
  c.mutable_spec()->mutable_llm()->set_max_cost_usd(5);
  c.set_llm_requests(4);
  c.set_llm_retries(3);
  c.set_llm_malformed(1);
  c.set_llm_prompt_tokens(3500);
  c.set_llm_completion_tokens(650);
  c.set_llm_cost_usd(0.0048);
  EXPECT_EQ(LlmLine(c),
            "4 requests (3 retried, 0 failed), 1 malformed, 0 duplicate; 3500+650 tokens, "
            "$0.0048 of $5.00");
  SummaryInput in;
  in.campaign = c;
  EXPECT_NE(SummaryText(in).find("  llm          4 requests"), std::string::npos);
}

}  // namespace
}  // namespace ratchet::cli

namespace ratchet::cli {
namespace {

// Training campaigns read in their own figures: the score is 1 / BPB
// (train-budget) or 3600 / seconds (train-target).
TEST(TrainingScoreText, BpbOrTimeToTarget) {
  ratchet::v1::Campaign c;
  EXPECT_EQ(TrainingScoreText(c, 0.5), "");  // a kernel campaign: the SOL score
  c.mutable_spec()->set_task(ratchet::v1::TASK_TRAIN_BUDGET);
  EXPECT_EQ(TrainingScoreText(c, 2.0), "BPB 0.5000");
  c.mutable_spec()->set_task(ratchet::v1::TASK_TRAIN_TARGET);
  EXPECT_EQ(TrainingScoreText(c, 12.0), "300.0 s to target");
  EXPECT_EQ(TrainingScoreText(c, 0), "target missed");
}

TEST(TrainingScoreText, TheJsonSummaryCarriesBpb) {
  SummaryInput in;
  in.campaign.mutable_spec()->set_task(ratchet::v1::TASK_TRAIN_BUDGET);
  in.campaign.set_baseline_candidate_id(1);
  in.campaign.set_baseline_score(0.5);
  in.campaign.set_best_candidate_id(1);
  in.campaign.set_best_score(0.5);
  const nlohmann::json j = nlohmann::json::parse(SummaryJson(in));
  EXPECT_DOUBLE_EQ(j["baseline"]["bpb"].get<double>(), 2.0);
  EXPECT_NE(SummaryText(in).find("BPB 2.0000"), std::string::npos) << SummaryText(in);
}

}  // namespace
}  // namespace ratchet::cli
