#include "worker/training_job.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/auth.h"
#include "nlohmann/json.hpp"
#include "spec/defaults.h"
#include "spec/frozen_files.h"
#include "training/harness/launch_main.h"
#include "training/harness/torch_python.h"
#include "training/harness/train_env.h"
#include "training/harness/train_inputs.h"
#include "training/harness/train_scratch.h"

namespace ratchet::worker {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// What every bwrap sandbox shows whole (worker/sandbox.cc's kSystemFolders):
// data there cannot be hidden from the candidate.
constexpr const char* kSystemFolders[] = {"/usr", "/opt", "/sys", "/bin", "/sbin",
                                          "/lib", "/lib32", "/lib64", "/libx32"};
constexpr size_t kTailBytes = 3000;
constexpr size_t kMaxManifestBytes = 64 << 20;
constexpr size_t kMaxEvalResultBytes = 1 << 20;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A relative path that stays inside its folder: no absolute paths, no "..",
// as WriteJobFolder allows for kernel solutions.
bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p[0] == '/' || p.find('\0') != std::string::npos) return false;
  for (absl::string_view part : absl::StrSplit(p, '/'))
    if (part == ".." || part == "." || part.empty()) return false;
  return true;
}

bool WriteFile(const fs::path& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  return static_cast<bool>(out);
}

// Reads a regular file that the worker made or trusts to be where it is,
// never through a link and never a FIFO the candidate left in its place
// (train.log sits in the candidate's writable folder: a link to a secret of
// the worker's would put the secret in the evaluation's message). The last
// `tail` bytes when tail > 0, else the first `limit`. nullopt when absent or
// not a plain file.
std::optional<std::string> ReadPlainFile(const fs::path& path, size_t limit, bool tail = false) {
  const int fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return std::nullopt;
  }
  off_t from = 0;
  if (tail && st.st_size > static_cast<off_t>(limit)) from = st.st_size - static_cast<off_t>(limit);
  std::string out(limit, '\0');
  size_t got = 0;
  while (got < limit) {
    const ssize_t n = pread(fd, out.data() + got, limit - got, from + static_cast<off_t>(got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  out.resize(got);
  return out;
}

std::string LogTail(const fs::path& log) {
  std::optional<std::string> text = ReadPlainFile(log, kTailBytes, /*tail=*/true);
  if (!text || text->empty()) return "";
  return absl::StrCat("\n--- the end of train.log ---\n", *text);
}

// `path` (canonical) is `folder` or inside it, `folder` taken with links
// resolved as far as it exists.
bool Inside(const std::string& path, const std::string& folder) {
  std::error_code ec;
  std::string f = fs::weakly_canonical(folder, ec).string();
  if (ec || f.empty()) return false;
  while (f.size() > 1 && f.back() == '/') f.pop_back();
  return path == f || absl::StartsWith(path, f == "/" ? "/" : f + "/");
}

// The python that imports torch under the training environment, found once
// per choice (the probe imports torch: seconds on a busy machine).
absl::StatusOr<std::string> TorchPython(const std::string& choice,
                                        const std::map<std::string, std::string>& env) {
  static std::mutex mu;
  static std::map<std::string, std::string> found;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = found.find(choice);
    if (it != found.end()) return it->second;
  }
  absl::StatusOr<std::string> python = training::FindTorchPython(choice, env);
  if (python.ok()) {
    std::lock_guard<std::mutex> lock(mu);
    found[choice] = *python;
  }
  return python;
}

// The evaluator's scripts: $RATCHET_TRAINING_EVAL when set, else
// training_eval/ beside the launcher's executable, else beside ours.
std::string EvaluatorDir(const std::string& launcher, std::string* tried) {
  const char* var = getenv("RATCHET_TRAINING_EVAL");
  if (var == nullptr || *var == '\0') {
    const fs::path beside = fs::path(launcher).parent_path() / "training_eval";
    std::error_code ec;
    bool all = true;
    for (const char* file : {"evaluate.py", "model_host.py", "shards.py"})
      all = all && fs::is_regular_file(beside / file, ec);
    if (all) return fs::absolute(beside, ec).string();
  }
  return training::FindEvaluatorDir(tried);
}

std::vector<std::string> EnvList(const std::map<std::string, std::string>& env) {
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

double JsonNumber(const nlohmann::json& j, const char* key, double fallback = 0) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string JsonString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

// Collects what a sandboxed program prints: shown in the worker's log with
// the job's id, the last lines kept for messages.
struct OutputTail {
  int64_t job_id = 0;
  std::deque<std::string> lines;
  void Add(const std::string& line) {
    Log(absl::StrCat("[job ", job_id, "] ", line));
    lines.push_back(line.size() > 500 ? line.substr(0, 500) + "..." : line);
    if (lines.size() > 20) lines.pop_front();
  }
  std::string Text() const {
    if (lines.empty()) return "";
    return absl::StrCat("\n", absl::StrJoin(lines, "\n"));
  }
};

}  // namespace

std::string ShellQuote(const std::string& word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += "'";
  return out;
}

std::string LaunchResultOf(const std::string& line, const std::string& nonce) {
  if (nonce.empty()) return "";
  const std::string prefix = absl::StrCat(training::kLaunchResultPrefix, " ", nonce, " ");
  if (!absl::StartsWith(line, prefix)) return "";
  return line.substr(prefix.size());
}

std::optional<v1::JobProgress> LaunchProgressOf(const std::string& line) {
  const std::vector<absl::string_view> w = absl::StrSplit(line, ' ');
  if (w.size() != 5 || w[0] != training::kLaunchProgressPrefix) return std::nullopt;
  int64_t step = 0;
  double loss = 0, tokens_per_s = 0, seconds = 0;
  if (!absl::SimpleAtoi(w[1], &step) || !absl::SimpleAtod(w[2], &loss) ||
      !absl::SimpleAtod(w[3], &tokens_per_s) || !absl::SimpleAtod(w[4], &seconds))
    return std::nullopt;
  v1::JobProgress p;
  p.set_step(step);
  p.set_loss(loss);
  p.set_tokens_per_s(tokens_per_s);
  p.set_seconds(seconds);
  return p;
}

v1::Evaluation RunTrainingJob(const v1::Job& job, const WorkerOptions& options,
                              const Sandbox& sandbox, const v1::Hardware& hardware,
                              const std::atomic<bool>* cancel, bool* cancelled,
                              const std::function<v1::Evaluation(v1::Evaluation)>& finish,
                              const std::function<void(const v1::JobProgress&)>& on_progress) {
  *cancelled = false;
  const Clock::time_point started = Clock::now();
  const v1::TrainingSettings& t = job.training();
  const bool budget_task = job.task() == v1::TASK_TRAIN_BUDGET;
  const bool cuda = job.device() == v1::DEVICE_CUDA;
  const int nproc = std::max(1, t.nproc());
  // Multi-fidelity: an evaluation may train for a fraction of the budget
  // (and of max_steps); replays always run the whole.
  const double fidelity =
      job.kind() == v1::JOB_EVALUATE && job.fidelity() > 0 && job.fidelity() < 1 ? job.fidelity()
                                                                                 : 1.0;
  const double budget = std::max(0.0, t.budget_seconds()) * fidelity;
  const int64_t max_steps =
      t.max_steps() > 0
          ? std::max<int64_t>(1, static_cast<int64_t>(std::ceil(t.max_steps() * fidelity)))
          : 0;
  const double allowance = std::max(0.0, t.warmup_allowance_seconds());
  const double grace = std::max(0.0, t.grace_seconds());
  const double job_timeout =
      job.harness().timeout_seconds() > 0 ? job.harness().timeout_seconds()
      : budget > 0 ? budget + allowance + spec::kDefaultTrainingSlackSeconds
                   : 3600;

  v1::Evaluation eval;
  v1::TrainingRun& run_record = *eval.mutable_training();
  run_record.set_seed(job.seed());
  run_record.set_nproc(nproc);
  run_record.set_target_loss(t.target_loss());
  run_record.set_fidelity(fidelity);
  auto end = [&](v1::Outcome outcome, const std::string& message) {
    eval.set_outcome(outcome);
    eval.set_message(message);
    if (eval.wall_seconds() == 0) eval.set_wall_seconds(Since(started));
    return finish(eval);
  };
  auto harness_error = [&](const std::string& message) {
    return end(v1::OUTCOME_HARNESS_ERROR, message);
  };

  Log(absl::StrFormat("job %d start: campaign %d candidate %d %s %s seed %d nproc %d budget %gs "
                      "max-steps %d",
                      job.id(), job.campaign_id(), job.candidate_id(),
                      v1::JobKind_Name(job.kind()), v1::Task_Name(job.task()), job.seed(), nproc,
                      budget, max_steps));

  // a. What the worker and the campaign must provide; refused before
  // anything runs.
  if (sandbox.mode() != Sandbox::Mode::kBwrap)
    return harness_error(absl::StrCat(
        "training jobs run only under the bwrap sandbox: without it the validation data "
        "cannot be hidden from the candidate's processes (this worker's sandbox is ",
        sandbox.name(), "; start it where bwrap works, with --sandbox=bwrap)"));
  if (budget_task && budget <= 0)
    return harness_error("a train-budget job without training.budget_seconds");
  if (!budget_task && job.task() != v1::TASK_TRAIN_TARGET)
    return harness_error(absl::StrCat("not a training task: ", v1::Task_Name(job.task())));
  if (t.data_dir().empty() || t.data_dir()[0] != '/')
    return harness_error(absl::StrCat("training.data_dir '", t.data_dir(),
                                      "' is not an absolute folder"));
  std::error_code ec;
  const std::string data_dir = fs::path(t.data_dir()).lexically_normal().string();
  const std::string data_real = fs::canonical(data_dir, ec).string();
  if (ec)
    return harness_error(absl::StrCat("the training data folder ", data_dir,
                                      " is not on this worker: ", ec.message()));
  for (const char* folder : kSystemFolders)
    if (Inside(data_real, folder))
      return harness_error(absl::StrCat(
          "the training data folder ", data_dir, " is under ", folder,
          ", which every sandbox shows whole: its validation shards could not be hidden "
          "from the candidate; keep the data elsewhere (e.g. /srv/ratchet/data)"));
  if (cuda && hardware.gpus_size() < nproc)
    return harness_error(absl::StrFormat("the job wants %d GPUs (training.nproc); this worker "
                                         "has %d", nproc, hardware.gpus_size()));
  if (!cuda && job.device() != v1::DEVICE_CPU && job.device() != v1::DEVICE_UNSPECIFIED)
    return harness_error(absl::StrCat("unknown device ", job.device()));
  if (!t.data_manifest_sha256().empty()) {
    const std::optional<std::string> manifest =
        ReadPlainFile(fs::path(data_dir) / "manifest.json", kMaxManifestBytes);
    if (!manifest)
      return harness_error(absl::StrCat("the training data folder ", data_dir,
                                        " has no manifest.json to check against the campaign's"));
    const std::string sha = auth::Sha256Hex(*manifest);
    if (sha != absl::AsciiStrToLower(t.data_manifest_sha256()))
      return harness_error(absl::StrCat(
          "the training data on this worker differs from the campaign's: SHA-256 of ", data_dir,
          "/manifest.json is ", sha, ", the campaign's ", t.data_manifest_sha256()));
  }
  absl::StatusOr<training::DataFolder> data = training::CheckData(data_dir);
  if (!data.ok())
    return harness_error(absl::StrCat("the training data folder: ", data.status().message()));
  const std::string launcher =
      options.launcher_path.empty() ? SelfExecutable() : fs::absolute(options.launcher_path, ec).string();
  if (launcher.empty() || access(launcher.c_str(), X_OK) != 0)
    return harness_error(absl::StrCat("the ratchet executable for `ratchet launch` ('", launcher,
                                      "') cannot be run"));
  std::string eval_tried;
  const std::string eval_dir = EvaluatorDir(launcher, &eval_tried);
  if (eval_dir.empty())
    return harness_error(absl::StrCat("the training evaluator's scripts are not in ", eval_tried,
                                      " (set $RATCHET_TRAINING_EVAL to their folder)"));

  // The job's folders: SCRATCH, the candidate's (writable in training, read-
  // only to the model hosts), and beside it one the candidate never sees,
  // for the evaluator's result.
  fs::create_directories(options.scratch_root, ec);
  std::string tmpl = absl::StrCat(options.scratch_root, "/job-", job.id(), "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr)
    return harness_error(absl::StrCat("cannot make a scratch folder under ",
                                      options.scratch_root, ": ", strerror(errno)));
  const fs::path scratch = tmpl;
  struct Cleanup {
    std::vector<fs::path> dirs;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep)
        for (const auto& d : dirs) fs::remove_all(d, ec);
    }
  } cleanup{{scratch}, options.keep_scratch};
  std::string eval_tmpl = absl::StrCat(options.scratch_root, "/job-", job.id(), "-eval-XXXXXX");
  if (mkdtemp(eval_tmpl.data()) == nullptr)
    return harness_error(absl::StrCat("cannot make a folder under ", options.scratch_root, ": ",
                                      strerror(errno)));
  const fs::path eval_root = eval_tmpl;
  cleanup.dirs.push_back(eval_root);
  const fs::path project = scratch / "project", train_log = scratch / "train.log",
                 checkpoint = scratch / "checkpoint.pt";
  training::TrainScratch train_scratch;
  train_scratch.home = (scratch / "home").string();
  train_scratch.tmp = (scratch / "tmp").string();
  training::TrainScratch eval_scratch;
  eval_scratch.home = (eval_root / "home").string();
  eval_scratch.tmp = (eval_root / "tmp").string();
  for (const std::string& dir : {project.string(), train_scratch.home, train_scratch.tmp,
                                 eval_scratch.home, eval_scratch.tmp})
    fs::create_directories(dir, ec);

  // b. The candidate's project, checked against the frozen files first.
  const std::map<std::string, std::string> files(job.solution().files().begin(),
                                                 job.solution().files().end());
  // Every file is frozen or editable: a frozen one changed or removed, or
  // one added that no editable glob allows, ends the job here.
  if (absl::Status frozen = spec::CheckFrozenFiles(files, t); !frozen.ok())
    return end(v1::OUTCOME_FROZEN_EDIT, std::string(frozen.message()));
  for (const auto& [path, content] : files) {
    // A path that is not plain is the candidate's fault, as for kernels.
    if (!SafeRelativePath(path))
      return end(v1::OUTCOME_COMPILE_ERROR,
                 absl::StrCat("solution file path '", path, "' is not a plain relative path"));
    if (!WriteFile(project / path, content))
      return harness_error(absl::StrCat("cannot write ", (project / path).string()));
  }
  if (absl::Status s = training::CheckProject(project.string()); !s.ok())
    return end(v1::OUTCOME_CRASH, std::string(s.message()));

  // c. The training sandbox's environment: an allow-list, the contract's
  // variables, the knobs, the seed and the launcher's secret.
  const int cores = hardware.cpu_cores() > 0 ? hardware.cpu_cores() : training::UsableCpus();
  std::map<std::string, std::string> env =
      training::BaseEnvironment(train_scratch, std::max(1, cores / nproc));
  if (!cuda) env["CUDA_VISIBLE_DEVICES"] = "";  // a CPU job leaves the GPUs alone
  // A bundle's libraries (deploy/bundle.sh), which `ratchet launch` itself
  // needs; its folders are bound read-only below (ToolchainFolders).
  const char* libraries = getenv("LD_LIBRARY_PATH");
  if (libraries != nullptr && *libraries != '\0') env["LD_LIBRARY_PATH"] = libraries;
  absl::StatusOr<std::string> python = TorchPython(options.python, env);
  if (!python.ok()) return harness_error(std::string(python.status().message()));
  env["RATCHET_TRAIN_DATA"] = data_dir;
  env["RATCHET_CHECKPOINT"] = checkpoint.string();
  if (budget > 0) env["RATCHET_BUDGET_SECONDS"] = absl::StrCat(budget);
  if (max_steps > 0) env["RATCHET_MAX_STEPS"] = absl::StrCat(max_steps);
  env["RATCHET_SEED"] = absl::StrCat(job.seed());
  for (const auto& [name, value] : job.solution().knobs()) {
    if (!training::IsKnobName(name) || value.find('\0') != std::string::npos ||
        value.find('\n') != std::string::npos)
      return end(v1::OUTCOME_CRASH, absl::StrCat("knob '", name, "': a name of A-Z, 0-9 and _ "
                                                 "and a value of one line are expected"));
    env["RATCHET_KNOB_" + name] = value;
  }
  const std::vector<std::string> toolchain = ToolchainFolders(EnvList(env), {*python});
  // Nothing either sandbox shows whole may hold the data folder.
  std::vector<std::string> shown = toolchain;
  shown.push_back(fs::path(launcher).parent_path().string());
  shown.push_back(eval_dir);
  shown.push_back(scratch.string());
  for (const std::string& folder : shown)
    if (Inside(data_real, folder))
      return harness_error(absl::StrCat(
          "the training data folder ", data_dir, " is inside ", folder,
          ", which the job's sandboxes show whole: its validation shards could not be hidden "
          "from the candidate; keep the data elsewhere"));
  const std::string nonce = NewNonce();
  env["RATCHET_RESULT_NONCE"] = nonce;

  const double train_limit = budget > 0 ? budget + allowance + 2 * grace + 60 : job_timeout;
  SandboxSpec train;
  train.argv = {launcher,
                "launch",
                "--workdir=" + project.string(),
                absl::StrCat("--nproc=", nproc),
                "--python=" + *python,
                absl::StrCat("--warmup-allowance=", allowance),
                absl::StrCat("--grace=", grace),
                absl::StrCat("--timeout=", std::max(1.0, train_limit - 2 * grace - 30)),
                "--log=" + train_log.string()};
  if (budget > 0) train.argv.push_back(absl::StrCat("--budget=", budget));
  if (max_steps > 0) train.argv.push_back(absl::StrCat("--max-steps=", max_steps));
  train.scratch_dir = scratch.string();
  train.wall_seconds = train_limit;
  train.cpu_seconds =
      options.cpu_seconds > 0 ? options.cpu_seconds : train_limit * std::max(1, cores) + 10;
  train.memory_bytes = options.memory_bytes;
  train.scratch_bytes = options.scratch_bytes;
  train.env = EnvList(env);
  // Each training shard by itself, never the folder: inside, the data folder
  // holds the train_*.bin files and nothing else.
  train.ro_binds = toolchain;
  for (const std::string& shard : data->train_shards) train.ro_binds.push_back(shard);
  // The launcher is the sandbox's PID 1: no bwrap process holding the nonce
  // in its environment stays where the ranks could read it.
  train.as_pid_1 = true;

  OutputTail train_output{job.id(), {}};
  std::string launch_json;
  double progress_logged_at = -1;
  RunHooks hooks;
  hooks.cancel = cancel;
  // The sandbox's output is the launcher's (and bwrap's): the ranks write to
  // train.log, never here.
  hooks.output_line = [&](const std::string& line) {
    const std::string result = LaunchResultOf(line, nonce);
    if (!result.empty()) {
      if (launch_json.empty()) launch_json = result;
      return;
    }
    // Progress (shown only) goes to the next heartbeat, not into the tail
    // kept for messages; the worker's log shows one line in 30 s.
    if (std::optional<v1::JobProgress> progress = LaunchProgressOf(line)) {
      progress->set_job_id(job.id());
      if (on_progress) on_progress(*progress);
      if (progress_logged_at < 0 || !(progress->seconds() - progress_logged_at < 30)) {
        progress_logged_at = progress->seconds();
        Log(absl::StrCat("[job ", job.id(), "] ", line));
      }
      return;
    }
    train_output.Add(line);
  };
  absl::StatusOr<RunResult> trained = sandbox.Run(train, hooks);
  if (!trained.ok())
    return harness_error(absl::StrCat("cannot run the training sandbox: ",
                                      trained.status().message()));
  eval.set_wall_seconds(trained->wall_seconds);
  run_record.set_wall_seconds(trained->wall_seconds);
  if (trained->cancelled) {
    *cancelled = true;
    return end(v1::OUTCOME_CRASH, "cancelled");
  }
  if (trained->scratch_exceeded)
    return end(v1::OUTCOME_CRASH,
               absl::StrCat("scratch-exceeded: the job's folder grew past ",
                            options.scratch_bytes, " bytes during training"));
  if (trained->timed_out) {
    run_record.set_training_outcome("timeout");
    return end(v1::OUTCOME_TIMEOUT,
               absl::StrFormat("timeout: training ran past the sandbox's limit of %.0f s%s",
                               train_limit, LogTail(train_log)));
  }
  // d. The launcher's word on how the ranks ended and on the warm-up they
  // marked (capped by the allowance); the time is the sandbox's.
  const nlohmann::json launch =
      nlohmann::json::parse(launch_json, nullptr, /*allow_exceptions=*/false);
  if (launch_json.empty() || !launch.is_object() || JsonString(launch, "outcome").empty())
    return end(v1::OUTCOME_CRASH,
               absl::StrCat("the launcher wrote no result (",
                            trained->signal ? SignalName(trained->signal)
                                            : absl::StrCat("exit ", trained->exit_code),
                            ")", train_output.Text(), LogTail(train_log)));
  const std::string launch_outcome = JsonString(launch, "outcome");
  const std::string launch_message = JsonString(launch, "message");
  const double left_out = std::clamp(
      JsonNumber(launch, "wall_seconds") - JsonNumber(launch, "training_seconds"), 0.0, allowance);
  const double training_seconds = std::max(0.0, trained->wall_seconds - left_out);
  run_record.set_training_outcome(launch_outcome);
  run_record.set_warmup_seconds(left_out);
  run_record.set_training_seconds(training_seconds);
  run_record.set_steps(static_cast<int64_t>(JsonNumber(launch, "steps")));
  run_record.set_tokens_per_s(JsonNumber(launch, "last_tokens_per_s"));
  if (launch_outcome == "crash")
    return end(v1::OUTCOME_CRASH, absl::StrCat("crash: ", launch_message, LogTail(train_log)));
  if (launch_outcome == "bad-marks")
    return end(v1::OUTCOME_CRASH, absl::StrCat("bad-marks: ", launch_message));
  if (launch_outcome == "over-budget" || launch_outcome == "timeout")
    return end(v1::OUTCOME_TIMEOUT, absl::StrCat(launch_outcome, ": ", launch_message));
  if (launch_outcome != "ok")
    return harness_error(absl::StrCat("the launcher: ", launch_outcome, ": ", launch_message));
  if (budget > 0 && training_seconds > budget + grace) {
    run_record.set_training_outcome("over-budget");
    return end(v1::OUTCOME_TIMEOUT,
               absl::StrFormat("over-budget: %.2f s of training by the worker's clock, against a "
                               "budget of %g s (and %g s of grace)",
                               training_seconds, budget, grace));
  }
  struct stat st;
  if (lstat(checkpoint.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return end(v1::OUTCOME_CRASH,
               absl::StrCat("no checkpoint: training ended ok but wrote no ", checkpoint.string(),
                            " ($RATCHET_CHECKPOINT)", LogTail(train_log)));

  // e. The evaluation, by the worker's trusted evaluator outside the
  // training sandbox; the candidate's model runs in hosts of their own,
  // sandboxed with the job's folder read-only and no validation data.
  absl::StatusOr<Sandbox> plain = Sandbox::Create("none");
  if (!plain.ok()) return harness_error(std::string(plain.status().message()));
  SandboxSpec host;
  host.scratch_dir = scratch.string();
  host.scratch_read_only = true;
  host.ro_binds = toolchain;
  host.ro_binds.push_back(eval_dir);
  std::vector<std::string> wrapper = sandbox.CommandLine(host);
  if (wrapper.empty() || wrapper.back() != "--")
    return harness_error("the model hosts' sandbox command does not end in '--'");
  // HOME and TMPDIR name the evaluator's folder, which the hosts do not see.
  wrapper.insert(wrapper.end() - 1, {"--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp"});
  std::vector<std::string> quoted;
  for (const std::string& word : wrapper) quoted.push_back(ShellQuote(word));

  const fs::path eval_out = eval_root / "eval.json";
  std::map<std::string, std::string> eval_env = training::BaseEnvironment(eval_scratch, cores);
  if (!cuda) eval_env["CUDA_VISIBLE_DEVICES"] = "";
  if (libraries != nullptr && *libraries != '\0') eval_env["LD_LIBRARY_PATH"] = libraries;
  const double eval_limit = std::max(600.0, job_timeout - Since(started));
  SandboxSpec evaluator;
  evaluator.argv = {*python,
                    eval_dir + "/evaluate.py",
                    "--model-dir", project.string(),
                    "--checkpoint", checkpoint.string(),
                    "--val-data", data_dir,
                    "--windows", absl::StrCat(t.eval_windows()),
                    "--seq-len", absl::StrCat(t.eval_seq_len() > 0 ? t.eval_seq_len()
                                                                   : spec::kDefaultEvalSeqLen),
                    "--seed", absl::StrCat(t.eval_seed()),
                    "--out", eval_out.string(),
                    "--device", cuda ? "cuda" : "cpu",
                    "--host-wrapper", absl::StrJoin(quoted, " ")};
  evaluator.scratch_dir = eval_root.string();
  evaluator.wall_seconds = eval_limit;
  evaluator.cpu_seconds = eval_limit * std::max(1, cores) + 10;
  evaluator.memory_bytes = options.memory_bytes;
  evaluator.env = EnvList(eval_env);
  OutputTail eval_output{job.id(), {}};
  RunHooks eval_hooks;
  eval_hooks.cancel = cancel;
  eval_hooks.output_line = [&](const std::string& line) { eval_output.Add(line); };
  absl::StatusOr<RunResult> evaluated = plain->Run(evaluator, eval_hooks);
  if (!evaluated.ok())
    return harness_error(absl::StrCat("cannot run the evaluator: ", evaluated.status().message()));
  eval.set_wall_seconds(trained->wall_seconds + evaluated->wall_seconds);
  if (evaluated->cancelled) {
    *cancelled = true;
    return end(v1::OUTCOME_CRASH, "cancelled");
  }
  if (evaluated->timed_out) {
    run_record.set_eval_outcome("timeout");
    return end(v1::OUTCOME_TIMEOUT,
               absl::StrFormat("evaluation timeout: the evaluator ran past %.0f s%s", eval_limit,
                               eval_output.Text()));
  }
  const std::optional<std::string> eval_text = ReadPlainFile(eval_out, kMaxEvalResultBytes);
  const nlohmann::json result = nlohmann::json::parse(eval_text.value_or(""), nullptr,
                                                      /*allow_exceptions=*/false);
  const std::string eval_outcome = result.is_object() ? JsonString(result, "outcome") : "";
  if (eval_outcome.empty())
    return end(v1::OUTCOME_CRASH,
               absl::StrCat("evaluation: the evaluator wrote no result (",
                            evaluated->signal ? SignalName(evaluated->signal)
                                              : absl::StrCat("exit ", evaluated->exit_code),
                            ")", eval_output.Text()));
  const std::string eval_message = JsonString(result, "message");
  run_record.set_eval_outcome(eval_outcome);
  run_record.set_bpb(JsonNumber(result, "bpb"));
  run_record.set_loss(JsonNumber(result, "loss"));
  run_record.set_eval_tokens(static_cast<int64_t>(JsonNumber(result, "tokens")));
  run_record.set_eval_bytes(static_cast<int64_t>(JsonNumber(result, "bytes")));

  // f. The outcome and the score.
  if (eval_outcome == "causal-leak" || eval_outcome == "non-finite" ||
      eval_outcome == "collapsed" || eval_outcome == "bad-output")
    return end(v1::OUTCOME_WRONG_ANSWER, absl::StrCat(eval_outcome, ": ", eval_message));
  if (eval_outcome != "ok")
    return end(v1::OUTCOME_CRASH, absl::StrCat("evaluation ", eval_outcome, ": ", eval_message));
  const double bpb = run_record.bpb(), loss = run_record.loss();
  if (!std::isfinite(bpb) || bpb <= 0 || !std::isfinite(loss))
    return end(v1::OUTCOME_CRASH,
               absl::StrFormat("evaluation: the evaluator's figures are not usable (bpb %g, "
                               "loss %g)", bpb, loss));
  run_record.set_reached_target(!budget_task && loss < t.target_loss());
  if (budget_task) {
    eval.set_score(1.0 / bpb);
  } else {
    eval.set_score(run_record.reached_target() && training_seconds > 0 ? 3600.0 / training_seconds
                                                                       : 0.0);
  }
  return end(v1::OUTCOME_OK, "");
}

}  // namespace ratchet::worker
