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
#include "common/usable_cpus.h"
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
    for (const char* file : training::kEvaluatorFiles)
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

namespace {

// One training job, in the steps a-f below; each step returns the job's
// evaluation when it ended the job, else nothing.
class TrainingJob {
 public:
  TrainingJob(const v1::Job& job, const WorkerOptions& options, const Sandbox& sandbox,
              const v1::Hardware& hardware, const std::atomic<bool>* cancel, bool* cancelled,
              const std::function<v1::Evaluation(v1::Evaluation)>& finish,
              const std::function<void(const v1::JobProgress&)>& on_progress);

  v1::Evaluation Run() {
    Log(absl::StrFormat("job %d start: campaign %d candidate %d %s %s seed %d nproc %d budget "
                        "%gs max-steps %d",
                        job_.id(), job_.campaign_id(), job_.candidate_id(),
                        v1::JobKind_Name(job_.kind()), v1::Task_Name(job_.task()), job_.seed(),
                        nproc_, budget_, max_steps_));
    if (auto ended = CheckWhatIsProvided()) return *ended;
    if (auto ended = MakeFolders()) return *ended;
    if (auto ended = WriteProject()) return *ended;
    if (auto ended = MakeTrainingEnvironment()) return *ended;
    if (auto ended = Train()) return *ended;
    if (auto ended = Evaluate()) return *ended;
    return Score();
  }

 private:
  std::optional<v1::Evaluation> CheckWhatIsProvided();
  std::optional<v1::Evaluation> MakeFolders();
  std::optional<v1::Evaluation> WriteProject();
  std::optional<v1::Evaluation> MakeTrainingEnvironment();
  std::optional<v1::Evaluation> Train();
  std::optional<v1::Evaluation> Evaluate();
  v1::Evaluation Score();

  v1::Evaluation End(v1::Outcome outcome, const std::string& message) {
    eval_.set_outcome(outcome);
    eval_.set_message(message);
    if (eval_.wall_seconds() == 0) eval_.set_wall_seconds(Since(started_));
    return finish_(eval_);
  }
  v1::Evaluation HarnessError(const std::string& message) {
    return End(v1::OUTCOME_HARNESS_ERROR, message);
  }

  // The job's folders go when the job object does (after finish_).
  struct Cleanup {
    std::vector<fs::path> dirs;
    bool keep = false;
    ~Cleanup() {
      std::error_code ec;
      if (!keep)
        for (const auto& d : dirs) fs::remove_all(d, ec);
    }
  };

  const v1::Job& job_;
  const WorkerOptions& options_;
  const Sandbox& sandbox_;
  const v1::Hardware& hardware_;
  const std::atomic<bool>* cancel_;
  bool* cancelled_;
  const std::function<v1::Evaluation(v1::Evaluation)>& finish_;
  const std::function<void(const v1::JobProgress&)>& on_progress_;
  const Clock::time_point started_ = Clock::now();
  const v1::TrainingSettings& t_;
  const bool budget_task_, cuda_;
  const int nproc_;
  double fidelity_ = 1, budget_ = 0, allowance_ = 0, grace_ = 0, job_timeout_ = 0;
  int64_t max_steps_ = 0;
  v1::Evaluation eval_;
  v1::TrainingRun& run_record_;

  // Step a.
  std::string data_dir_, data_real_, launcher_, eval_dir_;
  training::DataFolder data_;
  // The folders.
  Cleanup cleanup_;
  fs::path scratch_, eval_root_, project_, train_log_, checkpoint_;
  training::TrainScratch train_scratch_, eval_scratch_;
  // Step c.
  int cores_ = 1;
  const char* libraries_ = nullptr;
  std::string python_, nonce_;
  std::map<std::string, std::string> env_;
  std::vector<std::string> toolchain_;
  // Step d.
  double trained_wall_seconds_ = 0, training_seconds_ = 0;
};

TrainingJob::TrainingJob(const v1::Job& job, const WorkerOptions& options, const Sandbox& sandbox,
                         const v1::Hardware& hardware, const std::atomic<bool>* cancel,
                         bool* cancelled,
                         const std::function<v1::Evaluation(v1::Evaluation)>& finish,
                         const std::function<void(const v1::JobProgress&)>& on_progress)
    : job_(job),
      options_(options),
      sandbox_(sandbox),
      hardware_(hardware),
      cancel_(cancel),
      cancelled_(cancelled),
      finish_(finish),
      on_progress_(on_progress),
      t_(job.training()),
      budget_task_(job.task() == v1::TASK_TRAIN_BUDGET),
      cuda_(job.device() == v1::DEVICE_CUDA),
      nproc_(std::max(1, job.training().nproc())),
      run_record_(*eval_.mutable_training()) {
  *cancelled_ = false;
  // Multi-fidelity: an evaluation may train for a fraction of the budget
  // (and of max_steps); replays always run the whole.
  fidelity_ = job.kind() == v1::JOB_EVALUATE && job.fidelity() > 0 && job.fidelity() < 1
                  ? job.fidelity()
                  : 1.0;
  budget_ = std::max(0.0, t_.budget_seconds()) * fidelity_;
  max_steps_ = t_.max_steps() > 0 ? std::max<int64_t>(
                                        1, static_cast<int64_t>(std::ceil(t_.max_steps() * fidelity_)))
                                  : 0;
  allowance_ = std::max(0.0, t_.warmup_allowance_seconds());
  grace_ = std::max(0.0, t_.grace_seconds());
  job_timeout_ = job.harness().timeout_seconds() > 0 ? job.harness().timeout_seconds()
                 : budget_ > 0 ? budget_ + allowance_ + spec::kDefaultTrainingSlackSeconds
                               : 3600;
  run_record_.set_seed(job.seed());
  run_record_.set_nproc(nproc_);
  run_record_.set_target_loss(t_.target_loss());
  run_record_.set_fidelity(fidelity_);
  cleanup_.keep = options.keep_scratch;
}

// a. What the worker and the campaign must provide; refused before
// anything runs.
std::optional<v1::Evaluation> TrainingJob::CheckWhatIsProvided() {
  if (sandbox_.mode() != Sandbox::Mode::kBwrap)
    return HarnessError(absl::StrCat(
        "training jobs run only under the bwrap sandbox: without it the validation data "
        "cannot be hidden from the candidate's processes (this worker's sandbox is ",
        sandbox_.name(), "; start it where bwrap works, with --sandbox=bwrap)"));
  if (budget_task_ && budget_ <= 0)
    return HarnessError("a train-budget job without training.budget_seconds");
  if (!budget_task_ && job_.task() != v1::TASK_TRAIN_TARGET)
    return HarnessError(absl::StrCat("not a training task: ", v1::Task_Name(job_.task())));
  if (t_.data_dir().empty() || t_.data_dir()[0] != '/')
    return HarnessError(absl::StrCat("training.data_dir '", t_.data_dir(),
                                     "' is not an absolute folder"));
  std::error_code ec;
  data_dir_ = fs::path(t_.data_dir()).lexically_normal().string();
  data_real_ = fs::canonical(data_dir_, ec).string();
  if (ec)
    return HarnessError(absl::StrCat("the training data folder ", data_dir_,
                                     " is not on this worker: ", ec.message()));
  for (const char* folder : kSystemFolders)
    if (Inside(data_real_, folder))
      return HarnessError(absl::StrCat(
          "the training data folder ", data_dir_, " is under ", folder,
          ", which every sandbox shows whole: its validation shards could not be hidden "
          "from the candidate; keep the data elsewhere (e.g. /srv/ratchet/data)"));
  if (cuda_ && hardware_.gpus_size() < nproc_)
    return HarnessError(absl::StrFormat("the job wants %d GPUs (training.nproc); this worker "
                                        "has %d", nproc_, hardware_.gpus_size()));
  if (!cuda_ && job_.device() != v1::DEVICE_CPU && job_.device() != v1::DEVICE_UNSPECIFIED)
    return HarnessError(absl::StrCat("unknown device ", job_.device()));
  if (!t_.data_manifest_sha256().empty()) {
    const std::optional<std::string> manifest =
        ReadPlainFile(fs::path(data_dir_) / "manifest.json", kMaxManifestBytes);
    if (!manifest)
      return HarnessError(absl::StrCat("the training data folder ", data_dir_,
                                       " has no manifest.json to check against the campaign's"));
    const std::string sha = auth::Sha256Hex(*manifest);
    if (sha != absl::AsciiStrToLower(t_.data_manifest_sha256()))
      return HarnessError(absl::StrCat(
          "the training data on this worker differs from the campaign's: SHA-256 of ", data_dir_,
          "/manifest.json is ", sha, ", the campaign's ", t_.data_manifest_sha256()));
  }
  absl::StatusOr<training::DataFolder> data = training::CheckData(data_dir_);
  if (!data.ok())
    return HarnessError(absl::StrCat("the training data folder: ", data.status().message()));
  data_ = *std::move(data);
  launcher_ = options_.launcher_path.empty() ? SelfExecutable()
                                             : fs::absolute(options_.launcher_path, ec).string();
  if (launcher_.empty() || access(launcher_.c_str(), X_OK) != 0)
    return HarnessError(absl::StrCat("the ratchet executable for `ratchet launch` ('", launcher_,
                                     "') cannot be run"));
  std::string eval_tried;
  eval_dir_ = EvaluatorDir(launcher_, &eval_tried);
  if (eval_dir_.empty())
    return HarnessError(absl::StrCat("the training evaluator's scripts are not in ", eval_tried,
                                     " (set $RATCHET_TRAINING_EVAL to their folder)"));
  return std::nullopt;
}

// The job's folders: SCRATCH, the candidate's (writable in training, read-
// only to the model hosts), and beside it one the candidate never sees, for
// the evaluator's result.
std::optional<v1::Evaluation> TrainingJob::MakeFolders() {
  const std::string name = absl::StrCat("job-", job_.id());
  absl::StatusOr<std::string> scratch = MakePrivateFolder(options_.scratch_root, name);
  if (!scratch.ok()) return HarnessError(std::string(scratch.status().message()));
  scratch_ = *scratch;
  cleanup_.dirs.push_back(scratch_);
  absl::StatusOr<std::string> eval_root = MakePrivateFolder(options_.scratch_root, name + "-eval");
  if (!eval_root.ok()) return HarnessError(std::string(eval_root.status().message()));
  eval_root_ = *eval_root;
  cleanup_.dirs.push_back(eval_root_);
  std::error_code ec;
  project_ = scratch_ / "project";
  train_log_ = scratch_ / "train.log";
  checkpoint_ = scratch_ / "checkpoint.pt";
  train_scratch_.home = (scratch_ / "home").string();
  train_scratch_.tmp = (scratch_ / "tmp").string();
  eval_scratch_.home = (eval_root_ / "home").string();
  eval_scratch_.tmp = (eval_root_ / "tmp").string();
  for (const std::string& dir : {project_.string(), train_scratch_.home, train_scratch_.tmp,
                                 eval_scratch_.home, eval_scratch_.tmp})
    fs::create_directories(dir, ec);
  return std::nullopt;
}

// b. The candidate's project, checked against the frozen files first.
std::optional<v1::Evaluation> TrainingJob::WriteProject() {
  const std::map<std::string, std::string> files(job_.solution().files().begin(),
                                                 job_.solution().files().end());
  // Every file is frozen or editable: a frozen one changed or removed, or
  // one added that no editable glob allows, ends the job here.
  if (absl::Status frozen = spec::CheckFrozenFiles(files, t_); !frozen.ok())
    return End(v1::OUTCOME_FROZEN_EDIT, std::string(frozen.message()));
  for (const auto& [path, content] : files) {
    // A path that is not plain is the candidate's fault, as for kernels.
    if (!SafeRelativePath(path))
      return End(v1::OUTCOME_COMPILE_ERROR,
                 absl::StrCat("solution file path '", path, "' is not a plain relative path"));
    if (!WriteFile(project_ / path, content))
      return HarnessError(absl::StrCat("cannot write ", (project_ / path).string()));
  }
  if (absl::Status s = training::CheckProject(project_.string()); !s.ok())
    return End(v1::OUTCOME_CRASH, std::string(s.message()));
  return std::nullopt;
}

// c. The training sandbox's environment: an allow-list, the contract's
// variables, the knobs, the seed and the launcher's secret.
std::optional<v1::Evaluation> TrainingJob::MakeTrainingEnvironment() {
  cores_ = hardware_.cpu_cores() > 0 ? hardware_.cpu_cores() : UsableCpus();
  env_ = training::BaseEnvironment(train_scratch_, std::max(1, cores_ / nproc_));
  if (!cuda_) env_["CUDA_VISIBLE_DEVICES"] = "";  // a CPU job leaves the GPUs alone
  // A bundle's libraries (deploy/bundle.sh), which `ratchet launch` itself
  // needs; its folders are bound read-only below (ToolchainFolders).
  libraries_ = getenv("LD_LIBRARY_PATH");
  if (libraries_ != nullptr && *libraries_ != '\0') env_["LD_LIBRARY_PATH"] = libraries_;
  absl::StatusOr<std::string> python = TorchPython(options_.python, env_);
  if (!python.ok()) return HarnessError(std::string(python.status().message()));
  python_ = *python;
  env_["RATCHET_TRAIN_DATA"] = data_dir_;
  env_["RATCHET_CHECKPOINT"] = checkpoint_.string();
  if (budget_ > 0) env_["RATCHET_BUDGET_SECONDS"] = absl::StrCat(budget_);
  if (max_steps_ > 0) env_["RATCHET_MAX_STEPS"] = absl::StrCat(max_steps_);
  env_["RATCHET_SEED"] = absl::StrCat(job_.seed());
  for (const auto& [name, value] : job_.solution().knobs()) {
    if (!training::IsKnobName(name) || value.find('\0') != std::string::npos ||
        value.find('\n') != std::string::npos)
      return End(v1::OUTCOME_CRASH, absl::StrCat("knob '", name, "': a name of A-Z, 0-9 and _ "
                                                 "and a value of one line are expected"));
    env_["RATCHET_KNOB_" + name] = value;
  }
  toolchain_ = ToolchainFolders(EnvList(env_), {python_});
  // Nothing either sandbox shows whole may hold the data folder.
  std::vector<std::string> shown = toolchain_;
  shown.push_back(fs::path(launcher_).parent_path().string());
  shown.push_back(eval_dir_);
  shown.push_back(scratch_.string());
  for (const std::string& folder : shown)
    if (Inside(data_real_, folder))
      return HarnessError(absl::StrCat(
          "the training data folder ", data_dir_, " is inside ", folder,
          ", which the job's sandboxes show whole: its validation shards could not be hidden "
          "from the candidate; keep the data elsewhere"));
  nonce_ = NewNonce();
  env_["RATCHET_RESULT_NONCE"] = nonce_;
  return std::nullopt;
}

// c-d. Training in the sandbox under `ratchet launch`; then the launcher's
// word on how the ranks ended and on the warm-up they marked (capped by the
// allowance); the time is the sandbox's.
std::optional<v1::Evaluation> TrainingJob::Train() {
  const double train_limit = budget_ > 0 ? budget_ + allowance_ + 2 * grace_ + 60 : job_timeout_;
  SandboxSpec train;
  train.argv = {launcher_,
                "launch",
                "--workdir=" + project_.string(),
                absl::StrCat("--nproc=", nproc_),
                "--python=" + python_,
                absl::StrCat("--warmup-allowance=", allowance_),
                absl::StrCat("--grace=", grace_),
                absl::StrCat("--timeout=", std::max(1.0, train_limit - 2 * grace_ - 30)),
                "--log=" + train_log_.string()};
  if (budget_ > 0) train.argv.push_back(absl::StrCat("--budget=", budget_));
  if (max_steps_ > 0) train.argv.push_back(absl::StrCat("--max-steps=", max_steps_));
  train.scratch_dir = scratch_.string();
  train.wall_seconds = train_limit;
  train.cpu_seconds =
      options_.cpu_seconds > 0 ? options_.cpu_seconds : train_limit * std::max(1, cores_) + 10;
  train.memory_bytes = options_.memory_bytes;
  train.scratch_bytes = options_.scratch_bytes;
  train.env = EnvList(env_);
  // Each training shard by itself, never the folder: inside, the data folder
  // holds the train_*.bin files and nothing else.
  train.ro_binds = toolchain_;
  for (const std::string& shard : data_.train_shards) train.ro_binds.push_back(shard);
  // The launcher is the sandbox's PID 1: no bwrap process holding the nonce
  // in its environment stays where the ranks could read it.
  train.as_pid_1 = true;

  OutputTail train_output{job_.id(), {}};
  std::string launch_json;
  double progress_logged_at = -1;
  RunHooks hooks;
  hooks.cancel = cancel_;
  // The sandbox's output is the launcher's (and bwrap's): the ranks write to
  // train.log, never here.
  hooks.output_line = [&](const std::string& line) {
    const std::string result = LaunchResultOf(line, nonce_);
    if (!result.empty()) {
      if (launch_json.empty()) launch_json = result;
      return;
    }
    // Progress (shown only) goes to the next heartbeat, not into the tail
    // kept for messages; the worker's log shows one line in 30 s.
    if (std::optional<v1::JobProgress> progress = LaunchProgressOf(line)) {
      progress->set_job_id(job_.id());
      if (on_progress_) on_progress_(*progress);
      if (progress_logged_at < 0 || !(progress->seconds() - progress_logged_at < 30)) {
        progress_logged_at = progress->seconds();
        Log(absl::StrCat("[job ", job_.id(), "] ", line));
      }
      return;
    }
    train_output.Add(line);
  };
  absl::StatusOr<RunResult> trained = sandbox_.Run(train, hooks);
  if (!trained.ok())
    return HarnessError(absl::StrCat("cannot run the training sandbox: ",
                                     trained.status().message()));
  trained_wall_seconds_ = trained->wall_seconds;
  eval_.set_wall_seconds(trained->wall_seconds);
  run_record_.set_wall_seconds(trained->wall_seconds);
  if (trained->cancelled) {
    *cancelled_ = true;
    return End(v1::OUTCOME_CRASH, "cancelled");
  }
  if (trained->scratch_exceeded)
    return End(v1::OUTCOME_CRASH,
               absl::StrCat("scratch-exceeded: the job's folder grew past ",
                            options_.scratch_bytes, " bytes during training"));
  if (trained->timed_out) {
    run_record_.set_training_outcome("timeout");
    return End(v1::OUTCOME_TIMEOUT,
               absl::StrFormat("timeout: training ran past the sandbox's limit of %.0f s%s",
                               train_limit, LogTail(train_log_)));
  }
  // d. The launcher's result.
  const nlohmann::json launch =
      nlohmann::json::parse(launch_json, nullptr, /*allow_exceptions=*/false);
  if (launch_json.empty() || !launch.is_object() || JsonString(launch, "outcome").empty())
    return End(v1::OUTCOME_CRASH,
               absl::StrCat("the launcher wrote no result (",
                            trained->signal ? SignalName(trained->signal)
                                            : absl::StrCat("exit ", trained->exit_code),
                            ")", train_output.Text(), LogTail(train_log_)));
  const std::string launch_outcome = JsonString(launch, "outcome");
  const std::string launch_message = JsonString(launch, "message");
  const double left_out = std::clamp(
      JsonNumber(launch, "wall_seconds") - JsonNumber(launch, "training_seconds"), 0.0, allowance_);
  training_seconds_ = std::max(0.0, trained->wall_seconds - left_out);
  run_record_.set_training_outcome(launch_outcome);
  run_record_.set_warmup_seconds(left_out);
  run_record_.set_training_seconds(training_seconds_);
  run_record_.set_steps(static_cast<int64_t>(JsonNumber(launch, "steps")));
  run_record_.set_tokens_per_s(JsonNumber(launch, "last_tokens_per_s"));
  if (launch_outcome == "crash")
    return End(v1::OUTCOME_CRASH, absl::StrCat("crash: ", launch_message, LogTail(train_log_)));
  if (launch_outcome == "bad-marks")
    return End(v1::OUTCOME_CRASH, absl::StrCat("bad-marks: ", launch_message));
  if (launch_outcome == "over-budget" || launch_outcome == "timeout")
    return End(v1::OUTCOME_TIMEOUT, absl::StrCat(launch_outcome, ": ", launch_message));
  if (launch_outcome != "ok")
    return HarnessError(absl::StrCat("the launcher: ", launch_outcome, ": ", launch_message));
  if (budget_ > 0 && training_seconds_ > budget_ + grace_) {
    run_record_.set_training_outcome("over-budget");
    return End(v1::OUTCOME_TIMEOUT,
               absl::StrFormat("over-budget: %.2f s of training by the worker's clock, against a "
                               "budget of %g s (and %g s of grace)",
                               training_seconds_, budget_, grace_));
  }
  struct stat st;
  if (lstat(checkpoint_.c_str(), &st) != 0 || !S_ISREG(st.st_mode))
    return End(v1::OUTCOME_CRASH,
               absl::StrCat("no checkpoint: training ended ok but wrote no ", checkpoint_.string(),
                            " ($RATCHET_CHECKPOINT)", LogTail(train_log_)));
  return std::nullopt;
}

// e. The evaluation, by the worker's trusted evaluator outside the training
// sandbox; the candidate's model runs in hosts of their own, sandboxed with
// the job's folder read-only and no validation data.
std::optional<v1::Evaluation> TrainingJob::Evaluate() {
  absl::StatusOr<Sandbox> plain = Sandbox::Create("none");
  if (!plain.ok()) return HarnessError(std::string(plain.status().message()));
  SandboxSpec host;
  host.scratch_dir = scratch_.string();
  host.scratch_read_only = true;
  host.ro_binds = toolchain_;
  host.ro_binds.push_back(eval_dir_);
  std::vector<std::string> wrapper = sandbox_.CommandLine(host);
  if (wrapper.empty() || wrapper.back() != "--")
    return HarnessError("the model hosts' sandbox command does not end in '--'");
  // HOME and TMPDIR name the evaluator's folder, which the hosts do not see.
  wrapper.insert(wrapper.end() - 1, {"--setenv", "HOME", "/tmp", "--setenv", "TMPDIR", "/tmp"});
  std::vector<std::string> quoted;
  for (const std::string& word : wrapper) quoted.push_back(ShellQuote(word));

  const fs::path eval_out = eval_root_ / "eval.json";
  std::map<std::string, std::string> eval_env = training::BaseEnvironment(eval_scratch_, cores_);
  if (!cuda_) eval_env["CUDA_VISIBLE_DEVICES"] = "";
  if (libraries_ != nullptr && *libraries_ != '\0') eval_env["LD_LIBRARY_PATH"] = libraries_;
  const double eval_limit = std::max(600.0, job_timeout_ - Since(started_));
  SandboxSpec evaluator;
  evaluator.argv = {python_,
                    eval_dir_ + "/evaluate.py",
                    "--model-dir", project_.string(),
                    "--checkpoint", checkpoint_.string(),
                    "--val-data", data_dir_,
                    "--windows", absl::StrCat(t_.eval_windows()),
                    "--seq-len", absl::StrCat(t_.eval_seq_len() > 0 ? t_.eval_seq_len()
                                                                    : spec::kDefaultEvalSeqLen),
                    "--seed", absl::StrCat(t_.eval_seed()),
                    "--out", eval_out.string(),
                    "--device", cuda_ ? "cuda" : "cpu",
                    "--host-wrapper", absl::StrJoin(quoted, " ")};
  evaluator.scratch_dir = eval_root_.string();
  evaluator.wall_seconds = eval_limit;
  evaluator.cpu_seconds = eval_limit * std::max(1, cores_) + 10;
  evaluator.memory_bytes = options_.memory_bytes;
  evaluator.env = EnvList(eval_env);
  OutputTail eval_output{job_.id(), {}};
  RunHooks eval_hooks;
  eval_hooks.cancel = cancel_;
  eval_hooks.output_line = [&](const std::string& line) { eval_output.Add(line); };
  absl::StatusOr<RunResult> evaluated = plain->Run(evaluator, eval_hooks);
  if (!evaluated.ok())
    return HarnessError(absl::StrCat("cannot run the evaluator: ", evaluated.status().message()));
  eval_.set_wall_seconds(trained_wall_seconds_ + evaluated->wall_seconds);
  if (evaluated->cancelled) {
    *cancelled_ = true;
    return End(v1::OUTCOME_CRASH, "cancelled");
  }
  if (evaluated->timed_out) {
    run_record_.set_eval_outcome("timeout");
    return End(v1::OUTCOME_TIMEOUT,
               absl::StrFormat("evaluation timeout: the evaluator ran past %.0f s%s", eval_limit,
                               eval_output.Text()));
  }
  const std::optional<std::string> eval_text = ReadPlainFile(eval_out, kMaxEvalResultBytes);
  const nlohmann::json result = nlohmann::json::parse(eval_text.value_or(""), nullptr,
                                                      /*allow_exceptions=*/false);
  const std::string eval_outcome = result.is_object() ? JsonString(result, "outcome") : "";
  if (eval_outcome.empty())
    return End(v1::OUTCOME_CRASH,
               absl::StrCat("evaluation: the evaluator wrote no result (",
                            evaluated->signal ? SignalName(evaluated->signal)
                                              : absl::StrCat("exit ", evaluated->exit_code),
                            ")", eval_output.Text()));
  const std::string eval_message = JsonString(result, "message");
  if (const std::string times = EvaluatorTimesOf(*eval_text); !times.empty())
    Log(absl::StrCat("job ", job_.id(), " ", times));
  run_record_.set_eval_outcome(eval_outcome);
  run_record_.set_bpb(JsonNumber(result, "bpb"));
  run_record_.set_loss(JsonNumber(result, "loss"));
  run_record_.set_eval_tokens(static_cast<int64_t>(JsonNumber(result, "tokens")));
  run_record_.set_eval_bytes(static_cast<int64_t>(JsonNumber(result, "bytes")));
  if (eval_outcome == "causal-leak" || eval_outcome == "memorized-validation" ||
      eval_outcome == "non-finite" || eval_outcome == "collapsed" || eval_outcome == "bad-output")
    return End(v1::OUTCOME_WRONG_ANSWER, absl::StrCat(eval_outcome, ": ", eval_message));
  if (eval_outcome != "ok")
    return End(v1::OUTCOME_CRASH, absl::StrCat("evaluation ", eval_outcome, ": ", eval_message));
  return std::nullopt;
}

// f. The outcome and the score.
v1::Evaluation TrainingJob::Score() {
  const double bpb = run_record_.bpb(), loss = run_record_.loss();
  if (!std::isfinite(bpb) || bpb <= 0 || !std::isfinite(loss))
    return End(v1::OUTCOME_CRASH,
               absl::StrFormat("evaluation: the evaluator's figures are not usable (bpb %g, "
                               "loss %g)", bpb, loss));
  run_record_.set_reached_target(!budget_task_ && loss < t_.target_loss());
  if (budget_task_) {
    eval_.set_score(1.0 / bpb);
  } else {
    eval_.set_score(run_record_.reached_target() && training_seconds_ > 0
                        ? 3600.0 / training_seconds_
                        : 0.0);
  }
  return End(v1::OUTCOME_OK, "");
}

}  // namespace

std::string EvaluatorTimesOf(const std::string& result_json) {
  const nlohmann::json r = nlohmann::json::parse(result_json, nullptr, /*allow_exceptions=*/false);
  if (!r.is_object() || !r.contains("seconds") || !r["seconds"].is_number()) return "";
  std::string text = absl::StrFormat("evaluation %.1f s", r["seconds"].get<double>());
  std::vector<std::string> parts;
  if (r.contains("stage_seconds") && r["stage_seconds"].is_object())
    for (const char* stage : {"start", "answers", "copies", "scoring"})
      if (r["stage_seconds"].contains(stage) && r["stage_seconds"][stage].is_number())
        parts.push_back(absl::StrFormat("%s %.1f", stage, r["stage_seconds"][stage].get<double>()));
  std::string tail = absl::StrJoin(parts, ", ");
  if (r.contains("logits_pinned") && r["logits_pinned"].is_boolean())
    absl::StrAppend(&tail, tail.empty() ? "" : "; ",
                    r["logits_pinned"].get<bool>() ? "logits page-locked"
                                                   : "logits not page-locked");
  if (!tail.empty()) absl::StrAppend(&text, " (", tail, ")");
  return text;
}

v1::Evaluation RunTrainingJob(const v1::Job& job, const WorkerOptions& options,
                              const Sandbox& sandbox, const v1::Hardware& hardware,
                              const std::atomic<bool>* cancel, bool* cancelled,
                              const std::function<v1::Evaluation(v1::Evaluation)>& finish,
                              const std::function<void(const v1::JobProgress&)>& on_progress) {
  return TrainingJob(job, options, sandbox, hardware, cancel, cancelled, finish, on_progress)
      .Run();
}

}  // namespace ratchet::worker
