#include "services/cli/spec.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "spec/defaults.h"

namespace ratchet::cli {
namespace {

namespace fs = std::filesystem;

constexpr char kDefinition[] = R"({"name": "matmul_cpu", "op_type": "gemm",
  "axes": {"M": {"type": "var"}}, "inputs": {}, "outputs": {"C": {"shape": ["M"], "dtype": "float32"}},
  "reference": "def run(): pass"})";
constexpr char kWorkloads[] =
    "{\"axes\": {\"M\": 64}, \"inputs\": {}}\n{\"axes\": {\"M\": 128}, \"inputs\": {}}\n";
constexpr char kSolution[] = R"({"name": "base", "definition": "matmul_cpu",
  "language": "cpp", "sources": ["kernel.cc"], "knobs": {}})";

constexpr char kFullSpec[] = R"(name: demo-matmul
task: kernel
problem: cpu/matmul
baseline: cpu/matmul/baseline
threads: 3
proposer: random
seed: 7
budget: {max_evaluations: 30, max_wall_seconds: 480}
verification: {replays: 4, min_gain: 0.02}
harness: {warmups: 2, repetitions: 15, correctness_rounds: 2, timeout_seconds: 90, screen: on}
device: cpu
in_flight_per_thread: 5
)";

constexpr char kMinimalSpec[] = "problem: cpu/matmul\nbaseline: cpu/matmul/baseline\n";

class SpecTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("cli_spec_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    Write("cpu/matmul/definition.json", kDefinition);
    Write("cpu/matmul/workload.jsonl", kWorkloads);
    Write("cpu/matmul/baseline/solution.json", kSolution);
    Write("cpu/matmul/baseline/kernel.cc", "extern \"C\" int ratchet_run() { return 0; }\n");
    Write("cpu/matmul/baseline/include/util.h", "#pragma once\n");
    Write("cpu/matmul/baseline/.hidden/junk", "skip me");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& rel, const std::string& content) {
    fs::path p = dir_ / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }
  std::string Spec(const std::string& yaml) {
    Write("spec.yaml", yaml);
    return (dir_ / "spec.yaml").string();
  }
  // The error message for a spec that must fail.
  std::string Error(const std::string& yaml) {
    auto spec = LoadCampaignSpec(Spec(yaml));
    EXPECT_FALSE(spec.ok()) << "accepted:\n" << yaml;
    return spec.ok() ? "" : std::string(spec.status().message());
  }

  fs::path dir_;
};

TEST_F(SpecTest, LoadsEveryField) {
  auto spec = LoadCampaignSpec(Spec(kFullSpec));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "demo-matmul");
  EXPECT_EQ(spec->task(), v1::TASK_KERNEL);
  EXPECT_EQ(spec->threads(), 3);
  EXPECT_EQ(spec->proposer(), v1::PROPOSER_RANDOM);
  EXPECT_EQ(spec->seed(), 7u);
  EXPECT_EQ(spec->budget().max_evaluations(), 30);
  EXPECT_DOUBLE_EQ(spec->budget().max_wall_seconds(), 480);
  EXPECT_EQ(spec->verification().replays(), 4);
  EXPECT_DOUBLE_EQ(spec->verification().min_gain(), 0.02);
  EXPECT_EQ(spec->harness().warmups(), 2);
  EXPECT_EQ(spec->harness().repetitions(), 15);
  EXPECT_EQ(spec->harness().correctness_rounds(), 2);
  EXPECT_DOUBLE_EQ(spec->harness().timeout_seconds(), 90);
  EXPECT_EQ(spec->harness().screen(), v1::SCREEN_ON);
  EXPECT_EQ(spec->device(), v1::DEVICE_CPU);
  EXPECT_EQ(spec->in_flight_per_thread(), 5);

  EXPECT_EQ(spec->problem().name(), "matmul_cpu");
  EXPECT_EQ(spec->problem().definition_json(), kDefinition);
  EXPECT_EQ(spec->problem().workload_jsonl(), kWorkloads);

  const auto& files = spec->baseline().files();
  EXPECT_EQ(files.size(), 3u);  // hidden folder skipped
  EXPECT_EQ(files.at("solution.json"), kSolution);
  EXPECT_EQ(files.at("include/util.h"), "#pragma once\n");
  EXPECT_TRUE(files.count("kernel.cc"));
  EXPECT_TRUE(spec->baseline().knobs().empty());
}

TEST_F(SpecTest, FillsDefaults) {
  auto spec = LoadCampaignSpec(Spec(kMinimalSpec));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "spec");  // the file's stem
  EXPECT_EQ(spec->task(), spec::kDefaultTask);
  EXPECT_EQ(spec->threads(), spec::kDefaultThreads);
  EXPECT_EQ(spec->proposer(), spec::kDefaultProposer);
  EXPECT_EQ(spec->seed(), spec::kDefaultSeed);
  EXPECT_EQ(spec->budget().max_evaluations(), spec::kDefaultMaxEvaluations);
  EXPECT_EQ(spec->verification().replays(), spec::kDefaultReplays);
  EXPECT_DOUBLE_EQ(spec->verification().min_gain(), spec::kDefaultMinGain);
  EXPECT_EQ(spec->harness().repetitions(), spec::kDefaultRepetitions);
  EXPECT_EQ(spec->harness().warmups(), spec::kDefaultWarmups);
  EXPECT_EQ(spec->harness().correctness_rounds(), spec::kDefaultCorrectnessRounds);
  EXPECT_DOUBLE_EQ(spec->harness().timeout_seconds(), spec::kDefaultTimeoutSeconds);
  EXPECT_EQ(spec->harness().screen(), spec::kDefaultScreen);
  EXPECT_EQ(spec->device(), spec::kDefaultDevice);
  EXPECT_EQ(spec->in_flight_per_thread(), spec::kDefaultInFlightPerThread);
}

// Issue 13: the CLI and the coordinator once filled different defaults
// (50 evaluations or 20, 2 threads or 1). What the CLI sends for a YAML that
// leaves everything out is what the coordinator makes of a gRPC spec that
// leaves everything out, but for the fields whose 0 is a setting of its own
// (seed, min_gain), which the CLI writes.
TEST_F(SpecTest, DefaultsAreTheCoordinators) {
  auto spec = LoadCampaignSpec(Spec(kMinimalSpec));
  ASSERT_TRUE(spec.ok()) << spec.status();
  v1::CampaignSpec bare;
  bare.set_name(spec->name());
  *bare.mutable_problem() = spec->problem();
  *bare.mutable_baseline() = spec->baseline();
  bare.set_seed(spec::kDefaultSeed);
  bare.mutable_verification()->set_min_gain(spec::kDefaultMinGain);
  spec::ApplyDefaults(&bare);  // as SubmitCampaign does
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*spec, bare))
      << spec->DebugString() << "\nvs\n" << bare.DebugString();
}

TEST_F(SpecTest, PathsAreRelativeToTheYamlFile) {
  Write("specs/nested.yaml", "problem: ../cpu/matmul\nbaseline: ../cpu/matmul/baseline\n");
  auto spec = LoadCampaignSpec((dir_ / "specs/nested.yaml").string());
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->problem().name(), "matmul_cpu");
}

TEST_F(SpecTest, MissingSpecFile) {
  auto spec = LoadCampaignSpec((dir_ / "nope.yaml").string());
  ASSERT_FALSE(spec.ok());
  EXPECT_NE(spec.status().message().find("nope.yaml"), std::string::npos);
  EXPECT_NE(spec.status().message().find("no such spec file"), std::string::npos);
}

TEST_F(SpecTest, InvalidYaml) {
  std::string e = Error("problem: [unclosed\n");
  EXPECT_NE(e.find("spec.yaml"), std::string::npos) << e;
  EXPECT_NE(e.find("not valid YAML"), std::string::npos) << e;
}

TEST_F(SpecTest, NotAMap) {
  EXPECT_NE(Error("- a\n- b\n").find("expected a map"), std::string::npos);
}

TEST_F(SpecTest, UnknownTopLevelKey) {
  std::string e = Error(std::string(kMinimalSpec) + "thread: 2\n");
  EXPECT_NE(e.find("spec.yaml:3: thread: unknown key"), std::string::npos) << e;
}

TEST_F(SpecTest, UnknownNestedKey) {
  std::string e = Error(std::string(kMinimalSpec) + "budget: {max_evals: 3}\n");
  EXPECT_NE(e.find("budget.max_evals: unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("max_evaluations"), std::string::npos) << e;  // lists the known ones
}

TEST_F(SpecTest, WrongTypeInteger) {
  std::string e = Error(std::string(kMinimalSpec) + "threads: two\n");
  EXPECT_NE(e.find("spec.yaml:3: threads: expected an integer, got 'two'"), std::string::npos)
      << e;
}

TEST_F(SpecTest, WrongTypeNumber) {
  std::string e = Error(std::string(kMinimalSpec) + "verification: {min_gain: lots}\n");
  EXPECT_NE(e.find("verification.min_gain: expected a number"), std::string::npos) << e;
}

TEST_F(SpecTest, SignificanceOutOfRange) {
  std::string e = Error(std::string(kMinimalSpec) + "verification: {significance: 0}\n");
  EXPECT_NE(e.find("spec.yaml:3: verification.significance: 0 is out of range (0, 0.5)"),
            std::string::npos)
      << e;
  e = Error(std::string(kMinimalSpec) + "verification: {significance: 0.5}\n");
  EXPECT_NE(e.find("verification.significance: 0.5 is out of range (0, 0.5)"), std::string::npos)
      << e;
}

TEST_F(SpecTest, VerificationPolicyKeys) {
  auto spec = LoadCampaignSpec(Spec(std::string(kMinimalSpec) +
                                    "verification:\n"
                                    "  tiers: [independent-timing, independent-timing]\n"
                                    "  timing_tolerance: 0.25\n"
                                    "  noise_sigmas: 3\n"
                                    "  max_replays: 8\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto& v = spec->verification();
  // The repeat dropped; guards and replay always run.
  EXPECT_THAT(v.tiers(), ::testing::ElementsAre("guards", "replay", "independent-timing"));
  EXPECT_DOUBLE_EQ(v.timing_tolerance(), 0.25);
  EXPECT_DOUBLE_EQ(v.noise_sigmas(), 3);
  EXPECT_EQ(v.max_replays(), 8);
  // Left out: the spec's defaults, as the coordinator fills them.
  spec = LoadCampaignSpec(Spec(kMinimalSpec));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->verification().tiers_size(), 4);
  EXPECT_EQ(spec->verification().timing_tolerance(), spec::kDefaultTimingTolerance);
  EXPECT_EQ(spec->verification().noise_sigmas(), spec::kDefaultNoiseSigmas);
  EXPECT_EQ(spec->verification().max_replays(), spec::kDefaultMaxReplays);
}

TEST_F(SpecTest, VerificationPolicyErrors) {
  std::string e = Error(std::string(kMinimalSpec) + "verification: {tiers: [replay, fuzz]}\n");
  EXPECT_NE(e.find("verification.tiers: unknown tier 'fuzz' (known: guards, replay, "
                   "adversarial, independent-timing)"),
            std::string::npos)
      << e;
  e = Error(std::string(kMinimalSpec) + "verification: {tiers: adversarial}\n");
  EXPECT_NE(e.find("verification.tiers: expected a list of tiers"), std::string::npos) << e;
  e = Error(std::string(kMinimalSpec) + "verification: {timing_tolerance: 0}\n");
  EXPECT_NE(e.find("verification.timing_tolerance: 0 is out of range (0, 10]"),
            std::string::npos)
      << e;
  e = Error(std::string(kMinimalSpec) + "verification: {noise_sigmas: -1}\n");
  EXPECT_NE(e.find("verification.noise_sigmas: -1 is out of range (0, 100]"), std::string::npos)
      << e;
  // The cap of replays a side (spec::kMaxReplaysPerSide).
  e = Error(std::string(kMinimalSpec) + "verification: {max_replays: 21}\n");
  EXPECT_NE(e.find("verification.max_replays: 21 is out of range [1, 20]"), std::string::npos)
      << e;
  e = Error(std::string(kMinimalSpec) + "verification: {replays: 21}\n");
  EXPECT_NE(e.find("verification.replays: 21 is out of range [1, 20]"), std::string::npos) << e;
}

TEST_F(SpecTest, WrongTypeString) {
  std::string e = Error(std::string(kMinimalSpec) + "name: [a, b]\n");
  EXPECT_NE(e.find("name: expected a string, got a list"), std::string::npos) << e;
}

TEST_F(SpecTest, SectionNotAMap) {
  std::string e = Error(std::string(kMinimalSpec) + "harness: 5\n");
  EXPECT_NE(e.find("harness: expected a map"), std::string::npos) << e;
}

TEST_F(SpecTest, EmptyValue) {
  std::string e = Error(std::string(kMinimalSpec) + "seed:\n");
  EXPECT_NE(e.find("seed: expected an integer, got nothing"), std::string::npos) << e;
}

TEST_F(SpecTest, UnknownTask) {
  std::string e = Error(std::string(kMinimalSpec) + "task: speedrun\n");
  EXPECT_NE(e.find("unknown task 'speedrun' (known: kernel, sleep, train-budget, train-target)"),
            std::string::npos)
      << e;
}

// A training campaign: the project by value, the data folder made absolute
// and its manifest hashed, the training rules, its defaults.
TEST_F(SpecTest, TrainingCampaign) {
  Write("gpt/train.py", "loop\n");
  Write("gpt/model.py", "gpt\n");
  Write("gpt/solution.json", "{\"knobs\": {\"LR_SCALE\": {\"choices\": [1, 2], \"default\": 1}}}");
  Write("gpt/__pycache__/model.cpython-311.pyc", "\x01\x02");
  Write("data/manifest.json", "{\"tokenizer\": \"gpt2\"}\n");
  const std::string yaml =
      "name: tiny\ntask: train-budget\nbaseline: gpt\n"
      "training: {data: data, budget_seconds: 20, nproc: 2, editable: [model.py, train.py]}\n";
  auto spec = LoadCampaignSpec(Spec(yaml));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->task(), v1::TASK_TRAIN_BUDGET);
  EXPECT_EQ(spec->training().data_dir(), fs::weakly_canonical(dir_ / "data").string());
  EXPECT_EQ(spec->training().data_manifest_sha256().size(), 64u);
  EXPECT_EQ(spec->training().budget_seconds(), 20);
  EXPECT_EQ(spec->training().nproc(), 2);
  EXPECT_EQ(spec->training().editable_size(), 2);
  EXPECT_EQ(spec->training().eval_seq_len(), spec::kDefaultEvalSeqLen);
  EXPECT_GT(spec->harness().timeout_seconds(), 20);
  EXPECT_EQ(spec->baseline().files().size(), 3u);  // no byte-code cache

  std::string e = Error("task: train-budget\nbaseline: gpt\n");
  EXPECT_NE(e.find("needs a training: section"), std::string::npos) << e;
  e = Error("task: train-budget\nbaseline: gpt\ntraining: {budget_seconds: 20}\n");
  EXPECT_NE(e.find("training.data: missing"), std::string::npos) << e;
  e = Error("task: train-budget\nbaseline: gpt\ntraining: {data: nowhere, budget_seconds: 20}\n");
  EXPECT_NE(e.find("has no manifest.json"), std::string::npos) << e;
  e = Error("task: train-target\nbaseline: gpt\ntraining: {data: data}\n");
  EXPECT_NE(e.find("training.target_loss: missing"), std::string::npos) << e;
  e = Error(std::string(kMinimalSpec) + "training: {data: data}\n");
  EXPECT_NE(e.find("training: only used with task: train-budget or train-target"),
            std::string::npos)
      << e;
  e = Error("task: train-budget\nbaseline: gpt\ntraining: {data: data, budget_seconds: 5, "
            "speed: 9}\n");
  EXPECT_NE(e.find("speed"), std::string::npos) << e;
}

TEST_F(SpecTest, UnknownProposer) {
  std::string e = Error(std::string(kMinimalSpec) + "proposer: genius\n");
  EXPECT_NE(e.find("unknown proposer 'genius' (known: evolve, random, grid, replay, llm)"),
            std::string::npos)
      << e;
}

TEST_F(SpecTest, UnknownDevice) {
  std::string e = Error(std::string(kMinimalSpec) + "device: tpu\n");
  EXPECT_NE(e.find("unknown device 'tpu'"), std::string::npos) << e;
}

TEST_F(SpecTest, ThreadsBelowOne) {
  std::string e = Error(std::string(kMinimalSpec) + "threads: 0\n");
  EXPECT_NE(e.find("spec.yaml:3: threads: 0 is out of range [1, 64]"), std::string::npos) << e;
}

TEST_F(SpecTest, NegativeSeed) {
  EXPECT_NE(Error(std::string(kMinimalSpec) + "seed: -1\n").find("seed: -1 is out of range [0, "),
            std::string::npos);
}

TEST_F(SpecTest, NonPositiveTimeout) {
  std::string e = Error(std::string(kMinimalSpec) + "harness: {timeout_seconds: 0}\n");
  EXPECT_NE(e.find("harness.timeout_seconds: 0 is out of range (0, 86400]"), std::string::npos)
      << e;
}

TEST_F(SpecTest, UnknownScreen) {
  std::string e = Error(std::string(kMinimalSpec) + "harness: {screen: maybe}\n");
  EXPECT_NE(e.find("harness.screen: unknown screen 'maybe' (known: auto, on, off)"),
            std::string::npos)
      << e;
}

TEST_F(SpecTest, ZeroBudget) {
  std::string e = Error(std::string(kMinimalSpec) + "budget: {max_evaluations: 0}\n");
  EXPECT_NE(e.find("budget.max_evaluations: 0 is out of range [1, 100000]"), std::string::npos)
      << e;
}

TEST_F(SpecTest, TooLargeInteger) {
  std::string e = Error(std::string(kMinimalSpec) + "threads: 99999999999\n");
  EXPECT_NE(e.find("threads: 99999999999 is out of range [1, 64]"), std::string::npos) << e;
}

TEST_F(SpecTest, MissingProblemKey) {
  std::string e = Error("baseline: cpu/matmul/baseline\n");
  EXPECT_NE(e.find("problem: missing"), std::string::npos) << e;
}

TEST_F(SpecTest, MissingBaselineKey) {
  // No baseline is derived from the problem's reference; this one has none
  // to derive from (no outputs).
  Write("cpu/noout/definition.json", R"({"name": "noout", "axes": {"M": {"type": "var"}},
    "inputs": {}, "outputs": {}, "reference": "def run(): pass"})");
  Write("cpu/noout/workload.jsonl", kWorkloads);
  std::string e = Error("problem: cpu/noout\n");
  EXPECT_NE(e.find("baseline: missing, and none can be derived"), std::string::npos) << e;
}

TEST_F(SpecTest, ProblemFolderMissing) {
  std::string e = Error("problem: cpu/nothing\nbaseline: cpu/matmul/baseline\n");
  EXPECT_NE(e.find("spec.yaml:1: problem: problem folder"), std::string::npos) << e;
  EXPECT_NE(e.find("cpu/nothing does not exist"), std::string::npos) << e;
}

TEST_F(SpecTest, ProblemWithoutDefinition) {
  Write("cpu/empty/workload.jsonl", kWorkloads);
  std::string e = Error("problem: cpu/empty\nbaseline: cpu/matmul/baseline\n");
  EXPECT_NE(e.find("has no definition.json"), std::string::npos) << e;
}

TEST_F(SpecTest, ProblemWithoutWorkloads) {
  Write("cpu/nowl/definition.json", kDefinition);
  std::string e = Error("problem: cpu/nowl\nbaseline: cpu/matmul/baseline\n");
  EXPECT_NE(e.find("has no workload.jsonl"), std::string::npos) << e;
}

TEST_F(SpecTest, DefinitionNotJson) {
  Write("cpu/matmul/definition.json", "{ nope");
  std::string e = Error(kMinimalSpec);
  EXPECT_NE(e.find("definition.json: not valid JSON"), std::string::npos) << e;
}

TEST_F(SpecTest, DefinitionWithoutName) {
  Write("cpu/matmul/definition.json", R"({"op_type": "gemm"})");
  std::string e = Error(kMinimalSpec);
  EXPECT_NE(e.find("definition.json: needs a non-empty string \"name\""), std::string::npos) << e;
}

TEST_F(SpecTest, BrokenWorkloadLine) {
  Write("cpu/matmul/workload.jsonl", "{\"axes\": {}}\n\n[1, 2\n");
  std::string e = Error(kMinimalSpec);
  EXPECT_NE(e.find("workload.jsonl:3: not a JSON object"), std::string::npos) << e;
}

TEST_F(SpecTest, EmptyWorkloads) {
  Write("cpu/matmul/workload.jsonl", "\n");
  EXPECT_NE(Error(kMinimalSpec).find("has no workloads"), std::string::npos);
}

TEST_F(SpecTest, BaselineFolderMissing) {
  std::string e = Error("problem: cpu/matmul\nbaseline: cpu/matmul/gone\n");
  EXPECT_NE(e.find("spec.yaml:2: baseline: baseline folder"), std::string::npos) << e;
}

TEST_F(SpecTest, BaselineIsAFile) {
  std::string e = Error("problem: cpu/matmul\nbaseline: cpu/matmul/definition.json\n");
  EXPECT_NE(e.find("is not a folder"), std::string::npos) << e;
}

TEST_F(SpecTest, BaselineWithoutSolutionJson) {
  Write("cpu/other/kernel.cc", "int x;\n");
  std::string e = Error("problem: cpu/matmul\nbaseline: cpu/other\n");
  EXPECT_NE(e.find("has no solution.json"), std::string::npos) << e;
}

TEST_F(SpecTest, BaselineWithBinaryFile) {
  Write("cpu/matmul/baseline/blob.bin", std::string("\x7f" "ELF\0\0\xff", 7));
  std::string e = Error(kMinimalSpec);
  EXPECT_NE(e.find("blob.bin: not a UTF-8 text file"), std::string::npos) << e;
}

TEST_F(SpecTest, SchedulingKeys) {
  const std::string base = "problem: cpu/matmul\nbaseline: cpu/matmul/baseline\n";
  auto spec = LoadCampaignSpec(Spec(base));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->weight(), 1);  // default
  EXPECT_EQ(spec->gpus(), 0);
  // The CUDA harness runs CUDA sources only (checked at submit).
  Write("cpu/matmul/baseline/solution.json",
        R"({"name": "base", "language": "cuda", "sources": ["kernel.cc"]})");
  spec = LoadCampaignSpec(
      Spec(base + "weight: 2.5\ndevice: cuda\ngpu_model: H100\ngpus: 2\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->weight(), 2.5);
  EXPECT_EQ(spec->gpu_model(), "H100");
  EXPECT_EQ(spec->gpus(), 2);
  EXPECT_NE(Error(base + "weight: 0\n").find("weight: 0 is out of range (0, 1000]"),
            std::string::npos);
  EXPECT_NE(Error(base + "weight: -1\n").find("weight: -1 is out of range (0, 1000]"),
            std::string::npos);
  EXPECT_NE(Error(base + "gpus: 0\ndevice: cuda\n").find("gpus: 0 is out of range [1, 64]"),
            std::string::npos);
  // Rules across fields are the validator's; the message names the line.
  EXPECT_NE(Error(base + "gpu_model: H100\n").find("spec.yaml:3: gpu_model: needs device: cuda"),
            std::string::npos);
  EXPECT_NE(Error(base + "sleep_ms: 5\n").find("spec.yaml:3: sleep_ms: only used with task: sleep"),
            std::string::npos);
}

TEST_F(SpecTest, SleepTaskNeedsNoProblem) {
  auto spec = LoadCampaignSpec(Spec("task: sleep\nsleep_ms: 5\nbudget:\n  max_evaluations: 1000\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->task(), v1::TASK_SLEEP);
  EXPECT_EQ(spec->sleep_ms(), 5);
  EXPECT_EQ(spec->budget().max_evaluations(), 1000);
}

TEST_F(SpecTest, AcceptsUtf8Text) {
  Write("cpu/matmul/baseline/NOTES.md", "µs — naïve\n");
  auto spec = LoadCampaignSpec(Spec(kMinimalSpec));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->baseline().files().at("NOTES.md"), "µs — naïve\n");
}

// An llm spec names an endpoint that the coordinator's operator configured
// (docs/llm.md): the URL and the key stay the operator's.
constexpr char kLlmSpec[] = R"(problem: cpu/matmul
baseline: cpu/matmul/baseline
proposer: llm
llm:
  endpoint: local-vllm
  models:
    - {name: big, weight: 1, prompt_price_per_1k: 0.003, completion_price_per_1k: 0.015}
    - small
  temperature: 0.2
  max_tokens: 2000
  timeout_seconds: 30
  max_retries: 2
  max_concurrency: 3
  max_cost_usd: 1.5
  merge_every: 4
)";

TEST_F(SpecTest, LoadsLlmSettings) {
  auto spec = LoadCampaignSpec(Spec(kLlmSpec));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->proposer(), v1::PROPOSER_LLM);
  const auto& llm = spec->llm();
  EXPECT_EQ(llm.endpoint(), "local-vllm");
  EXPECT_TRUE(llm.base_url().empty());
  EXPECT_TRUE(llm.api_key_env().empty());
  ASSERT_EQ(llm.models_size(), 2);
  EXPECT_EQ(llm.models(0).name(), "big");
  EXPECT_DOUBLE_EQ(llm.models(0).prompt_price_per_1k(), 0.003);
  EXPECT_DOUBLE_EQ(llm.models(0).completion_price_per_1k(), 0.015);
  EXPECT_EQ(llm.models(1).name(), "small");  // a bare name: weight 1, free
  EXPECT_DOUBLE_EQ(llm.models(1).weight(), spec::kDefaultLlmModelWeight);
  EXPECT_DOUBLE_EQ(llm.temperature(), 0.2);
  EXPECT_EQ(llm.max_tokens(), 2000);
  EXPECT_DOUBLE_EQ(llm.timeout_seconds(), 30);
  EXPECT_EQ(llm.max_retries(), 2);
  EXPECT_EQ(llm.max_concurrency(), 3);
  EXPECT_DOUBLE_EQ(llm.max_cost_usd(), 1.5);
  EXPECT_EQ(llm.merge_every(), 4);
}

TEST_F(SpecTest, LlmDefaults) {
  auto spec = LoadCampaignSpec(
      Spec(std::string(kMinimalSpec) + "proposer: llm\nllm: {endpoint: local-vllm}\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->llm().models_size(), 0);  // the endpoint's default model
  EXPECT_DOUBLE_EQ(spec->llm().temperature(), spec::kDefaultLlmTemperature);
  EXPECT_EQ(spec->llm().max_tokens(), spec::kDefaultLlmMaxTokens);
  EXPECT_DOUBLE_EQ(spec->llm().timeout_seconds(), spec::kDefaultLlmTimeoutSeconds);
  EXPECT_EQ(spec->llm().max_retries(), spec::kDefaultLlmMaxRetries);
  EXPECT_EQ(spec->llm().max_concurrency(), spec::kDefaultLlmMaxConcurrency);
  EXPECT_DOUBLE_EQ(spec->llm().max_cost_usd(), 0);  // no cap
  // 0 is a setting of these two: written, it stays.
  spec = LoadCampaignSpec(Spec(std::string(kMinimalSpec) +
                               "proposer: llm\nllm: {endpoint: e, temperature: 0, max_retries: 0}\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->llm().temperature(), 0);
  EXPECT_EQ(spec->llm().max_retries(), 0);
}

TEST_F(SpecTest, LlmBadValues) {
  const std::string base = std::string(kMinimalSpec) + "proposer: llm\n";
  struct Case {
    std::string llm;
    std::string expected;
  } cases[] = {
      {"", "spec.yaml:3: llm: missing: proposer llm needs an llm: section"},
      {"llm: {models: [m]}\n", "spec.yaml:4: llm.endpoint: missing (the name of an LLM endpoint"},
      // Where the coordinator connects, and with which of its secrets, is
      // its operator's choice, never a submitter's.
      {"llm: {endpoint: e,\n  base_url: 'http://127.0.0.1:8000'}\n",
       "spec.yaml:5: llm.base_url: not allowed in a campaign spec; name an LLM endpoint "
       "configured by the coordinator's operator instead (llm.endpoint: NAME; docs/llm.md)"},
      {"llm: {endpoint: e, api_key_env: HOME}\n", "spec.yaml:4: llm.api_key_env: not allowed"},
      // A short name of safe characters, as the operator's file names it.
      {"llm: {endpoint: 'http://h/v1'}\n",
       "spec.yaml:4: llm.endpoint: 'http://h/v1' is not a name (letters, digits, '-', '_' and '.')"},
      {"llm: {endpoint: " + std::string(65, 'e') + "}\n", "llm.endpoint: 65 bytes; at most 64"},
      {"llm: {endpoint: [a]}\n", "llm.endpoint: expected a string, got a list"},
      {"llm: {endpoint: e, models: []}\n", "llm.models: expected a non-empty list"},
      {"llm: {endpoint: e,\n  models: [{weight: 2}]}\n", "spec.yaml:5: llm.models[0].name: missing"},
      {"llm: {endpoint: e, models: [{name: m, weight: 0}]}\n",
       "llm.models[0].weight: 0 is out of range (0, 1000000]"},
      {"llm: {endpoint: e, models: [{name: m, prompt_price_per_1k: -1}]}\n",
       "llm.models[0].prompt_price_per_1k: -1 is out of range [0, 1000]"},
      {"llm: {endpoint: e, models: [{name: m, price: 1}]}\n",
       "llm.models[0].price: unknown key"},
      {"llm: {endpoint: e, temperature: 3}\n", "llm.temperature: 3 is out of range [0, 2]"},
      {"llm: {endpoint: e, timeout_seconds: 0}\n",
       "llm.timeout_seconds: 0 is out of range (0, 3600]"},
      {"llm: {endpoint: e, max_retries: 50}\n", "llm.max_retries: 50 is out of range [0, 20]"},
      {"llm: {endpoint: e, max_concurrency: 0}\n",
       "llm.max_concurrency: 0 is out of range [1, 256]"},
      {"llm: {endpoint: e, max_cost_usd: -2}\n",
       "llm.max_cost_usd: -2 is out of range [0, 1000000]"},
      {"llm: {endpoint: e, key: x}\n", "llm.key: unknown key"},
  };
  for (const auto& c : cases) {
    std::string e = Error(base + c.llm);
    EXPECT_NE(e.find(c.expected), std::string::npos) << c.llm << " gave: " << e;
  }
  std::string e = Error(std::string(kMinimalSpec) + "llm: {endpoint: e}\n");
  EXPECT_NE(e.find("only used with proposer: llm"), std::string::npos) << e;
}

TEST_F(SpecTest, ReplayList) {
  Write("cpu/matmul/baseline/solution.json",
        R"({"name": "base", "sources": ["kernel.cc"],
            "knobs": {"VEC": {"choices": [1, 4, 8]}, "MODE": {"choices": ["a", "b"]}}})");
  auto spec = LoadCampaignSpec(Spec(std::string(kMinimalSpec) +
                                    "proposer: replay\nreplay: [{VEC: 8}, {VEC: 4, MODE: b}]\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->replay_size(), 2);
  EXPECT_EQ(spec->replay(0).knobs().at("VEC"), "8");
  EXPECT_EQ(spec->replay(1).knobs().at("MODE"), "b");

  std::string e = Error(std::string(kMinimalSpec) + "proposer: replay\nreplay: [{VEC: 2}]\n");
  EXPECT_NE(e.find("replay[0].VEC: 2 is not one of its choices (1, 4, 8)"), std::string::npos)
      << e;
  e = Error(std::string(kMinimalSpec) + "proposer: replay\nreplay: [{NOPE: 1}]\n");
  EXPECT_NE(e.find("replay[0].NOPE: the baseline declares no such knob"), std::string::npos) << e;
  e = Error(std::string(kMinimalSpec) + "proposer: replay\n");
  EXPECT_NE(e.find("needs a replay: list"), std::string::npos) << e;
  e = Error(std::string(kMinimalSpec) + "proposer: replay\nreplay: []\n");
  EXPECT_NE(e.find("non-empty list"), std::string::npos) << e;
  e = Error(std::string(kMinimalSpec) + "replay: [{VEC: 8}]\n");
  EXPECT_NE(e.find("only used with proposer: replay"), std::string::npos) << e;
}

TEST_F(SpecTest, ResearchLoopSettings) {
  auto spec = LoadCampaignSpec(Spec(std::string(kMinimalSpec) +
                                    "budget: {max_evaluations: 9, max_gpu_seconds: 120.5}\n"
                                    "migrate_every: 4\nmerge_every: 6\ntournament_size: 2\n"
                                    "experience: shared\n"));
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_DOUBLE_EQ(spec->budget().max_gpu_seconds(), 120.5);
  EXPECT_EQ(spec->migrate_every(), 4);
  EXPECT_EQ(spec->merge_every(), 6);
  EXPECT_EQ(spec->tournament_size(), 2);
  EXPECT_EQ(spec->experience(), "shared");
  auto plain = LoadCampaignSpec(Spec(kMinimalSpec));
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->experience(), "campaign");
  EXPECT_EQ(plain->migrate_every(), 0);
  std::string e = Error(std::string(kMinimalSpec) + "experience: global\n");
  EXPECT_NE(e.find("unknown experience 'global' (known: campaign, shared)"), std::string::npos) << e;
  e = Error(std::string(kMinimalSpec) + "merge_every: -1\n");
  EXPECT_NE(e.find("merge_every"), std::string::npos) << e;
  e = Error(std::string(kMinimalSpec) + "budget: {max_gpu_seconds: -3}\n");
  EXPECT_NE(e.find("max_gpu_seconds"), std::string::npos) << e;
}

// yaml-cpp answers a lookup with the first of two equal keys, so a second
// `threads:` further down was silently ignored; both lines are named now.
TEST_F(SpecTest, DuplicateKeyIsRefusedWithItsLines) {
  std::string e = Error(std::string(kMinimalSpec) + "threads: 1\nseed: 3\nthreads: 64\n");
  EXPECT_NE(e.find("spec.yaml:5: threads: duplicate key (first at line 3)"), std::string::npos)
      << e;
  // In a nested map, flow or block.
  e = Error(std::string(kMinimalSpec) + "harness: {repetitions: 5, repetitions: 7}\n");
  EXPECT_NE(e.find("spec.yaml:3: repetitions: duplicate key (first at line 3)"), std::string::npos)
      << e;
  e = Error(std::string(kMinimalSpec) + "budget:\n  max_evaluations: 5\n  max_evaluations: 9\n");
  EXPECT_NE(e.find("spec.yaml:5: max_evaluations: duplicate key (first at line 4)"),
            std::string::npos)
      << e;
}

// Aliases make a small document a huge tree: refused, not expanded.
TEST_F(SpecTest, AliasBombIsRefused) {
  std::string yaml = std::string(kMinimalSpec) + "x0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n";
  for (int i = 1; i < 9; ++i)
    yaml += "x" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + ", *a" +
            std::to_string(i - 1) + ", *a" + std::to_string(i - 1) + "]\n";
  std::string e = Error(yaml);
  EXPECT_NE(e.find("YAML nodes (aliases included)"), std::string::npos) << e;
}

// The coordinator's rules (spec/validation.h) run on every value as it is
// read and on the spec built: the same message as at submit, before
// submitting, with the line.
TEST_F(SpecTest, SubmitBoundsAreCheckedBeforeSubmitting) {
  struct Case {
    std::string yaml, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"in_flight_per_thread: 100000\n",
            "spec.yaml:3: in_flight_per_thread: 100000 is out of range [1, 16]"},
           {"harness: {timeout_seconds: 1e12}\n",
            "spec.yaml:3: harness.timeout_seconds: 1e12 is out of range (0, 86400]"},
           {"harness: {repetitions: 2000000000}\n",
            "spec.yaml:3: harness.repetitions: 2000000000 is out of range [1, 10000]"},
           {"budget: {max_evaluations: 1000000}\n",
            "spec.yaml:3: budget.max_evaluations: 1000000 is out of range [1, 100000]"},
           {"name: \"two\\nlines\"\n", "spec.yaml:3: name: control character 0x0a"},
           // Every job would fail on the worker (issue 13).
           {"harness: {screen: sometimes}\n",
            "spec.yaml:3: harness.screen: unknown screen 'sometimes' (known: auto, on, off)"},
       }) {
    std::string e = Error(std::string(kMinimalSpec) + c.yaml);
    EXPECT_NE(e.find(c.expect), std::string::npos) << c.yaml << " -> " << e;
  }
  // A language the device's harness does not run, and a source outside the
  // folder, fail here rather than on a worker.
  Write("cpu/matmul/baseline/solution.json",
        R"({"name": "base", "language": "rust", "sources": ["kernel.cc"]})");
  std::string e = Error(kMinimalSpec);
  EXPECT_NE(e.find("spec.yaml:2: baseline.files[solution.json]: language 'rust' is not run on "
                   "device cpu"),
            std::string::npos)
      << e;
  Write("cpu/matmul/baseline/solution.json",
        R"({"name": "base", "language": "cpp", "sources": ["../../../etc/passwd"]})");
  e = Error(kMinimalSpec);
  EXPECT_NE(e.find("sources[0]: file name '../../../etc/passwd'"), std::string::npos) << e;
}

TEST(ParseCampaignSpecTest, NeverThrows) {
  // Shapes that once reached yaml-cpp accessors on the wrong node type.
  for (const std::string& yaml :
       {std::string("["), std::string("{a: [}"), std::string("- 1\n- 2\n"),
        std::string("replay: [[1]]\nproposer: replay\n"), std::string("llm: 3\nproposer: llm\n"),
        std::string("budget: [1, 2]\n"), std::string("? [a, b]\n: c\n"),
        std::string("verification: {tiers: {a: b}}\n"), std::string("&a [*a]\n"),
        std::string("\xff\xfe: 1\n")}) {
    absl::StatusOr<v1::CampaignSpec> spec;
    EXPECT_NO_THROW(spec = ParseCampaignSpec(yaml, "/nonexistent/fuzz.yaml")) << yaml;
    EXPECT_FALSE(spec.ok()) << yaml;
  }
}

// No baseline: the problem's reference, derived as a Python solution.
TEST(ShippedSpecTest, AKernelCampaignWithoutABaselineDerivesOne) {
  const std::string dir = ::testing::TempDir() + "/derived_spec_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  const std::string yaml = dir + "/spec.yaml";
  std::ofstream(yaml) << "name: from-nothing\ntask: kernel\nproblem: " << RATCHET_SOURCE_DIR
                      << "/tasks/cpu/rmsnorm\nproposer: evolve\ndevice: cpu\n";
  auto spec = LoadCampaignSpec(yaml);
  ASSERT_TRUE(spec.ok()) << spec.status();
  const auto& files = spec->baseline().files();
  ASSERT_TRUE(files.count("kernel.py") && files.count("reference.py") && files.count("solution.json"));
  EXPECT_THAT(files.at("solution.json"), ::testing::HasSubstr("\"language\": \"pytorch\""));
  EXPECT_THAT(files.at("solution.json"), ::testing::HasSubstr("THREADS"));
  std::filesystem::remove_all(dir);
}

// A folder of problems is a suite: one spec per problem, named after it,
// its own baseline/ where it has one (else derived), experience shared.
TEST(ShippedSpecTest, AFolderOfProblemsIsASuite) {
  namespace fs = std::filesystem;
  const std::string dir = ::testing::TempDir() + "/suite_spec_" + std::to_string(getpid());
  fs::remove_all(dir);
  fs::create_directories(dir + "/problems");
  const fs::path cpu = fs::path(RATCHET_SOURCE_DIR) / "tasks/cpu";
  fs::copy(cpu / "rmsnorm", dir + "/problems/rmsnorm", fs::copy_options::recursive);
  fs::copy(cpu / "matmul", dir + "/problems/matmul", fs::copy_options::recursive);
  fs::remove_all(dir + "/problems/rmsnorm/baseline");  // derived instead
  fs::create_directories(dir + "/problems/notes");      // no definition.json: not a problem
  std::ofstream(dir + "/suite.yaml") << "name: cpu-suite\ntask: kernel\nproblem: problems\n"
                                        "proposer: evolve\ndevice: cpu\n";
  auto specs = LoadCampaignSuite(dir + "/suite.yaml");
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_EQ((*specs)[0].name(), "cpu-suite/matmul");
  EXPECT_EQ((*specs)[1].name(), "cpu-suite/rmsnorm");
  EXPECT_EQ((*specs)[0].experience(), "shared");
  EXPECT_TRUE((*specs)[0].baseline().files().count("kernel.cc"));    // its baseline/
  EXPECT_TRUE((*specs)[1].baseline().files().count("reference.py"));  // derived
  // One spec alone is a suite of one; the folder itself is not a problem.
  auto one = LoadCampaignSuite(std::string(RATCHET_SOURCE_DIR) + "/tasks/demo.yaml");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->size(), 1u);
  auto folder = LoadCampaignSpec(dir + "/suite.yaml");
  ASSERT_FALSE(folder.ok());
  EXPECT_THAT(std::string(folder.status().message()), ::testing::HasSubstr("suite"));
  fs::remove_all(dir);
}

TEST(ShippedSpecTest, DemoCampaignLoads) {
  auto spec = LoadCampaignSpec(std::string(RATCHET_SOURCE_DIR) + "/tasks/demo.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name(), "demo-matmul");
  EXPECT_FALSE(spec->problem().name().empty());
  EXPECT_TRUE(spec->baseline().files().count("solution.json"));
}

TEST(ShippedSpecTest, LlmExampleLoads) {
  auto spec = LoadCampaignSpec(std::string(RATCHET_SOURCE_DIR) + "/tasks/llm-rmsnorm.yaml");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->proposer(), v1::PROPOSER_LLM);
  EXPECT_EQ(spec->llm().endpoint(), "local-vllm");
  ASSERT_EQ(spec->llm().models_size(), 1);
  EXPECT_EQ(spec->llm().merge_every(), 5);
}

// Every campaign shipped in tasks/ loads as a user would submit it. A
// training campaign needs its data prepared first (docs/training.md): where
// it is not, that is the only complaint allowed.
TEST(ShippedSpecTest, EveryShippedCampaignLoads) {
  int loaded = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(RATCHET_SOURCE_DIR) + "/tasks")) {
    // llm-endpoints.yaml is the coordinator's endpoint list, not a campaign.
    if (entry.path().extension() != ".yaml" || entry.path().filename() == "llm-endpoints.yaml")
      continue;
    auto spec = LoadCampaignSpec(entry.path().string());
    if (!spec.ok() && absl::StrContains(spec.status().message(), "ratchet data prepare")) continue;
    EXPECT_TRUE(spec.ok()) << entry.path() << ": " << spec.status();
    ++loaded;
  }
  EXPECT_GE(loaded, 4);
}

}  // namespace
}  // namespace ratchet::cli
