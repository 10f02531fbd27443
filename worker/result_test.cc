#include "worker/result.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace ratchet::worker {
namespace {

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(RATCHET_WORKER_TESTDATA) + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunResult Exited(int code, double wall = 1.5) {
  RunResult r;
  r.exit_code = code;
  r.wall_seconds = wall;
  return r;
}

TEST(ResultTest, OkResultMapsEveryField) {
  auto eval = ParseHarnessResult(ReadTestdata("ok.json"));
  ASSERT_TRUE(eval.ok()) << eval.status();
  EXPECT_EQ(eval->outcome(), v1::OUTCOME_OK);
  EXPECT_DOUBLE_EQ(eval->score(), 0.62);
  ASSERT_EQ(eval->workloads_size(), 2);
  const auto& w = eval->workloads(0);
  EXPECT_EQ(w.index(), 0);
  EXPECT_EQ(w.axes(), "M=256,N=1024");
  EXPECT_TRUE(w.correct());
  EXPECT_DOUBLE_EQ(w.matched_fraction(), 1.0);
  EXPECT_DOUBLE_EQ(w.max_abs_error(), 3.1e-6);
  EXPECT_DOUBLE_EQ(w.t_k_ns(), 81234.0);
  EXPECT_DOUBLE_EQ(w.t_k_spread(), 0.04);
  EXPECT_DOUBLE_EQ(w.t_b_ns(), 120345.0);
  EXPECT_DOUBLE_EQ(w.t_sol_ns(), 20480.0);
  EXPECT_DOUBLE_EQ(w.score(), 0.66);
  EXPECT_EQ(eval->workloads(1).index(), 1);
  EXPECT_DOUBLE_EQ(eval->workloads(1).t_k_ns(), 150000);  // integer JSON number
}

TEST(ResultTest, RunWithOkFileUsesSandboxWallTime) {
  auto eval = EvaluationFromRun(Exited(0, 7.25), ReadTestdata("ok.json"), 120, "");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_OK);
  EXPECT_DOUBLE_EQ(eval.score(), 0.62);
  EXPECT_DOUBLE_EQ(eval.wall_seconds(), 7.25);  // not the file's 6.2
}

TEST(ResultTest, NonOkOutcomeHasZeroScoreAndKeepsMessage) {
  auto eval = EvaluationFromRun(Exited(0), ReadTestdata("wrong_answer.json"), 120, "");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_WRONG_ANSWER);
  EXPECT_EQ(eval.score(), 0);
  EXPECT_NE(eval.message().find("37% of elements match"), std::string::npos);
  ASSERT_EQ(eval.workloads_size(), 1);
  EXPECT_FALSE(eval.workloads(0).correct());

  auto compile = EvaluationFromRun(Exited(0), ReadTestdata("compile_error.json"), 120, "");
  EXPECT_EQ(compile.outcome(), v1::OUTCOME_COMPILE_ERROR);
  EXPECT_NE(compile.message().find("expected ;"), std::string::npos);
}

TEST(ResultTest, EveryOutcomeStringMaps) {
  for (const auto& [s, o] : std::vector<std::pair<std::string, v1::Outcome>>{
           {"ok", v1::OUTCOME_OK},
           {"compile_error", v1::OUTCOME_COMPILE_ERROR},
           {"wrong_answer", v1::OUTCOME_WRONG_ANSWER},
           {"timeout", v1::OUTCOME_TIMEOUT},
           {"crash", v1::OUTCOME_CRASH},
           {"out_of_bounds", v1::OUTCOME_OUT_OF_BOUNDS},
           {"harness_error", v1::OUTCOME_HARNESS_ERROR}}) {
    EXPECT_EQ(OutcomeFromString(s), o) << s;
    EXPECT_EQ(OutcomeLabel(o), s);
    auto eval = ParseHarnessResult("{\"outcome\": \"" + s + "\"}");
    ASSERT_TRUE(eval.ok()) << s;
    EXPECT_EQ(eval->outcome(), o);
  }
}

TEST(ResultTest, MalformedResultsAreHarnessErrors) {
  for (const char* name : {"truncated.json", "unknown_outcome.json", "bad_types.json"}) {
    auto parsed = ParseHarnessResult(ReadTestdata(name));
    EXPECT_FALSE(parsed.ok()) << name;
    auto eval = EvaluationFromRun(Exited(0), ReadTestdata(name), 120, "stage: timing\n");
    EXPECT_EQ(eval.outcome(), v1::OUTCOME_HARNESS_ERROR) << name;
    EXPECT_EQ(eval.score(), 0) << name;
    EXPECT_NE(eval.message().find("unreadable harness result"), std::string::npos);
    EXPECT_NE(eval.message().find("stage: timing"), std::string::npos);
  }
  EXPECT_NE(ParseHarnessResult(ReadTestdata("unknown_outcome.json")).status().message().find(
                "segfaulted"),
            std::string::npos);
  EXPECT_NE(ParseHarnessResult(ReadTestdata("bad_types.json")).status().message().find("score"),
            std::string::npos);
  EXPECT_FALSE(ParseHarnessResult("[1, 2]").ok());
}

TEST(ResultTest, NoResultFileAfterExitIsCrashWithStatus) {
  auto eval = EvaluationFromRun(Exited(3), std::nullopt, 120, "stage: compile\n");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(eval.message().find("exited with status 3 without a result"), std::string::npos);
  EXPECT_NE(eval.message().find("stage: compile"), std::string::npos);

  // exit(0) from candidate code before the harness wrote anything.
  auto empty = EvaluationFromRun(Exited(0), std::string(), 120, "");
  EXPECT_EQ(empty.outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(empty.message().find("status 0"), std::string::npos);
}

TEST(ResultTest, SignalIsCrashNamingTheSignalEvenWithAResultFile) {
  RunResult run;
  run.signal = 11;
  auto eval = EvaluationFromRun(run, ReadTestdata("ok.json"), 120, "");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(eval.message().find("SIGSEGV"), std::string::npos) << eval.message();
  EXPECT_EQ(eval.score(), 0);
}

TEST(ResultTest, TimeoutWinsOverEverything) {
  RunResult run;
  run.timed_out = true;
  run.signal = 9;
  run.wall_seconds = 30.01;
  auto eval = EvaluationFromRun(run, ReadTestdata("ok.json"), 30, "stage: timing workload 2/4\n");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_TIMEOUT);
  EXPECT_EQ(eval.score(), 0);
  EXPECT_NE(eval.message().find("30s"), std::string::npos) << eval.message();
  EXPECT_NE(eval.message().find("workload 2/4"), std::string::npos);
}

TEST(ResultTest, LongMessagesAreClipped) {
  std::string big(100000, 'x');
  auto eval = ParseHarnessResult("{\"outcome\": \"compile_error\", \"message\": \"" + big + "\"}");
  ASSERT_TRUE(eval.ok());
  EXPECT_LT(eval->message().size(), 17 * 1024u);
}

}  // namespace
}  // namespace ratchet::worker
