// Training jobs on a worker, end to end: Worker::RunJob with the real
// `ratchet launch` inside bwrap, the real evaluator and its sandboxed model
// hosts, the tiny GPT of tasks/train/gpt_tiny on synthetic shards; and the
// candidates that try what the sandbox is there for (reading the validation
// shard, the launcher's secret, writing the job's folder from a model host,
// editing a frozen file, never stopping). Skipped where /usr/bin/python3
// cannot import torch or bwrap cannot run. No assertion rests on how fast
// this machine is (steps, never a budget, for the runs that must succeed).
#include "tests/support/training_data.h"
#include "worker/training_job.h"

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/auth.h"
#include "training/data/files.h"
#include "training/data/shards.h"
#include "training/harness/launch_main.h"
#include "worker/worker.h"

namespace ratchet::worker {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr uint16_t kEndOfText = 50256;
constexpr size_t kVocab = 50257;
const std::string kProject = std::string(RATCHET_SOURCE_DIR) + "/tasks/train/gpt_tiny";

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TempDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("training_job_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

// Why these tests cannot run here ("" when they can).
std::string Unavailable() {
  static const std::string why = [] {
    if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0)
      return std::string("/usr/bin/python3 cannot import torch");
    absl::StatusOr<Sandbox> sandbox = Sandbox::Create("bwrap");
    if (!sandbox.ok()) return std::string(sandbox.status().message());
    return std::string();
  }();
  return why;
}

// A repeating pattern of 13 random ids with end-of-text now and then
// (tests/support/training_data.h); every token 1 byte but 50256.
std::string WriteData(const std::string& dir) {
  ratchet::testing::SyntheticData data;
  data.manifest = "{\"synthetic\": true}\n";
  EXPECT_TRUE(ratchet::testing::WriteSyntheticData(dir, data).ok());
  return dir;
}

class TrainingJobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Unavailable(); !why.empty()) GTEST_SKIP() << why;
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    data_ = WriteData(dir_ + "/data");
    options_.coordinator = "127.0.0.1:1";  // never dialled: RunJob only
    options_.scratch_root = dir_ + "/scratch";
    options_.launcher_path = RATCHET_BINARY;
    options_.python = "/usr/bin/python3";
    hardware_.set_cpu_cores(2);
  }

  // A train-budget job on the tiny GPT: a budget it never reaches, a few
  // steps, two gloo ranks, four validation windows.
  v1::Job Job(uint64_t seed) {
    v1::Job job;
    job.set_id(++next_id_);
    job.set_campaign_id(1);
    job.set_candidate_id(next_id_);
    job.set_kind(v1::JOB_EVALUATE);
    job.set_task(v1::TASK_TRAIN_BUDGET);
    job.set_device(v1::DEVICE_CPU);
    job.set_seed(seed);
    job.mutable_harness()->set_timeout_seconds(600);
    v1::TrainingSettings* t = job.mutable_training();
    t->set_data_dir(data_);
    t->set_data_manifest_sha256(auth::Sha256Hex(Read(data_ + "/manifest.json")));
    t->set_budget_seconds(120);
    t->set_max_steps(8);
    t->set_nproc(2);
    t->set_grace_seconds(10);
    t->set_eval_windows(4);
    t->set_eval_seq_len(64);
    t->set_eval_seed(1);
    t->add_editable("*.py");  // as a campaign would say; nothing frozen
    auto& files = *job.mutable_solution()->mutable_files();
    files["train.py"] = Read(kProject + "/train.py");
    files["model.py"] = Read(kProject + "/model.py");
    (*job.mutable_solution()->mutable_knobs())["PROGRESS_EVERY"] = "4";
    return job;
  }

  v1::Evaluation Run(const v1::Job& job, const std::string& sandbox = "bwrap") {
    absl::StatusOr<Sandbox> box = Sandbox::Create(sandbox);
    EXPECT_TRUE(box.ok()) << box.status();
    Worker worker(options_, *box, hardware_, nullptr);
    bool cancelled = false;
    v1::Evaluation e = worker.RunJob(job, nullptr, &cancelled);
    EXPECT_FALSE(cancelled);
    return e;
  }

  std::string dir_, data_;
  WorkerOptions options_;
  v1::Hardware hardware_;
  int64_t next_id_ = 0;
};

TEST_F(TrainingJobTest, HonestRunsScoreAndTheirSeedsMatter) {
  double bpb[2] = {0, 0};
  const uint64_t seeds[2] = {11, 12};
  for (int i = 0; i < 2; ++i) {
    const v1::Evaluation e = Run(Job(seeds[i]));
    ASSERT_EQ(e.outcome(), v1::OUTCOME_OK) << e.message();
    const v1::TrainingRun& t = e.training();
    EXPECT_EQ(t.training_outcome(), "ok");
    EXPECT_EQ(t.eval_outcome(), "ok");
    EXPECT_TRUE(std::isfinite(t.bpb()) && t.bpb() > 0) << t.bpb();
    EXPECT_TRUE(std::isfinite(t.loss()) && t.loss() > 0) << t.loss();
    EXPECT_DOUBLE_EQ(e.score(), 1.0 / t.bpb());
    EXPECT_GT(t.training_seconds(), 0);
    EXPECT_EQ(t.warmup_seconds(), 0);  // no allowance: the clock runs from the launch
    EXPECT_DOUBLE_EQ(t.training_seconds(), t.wall_seconds());
    EXPECT_GE(e.wall_seconds(), t.wall_seconds());
    EXPECT_EQ(t.steps(), 8);
    EXPECT_EQ(t.seed(), seeds[i]);
    EXPECT_EQ(t.nproc(), 2);
    EXPECT_EQ(t.eval_tokens(), 4 * 64);
    EXPECT_GT(t.eval_bytes(), 0);
    EXPECT_EQ(e.sandbox(), "bwrap");
    EXPECT_EQ(e.job_id(), next_id_);
    bpb[i] = t.bpb();
    std::cerr << "seed " << t.seed() << ": bpb " << t.bpb() << ", loss " << t.loss() << ", "
              << t.training_seconds() << " s of training, " << e.wall_seconds()
              << " s with the evaluation\n";
  }
  // Another seed: other initial weights, another place in the data.
  EXPECT_NE(bpb[0], bpb[1]);
  // Nothing of the job is left behind.
  EXPECT_TRUE(fs::is_empty(options_.scratch_root));
}

TEST_F(TrainingJobTest, ATrainTargetRunIsScoredOnItsTime) {
  v1::Job job = Job(5);
  job.set_task(v1::TASK_TRAIN_TARGET);
  v1::TrainingSettings* t = job.mutable_training();
  t->set_budget_seconds(0);  // no budget: the job's timeout bounds the run
  t->set_max_steps(4);
  t->set_nproc(1);
  t->set_target_loss(100);  // any trained model's loss is below it
  v1::Evaluation e = Run(job);
  ASSERT_EQ(e.outcome(), v1::OUTCOME_OK) << e.message();
  EXPECT_TRUE(e.training().reached_target());
  EXPECT_EQ(e.training().target_loss(), 100);
  EXPECT_EQ(e.training().steps(), 4);
  EXPECT_DOUBLE_EQ(e.score(), 3600 / e.training().training_seconds());
  // Not reached: ok, and no score. (Run as RunJob does, hearing the
  // launcher's progress lines as the heartbeat would take them.)
  t->set_target_loss(0.001);
  absl::StatusOr<Sandbox> box = Sandbox::Create("bwrap");
  ASSERT_TRUE(box.ok()) << box.status();
  std::vector<v1::JobProgress> heard;
  bool cancelled = false;
  e = RunTrainingJob(
      job, options_, *box, hardware_, nullptr, &cancelled,
      [](v1::Evaluation e) { return e; },
      [&](const v1::JobProgress& p) { heard.push_back(p); });
  ASSERT_EQ(e.outcome(), v1::OUTCOME_OK) << e.message();
  EXPECT_FALSE(e.training().reached_target());
  EXPECT_EQ(e.score(), 0);
  ASSERT_FALSE(heard.empty());  // PROGRESS_EVERY 4 of 4 steps: at least the last
  EXPECT_EQ(heard.back().job_id(), job.id());
  EXPECT_EQ(heard.back().step(), 4);
  EXPECT_TRUE(std::isfinite(heard.back().loss()) && heard.back().loss() > 0);
  EXPECT_GT(heard.back().tokens_per_s(), 0);
  EXPECT_GT(heard.back().seconds(), 0);
  EXPECT_LE(heard.back().seconds(), e.training().wall_seconds());
}

TEST_F(TrainingJobTest, AFrozenFileEditedEndsTheJobBeforeAnythingRuns) {
  options_.keep_scratch = true;
  v1::Job job = Job(1);
  v1::TrainingSettings* t = job.mutable_training();
  t->clear_editable();
  t->add_editable("train.py");
  (*t->mutable_frozen())["model.py"] = auth::Sha256Hex(Read(kProject + "/model.py"));
  (*job.mutable_solution()->mutable_files())["model.py"] += "\nBONUS = 1\n";
  const v1::Evaluation e = Run(job);
  EXPECT_EQ(e.outcome(), v1::OUTCOME_FROZEN_EDIT) << e.message();
  EXPECT_THAT(e.message(), HasSubstr("model.py"));
  EXPECT_EQ(e.score(), 0);
  EXPECT_EQ(e.training().steps(), 0);
  for (const auto& entry : fs::recursive_directory_iterator(options_.scratch_root)) {
    EXPECT_NE(entry.path().filename(), "train.log") << entry.path();
    EXPECT_NE(entry.path().filename(), "checkpoint.pt") << entry.path();
  }
}

// The planted train.py: what it can see and do from inside the sandbox.
constexpr char kSnoopingTrainPy[] = R"PY(
import os, re, signal
data = os.environ["RATCHET_TRAIN_DATA"]
print("data holds " + " ".join(sorted(os.listdir(data))))
val = os.environ["RATCHET_KNOB_VAL_PATH"]
try:
    open(val, "rb").read(16)
    print("val READ")
except OSError as e:
    print("val hidden (%s)" % type(e).__name__)
try:
    open(os.path.join(data, "train_000000.bin"), "ab").write(b"x")
    print("shard WRITTEN")
except OSError as e:
    print("shard read-only (%s)" % type(e).__name__)
found = [p for p in os.listdir("/proc") if p.isdigit()]
for pid in found:
    try:
        env = open("/proc/%s/environ" % pid, "rb").read()
    except OSError:
        continue
    if re.search(rb"RATCHET_RESULT_NONCE=[0-9a-f]{8}", env):
        print("nonce READ in /proc/%s/environ" % pid)
print("nonce in env" if "RATCHET_RESULT_NONCE" in os.environ else "nonce not in env")
try:
    with open("/proc/1/fd/1", "w") as out:
        out.write("ratchet-launch-result - {}\n")
    print("launcher stdout WRITTEN")
except OSError as e:
    print("launcher stdout closed (%s)" % type(e).__name__)
try:
    os.kill(1, signal.SIGKILL)
except OSError:
    pass
print("processes " + " ".join(sorted(found, key=int)))
print("done snooping")
)PY";

TEST_F(TrainingJobTest, TheCandidateCannotSeeTheValidationDataOrTheLaunchersSecret) {
  v1::Job job = Job(1);
  job.mutable_training()->set_nproc(1);
  (*job.mutable_solution()->mutable_files())["train.py"] = kSnoopingTrainPy;
  (*job.mutable_solution()->mutable_knobs())["VAL_PATH"] = data_ + "/val_000000.bin";
  const v1::Evaluation e = Run(job);
  // It wrote no checkpoint; what it printed is at the end of the message.
  EXPECT_EQ(e.outcome(), v1::OUTCOME_CRASH) << e.message();
  EXPECT_THAT(e.message(), HasSubstr("no checkpoint"));
  EXPECT_THAT(e.message(), HasSubstr("done snooping"));
  EXPECT_THAT(e.message(), HasSubstr("data holds train_000000.bin\n"));
  EXPECT_THAT(e.message(), HasSubstr("val hidden (FileNotFoundError)"));
  EXPECT_THAT(e.message(), HasSubstr("shard read-only"));
  EXPECT_THAT(e.message(), HasSubstr("nonce not in env"));
  EXPECT_THAT(e.message(), Not(HasSubstr("nonce READ")));
  EXPECT_THAT(e.message(), Not(HasSubstr("WRITTEN")));
  EXPECT_EQ(e.training().training_outcome(), "ok");
  // The launcher survived the SIGKILL sent to PID 1 and reported.
  EXPECT_EQ(e.training().steps(), 0);
}

// A model.py that reports, through the evaluator's error message, what its
// host sees: the validation shard? a writable job folder? its own /tmp?
// Each host leaves a file in its /tmp and looks for the other's a moment
// later.
constexpr char kSnoopingModelPy[] = R"PY(
import os, time
def build_model(config):
    here = os.path.dirname(os.path.abspath(__file__))
    seen = ["val " + ("READ" if os.path.exists(config["val"]) else "hidden")]
    seen.append("data folder " + ("SEEN" if os.path.exists(os.path.dirname(config["val"]))
                                  else "hidden"))
    try:
        open(os.path.join(os.path.dirname(here), "planted.txt"), "w").write("x")
        seen.append("scratch WRITTEN")
    except OSError as e:
        seen.append("scratch read-only (%s)" % type(e).__name__)
    open("/tmp/host-%d-%f" % (os.getpid(), time.time()), "w").write("x")
    time.sleep(1.0)
    hosts = [f for f in os.listdir("/tmp") if f.startswith("host-")]
    seen.append("host files in /tmp: %d" % len(hosts))
    raise RuntimeError("host saw: " + ", ".join(seen))
)PY";

constexpr char kCheckpointTrainPy[] = R"PY(
import os, torch
if int(os.environ.get("RANK", "0")) == 0:
    torch.save({"config": {"val": os.environ["RATCHET_KNOB_VAL_PATH"]}, "state_dict": {}},
               os.environ["RATCHET_CHECKPOINT"])
)PY";

TEST_F(TrainingJobTest, TheModelHostsSeeNeitherValidationDataNorAWritableFolder) {
  v1::Job job = Job(1);
  job.mutable_training()->set_nproc(1);
  (*job.mutable_solution()->mutable_files())["train.py"] = kCheckpointTrainPy;
  (*job.mutable_solution()->mutable_files())["model.py"] = kSnoopingModelPy;
  (*job.mutable_solution()->mutable_knobs())["VAL_PATH"] = data_ + "/val_000000.bin";
  const v1::Evaluation e = Run(job);
  EXPECT_EQ(e.outcome(), v1::OUTCOME_CRASH) << e.message();
  EXPECT_EQ(e.training().training_outcome(), "ok");
  EXPECT_EQ(e.training().eval_outcome(), "error");
  EXPECT_THAT(e.message(),
              HasSubstr("host saw: val hidden, data folder hidden, scratch read-only"));
  EXPECT_THAT(e.message(), HasSubstr("host files in /tmp: 1"));  // a /tmp of its own
  EXPECT_THAT(e.message(), Not(HasSubstr("WRITTEN")));
}

// A model.py that carries the validation text (TEXT, filled in by the test
// as anyone who knew the public text and its split could): every 3-token
// context of it maps to the token after it.
constexpr char kMemorizerModelPy[] = R"PY(
import torch
TEXT = %s
KNOWN = {tuple(TEXT[i:i + 3]): TEXT[i + 3] for i in range(len(TEXT) - 3)}
class Memorizer(torch.nn.Module):
    def forward(self, idx):
        out = torch.zeros(idx.shape[0], idx.shape[1], 50257)
        for r, row in enumerate(idx.tolist()):
            for t in range(2, len(row)):
                nxt = KNOWN.get(tuple(row[t - 2:t + 1]))
                if nxt is not None:
                    out[r, t, nxt] = 40.0
        return out
def build_model(config):
    return Memorizer()
)PY";

// With a held-out split in the data (which the training sandbox never shows),
// a model that knows the validation text ends as wrong-answer
// (memorized-validation): its validation loss is near 0, its held-out loss
// that of a guess.
TEST_F(TrainingJobTest, CarriedValidationTextIsCaughtByTheHeldOutSplit) {
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> id(0, 499);
  auto random_text = [&]() {
    std::vector<uint16_t> tokens(4000);
    for (uint16_t& t : tokens) t = static_cast<uint16_t>(id(rng));
    return tokens;
  };
  const std::vector<uint16_t> val = random_text();
  ASSERT_TRUE(training::WriteShard(data_ + "/val_000000.bin", val).ok());
  ASSERT_TRUE(training::WriteShard(data_ + "/holdout_000000.bin", random_text()).ok());
  std::string text = "[";
  for (uint16_t t : val) absl::StrAppend(&text, t, ",");
  text += "]";
  v1::Job job = Job(1);
  job.mutable_training()->set_nproc(1);
  (*job.mutable_solution()->mutable_files())["train.py"] = kCheckpointTrainPy;
  (*job.mutable_solution()->mutable_files())["model.py"] =
      absl::StrFormat(kMemorizerModelPy, text);
  (*job.mutable_solution()->mutable_knobs())["VAL_PATH"] = data_ + "/val_000000.bin";
  const v1::Evaluation e = Run(job);
  EXPECT_EQ(e.outcome(), v1::OUTCOME_WRONG_ANSWER) << e.message();
  EXPECT_EQ(e.training().training_outcome(), "ok");
  EXPECT_EQ(e.training().eval_outcome(), "memorized-validation");
  EXPECT_THAT(e.message(), HasSubstr("knows the validation text"));
}

// Multi-fidelity: an evaluation at half fidelity trains half the steps (and
// would get half the budget); a replay ignores the fidelity.
TEST_F(TrainingJobTest, AnEvaluationAtAFractionTrainsThatFraction) {
  v1::Job job = Job(5);
  job.set_fidelity(0.5);
  const v1::Evaluation e = Run(job);
  ASSERT_EQ(e.outcome(), v1::OUTCOME_OK) << e.message();
  EXPECT_EQ(e.training().fidelity(), 0.5);
  EXPECT_EQ(e.training().steps(), 4);  // of max_steps 8
}

TEST_F(TrainingJobTest, AProjectThatNeverStopsIsOverBudget) {
  v1::Job job = Job(1);
  v1::TrainingSettings* t = job.mutable_training();
  t->set_nproc(1);
  t->set_budget_seconds(2);
  t->set_grace_seconds(1);
  (*job.mutable_solution()->mutable_files())["train.py"] =
      "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
      "while True:\n    time.sleep(0.05)\n";
  const v1::Evaluation e = Run(job);
  EXPECT_EQ(e.outcome(), v1::OUTCOME_TIMEOUT) << e.message();
  EXPECT_THAT(e.message(), HasSubstr("over-budget"));
  EXPECT_EQ(e.training().training_outcome(), "over-budget");
  EXPECT_GT(e.training().training_seconds(), 3);
  EXPECT_EQ(e.score(), 0);
}

TEST_F(TrainingJobTest, RefusesWhatItCannotRunSafely) {
  // Without bwrap the validation data could not be hidden.
  v1::Evaluation e = Run(Job(1), "none");
  EXPECT_EQ(e.outcome(), v1::OUTCOME_HARNESS_ERROR);
  EXPECT_THAT(e.message(), HasSubstr("bwrap"));
  // Data every sandbox shows.
  v1::Job job = Job(1);
  job.mutable_training()->set_data_dir("/usr/share");
  e = Run(job);
  EXPECT_EQ(e.outcome(), v1::OUTCOME_HARNESS_ERROR);
  EXPECT_THAT(e.message(), HasSubstr("under /usr"));
  // Another copy of the data than the campaign's.
  job = Job(1);
  job.mutable_training()->set_data_manifest_sha256(std::string(64, '0'));
  e = Run(job);
  EXPECT_EQ(e.outcome(), v1::OUTCOME_HARNESS_ERROR);
  EXPECT_THAT(e.message(), HasSubstr("manifest.json"));
  // A data folder without validation shards.
  fs::remove(data_ + "/val_000000.bin");
  e = Run(Job(1));
  EXPECT_EQ(e.outcome(), v1::OUTCOME_HARNESS_ERROR);
  EXPECT_THAT(e.message(), HasSubstr("val_*.bin"));
}

TEST(TrainingJobHelpers, ShellQuoteSurvivesShlex) {
  EXPECT_EQ(ShellQuote("plain"), "'plain'");
  EXPECT_EQ(ShellQuote("it's"), "'it'\\''s'");
  EXPECT_EQ(ShellQuote(""), "''");
}

TEST(TrainingJobHelpers, OnlyTheLinesWithTheNonceAreTheLaunchers) {
  EXPECT_EQ(LaunchResultOf("ratchet-launch-result abc {\"outcome\": \"ok\"}", "abc"),
            "{\"outcome\": \"ok\"}");
  EXPECT_EQ(LaunchResultOf("ratchet-launch-result abd {\"outcome\": \"ok\"}", "abc"), "");
  EXPECT_EQ(LaunchResultOf("ratchet-launch-result - {}", ""), "");
  EXPECT_EQ(LaunchResultOf("progress 1 2 3", "abc"), "");
}

TEST(TrainingJobHelpers, TheLaunchersProgressLinesAreParsed) {
  training::Progress p;
  p.step = 120;
  p.loss = 3.41234;
  p.tokens_per_s = 1830;
  p.at_seconds = 61.25;
  const std::string line = training::LaunchProgressLine(p);
  EXPECT_EQ(line, "ratchet-launch-progress 120 3.41234 1830 61.250");
  std::optional<v1::JobProgress> got = LaunchProgressOf(line);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->job_id(), 0);  // the worker fills it in
  EXPECT_EQ(got->step(), 120);
  EXPECT_DOUBLE_EQ(got->loss(), 3.41234);
  EXPECT_DOUBLE_EQ(got->tokens_per_s(), 1830);
  EXPECT_DOUBLE_EQ(got->seconds(), 61.25);

  // The candidate's numbers are taken as written; the coordinator bounds them.
  p.step = -3;
  p.loss = std::nan("");
  p.tokens_per_s = 1e300;
  got = LaunchProgressOf(training::LaunchProgressLine(p));
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->step(), -3);
  EXPECT_TRUE(std::isnan(got->loss()));
  EXPECT_DOUBLE_EQ(got->tokens_per_s(), 1e300);
  got = LaunchProgressOf("ratchet-launch-progress 7 inf -1 -2");
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(std::isinf(got->loss()));
  EXPECT_DOUBLE_EQ(got->tokens_per_s(), -1);

  // Anything else is not progress: other lines, the wrong count, words.
  for (const char* other : {"progress 1 2 3", "ratchet-launch-result abc {}",
                            "ratchet-launch-progress 1 2 3", "ratchet-launch-progress 1 2 3 4 5",
                            "ratchet-launch-progress 1.5 2 3 4", "ratchet-launch-progress 1 2 3 4s",
                            "ratchet-launch-progress 1 2  3 4", " ratchet-launch-progress 1 2 3 4",
                            "ratchet-launch-progress 1 loss 3 4", "ratchet-launch-progress"})
    EXPECT_FALSE(LaunchProgressOf(other).has_value()) << other;
}

TEST(TrainingJobHelpers, TheEvaluatorsTimesForTheLog) {
  EXPECT_EQ(EvaluatorTimesOf(R"({"outcome": "ok", "seconds": 17.34, "logits_pinned": true,
      "stage_seconds": {"scoring": 1.51, "start": 4.06, "copies": 2.2, "answers": 9.04}})"),
            "evaluation 17.3 s (start 4.1, answers 9.0, copies 2.2, scoring 1.5; logits "
            "page-locked)");
  // An evaluation that failed early has fewer stages; older evaluators none.
  EXPECT_EQ(EvaluatorTimesOf(R"({"seconds": 1.0, "logits_pinned": false,
      "stage_seconds": {"answers": 0.0, "copies": 0.0}})"),
            "evaluation 1.0 s (answers 0.0, copies 0.0; logits not page-locked)");
  EXPECT_EQ(EvaluatorTimesOf(R"({"outcome": "ok", "seconds": 3})"), "evaluation 3.0 s");
  for (const char* bad : {"", "not json", "[]", R"({"seconds": "3"})", R"({"outcome": "ok"})"})
    EXPECT_EQ(EvaluatorTimesOf(bad), "") << bad;
}

}  // namespace
}  // namespace ratchet::worker
