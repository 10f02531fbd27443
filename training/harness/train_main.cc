#include "training/harness/train_main.h"


#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/flags.h"
#include "common/usable_cpus.h"
#include "training/harness/child_process.h"
#include "training/harness/launch.h"
#include "training/harness/torch_python.h"
#include "training/harness/train_env.h"
#include "training/harness/train_inputs.h"
#include "training/harness/train_report.h"
#include "training/harness/train_scratch.h"

namespace ratchet::training {
namespace {

namespace fs = std::filesystem;

constexpr char kUsage[] =
    "usage: ratchet train PROJECT_DIR --data=DIR (--budget=SECONDS | --max-steps=N) [options]\n"
    "\n"
    "Trains a training project (PROJECT_DIR/train.py and model.py, e.g.\n"
    "tasks/train/gpt_tiny) as --nproc ranks under ratchet's launcher, on the\n"
    "train_*.bin shards of DIR only, then scores the checkpoint with ratchet's\n"
    "evaluator on DIR's val_*.bin (bits per byte, loss, the hack checks). The run\n"
    "works on a copy of the project in a scratch folder; the caller's environment\n"
    "does not reach it. Progress goes to stderr, the result to stdout.\n"
    "\n"
    "  --data=DIR               train_*.bin, val_*.bin, token_bytes.bin (ratchet data prepare)\n"
    "  --budget=SECONDS         training time by the launcher's clock (warm-up left out);\n"
    "                           a run still going past it plus --grace is over-budget\n"
    "  --max-steps=N            stop after N steps (either limit, or both)\n"
    "  --nproc=N                training processes (default 2)\n"
    "  --warmup-allowance=S     most seconds of a marked warm-up left out (default 60)\n"
    "  --grace=S                after the budget: SIGTERM, SIGKILL after S more (default 30)\n"
    "  --timeout=S              hard stop for runs without --budget (default 3600)\n"
    "  --knob NAME=VALUE        RATCHET_KNOB_NAME=VALUE for train.py; repeatable\n"
    "  --windows=N              validation windows scored (default 64; 0 = all)\n"
    "  --seq-len=T              tokens per window (default 256)\n"
    "  --seed=S                 which windows (default 1)\n"
    "  --run-seed=S             $RATCHET_SEED for train.py, as a campaign's job gives it\n"
    "                           (other initial weights, another place in the data); unset\n"
    "                           by default\n"
    "  --device=cpu|cuda        where the evaluator runs the model (default cpu)\n"
    "  --python=PATH            a python that imports torch (default: $RATCHET_PYTHON,\n"
    "                           else /usr/bin/python3, else python3)\n"
    "  --scratch=DIR            the run's folder, new or empty (default: a fresh one in\n"
    "                           $TMPDIR, kept: it holds train.log, the checkpoint, eval.json)\n"
    "  --json                   print the result as one JSON object\n"
    "\n"
    "Exit status: 0 training and evaluation both ok; 1 either was not (over-budget,\n"
    "timeout, crash, bad-marks, no checkpoint, or the evaluator's outcome); 2 a\n"
    "usage or setup error, nothing run.\n";

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
// The evaluator bounds each model-host answer itself (900 s); this bounds the whole.
constexpr double kEvalTimeoutSeconds = 3 * 3600;

int Usage(const std::string& error) {
  std::cerr << "ratchet train: " << error << "\n\n" << kUsage;
  return kExitUsage;
}

int SetupError(const std::string& error) {
  std::cerr << "ratchet train: " << error << "\n";
  return kExitUsage;
}

struct TrainArgs {
  std::string project, data;
  int nproc = 2;
  double budget = 0, warmup_allowance = 60, grace = 30, timeout = 3600;
  long long max_steps = 0, windows = 64, seq_len = 256, seed = 1;
  long long run_seed = -1;  // -1: RATCHET_SEED unset
  std::string device = "cpu", python, scratch;
  std::map<std::string, std::string> knobs;
  bool json = false;
};

// "" when every flag is well formed, else the usage error.
std::string ParseArgs(const Flags& flags, TrainArgs* a) {
  auto unknown = flags.Unknown({"data", "nproc", "budget", "max-steps", "warmup-allowance",
                                "grace", "timeout", "knob", "windows", "seq-len", "seed",
                                "run-seed", "device", "python", "scratch", "json", "help"});
  if (!unknown.empty()) return absl::StrCat("unknown flag --", unknown[0]);
  if (flags.positional().size() != 1)
    return flags.positional().empty() ? "which project? (PROJECT_DIR, e.g. tasks/train/gpt_tiny)"
                                          : "one PROJECT_DIR only";
  a->project = flags.positional()[0];
  a->data = flags.Get("data");
  if (a->data.empty()) return "--data=DIR is required (a folder from ratchet data prepare)";
  auto nproc = flags.GetInt("nproc", a->nproc);
  auto budget = flags.GetDouble("budget", 0);
  auto max_steps = flags.GetInt("max-steps", 0);
  auto allowance = flags.GetDouble("warmup-allowance", a->warmup_allowance);
  auto grace = flags.GetDouble("grace", a->grace);
  auto timeout = flags.GetDouble("timeout", a->timeout);
  auto windows = flags.GetInt("windows", a->windows);
  auto seq_len = flags.GetInt("seq-len", a->seq_len);
  auto seed = flags.GetInt("seed", a->seed);
  auto run_seed = flags.GetInt("run-seed", a->run_seed);
  for (const absl::Status* s : {&nproc.status(), &budget.status(), &max_steps.status(),
                                &allowance.status(), &grace.status(), &timeout.status(),
                                &windows.status(), &seq_len.status(), &seed.status(),
                                &run_seed.status()})
    if (!s->ok()) return std::string(s->message());
  if (*nproc < 1 || *nproc > 1024) return "--nproc must be between 1 and 1024";
  if (*budget < 0 || *max_steps < 0) return "--budget and --max-steps must not be negative";
  if (*budget == 0 && *max_steps == 0) return "--budget=SECONDS or --max-steps=N is required";
  if (*allowance < 0 || *grace < 0 || *timeout <= 0)
    return "--warmup-allowance and --grace must not be negative, --timeout must be positive";
  if (*windows < 0) return "--windows must not be negative";
  if (*seq_len < 1) return "--seq-len must be positive";
  if (*seed < 0) return "--seed must not be negative";
  if (flags.Has("run-seed") && *run_seed < 0) return "--run-seed must not be negative";
  a->nproc = static_cast<int>(*nproc);
  a->budget = *budget;
  a->max_steps = *max_steps;
  a->warmup_allowance = *allowance;
  a->grace = *grace;
  a->timeout = *timeout;
  a->windows = *windows;
  a->seq_len = *seq_len;
  a->seed = *seed;
  a->run_seed = *run_seed;  // -1 (unset) when the flag is absent
  a->device = flags.Get("device", a->device);
  if (a->device != "cpu" && a->device != "cuda") return "--device must be cpu or cuda";
  a->python = flags.Get("python");
  a->scratch = flags.Get("scratch");
  a->json = flags.Has("json");
  for (const std::string& knob : flags.GetAll("knob")) {
    const size_t eq = knob.find('=');
    const std::string name = knob.substr(0, eq);
    if (eq == std::string::npos || !IsKnobName(name))
      return absl::StrCat("--knob ", knob, ": expected NAME=VALUE, NAME in A-Z, 0-9 and _");
    if (knob.find('\0') != std::string::npos || knob.find('\n') != std::string::npos)
      return absl::StrCat("--knob ", name, ": the value has a newline");
    a->knobs[name] = knob.substr(eq + 1);
  }
  return "";
}

void ShowProgress(const Progress& p) {
  std::cerr << absl::StrFormat("  step %7d  loss %8.4f  %10.0f tokens/s  %8.1f s\n", p.step,
                               p.loss, p.tokens_per_s, p.at_seconds);
}

// Runs the evaluator on the checkpoint; fills report->evaluation.
void Evaluate(const TrainArgs& a, const TrainScratch& s, const std::string& python,
              const std::string& eval_dir, TrainReport* report) {
  ChildOptions eval;
  eval.argv = {python, eval_dir + "/evaluate.py", "--model-dir", s.project, "--checkpoint",
               s.checkpoint, "--val-data", fs::absolute(a.data).string(), "--windows",
               std::to_string(a.windows), "--seq-len", std::to_string(a.seq_len), "--seed",
               std::to_string(a.seed), "--out", s.eval_out, "--device", a.device};
  eval.env = BaseEnvironment(s, UsableCpus());  // one process: every core
  eval.workdir = s.root;
  eval.timeout_seconds = kEvalTimeoutSeconds;
  eval.log_path = s.eval_log;
  std::cerr << "ratchet train: evaluating " << a.windows << " windows of " << a.seq_len
            << " tokens (log: " << s.eval_log << ")\n";
  absl::StatusOr<ChildResult> run = RunChild(eval);
  std::ifstream in(s.eval_out);
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json result = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  report->evaluated = true;
  if (result.is_object() && result.contains("outcome") && result["outcome"].is_string()) {
    report->evaluation = result;
    return;
  }
  // No result file: the evaluator itself failed (see its log).
  std::string why = !run.ok()          ? std::string(run.status().message())
                    : run->timed_out   ? absl::StrCat("timed out after ", kEvalTimeoutSeconds, " s")
                                       : absl::StrCat("exited with ", run->status);
  report->evaluation = {{"outcome", "error"},
                        {"message", absl::StrCat("the evaluator wrote no result (", why,
                                                 "); see ", s.eval_log)}};
}

}  // namespace

int TrainMain(int argc, char** argv) {
  absl::StatusOr<Flags> flags = Flags::Parse(argc - 1, argv + 1, {"json", "help"});
  if (!flags.ok()) return Usage(std::string(flags.status().message()));
  if (flags->Has("help")) {
    std::cout << kUsage;
    return kExitOk;
  }
  TrainArgs a;
  if (std::string bad = ParseArgs(*flags, &a); !bad.empty()) return Usage(bad);
  if (absl::Status s = CheckProject(a.project); !s.ok()) return Usage(std::string(s.message()));
  absl::StatusOr<DataFolder> data = CheckData(a.data);
  if (!data.ok()) return Usage(std::string(data.status().message()));
  std::string eval_tried;
  const std::string eval_dir = FindEvaluatorDir(&eval_tried);
  if (eval_dir.empty())
    return SetupError(absl::StrCat("the evaluator's scripts (",
                                   absl::StrJoin(kEvaluatorFiles, ", "), ") are not all in ",
                                   eval_tried, "; set $RATCHET_TRAINING_EVAL to their folder"));
  absl::StatusOr<TrainScratch> scratch = MakeTrainScratch(a.scratch, a.project, data->train_shards);
  if (!scratch.ok()) return SetupError(std::string(scratch.status().message()));
  const TrainScratch& s = *scratch;
  std::map<std::string, std::string> env = BaseEnvironment(s, UsableCpus() / a.nproc);
  absl::StatusOr<std::string> python = FindTorchPython(a.python, env);
  if (!python.ok()) return SetupError(std::string(python.status().message()));

  // Training: the shards' folder, the limits and the knobs; never the validation data.
  env["RATCHET_TRAIN_DATA"] = s.train_data;
  env["RATCHET_CHECKPOINT"] = s.checkpoint;
  if (a.budget > 0) env["RATCHET_BUDGET_SECONDS"] = absl::StrCat(a.budget);
  if (a.max_steps > 0) env["RATCHET_MAX_STEPS"] = std::to_string(a.max_steps);
  if (a.run_seed >= 0) env["RATCHET_SEED"] = std::to_string(a.run_seed);
  for (const auto& [name, value] : a.knobs) env["RATCHET_KNOB_" + name] = value;
  LaunchOptions launch;
  launch.argv = {*python, s.project + "/train.py"};
  launch.workdir = s.project;
  launch.env = env;
  launch.nproc = a.nproc;
  launch.budget_seconds = a.budget;
  launch.warmup_allowance_seconds = a.warmup_allowance;
  launch.timeout_seconds = a.timeout;
  launch.grace_seconds = a.grace;
  launch.log_path = s.train_log;
  launch.on_progress = ShowProgress;
  std::cerr << "ratchet train: " << a.nproc << " ranks of " << *python << " train.py on "
            << data->train_tokens << " training tokens (scratch: " << s.root << ")\n";

  TrainReport report;
  report.project = fs::absolute(a.project).string();
  report.data = fs::absolute(a.data).string();
  report.scratch = s.root;
  report.python = *python;
  report.device = a.device;
  report.nproc = a.nproc;
  report.budget_seconds = a.budget;
  report.max_steps = a.max_steps;
  report.run_seed = a.run_seed;
  report.knobs = a.knobs;
  report.training = Launch(launch);

  std::error_code ec;
  if (report.training.outcome != "ok") {
    report.outcome = report.training.outcome;
    report.message = absl::StrCat("training: ", report.training.message, "; see ", s.train_log);
  } else if (!fs::is_regular_file(s.checkpoint, ec)) {
    report.outcome = "no-checkpoint";
    report.message = absl::StrCat("training ended ok but wrote no ", s.checkpoint,
                                  " ($RATCHET_CHECKPOINT); see ", s.train_log);
  } else {
    Evaluate(a, s, *python, eval_dir, &report);
    report.outcome = report.evaluation["outcome"].get<std::string>();
    if (report.outcome != "ok")
      report.message = absl::StrCat("evaluation: ", report.evaluation.value("message", ""));
  }
  std::cout << (a.json ? ReportJson(report).dump(2) + "\n" : ReportTable(report));
  return report.outcome == "ok" ? kExitOk : kExitFailed;
}

}  // namespace ratchet::training
