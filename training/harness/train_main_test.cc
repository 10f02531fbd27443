// `ratchet train` end to end: the real binary trains the built-in tiny GPT
// by two gloo processes on synthetic shards for a fixed number of steps and
// scores it with the real evaluator; projects that fail; a usage error. No
// assertion rests on how fast this machine is (steps, never a budget).
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "nlohmann/json.hpp"
#include "tests/support/training_data.h"
#include "training/data/files.h"
#include "training/data/shards.h"
#include "training/harness/train_report.h"

namespace ratchet::training {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr uint16_t kEndOfText = 50256;
constexpr size_t kVocab = 50257;

std::string TempDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("train_main_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool TorchImports() {
  return std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") == 0;
}

// A repeating pattern of 13 random ids with end-of-text now and then
// (tests/support/training_data.h); every token 1 byte but 50256.
std::string WriteData(const std::string& dir) {
  EXPECT_TRUE(ratchet::testing::WriteSyntheticData(dir).ok());
  return dir;
}

struct CommandRun {
  int exit_code = -1;
  std::string out, err;
};

// The real binary, with a clean environment (plus `caller_env`, NAME=VALUE
// words), stdout and stderr apart.
CommandRun RunRatchet(const std::string& dir, const std::string& args,
                      const std::string& caller_env = "") {
  const std::string out = dir + "/stdout", err = dir + "/stderr";
  const std::string command = "env -i PATH=/usr/bin:/bin HOME=" + dir + " " + caller_env + " '" +
                              RATCHET_BINARY "' train " + args + " > '" + out + "' 2> '" + err + "'";
  const int status = std::system(command.c_str());
  CommandRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = Read(out);
  r.err = Read(err);
  return r;
}

const std::string kProject = std::string(RATCHET_SOURCE_DIR) + "/tasks/train/gpt_tiny";

TEST(TrainCommand, TrainsTheTinyGptAndScoresIt) {
  if (!TorchImports()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  const std::string dir = TempDir("ok");
  const std::string data = WriteData(dir + "/data");
  const CommandRun r = RunRatchet(dir, kProject + " --data=" + data + " --python=/usr/bin/python3" +
                                    " --nproc=2 --max-steps=20 --knob PROGRESS_EVERY=5" +
                                    " --windows=4 --seq-len=64 --scratch=" + dir + "/scratch --json" +
                                    " --timeout=150");  // a hung rank fails, never waits an hour
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out << Read(dir + "/scratch/train.log")
                            << Read(dir + "/scratch/eval.log");
  const nlohmann::json result = nlohmann::json::parse(r.out);
  EXPECT_EQ(result["outcome"], "ok");
  EXPECT_EQ(result["training"]["outcome"], "ok");
  EXPECT_EQ(result["training"]["steps"], 20);
  EXPECT_EQ(result["training"]["progress"].size(), 4u);  // steps 5, 10, 15, 20
  EXPECT_EQ(result["evaluation"]["outcome"], "ok") << result["evaluation"].dump();
  const double bpb = result["evaluation"]["bpb"].get<double>();
  EXPECT_TRUE(std::isfinite(bpb) && bpb > 0) << bpb;
  EXPECT_EQ(result["evaluation"]["windows"], 4);
  EXPECT_THAT(r.err, HasSubstr("step      20"));  // progress shown as it came
  // The ranks ran a copy of the project and were given the training shards only.
  EXPECT_TRUE(fs::exists(dir + "/scratch/project/train.py"));
  std::vector<std::string> given;
  for (const auto& e : fs::directory_iterator(dir + "/scratch/train-data"))
    given.push_back(e.path().filename().string());
  EXPECT_EQ(given, std::vector<std::string>{"train_000000.bin"});
}

// A copy of the tiny GPT whose train.py is `script`.
std::string ProjectWithTrainPy(const std::string& dir, const std::string& script) {
  const std::string project = dir + "/project";
  fs::create_directories(project);
  fs::copy_file(kProject + "/model.py", project + "/model.py");
  std::ofstream(project + "/train.py") << script;
  return project;
}

TEST(TrainCommand, AProjectThatWritesNoCheckpointFails) {
  if (!TorchImports()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  const std::string dir = TempDir("no_checkpoint");
  const std::string data = WriteData(dir + "/data");
  const std::string project = ProjectWithTrainPy(dir, "print('trained, honestly')\n");
  const CommandRun r = RunRatchet(dir, project + " --data=" + data + " --python=/usr/bin/python3" +
                                           " --max-steps=20 --json --scratch=" + dir + "/scratch");
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
  // What the ranks print goes to the log, never onto the result.
  const nlohmann::json result = nlohmann::json::parse(r.out);
  const std::string log = Read(result["scratch"].get<std::string>() + "/train.log");
  // Both ranks, in whatever order their writes interleave.
  EXPECT_EQ(log.size(), 2 * std::string("trained, honestly\n").size()) << log;
  EXPECT_NE(log.find("trained, honestly"), log.rfind("trained, honestly")) << log;
  EXPECT_EQ(result["outcome"], "no-checkpoint");
  EXPECT_EQ(result["training"]["outcome"], "ok");
  EXPECT_TRUE(result["evaluation"].is_null());
  EXPECT_THAT(result["message"].get<std::string>(), HasSubstr("RATCHET_CHECKPOINT"));
}

TEST(TrainCommand, AProjectThatCrashesFails) {
  if (!TorchImports()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  const std::string dir = TempDir("crash");
  const std::string data = WriteData(dir + "/data");
  const std::string project = ProjectWithTrainPy(dir, "raise SystemExit(1)\n");
  const CommandRun r = RunRatchet(dir, project + " --data=" + data +
                                    " --python=/usr/bin/python3 --nproc=2 --max-steps=20" +
                                           " --scratch=" + dir + "/scratch");
  EXPECT_EQ(r.exit_code, 1) << r.err << r.out;
  EXPECT_THAT(r.out, HasSubstr("crash"));
  EXPECT_THAT(r.out, HasSubstr("exited with status 1"));
}

TEST(TrainCommand, TheRanksGetTheAllowListOnly) {
  if (!TorchImports()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  const std::string dir = TempDir("environment");
  const std::string data = WriteData(dir + "/data");
  const std::string project =
      ProjectWithTrainPy(dir, "import os\nprint(' '.join(sorted(os.environ)))\n");
  const CommandRun r = RunRatchet(dir, project + " --data=" + data +
                                           " --python=/usr/bin/python3 --nproc=1 --max-steps=3" +
                                           " --knob X=1 --scratch=" + dir + "/scratch",
                                  "CALLER_SECRET=1 RATCHET_KNOB_Y=2 PYTHONPATH=/nowhere");
  EXPECT_EQ(r.exit_code, 1) << r.err;  // no checkpoint
  EXPECT_EQ(Read(dir + "/scratch/train.log"),
            "HOME LANG LOCAL_RANK LOCAL_WORLD_SIZE MASTER_ADDR MASTER_PORT NCCL_NVLS_ENABLE "
            "OMP_NUM_THREADS PATH PYTHONUNBUFFERED RANK RATCHET_CHECKPOINT RATCHET_CONTROL_FD "
            "RATCHET_KNOB_X RATCHET_MAX_STEPS RATCHET_TRAIN_DATA TMPDIR WORLD_SIZE\n");
}

TEST(TrainCommand, ARunSeedReachesTheRanksAsACampaignsJobGivesIt) {
  if (!TorchImports()) GTEST_SKIP() << "/usr/bin/python3 cannot import torch";
  const std::string dir = TempDir("run-seed");
  const std::string data = WriteData(dir + "/data");
  const std::string project =
      ProjectWithTrainPy(dir, "import os\nprint('seed', os.environ.get('RATCHET_SEED'))\n");
  const CommandRun r = RunRatchet(dir, project + " --data=" + data +
                                           " --python=/usr/bin/python3 --nproc=1 --max-steps=3" +
                                           " --run-seed=42 --json --scratch=" + dir + "/scratch");
  EXPECT_EQ(r.exit_code, 1) << r.err;  // no checkpoint
  EXPECT_EQ(Read(dir + "/scratch/train.log"), "seed 42\n");
  EXPECT_THAT(r.out, HasSubstr("\"run_seed\": 42"));
}

// The table says where the evaluator's seconds went, as the evaluator
// reported them, and leaves the row plain when it reported none.
TEST(TrainReportTable, ShowsTheEvaluationsStages) {
  TrainReport report;
  report.evaluated = true;
  report.evaluation = nlohmann::json::parse(
      R"({"outcome": "ok", "bpb": 1.5, "seconds": 9.99,
          "stage_seconds": {"answers": 2.97, "copies": 0.576, "scoring": 1.678, "start": 3.463}})");
  EXPECT_THAT(ReportTable(report),
              HasSubstr("evaluation seconds 9.99 (answers 2.97, copies 0.58, scoring 1.68, "
                        "start 3.46)\n"));
  report.evaluation.erase("stage_seconds");
  EXPECT_THAT(ReportTable(report), HasSubstr("evaluation seconds 9.99\n"));
}

TEST(TrainCommand, UsageErrorsNameTheFlag) {
  const std::string dir = TempDir("usage");
  CommandRun r = RunRatchet(dir, kProject + " --max-steps=20");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--data"));
  const std::string data = WriteData(dir + "/data");
  r = RunRatchet(dir, kProject + " --data=" + data);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--max-steps"));
  r = RunRatchet(dir, dir + " --data=" + data + " --max-steps=1");  // no train.py there
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("train.py"));
  fs::remove(data + "/token_bytes.bin");
  r = RunRatchet(dir, kProject + " --data=" + data + " --max-steps=1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("token_bytes.bin"));
  r = RunRatchet(dir, kProject + " --data=" + data + " --max-steps=1 --knob lower=1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--knob"));
  r = RunRatchet(dir, kProject + " --data=" + data + " --max-steps=1 --run-seed=-3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--run-seed"));
}

}  // namespace
}  // namespace ratchet::training
