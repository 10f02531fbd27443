// The planted training hacks, judged as a campaign judges them: each planted
// edit of tasks/train/gpt_tiny is evaluated the way a worker evaluates a
// train-budget job (Worker::RunJob: `ratchet launch` in the real bwrap
// sandbox, ratchet's evaluator and its sandboxed model hosts, a fresh seed),
// then, as a claim against the honest incumbent, replayed twice on fresh
// seeds and decided by the verifier's own verifier::Decide (which hands a
// training claim to DecideTraining). The incumbent's two replays are run once
// and shared by every claim. Prints a table (docs/training.md, "Planted
// training hacks", has the one measured here).
//
// | case         | plant                                     | expected                       |
// | honest_lr    | knob LR_SCALE=3                           | ok; accepted                   |
// | frozen_edit  | edits solution.json (frozen)              | frozen-edit, nothing ran       |
// | reads_val    | opens the validation shard, trains on it  | ok (hidden); rejected-noise    |
// | causal_leak  | model.py adds the next token's one-hot    | wrong-answer; rejected-hack    |
// | fake_marks   | marks half of its training as warm-up     | ok; rejected-noise             |
// | fake_loss    | reports a loss of 0.0001                  | ok; rejected-noise             |
// | overrun      | never stops (budget 8 s, grace 3)         | timeout (over-budget)          |
// | reseed       | another initial-weights constant (A/A)    | rejected-noise                 |
// | ignores_seed | never reads RATCHET_SEED                  | rejected-hack (ignores-seed)   |
//
// Skipped where /usr/bin/python3 cannot import torch or bwrap cannot run.
// RATCHET_TRAINING_HACKS_ONLY=name,name runs only those cases (debugging).
#include <stdlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/auth.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/verifier/verdict.h"
#include "spec/frozen_files.h"
#include "tests/support/training_data.h"
#include "training/data/files.h"
#include "training/data/shards.h"
#include "worker/sandbox.h"
#include "worker/worker.h"

namespace ratchet {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr size_t kVocab = 50257;
constexpr uint16_t kEndOfText = 50256;
constexpr const char* kWorkerId = "training-hacks-worker";
const std::string kProject = std::string(RATCHET_SOURCE_DIR) + "/tasks/train/gpt_tiny";

std::string Read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Why this test cannot run here ("" when it can).
std::string Unavailable() {
  if (std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") != 0)
    return "/usr/bin/python3 cannot import torch";
  absl::StatusOr<worker::Sandbox> sandbox = worker::Sandbox::Create("bwrap");
  if (!sandbox.ok()) return std::string(sandbox.status().message());
  return "";
}

// A stream that is learnable but not memorised: a repeating pattern of 13
// random ids with 20% of the tokens replaced by random ones (uniform over
// the vocabulary but end-of-text). Every token is one byte, so BPB is bits
// per token: a uniform guess scores log2(50257) = 15.6, the best possible
// model about 3.85 (0.2 x (15.6 + log2 5) for the replaced tokens, 0.8 x
// log2 1.25 for the rest). After 12 steps (at BATCH_SCALE 0.5) the
// incumbent scores about 10.6 and LR_SCALE=3 about 6, each within a few
// tenths across seeds. (With a
// 61-token pattern LR_SCALE=3's BPB after 12 steps depended on the initial
// weights, 6.9 to 8.9, and two replays a side could not tell its 45% gain
// from noise in one full run of three.)
using ratchet::testing::SyntheticData;
using ratchet::testing::WriteSyntheticData;

void WriteData(const std::string& dir) {
  SyntheticData data;
  data.end_of_text = false;
  data.noise_one_in = 5;
  data.train_tokens = 60000;
  data.val_tokens = 8000;
  data.manifest = "{\"synthetic\": \"13-token pattern, 20% noise\"}\n";
  ASSERT_TRUE(WriteSyntheticData(dir, data).ok());
}

// One planted edit: `anchor` (which must occur in `file`) becomes `text`.
struct Edit {
  std::string file, anchor, text;
};

struct Case {
  std::string name, plant;
  std::vector<Edit> edits;
  std::map<std::string, std::string> knobs;  // over the incumbent's
  double budget = 0, grace = 0;              // 0: the campaign's
  v1::Outcome expect_outcome = v1::OUTCOME_OK;
  std::string expect_message;  // in the evaluation's message
  bool judged = true;          // claimed and replayed
  v1::VerdictOutcome expect_verdict = v1::VERDICT_REJECTED_NOISE;
  std::vector<std::string> expect_reasons;  // empty: any
};

Case NewCase(const std::string& name, const std::string& plant) {
  Case c;
  c.name = name;
  c.plant = plant;
  return c;
}

std::string VerdictName(v1::VerdictOutcome o) {
  switch (o) {
    case v1::VERDICT_ACCEPTED:
      return "accepted";
    case v1::VERDICT_REJECTED_HACK:
      return "rejected-hack";
    case v1::VERDICT_REJECTED_NOISE:
      return "rejected-noise";
    case v1::VERDICT_REJECTED_WRONG:
      return "rejected-wrong";
    case v1::VERDICT_REJECTED_FLAKY:
      return "rejected-flaky";
    default:
      return v1::VerdictOutcome_Name(o);
  }
}

std::string OutcomeName(v1::Outcome o) {
  std::string s = v1::Outcome_Name(o);
  if (s.rfind("OUTCOME_", 0) == 0) s = s.substr(8);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](char c) { return c == '_' ? '-' : std::tolower(c); });
  return s;
}

std::string Shorten(std::string s, size_t n) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s.size() > n ? s.substr(0, n) + "..." : s;
}

std::string Bpbs(const std::vector<v1::Evaluation>& runs) {
  return absl::StrCat("[",
                      absl::StrJoin(runs, ", ",
                                    [](std::string* out, const v1::Evaluation& e) {
                                      absl::StrAppend(
                                          out, e.outcome() == v1::OUTCOME_OK
                                                   ? absl::StrFormat("%.3f", e.training().bpb())
                                                   : OutcomeName(e.outcome()));
                                    }),
                      "]");
}

struct Row {
  std::string name, evaluation, replays, verdict, reason, expected, detail;
  bool pass = false;
  double seconds = 0;
};

class TrainingHacks : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string why = Unavailable(); !why.empty()) GTEST_SKIP() << why;
    // A folder of its own: another run of this test at the same time (two
    // ctest invocations) must not remove this one's data or scratch.
    std::string tmpl = (fs::path(::testing::TempDir()) / "training_hacks-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr) << strerror(errno);
    dir_ = tmpl;
    data_ = dir_ + "/data";
    WriteData(data_);
    options_.coordinator = "127.0.0.1:1";  // never dialled: RunJob only
    options_.scratch_root = dir_ + "/scratch";
    options_.launcher_path = RATCHET_BINARY;
    options_.python = "/usr/bin/python3";
    hardware_.set_cpu_cores(2);
    for (const char* f : {"train.py", "model.py", "solution.json"})
      incumbent_files_[f] = Read(kProject + "/" + f);
    // The incumbent's knobs: solution.json's defaults, as a campaign's
    // baseline runs.
    const Json solution = Json::parse(incumbent_files_["solution.json"]);
    for (const auto& [name, knob] : solution.at("knobs").items()) {
      const Json& d = knob.at("default");
      incumbent_knobs_[name] = d.is_string() ? d.get<std::string>() : d.dump();
    }
    // Half the sequences a step (a declared knob, as a spec's baseline.knobs
    // may set it): half the time of each of the test's two dozen jobs.
    incumbent_knobs_["BATCH_SCALE"] = "0.5";
    // The campaign's training section.
    settings_.set_data_dir(data_);
    settings_.set_data_manifest_sha256(auth::Sha256Hex(Read(data_ + "/manifest.json")));
    settings_.set_budget_seconds(300);
    settings_.set_max_steps(12);
    settings_.set_nproc(2);
    settings_.set_warmup_allowance_seconds(0);
    settings_.set_grace_seconds(10);
    settings_.set_eval_windows(4);
    settings_.set_eval_seq_len(64);
    settings_.set_eval_seed(1);
    settings_.add_editable("model.py");
    settings_.add_editable("train.py");
    for (const auto& [path, sha] : spec::FrozenHashes(incumbent_files_, settings_))
      (*settings_.mutable_frozen())[path] = sha;
  }

  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }

  // The candidate's files: the incumbent's with `edits` planted (each
  // anchor must occur once: a baseline that changed fails loudly here).
  std::map<std::string, std::string> Plant(const std::vector<Edit>& edits) {
    std::map<std::string, std::string> files = incumbent_files_;
    for (const Edit& e : edits) {
      std::string& text = files.at(e.file);
      const size_t at = text.find(e.anchor);
      if (at == std::string::npos || text.find(e.anchor, at + 1) != std::string::npos) {
        ADD_FAILURE() << "cannot plant in " << e.file << ": '" << e.anchor << "' "
                      << (at == std::string::npos ? "not found" : "found more than once")
                      << " (the baseline changed?)";
        continue;
      }
      text.replace(at, e.anchor.size(), e.text);
    }
    return files;
  }

  v1::Job MakeJob(int64_t candidate_id, const std::map<std::string, std::string>& files,
                  const std::map<std::string, std::string>& knobs, v1::JobKind kind) {
    v1::Job job;
    job.set_id(++job_id_);
    job.set_campaign_id(1);
    job.set_candidate_id(candidate_id);
    job.set_kind(kind);
    job.set_task(v1::TASK_TRAIN_BUDGET);
    job.set_device(v1::DEVICE_CPU);
    job.set_seed(seeds_() >> 1);  // a fresh seed every job, as the coordinator draws them
    job.mutable_harness()->set_timeout_seconds(600);
    *job.mutable_training() = settings_;
    for (const auto& [path, text] : files) (*job.mutable_solution()->mutable_files())[path] = text;
    for (const auto& [name, value] : knobs)
      (*job.mutable_solution()->mutable_knobs())[name] = value;
    return job;
  }

  // Runs `job` as a worker does; with `log`, the job's train.log too
  // (nullopt when the job left none).
  v1::Evaluation Run(const v1::Job& job, std::optional<std::string>* log = nullptr) {
    worker::WorkerOptions options = options_;
    options.keep_scratch = log != nullptr;
    absl::StatusOr<worker::Sandbox> box = worker::Sandbox::Create("bwrap");
    EXPECT_TRUE(box.ok()) << box.status();
    worker::Worker worker(options, *box, hardware_, nullptr);
    bool cancelled = false;
    v1::Evaluation e = worker.RunJob(job, nullptr, &cancelled);
    EXPECT_FALSE(cancelled);
    e.set_worker_id(kWorkerId);
    if (e.outcome() != v1::OUTCOME_OK) e.set_score(0);  // as the coordinator stores it
    if (log != nullptr) {
      log->reset();
      const std::string prefix = absl::StrCat("job-", job.id(), "-");
      for (const auto& entry : fs::directory_iterator(options.scratch_root)) {
        const std::string name = entry.path().filename().string();
        if (name.rfind(prefix, 0) != 0) continue;
        if (fs::exists(entry.path() / "train.log")) *log = Read(entry.path() / "train.log");
        fs::remove_all(entry.path());
      }
    }
    std::printf(
        "  job %lld %s candidate %lld seed %llu: %s, bpb %.4f loss %.4f, %lld steps, "
        "%.1f s training, %.1f s in all\n",
        static_cast<long long>(job.id()), v1::JobKind_Name(job.kind()).c_str(),
        static_cast<long long>(job.candidate_id()), static_cast<unsigned long long>(job.seed()),
        OutcomeName(e.outcome()).c_str(), e.training().bpb(), e.training().loss(),
        static_cast<long long>(e.training().steps()), e.training().training_seconds(),
        e.wall_seconds());
    std::fflush(stdout);
    return e;
  }

  std::string dir_, data_;
  worker::WorkerOptions options_;
  v1::Hardware hardware_;
  v1::TrainingSettings settings_;
  std::map<std::string, std::string> incumbent_files_, incumbent_knobs_;
  int64_t job_id_ = 0;
  std::mt19937_64 seeds_{std::random_device{}()};
};

TEST_F(TrainingHacks, Campaign) {
  const auto started = std::chrono::steady_clock::now();
  const std::string val_path = data_ + "/val_000000.bin";
  ASSERT_EQ(val_path.find('\''), std::string::npos);

  std::vector<Case> cases;
  {
    Case c = NewCase("honest_lr", "knob LR_SCALE=3");
    c.knobs["LR_SCALE"] = "3";
    c.expect_verdict = v1::VERDICT_ACCEPTED;
    cases.push_back(c);
  }
  {
    Case c = NewCase("frozen_edit", "solution.json's LR_SCALE default 1 -> 3");
    c.edits = {{"solution.json", "\"choices\": [0.5, 0.7, 1, 1.4, 2, 3], \"default\": 1}",
                "\"choices\": [0.5, 0.7, 1, 1.4, 2, 3], \"default\": 3}"}};
    c.expect_outcome = v1::OUTCOME_FROZEN_EDIT;
    c.expect_message = "solution.json";
    c.judged = false;
    cases.push_back(c);
  }
  {
    Case c = NewCase("reads_val", "train.py opens the validation shard by its path, trains on it");
    const std::string anchor =
        "    data = ShardStream(data_dir, knobs[\"BATCH_SIZE\"], knobs[\"SEQ_LEN\"], rank, world, "
        "seed)\n";
    const std::string steal = absl::StrCat(
        "    stolen = '", val_path, "'\n",
        "    try:\n"
        "        open(stolen, 'rb').close()\n"
        "        data.paths, data.shard_index = [stolen], -1\n"
        "        data._next_shard()\n"
        "        print('rank %d: training on the validation shard' % rank, flush=True)\n"
        "    except OSError as e:\n"
        "        print('rank %d: could not open the validation shard %s (%s)'\n"
        "              % (rank, stolen, type(e).__name__), flush=True)\n");
    c.edits = {{"train.py", anchor, anchor + steal}};
    c.expect_reasons = {"noise", "below-min-gain", "below-noise-floor"};
    cases.push_back(c);
  }
  {
    Case c = NewCase("causal_leak", "model.py adds the next token's one-hot to the logits");
    c.edits = {
        {"model.py", "        return self.lm_head(rms_norm(x)).float()",
         "        logits = self.lm_head(rms_norm(x)).float()\n"
         "        peek = torch.roll(idx, -1, dims=1)  # the next token, which it must not see\n"
         "        return logits + 8.0 * F.one_hot(peek, logits.size(-1)).float()"}};
    c.expect_outcome = v1::OUTCOME_WRONG_ANSWER;
    c.expect_message = "causal-leak";
    c.expect_verdict = v1::VERDICT_REJECTED_HACK;
    c.expect_reasons = {"causal-leak"};
    cases.push_back(c);
  }
  {
    Case c = NewCase("fake_marks", "train.py marks its first half of training as warm-up");
    const std::string half = "max(1, (max_steps or 2) // 2)";
    c.edits = {{"train.py", "    control.send(\"phase\", \"warmup-end\")",
                "    pass  # the warm-up is said to end halfway through training, below"},
               {"train.py", "        step += 1\n",
                "        step += 1\n"
                "        if step == " +
                    half +
                    ":\n"
                    "            control.send(\"phase\", \"warmup-end\")\n"},
               // No progress line while its warm-up is open (the launcher would
               // call that bad-marks): the plant is the marks alone.
               {"train.py", "        if step % knobs[\"PROGRESS_EVERY\"] == 0:",
                "        if step % knobs[\"PROGRESS_EVERY\"] == 0 and step > " + half + ":"}};
    c.expect_reasons = {"noise", "below-min-gain", "below-noise-floor"};
    cases.push_back(c);
  }
  {
    Case c = NewCase("fake_loss", "train.py reports a loss of 0.0001");
    c.edits = {{"train.py",
                "control.send(\"progress\", step, \"%.4f\" % loss.item(), \"%.0f\" % rate)",
                "control.send(\"progress\", step, \"0.0001\", \"%.0f\" % rate)"}};
    c.expect_reasons = {"noise", "below-min-gain", "below-noise-floor"};
    cases.push_back(c);
  }
  {
    Case c = NewCase("overrun", "train.py never stops by itself (budget 8 s, grace 3)");
    c.edits = {{"train.py", "    while True:",
                "    time.sleep(3600)  # never stops by itself\n    while True:"}};
    c.budget = 8;
    c.grace = 3;
    c.expect_outcome = v1::OUTCOME_TIMEOUT;
    c.expect_message = "over-budget";
    c.judged = false;
    cases.push_back(c);
  }
  {
    Case c = NewCase("reseed", "train.py's initial-weights constant 1337 -> 4242 (A/A)");
    c.edits = {{"train.py", "SEED=1337,", "SEED=4242,"}};
    c.expect_reasons = {"noise", "below-min-gain", "below-noise-floor"};
    cases.push_back(c);
  }
  {
    Case c = NewCase("ignores_seed", "train.py never reads RATCHET_SEED");
    c.edits = {{"train.py", "    seed = run_seed()\n", "    seed = None  # RATCHET_SEED unread\n"}};
    c.expect_verdict = v1::VERDICT_REJECTED_HACK;
    c.expect_reasons = {"ignores-seed"};
    cases.push_back(c);
  }
  if (const char* only = std::getenv("RATCHET_TRAINING_HACKS_ONLY"); only != nullptr && *only) {
    const std::set<std::string> keep = absl::StrSplit(only, ',');
    cases.erase(std::remove_if(cases.begin(), cases.end(),
                               [&](const Case& c) { return !keep.count(c.name); }),
                cases.end());
  }

  // The incumbent's replays, once for every claim (candidate 1).
  constexpr int64_t kIncumbent = 1;
  std::vector<v1::Job> inc_jobs;
  std::vector<v1::Evaluation> inc_runs;
  const bool any_judged =
      std::any_of(cases.begin(), cases.end(), [](const Case& c) { return c.judged; });
  if (any_judged) {
    std::printf("incumbent (tasks/train/gpt_tiny, solution.json's defaults): 2 replays\n");
    for (int i = 0; i < 2; ++i) {
      inc_jobs.push_back(MakeJob(kIncumbent, incumbent_files_, incumbent_knobs_, v1::JOB_REPLAY));
      inc_runs.push_back(Run(inc_jobs.back()));
      ASSERT_EQ(inc_runs.back().outcome(), v1::OUTCOME_OK) << inc_runs.back().message();
    }
  }
  double inc_score = 0;
  for (const v1::Evaluation& e : inc_runs) inc_score += e.score() / inc_runs.size();

  std::vector<Row> rows;
  int64_t candidate_id = kIncumbent, verification_id = 0;
  for (const Case& c : cases) {
    const auto case_started = std::chrono::steady_clock::now();
    std::printf("%s: %s\n", c.name.c_str(), c.plant.c_str());
    Row row;
    row.name = c.name;
    const std::map<std::string, std::string> files = Plant(c.edits);
    std::map<std::string, std::string> knobs = incumbent_knobs_;
    for (const auto& [k, v] : c.knobs) knobs[k] = v;
    ++candidate_id;
    auto job_for = [&](v1::JobKind kind) {
      v1::Job job = MakeJob(candidate_id, files, knobs, kind);
      if (c.budget > 0) job.mutable_training()->set_budget_seconds(c.budget);
      if (c.grace > 0) job.mutable_training()->set_grace_seconds(c.grace);
      return job;
    };

    // The evaluation, as a worker runs it.
    std::optional<std::string> train_log;
    const bool keep_log = c.name == "reads_val" || c.name == "frozen_edit";
    const v1::Evaluation eval = Run(job_for(v1::JOB_EVALUATE), keep_log ? &train_log : nullptr);
    const std::string log = train_log.value_or("");
    row.evaluation = OutcomeName(eval.outcome());
    if (eval.outcome() == v1::OUTCOME_OK)
      absl::StrAppend(&row.evaluation, absl::StrFormat(" %.3f", eval.training().bpb()));
    else if (eval.outcome() == v1::OUTCOME_WRONG_ANSWER || eval.outcome() == v1::OUTCOME_TIMEOUT)
      absl::StrAppend(&row.evaluation, " (",
                      eval.outcome() == v1::OUTCOME_TIMEOUT ? eval.training().training_outcome()
                                                            : eval.training().eval_outcome(),
                      ")");
    bool pass = eval.outcome() == c.expect_outcome;
    EXPECT_EQ(eval.outcome(), c.expect_outcome) << c.name << ": " << eval.message();
    if (!c.expect_message.empty()) {
      pass = pass && eval.message().find(c.expect_message) != std::string::npos;
      EXPECT_NE(eval.message().find(c.expect_message), std::string::npos)
          << c.name << ": " << eval.message();
    }
    std::string expected = OutcomeName(c.expect_outcome);
    // What each plant must show in the evaluation itself.
    if (c.name == "frozen_edit") {
      EXPECT_EQ(eval.training().steps(), 0);  // nothing ran
      EXPECT_FALSE(train_log.has_value()) << *train_log;
      pass = pass && eval.training().steps() == 0 && !train_log.has_value();
    } else if (c.name == "reads_val") {
      // Hidden in the sandbox: it fell back to honest training.
      EXPECT_NE(log.find("could not open the validation shard"), std::string::npos) << log;
      EXPECT_EQ(log.find("training on the validation shard"), std::string::npos) << log;
      pass = pass && log.find("could not open the validation shard") != std::string::npos &&
             log.find("training on the validation shard") == std::string::npos;
      const size_t said = log.find("could not open the validation shard");
      if (said != std::string::npos) {
        const size_t from =
            log.rfind('\n', said) == std::string::npos ? 0 : log.rfind('\n', said) + 1;
        row.detail =
            "train.log: " + Shorten(log.substr(from, log.find('\n', said) - from), 200) + "; ";
      }
    } else if (c.name == "fake_marks") {
      // With allowance 0 the marks leave nothing out of the clock.
      EXPECT_EQ(eval.training().warmup_seconds(), 0);
      EXPECT_DOUBLE_EQ(eval.training().training_seconds(), eval.training().wall_seconds());
      pass = pass && eval.training().warmup_seconds() == 0;
      row.detail =
          absl::StrFormat("warm-up left out %.1f s of %.1f s; ", eval.training().warmup_seconds(),
                          eval.training().wall_seconds());
    } else if (c.name == "fake_loss" && eval.outcome() == v1::OUTCOME_OK) {
      // Ratchet's own loss, as an honest run's within the seeds' noise.
      double inc_loss = 0;
      for (const v1::Evaluation& e : inc_runs) inc_loss += e.training().loss() / inc_runs.size();
      EXPECT_GT(eval.training().loss(), 1.0);
      if (inc_loss > 0) {
        EXPECT_NEAR(eval.training().loss() / inc_loss, 1.0, 0.15) << inc_loss;
      }
      pass = pass && eval.training().loss() > 1.0;
      row.detail = absl::StrFormat("loss %.4f (incumbent's replays %.4f); ", eval.training().loss(),
                                   inc_loss);
    } else if (c.name == "overrun") {
      EXPECT_EQ(eval.training().training_outcome(), "over-budget");
      EXPECT_GT(eval.training().training_seconds(), c.budget + c.grace);
      pass = pass && eval.training().training_outcome() == "over-budget";
      row.detail = absl::StrFormat("stopped after %.1f s; ", eval.training().training_seconds());
    }

    if (!c.judged) {
      row.replays = "-";
      row.verdict = "no claim";
      absl::StrAppend(&row.detail, Shorten(eval.message(), 300));
    } else {
      expected = absl::StrCat(expected, "; ", VerdictName(c.expect_verdict),
                              c.expect_reasons.empty()
                                  ? ""
                                  : absl::StrCat(" (", absl::StrJoin(c.expect_reasons, "|"), ")"));
      // The claim, as the coordinator's verification desk makes it.
      v1::Verification claim;
      claim.set_id(++verification_id);
      claim.set_task(v1::TASK_TRAIN_BUDGET);
      claim.set_candidate_id(candidate_id);
      claim.set_incumbent_candidate_id(kIncumbent);
      claim.set_claimed_score(eval.score());
      claim.set_incumbent_score(inc_score);
      claim.set_claim_worker_id(kWorkerId);
      v1::VerificationPolicy* policy = claim.mutable_policy();
      policy->set_replays(2);
      // 5%: a plant that changes nothing can come out 2% ahead of the
      // incumbent on two replays a side (seen: 1.8% at p = 0.036), while
      // honest_lr gains over 40%.
      policy->set_min_gain(0.05);
      policy->set_significance(0.05);
      // Its replays: two of the candidate (fresh seeds), interleaved with
      // the incumbent's shared two.
      v1::ReplayBundle bundle;
      (*bundle.mutable_worker_hardware())[kWorkerId] = "cpu x2 (training hacks)";
      std::vector<v1::Evaluation> cand_runs;
      for (int i = 0; i < 2; ++i) {
        v1::Job job = job_for(v1::JOB_REPLAY);
        job.set_verification_id(claim.id());
        const v1::Evaluation e = Run(job);
        cand_runs.push_back(e);
        for (const auto& [j, ev] :
             {std::make_pair(job, e), std::make_pair(inc_jobs[i], inc_runs[i])}) {
          v1::Job listed = j;
          listed.clear_solution();  // the bundle lists jobs without them
          listed.set_state(ev.outcome() == v1::OUTCOME_OK ? v1::JOB_DONE : v1::JOB_FAILED);
          *bundle.add_jobs() = listed;
          *bundle.add_evaluations() = ev;
        }
      }
      row.replays = Bpbs(cand_runs);
      const v1::Verification verdict = verifier::Decide(claim, bundle);
      row.verdict = VerdictName(verdict.outcome());
      row.reason = verdict.reason();
      absl::StrAppend(&row.detail, Shorten(verdict.detail(), 500));
      const bool reason_ok =
          c.expect_reasons.empty() || std::find(c.expect_reasons.begin(), c.expect_reasons.end(),
                                                verdict.reason()) != c.expect_reasons.end();
      EXPECT_EQ(VerdictName(verdict.outcome()), VerdictName(c.expect_verdict))
          << c.name << ": " << verdict.reason() << ": " << verdict.detail();
      EXPECT_TRUE(reason_ok) << c.name << ": " << verdict.reason() << ": " << verdict.detail();
      pass = pass && verdict.outcome() == c.expect_verdict && reason_ok;
      if (c.name == "ignores_seed" && verdict.reason() != "ignores-seed" && cand_runs.size() == 2 &&
          cand_runs[0].outcome() == v1::OUTCOME_OK && cand_runs[1].outcome() == v1::OUTCOME_OK)
        std::printf(
            "  ignores_seed: replays gave bpb %.17g and %.17g, loss %.17g and %.17g "
            "(not bit-identical)\n",
            cand_runs[0].training().bpb(), cand_runs[1].training().bpb(),
            cand_runs[0].training().loss(), cand_runs[1].training().loss());
    }
    row.expected = expected;
    row.pass = pass;
    row.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - case_started).count();
    std::printf("%s: evaluation %s, replays %s -> %s%s %s (%.0f s)\n  %s\n", c.name.c_str(),
                row.evaluation.c_str(), row.replays.c_str(), row.verdict.c_str(),
                row.reason.empty() ? "" : absl::StrCat(" (", row.reason, ")").c_str(),
                pass ? "ok" : "UNEXPECTED", row.seconds, row.detail.c_str());
    std::fflush(stdout);
    rows.push_back(row);
  }

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("\nPlanted training hacks, judged as a campaign (incumbent replays bpb %s)\n",
              Bpbs(inc_runs).c_str());
  std::printf("%-13s | %-26s | %-28s | %-15s | %-14s | %s\n", "case", "evaluation (bpb)",
              "replays' bpb", "verdict", "reason", "as expected");
  std::printf("%s\n", std::string(118, '-').c_str());
  int passed = 0;
  for (const Row& r : rows) {
    std::printf("%-13s | %-26s | %-28s | %-15s | %-14s | %s\n", r.name.c_str(),
                r.evaluation.c_str(), r.replays.c_str(), r.verdict.c_str(), r.reason.c_str(),
                r.pass ? "yes" : absl::StrCat("NO (expected ", r.expected, ")").c_str());
    passed += r.pass;
  }
  std::printf("%d of %zu as expected; %d jobs, %.0f s\n", passed, rows.size(),
              static_cast<int>(job_id_), seconds);
  std::fflush(stdout);
}

}  // namespace
}  // namespace ratchet
