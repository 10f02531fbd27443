#include "worker/worker.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "common/clock.h"
#include "common/job_wall.h"
#include "kernels/harness/contract.h"
#include "spec/names.h"
#include "worker/result.h"
#include "worker/training_job.h"

extern char** environ;

namespace ratchet::worker {
namespace {

namespace fs = std::filesystem;

std::mutex log_mu;


std::chrono::system_clock::time_point Deadline(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// Codes that mean "the coordinator does not know this worker": register again.
bool IsUnknownWorker(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::NOT_FOUND ||
         s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
         s.error_code() == grpc::StatusCode::UNAUTHENTICATED;
}

bool IsTransient(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE ||
         s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
         s.error_code() == grpc::StatusCode::CANCELLED ||
         s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
         s.error_code() == grpc::StatusCode::ABORTED;
}

std::string Describe(const grpc::Status& s) {
  return absl::StrCat("code ", s.error_code(), ": ", s.error_message());
}

// A relative path that stays inside its folder: no absolute paths, no "..".
bool SafeRelativePath(const std::string& p) {
  if (p.empty() || p[0] == '/') return false;
  for (absl::string_view part : absl::StrSplit(p, '/'))
    if (part == ".." || part == "." || part.empty()) return false;
  return true;
}

absl::Status WriteFile(const fs::path& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// Reads up to `limit` bytes; nullopt when the file is absent.
std::optional<std::string> ReadSmallFile(const fs::path& path, size_t limit) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string out;
  out.resize(limit);
  in.read(out.data(), static_cast<std::streamsize>(limit));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

// FNV-1a: a stable name for a problem's folder in the T_b cache. The oracle
// keys each entry on a hash of the definition too, so a collision here costs
// nothing but a miss.
std::string ProblemKey(const std::string& definition) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : definition) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", h);
}

constexpr size_t kMaxCacheEntry = 64 << 10;

// A cache entry the oracle could have written: a small plain "*.json" file.
bool CacheEntryName(const fs::directory_entry& e) {
  std::error_code ec;
  if (!e.is_regular_file(ec) || e.is_symlink(ec)) return false;
  std::string name = e.path().filename().string();
  if (!absl::EndsWith(name, ".json") || name.size() > 200) return false;
  for (char c : name)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return e.file_size(ec) <= kMaxCacheEntry && !ec;
}

// Copies entries from `from` to `to`. Entries that are not JSON objects are
// skipped. Returns how many were copied.
int CopyCacheEntries(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  if (!fs::is_directory(from, ec)) return 0;
  fs::create_directories(to, ec);
  int copied = 0;
  for (const auto& e : fs::directory_iterator(from, ec)) {
    if (!CacheEntryName(e)) continue;
    const fs::path dst = to / e.path().filename();
    auto text = ReadSmallFile(e.path(), kMaxCacheEntry);
    if (!text) continue;
    auto doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object()) continue;
    // Write then rename, so that a concurrent job never reads half a file.
    const fs::path tmp = to / absl::StrCat(".", e.path().filename().string(), ".", getpid(),
                                           ".", std::hash<std::thread::id>()(
                                                    std::this_thread::get_id()));
    if (!WriteFile(tmp, *text).ok()) continue;
    fs::rename(tmp, dst, ec);
    if (ec) {
      fs::remove(tmp, ec);
      continue;
    }
    ++copied;
  }
  return copied;
}

}  // namespace

void Log(const std::string& line) {
  auto now = std::chrono::system_clock::now();
  time_t t = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                now.time_since_epoch())
                                .count() %
                            1000);
  struct tm tm;
  localtime_r(&t, &tm);
  char stamp[32];
  strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
  std::lock_guard<std::mutex> lock(log_mu);
  fprintf(stderr, "%s.%03d worker: %s\n", stamp, ms, line.c_str());
}

Worker::Worker(WorkerOptions options, Sandbox sandbox, v1::Hardware hardware,
               std::shared_ptr<prometheus::Registry> registry)
    : options_(std::move(options)),
      sandbox_(std::move(sandbox)),
      hardware_(std::move(hardware)),
      registry_(std::move(registry)) {
  for (int i = 0; i < std::max(1, hardware_.gpus_size()); ++i) {
    auto gate = std::make_unique<GpuGate>();
    gate->free = std::max(1, options_.gpu_jobs);
    if (options_.gpu_jobs > 1) {
      // The worker's own file (0600): a candidate process (nobody, when the
      // worker is root) cannot open it to hold the GPU from other jobs.
      gate->lock_file = (fs::path(options_.scratch_root) / absl::StrCat("gpu", i, ".lock")).string();
      const int fd = open(gate->lock_file.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd >= 0) close(fd);
    }
    gpu_gates_.push_back(std::move(gate));
  }
  rounds_cache_ =
      std::make_unique<RoundsCache>(options_.rounds_cache_dir, options_.rounds_cache_entries);
  stub_ = v1::WorkerService::NewStub(
      options_.channel != nullptr
          ? options_.channel
          : grpc::CreateCustomChannel(options_.coordinator, grpc::InsecureChannelCredentials(),
                                      WorkerChannelArgs()));
  if (registry_) {
    jobs_total_ = &prometheus::BuildCounter()
                       .Name("ratchet_worker_jobs_total")
                       .Help("Jobs finished by this worker, by outcome")
                       .Register(*registry_);
    // Every outcome exists from the start, so that rate() sees the first job.
    for (int o = v1::OUTCOME_OK; o <= v1::OUTCOME_HARNESS_ERROR; ++o)
      jobs_total_->Add({{"outcome", OutcomeLabel(static_cast<v1::Outcome>(o))}});
    jobs_running_ = &prometheus::BuildGauge()
                         .Name("ratchet_worker_jobs_running")
                         .Help("Jobs running now")
                         .Register(*registry_)
                         .Add({});
    job_seconds_ = &prometheus::BuildHistogram()
                        .Name("ratchet_worker_job_seconds")
                        .Help("Wall-clock seconds per job, harness start to exit")
                        .Register(*registry_)
                        .Add({}, prometheus::Histogram::BucketBoundaries{
                                     1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800});
    stage_seconds_ = &prometheus::BuildHistogram()
                          .Name("ratchet_worker_stage_seconds")
                          .Help("Harness seconds per kernel job and stage (compile, screen, "
                                "oracle, correctness, timing, ...)")
                          .Register(*registry_);
    auto& busy = prometheus::BuildCounter()
                     .Name("ratchet_worker_device_busy_seconds_total")
                     .Help("Seconds jobs held the device: a GPU's lock (cuda jobs), "
                           "the harness's run (cpu jobs); rate(): the busy fraction")
                     .Register(*registry_);
    busy.Add({{"device", "cpu"}});
    for (int gpu = 0; gpu < hardware_.gpus_size(); ++gpu)
      busy.Add({{"device", absl::StrCat("gpu", gpu)}});
    device_busy_ = std::make_unique<DeviceBusy>(&busy);
  }
}

Worker::~Worker() { Stop(); }

std::string Worker::worker_id() const {
  std::lock_guard<std::mutex> lock(mu_);
  return worker_id_;
}

void Worker::Stop() {
  if (stopping_.exchange(true)) return;
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, entry] : jobs_) entry->cancel = true;
  for (grpc::ClientContext* ctx : polls_) ctx->TryCancel();
  cv_.notify_all();
}

bool Worker::SleepFor(double seconds) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000)),
               [this] { return stopping_.load(); });
  return !stopping_;
}

bool Worker::WaitRegistered(std::string* worker_id) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stopping_ || registered_; });
  if (stopping_) return false;
  *worker_id = worker_id_;
  return true;
}

void Worker::NeedRegister() {
  std::lock_guard<std::mutex> lock(mu_);
  registered_ = false;
  need_register_ = true;
  cv_.notify_all();
}

void Worker::Run() {
  std::vector<std::thread> threads;
  threads.emplace_back([this] { ControlLoop(); });
  for (int i = 0; i < std::max(1, options_.slots); ++i)
    threads.emplace_back([this, i] { SlotLoop(i); });
  for (auto& t : threads) t.join();
}

bool Worker::RegisterOnce() {
  v1::RegisterWorkerRequest req;
  req.set_name(options_.name);
  *req.mutable_hardware() = hardware_;
  req.mutable_hardware()->set_jobs_per_gpu(options_.gpu_jobs);  // lengthens its leases
  req.set_sandbox(sandbox_.name());
  {
    std::lock_guard<std::mutex> lock(mu_);
    req.set_worker_id(worker_id_);  // empty the first time
  }
  v1::RegisterWorkerResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(10));
  grpc::Status s = stub_->RegisterWorker(&ctx, req, &resp);
  if (!s.ok()) {
    Log(absl::StrCat("register with ", options_.coordinator, " failed (", Describe(s),
                     "); retrying"));
    return false;
  }
  std::lock_guard<std::mutex> lock(mu_);
  bool again = !worker_id_.empty();
  worker_id_ = resp.worker_id();
  if (resp.heartbeat_seconds() > 0) heartbeat_seconds_ = resp.heartbeat_seconds();
  registered_ = true;
  need_register_ = false;
  cv_.notify_all();
  Log(absl::StrCat(again ? "re-registered" : "registered", " as ", worker_id_, " with ",
                   options_.coordinator, " (sandbox ", sandbox_.name(), ", heartbeat ",
                   heartbeat_seconds_, "s, lease ", resp.lease_seconds(), "s)"));
  return true;
}

void Worker::HeartbeatOnce() {
  v1::HeartbeatRequest req;
  double period;
  // The training jobs whose progress goes with this heartbeat, and which.
  std::vector<std::pair<std::shared_ptr<JobEntry>, int64_t>> progress_sent;
  {
    std::lock_guard<std::mutex> lock(mu_);
    req.set_worker_id(worker_id_);
    // Jobs whose report is still pending keep their lease too.
    for (const auto& [id, entry] : jobs_) {
      req.add_job_ids(id);
      if (entry->running && entry->progress && entry->progress_seq != entry->progress_sent) {
        *req.add_progress() = *entry->progress;
        progress_sent.emplace_back(entry, entry->progress_seq);
      }
    }
    period = heartbeat_seconds_;
  }
  v1::HeartbeatResponse resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(Deadline(std::max(2.0, period)));
  grpc::Status s = stub_->Heartbeat(&ctx, req, &resp);
  if (!s.ok()) {
    if (IsUnknownWorker(s)) {
      Log(absl::StrCat("heartbeat: coordinator does not know us (", Describe(s), ")"));
      NeedRegister();
    } else {
      Log(absl::StrCat("heartbeat failed (", Describe(s), ")"));
    }
    return;
  }
  if (resp.reregister()) {
    Log("coordinator asked us to register again");
    NeedRegister();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [entry, seq] : progress_sent) entry->progress_sent = seq;
  for (int64_t id : resp.cancelled_job_ids()) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) continue;
    if (it->second->running) Log(absl::StrCat("job ", id, " cancelled by the coordinator"));
    it->second->cancel = true;
  }
}

void Worker::ControlLoop() {
  double backoff = 0.5;
  while (!stopping_) {
    bool need;
    {
      std::lock_guard<std::mutex> lock(mu_);
      need = need_register_;
    }
    if (need) {
      if (!RegisterOnce()) {
        SleepFor(backoff);
        backoff = std::min(backoff * 2, 10.0);
        continue;
      }
      backoff = 0.5;
    }
    HeartbeatOnce();
    if (device_busy_) device_busy_->Flush();
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(static_cast<int64_t>(heartbeat_seconds_ * 1000)),
                 [this] { return stopping_ || need_register_; });
  }
}

void Worker::SlotLoop(int slot) {
  double backoff = 0.5;
  while (!stopping_) {
    std::string id;
    if (!WaitRegistered(&id)) return;
    v1::AcquireJobRequest req;
    req.set_worker_id(id);
    req.set_wait_ms(options_.wait_ms);
    v1::AcquireJobResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(options_.wait_ms / 1000.0 + 10));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return;
      polls_.insert(&ctx);
    }
    grpc::Status s = stub_->AcquireJob(&ctx, req, &resp);
    {
      std::lock_guard<std::mutex> lock(mu_);
      polls_.erase(&ctx);
    }
    if (stopping_) return;
    if (!s.ok()) {
      if (IsUnknownWorker(s)) {
        Log(absl::StrCat("acquire: coordinator does not know us (", Describe(s), ")"));
        NeedRegister();
      } else if (!IsTransient(s)) {
        Log(absl::StrCat("acquire failed (", Describe(s), ")"));
      }
      SleepFor(backoff);
      backoff = std::min(backoff * 2, 5.0);
      continue;
    }
    backoff = 0.5;
    if (!resp.has_job()) continue;
    // A coordinator of an older version names the device and screen in words.
    spec::UpgradeLegacyFields(resp.mutable_job());
    ExecuteAndReport(resp.job(), slot);
  }
}

void Worker::ExecuteAndReport(const v1::Job& job, int slot) {
  auto entry = std::make_shared<JobEntry>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_[job.id()] = entry;
    if (stopping_) entry->cancel = true;
  }
  if (jobs_running_) jobs_running_->Increment();
  bool cancelled = false;
  v1::Evaluation eval = RunJob(job, &entry->cancel, &cancelled, slot);
  if (jobs_running_) jobs_running_->Decrement();
  if (cancelled) {
    Log(absl::StrFormat("job %d killed after %.1fs (%s); not reported", job.id(),
                        eval.wall_seconds(), stopping_ ? "shutting down" : "cancelled"));
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.erase(job.id());
    return;
  }
  RecordFinish(eval);
  {
    std::lock_guard<std::mutex> lock(mu_);
    entry->running = false;
  }
  Report(job, std::move(eval));
  std::lock_guard<std::mutex> lock(mu_);
  jobs_.erase(job.id());
}

void Worker::RecordFinish(const v1::Evaluation& eval) {
  std::string label = OutcomeLabel(eval.outcome());
  std::string first_line = eval.message().substr(0, eval.message().find('\n'));
  if (first_line.size() > 200) first_line = first_line.substr(0, 200) + "...";
  Log(absl::StrFormat("job %d finish: %s score %.4f in %.1fs%s", eval.job_id(), label,
                      eval.score(), eval.wall_seconds(),
                      first_line.empty() ? "" : absl::StrCat(" (", first_line, ")")));
  if (jobs_total_) jobs_total_->Add({{"outcome", label}}).Increment();
  if (job_seconds_) job_seconds_->Observe(eval.wall_seconds());
  if (stage_seconds_)
    for (const auto& [stage, seconds] : eval.stage_seconds())
      stage_seconds_
          ->Add({{"stage", stage}},
                prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 2, 5, 10, 20, 60, 300})
          .Observe(seconds);
}

void Worker::Report(const v1::Job& job, v1::Evaluation eval) {
  double backoff = 0.5;
  int reregistrations = 0;
  bool last_try = false;
  for (;;) {
    std::string id;
    if (!stopping_) {
      if (!WaitRegistered(&id)) continue;  // stopping now: one last try below
    } else {
      std::lock_guard<std::mutex> lock(mu_);
      id = worker_id_;
      last_try = true;
    }
    v1::CompleteJobRequest req;
    req.set_worker_id(id);
    req.set_job_id(job.id());
    eval.set_worker_id(id);
    *req.mutable_evaluation() = eval;
    v1::CompleteJobResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(Deadline(15));
    grpc::Status s = stub_->CompleteJob(&ctx, req, &resp);
    if (s.ok()) {
      if (!resp.accepted())
        Log(absl::StrCat("job ", job.id(), " report dropped: coordinator did not accept it (",
                         resp.message(), ")"));
      return;
    }
    if (last_try) {
      Log(absl::StrCat("job ", job.id(), " report lost at shutdown (", Describe(s), ")"));
      return;
    }
    if (IsUnknownWorker(s) && reregistrations < 3) {
      ++reregistrations;
      Log(absl::StrCat("job ", job.id(), " report: coordinator does not know us (",
                       Describe(s), "); registering again"));
      NeedRegister();
      continue;
    }
    if (!IsTransient(s)) {
      Log(absl::StrCat("job ", job.id(), " report rejected (", Describe(s), "); dropped"));
      return;
    }
    Log(absl::StrFormat("job %d report failed (%s); retrying in %.1fs", job.id(),
                        Describe(s), backoff));
    SleepFor(backoff);
    backoff = std::min(backoff * 2, 5.0);
  }
}

namespace {

// The harness's command line for `job` (kernels/harness/contract.h): what
// HarnessArgv writes and RunJob runs.
kernels::HarnessArgs HarnessArgsFor(const WorkerOptions& options, const v1::Hardware& hardware,
                                    const v1::Job& job, const fs::path& dir, int slot) {
  const bool cuda = job.device() == v1::DEVICE_CUDA;
  kernels::HarnessArgs a;
  a.kind = cuda ? kernels::HarnessKind::kCuda : kernels::HarnessKind::kCpu;
  a.problem = (dir / "problem").string();
  a.solution = (dir / "solution").string();
  a.out = (dir / "result.json").string();
  a.scratch = (dir / "work").string();
  a.seed = job.seed();
  const auto& h = job.harness();
  if (h.warmups() > 0) a.warmups = h.warmups();
  if (h.repetitions() > 0) a.repetitions = h.repetitions();
  if (h.correctness_rounds() > 0) a.rounds = h.correctness_rounds();
  a.screen = spec::Name(h.screen());
  // No flag tells a replay from an evaluation: the CPU harness checks every
  // call in every run, and what differs (the independent timing, the result's
  // secret) travels in its environment, which candidate code cannot read.
  if (cuda) {
    const int gpus = std::max(1, hardware.gpus_size());
    const int gpu = slot % gpus;
    a.device_index = gpu;
    if (gpu < hardware.gpu_info_size()) {
      const v1::GpuInfo& g = hardware.gpu_info(gpu);
      // The target from the probed compute capability ("9.0" -> sm_90a, as
      // the harness would pick), so that --compile-only needs no GPU query.
      const std::string digits = absl::StrReplaceAll(g.compute_capability(), {{".", ""}});
      if (!digits.empty() && digits.find_first_not_of("0123456789") == std::string::npos)
        a.arch = absl::StrCat("sm_", digits, g.compute_capability() == "9.0" ? "a" : "");
      // A GPU the peak table does not know: the calibration is the best peak
      // there is. Known SKUs use the table inside the harness.
      if (g.sku().empty() && g.measured_copy_gbps() > 0 && g.measured_gemm_bf16_tflops() > 0) {
        a.peak_gbps = g.measured_copy_gbps();
        a.peak_tflops = g.measured_gemm_bf16_tflops();
      }
    }
    if (!options.tb_cache_dir.empty()) a.cache_dir = (dir / "tb-cache").string();
  } else if (hardware.peak_gbps() > 0 && hardware.peak_gflops() > 0) {
    a.peak_gbps = hardware.peak_gbps();
    a.peak_gflops = hardware.peak_gflops();
  }
  // Sorted, so that the command line is reproducible.
  std::map<std::string, std::string> knobs(job.solution().knobs().begin(),
                                           job.solution().knobs().end());
  a.knobs.assign(knobs.begin(), knobs.end());
  a.python = options.python;
  // The stored T_b of every workload (RunJob writes the file): the harness
  // does not time the reference, and every candidate of the workload is
  // scored against the same T_b.
  if (PassesBaseline(job)) a.baseline = (dir / "baseline.json").string();
  return a;
}

// The program (by the args' kind), then its arguments.
std::vector<std::string> CommandLine(const WorkerOptions& options, const kernels::HarnessArgs& a) {
  std::vector<std::string> argv = {a.kind == kernels::HarnessKind::kCuda
                                       ? options.cuda_harness_path
                                       : options.harness_path};
  for (std::string& arg : kernels::ToArgv(a)) argv.push_back(std::move(arg));
  return argv;
}

// A fresh private folder for the job, with its problem and solution written
// (problem/, solution/, work/, tmp/, home/). InvalidArgument: a solution path
// that is not plain, the candidate's fault; any other error is the worker's.
absl::StatusOr<fs::path> MakeJobFolder(const WorkerOptions& options, const v1::Job& job) {
  absl::StatusOr<std::string> made =
      MakePrivateFolder(options.scratch_root, absl::StrCat("job-", job.id()));
  if (!made.ok()) return made.status();
  const fs::path scratch = *made;
  std::error_code ec;
  for (const char* dir : {"problem", "solution", "work", "tmp", "home"})
    fs::create_directories(scratch / dir, ec);
  if (absl::Status st = WriteJobFolder(job, scratch); !st.ok()) {
    if (!options.keep_scratch) fs::remove_all(scratch, ec);
    return st;
  }
  return scratch;
}

// The T_b cache: this problem's entries go into the job's folder (an
// operator may seed it). Nothing comes back out: the job's folder is writable
// by candidate code, so an entry found there afterwards proves nothing; T_b
// measured once per workload is kept by the coordinator instead
// (docs/cluster.md, "Baselines").
void SeedTbCache(const WorkerOptions& options, const v1::Job& job, const fs::path& scratch) {
  if (options.tb_cache_dir.empty()) return;
  const fs::path job_cache = scratch / "tb-cache";
  CopyCacheEntries(fs::path(options.tb_cache_dir) / ProblemKey(job.problem().definition_json()),
                   job_cache);
  std::error_code ec;
  fs::create_directories(job_cache, ec);
}

// The harness's output: its outside-timing marks by workload (stamped with
// the worker's clock on arrival), every other line to the log and the last
// 20 into `tail`, for a message when no result comes.
RunHooks HarnessHooks(const std::atomic<bool>* cancel, int64_t job_id,
                      std::deque<std::string>* tail, std::map<int, std::vector<Mark>>* marks) {
  RunHooks hooks;
  hooks.cancel = cancel;
  hooks.output_line = [tail, marks, job_id](const std::string& line) {
    const double now =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
            .count();
    int w = 0;
    long long calls = 0, stamp_ns = 0;
    if (std::sscanf(line.c_str(), "ratchet-mark %d %lld %lld", &w, &calls, &stamp_ns) == 3) {
      (*marks)[w].push_back({calls, 1e-9 * static_cast<double>(stamp_ns), now});
      return;
    }
    Log(absl::StrCat("[job ", job_id, "] ", line));
    tail->push_back(line.size() > 500 ? line.substr(0, 500) + "..." : line);
    if (tail->size() > 20) tail->pop_front();
  };
  return hooks;
}

// The harness's sandbox for one job: its command line and limits, the
// allowed part of the worker's environment, the toolchain folders and the
// job's secrets.
SandboxSpec HarnessSandbox(const WorkerOptions& options, const v1::Hardware& hardware,
                           const kernels::HarnessArgs& args, const fs::path& scratch,
                           double timeout, int64_t job_id,
                           const kernels::HarnessSecrets& secrets) {
  SandboxSpec spec;
  spec.argv = CommandLine(options, args);
  spec.scratch_dir = scratch.string();
  spec.wall_seconds = timeout;
  spec.cpu_seconds = options.cpu_seconds > 0
                         ? options.cpu_seconds
                         : timeout * std::max(1, hardware.cpu_cores()) + 10;
  spec.memory_bytes = options.memory_bytes;
  spec.scratch_bytes = options.scratch_bytes;
  // The harness is the sandbox's PID 1: a bwrap init there would be a
  // dumpable process of the candidate's user holding the secrets below in
  // /proc/1/environ and the worker's pipe on /proc/1/fd/1. The harness is
  // non-dumpable from its first instruction, reaps what it starts (a
  // subreaper anyway) and takes the sandbox down with it when it exits.
  spec.as_pid_1 = true;
  // Only the allowed part of the worker's environment (no store password, no
  // API keys: whatever the harness sees, the candidate can read), and the
  // folders its toolchains live in; caches and temporaries inside the scratch
  // folder, the one writable place. The problem's files are in scratch too.
  spec.env = AllowedEnvironment(environ);
  spec.ro_binds = ToolchainFolders(spec.env, {options.python});
  spec.env.push_back("TMPDIR=" + (scratch / "tmp").string());
  spec.env.push_back("HOME=" + (scratch / "home").string());
  spec.env.push_back("XDG_CACHE_HOME=" + (scratch / "home" / ".cache").string());
  spec.env.push_back(absl::StrCat("RATCHET_JOB_ID=", job_id));
  for (std::string& e : kernels::ToEnvironment(secrets)) spec.env.push_back(std::move(e));
  return spec;
}

}  // namespace

std::vector<std::string> Worker::HarnessArgv(const v1::Job& job, const std::string& job_dir,
                                             int slot) const {
  return CommandLine(options_, HarnessArgsFor(options_, hardware_, job, job_dir, slot));
}

v1::Evaluation Worker::RunJob(const v1::Job& job, const std::atomic<bool>* cancel,
                              bool* cancelled, int slot) {
  *cancelled = false;
  const double timeout = job.harness().timeout_seconds() > 0
                             ? job.harness().timeout_seconds()
                             : options_.default_timeout_seconds;
  v1::Evaluation eval;
  auto finish = [&](v1::Evaluation e) {
    e.set_job_id(job.id());
    e.set_campaign_id(job.campaign_id());
    e.set_candidate_id(job.candidate_id());
    e.set_kind(job.kind());
    e.set_worker_id(worker_id());
    e.set_created_unix_ms(NowUnixMs());
    e.set_sandbox(sandbox_.name());
    return e;
  };
  auto harness_error = [&](const std::string& msg) {
    v1::Evaluation e;
    e.set_outcome(v1::OUTCOME_HARNESS_ERROR);
    e.set_message(msg);
    return finish(e);
  };
  // Training jobs (docs/training.md, "Training jobs on a worker").
  if (job.task() == v1::TASK_TRAIN_BUDGET || job.task() == v1::TASK_TRAIN_TARGET) {
    // Its progress, kept on the job's entry for the next heartbeat.
    auto on_progress = [this, id = job.id()](const v1::JobProgress& progress) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(id);
      if (it == jobs_.end()) return;
      it->second->progress = progress;
      ++it->second->progress_seq;
    };
    return RunTrainingJob(job, options_, sandbox_, hardware_, cancel, cancelled, finish,
                          on_progress);
  }

  Log(absl::StrFormat("job %d start: campaign %d candidate %d %s seed %d timeout %gs",
                      job.id(), job.campaign_id(), job.candidate_id(),
                      v1::JobKind_Name(job.kind()), job.seed(), timeout));

  absl::StatusOr<fs::path> folder = MakeJobFolder(options_, job);
  if (!folder.ok()) {
    if (!absl::IsInvalidArgument(folder.status()))
      return harness_error(std::string(folder.status().message()));
    v1::Evaluation e;
    e.set_outcome(v1::OUTCOME_COMPILE_ERROR);
    e.set_message(std::string(folder.status().message()));
    return finish(e);
  }
  const fs::path scratch = *folder, out = scratch / "result.json";
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code ec;
      if (!keep) fs::remove_all(dir, ec);
    }
  } cleanup{scratch, options_.keep_scratch};
  const bool cuda = job.device() == v1::DEVICE_CUDA;
  if (std::string why = CannotRun(job); !why.empty()) return harness_error(why);
  if (cuda) SeedTbCache(options_, job, scratch);
  kernels::HarnessArgs args = HarnessArgsFor(options_, hardware_, job, scratch, slot);
  // The harness echoes this secret in its result; a result without it was
  // written by candidate code (docs/verifier.md, "Threat model"). Replays
  // time the candidate from outside in the same harness run: its marks come
  // on the harness's own stdout, which the candidate process does not hold.
  kernels::HarnessSecrets secrets;
  secrets.nonce = NewNonce();
  const std::string& nonce = secrets.nonce;
  const bool independent = job.kind() == v1::JOB_REPLAY && job.independent_timing();
  if (independent) secrets.independent_timing = 0.25;
  SandboxSpec spec = HarnessSandbox(options_, hardware_, args, scratch, timeout, job.id(), secrets);
  std::map<int, std::vector<Mark>> marks;  // by workload

  std::deque<std::string> tail;
  RunHooks hooks = HarnessHooks(cancel, job.id(), &tail, &marks);
  auto cancelled_evaluation = [&](double wall_seconds) {
    *cancelled = true;
    v1::Evaluation e;
    e.set_outcome(v1::OUTCOME_CRASH);
    e.set_message("cancelled");
    e.set_wall_seconds(wall_seconds);
    return finish(e);
  };
  // What a harness run left behind: its result file, else the output's tail.
  auto evaluation_of = [&](const RunResult& r) {
    std::optional<std::string> result;
    if (!r.timed_out && r.signal == 0 && !r.scratch_exceeded)
      result = ReadSmallFile(out, 64 << 20);
    std::string tail_text;
    for (const auto& line : tail) absl::StrAppend(&tail_text, line, "\n");
    return EvaluationFromRun(r, result, timeout, tail_text, nonce, options_.scratch_bytes);
  };
  // A place at the job's GPU, given back when the job ends.
  struct GatePlace {
    GpuGate* gate = nullptr;
    ~GatePlace() {
      if (gate == nullptr) return;
      std::lock_guard<std::mutex> lock(gate->mu);
      ++gate->free;
      gate->cv.notify_one();
    }
  } place;
  if (cuda) {
    // Compile first without the GPU: nvcc runs while another slot's job holds
    // the GPU; the run below reuses the build from the same scratch folder.
    SandboxSpec compile = spec;
    args.compile_only = true;
    compile.argv = CommandLine(options_, args);
    auto built = sandbox_.Run(compile, hooks);
    if (!built.ok())
      return harness_error(absl::StrCat("cannot run the harness: ", built.status().message()));
    if (built->cancelled) return cancelled_evaluation(built->wall_seconds);
    v1::Evaluation e = evaluation_of(*built);
    if (e.outcome() != v1::OUTCOME_OK) return finish(e);
    std::error_code rm;
    fs::remove(out, rm);
    const int gpus = std::max(1, hardware_.gpus_size());
    GpuGate* gate = gpu_gates_[static_cast<size_t>(slot % gpus)].get();
    {
      std::unique_lock<std::mutex> lock(gate->mu);
      gate->cv.wait(lock, [gate] { return gate->free > 0; });
      --gate->free;
    }
    place.gate = gate;
    // The job's wall clock covers compilation (not the wait for the GPU).
    spec.wall_seconds = std::max(1.0, timeout - built->wall_seconds);
    args.compile_only = false;
    if (!gate->lock_file.empty()) {
      // It may wait in the harness for the others' GPU work, each at most
      // its own timeout.
      args.device_lock = gate->lock_file;
      spec.ro_binds.push_back(gate->lock_file);
      spec.argv = CommandLine(options_, args);
      spec.wall_seconds += GpuWaitSeconds(timeout, options_.gpu_jobs);
    }
  }
  // From here to the end of the job (before the GPU's lock is let go).
  const DeviceBusy::Hold busy(
      device_busy_.get(),
      cuda ? absl::StrCat("gpu", slot % std::max(1, hardware_.gpus_size())) : "cpu");
  // The rounds of the job's seed (a campaign's, or a pair of replays'), made
  // once by an oracle-only run and given to every job of it (rounds_cache.h).
  double given_seconds = 0;
  const std::string given = rounds_cache_->Provide(
      job, args, spec, sandbox_, hooks, scratch,
      [this](const kernels::HarnessArgs& a) { return CommandLine(options_, a); },
      [this](const std::string& m) { Log(m); }, &given_seconds);
  if (!given.empty()) {
    kernels::HarnessArgs with = args;
    with.given_rounds = given;
    spec.argv = CommandLine(options_, with);
  }
  auto run = sandbox_.Run(spec, hooks);
  if (!run.ok()) return harness_error(absl::StrCat("cannot run the harness: ", run.status().message()));
  if (run->cancelled) return cancelled_evaluation(run->wall_seconds);
  eval = evaluation_of(*run);
  if (given_seconds > 0) (*eval.mutable_stage_seconds())["oracle"] += given_seconds;
  NoteBaselineMeasurements(job, &eval);
  if (independent && eval.outcome() == v1::OUTCOME_OK) AttachIndependentTimes(marks, &eval);
  return finish(eval);
}

std::string Worker::CannotRun(const v1::Job& job) const {
  if (job.device() == v1::DEVICE_CUDA) {
    if (hardware_.gpus_size() == 0)
      return "this worker has no GPU; a \"cuda\" job needs a GPU worker";
    if (access(options_.cuda_harness_path.c_str(), X_OK) != 0)
      return absl::StrCat("this worker has no CUDA harness: '", options_.cuda_harness_path,
                          "' is not an executable (build ratchet-harness-cuda with the CUDA "
                          "toolkit or pass --cuda-harness)");
    return "";
  }
  if (job.device() != v1::DEVICE_UNSPECIFIED && job.device() != v1::DEVICE_CPU)
    return absl::StrCat("unknown device ", job.device(),
                        " (this worker runs \"cpu\" and \"cuda\")");
  return "";
}

absl::Status WriteJobFolder(const v1::Job& job, const fs::path& scratch) {
  const fs::path problem = scratch / "problem", solution = scratch / "solution";
  absl::Status st = WriteFile(problem / "definition.json", job.problem().definition_json());
  if (st.ok()) st = WriteFile(problem / "workload.jsonl", job.problem().workload_jsonl());
  if (!st.ok()) return st;
  // Sorted, so that the written tree and the command line are reproducible.
  std::map<std::string, std::string> files(job.solution().files().begin(),
                                           job.solution().files().end());
  for (const auto& [path, content] : files) {
    if (!SafeRelativePath(path))
      return absl::InvalidArgumentError(
          absl::StrCat("solution file path '", path, "' is not a plain relative path"));
    if (st = WriteFile(solution / path, content); !st.ok()) return st;
  }
  if (PassesBaseline(job)) return WriteFile(scratch / "baseline.json", BaselineFileJson(job));
  return absl::OkStatus();
}

void NoteBaselineMeasurements(const v1::Job& job, v1::Evaluation* eval) {
  for (auto& w : *eval->mutable_workloads()) {
    if (!w.t_b_given()) continue;
    for (const auto& b : job.baselines())
      if (b.workload_index() == w.index()) w.set_t_b_measurements(b.measurements());
  }
}

void AttachIndependentTimes(const std::map<int, std::vector<Mark>>& marks,
                            v1::Evaluation* eval) {
  for (auto& w : *eval->mutable_workloads()) {
    auto it = marks.find(w.index());
    const IndependentTime t = it == marks.end() || !MarksArePlausible(it->second)
                                  ? IndependentTime{}
                                  : PerCallFromMarks(it->second);
    if (t.calls == 0) {
      w.add_flags("independent-timing-failed");
      continue;
    }
    w.set_t_k_independent_ns(t.ns_per_call);
    w.set_independent_calls(static_cast<int32_t>(t.calls));
  }
}

grpc::ChannelArguments WorkerChannelArgs() {
  grpc::ChannelArguments args;
  // Come back quickly after a coordinator restart.
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10000);
  return args;
}

bool PassesBaseline(const v1::Job& job) { return job.baselines_size() > 0; }

std::string BaselineFileJson(const v1::Job& job) {
  nlohmann::json doc;
  doc["software"] = job.baselines_size() > 0 ? job.baselines(0).software() : "";
  nlohmann::json workloads = nlohmann::json::array();
  for (const auto& b : job.baselines()) {
    workloads.push_back({{"index", b.workload_index()},
                         {"t_b_ns", b.t_b_ns()},
                         {"t_b_eager_ns", b.t_b_eager_ns()},
                         {"t_b_compile_ns", b.t_b_compile_ns()},
                         {"t_ref_kernel_ns", b.t_ref_kernel_ns()},
                         {"t_b_spread", b.t_b_spread()},
                         {"measurements", b.measurements()}});
  }
  doc["workloads"] = std::move(workloads);
  return doc.dump(2) + "\n";
}

std::string NewNonce() {
  std::random_device rd;
  std::string hex;
  for (int i = 0; i < 4; ++i) absl::StrAppend(&hex, absl::Hex(rd(), absl::kZeroPad8));
  return hex;
}

bool MarksArePlausible(const std::vector<Mark>& marks) {
  // Both clocks are the machine's monotonic clock; a line is read a little
  // after it was written, never before.
  constexpr double kSlackSeconds = 1e-3;
  for (size_t i = 0; i < marks.size(); ++i) {
    if (marks[i].seconds > marks[i].arrived + kSlackSeconds) return false;
    if (i > 0 && (marks[i].seconds < marks[i - 1].seconds || marks[i].calls < marks[i - 1].calls))
      return false;
  }
  return true;
}

IndependentTime PerCallFromMarks(const std::vector<Mark>& marks) {
  IndependentTime t;
  if (marks.size() < 2) return t;
  // Per-call time of every window between two marks that lasted long enough
  // for the pipe's delivery jitter not to matter, past the first half of the
  // calls (start-up: first touch, thread pools). Other load on the machine
  // only ever stretches a window, and the candidate cannot make its calls
  // faster than they are, so a low quantile of the windows is the figure:
  // the busy windows drop out, a tampered in-process timer still shows.
  constexpr double kMinWindowSeconds = 0.5e-3;
  const int64_t last_calls = marks.back().calls;
  std::vector<double> per_call;
  int64_t calls = 0;
  for (size_t i = 1; i < marks.size(); ++i) {
    const int64_t n = marks[i].calls - marks[i - 1].calls;
    const double dt = marks[i].seconds - marks[i - 1].seconds;
    if (n <= 0 || dt < kMinWindowSeconds || marks[i - 1].calls < last_calls / 2) continue;
    per_call.push_back(1e9 * dt / static_cast<double>(n));
    calls += n;
  }
  if (per_call.size() >= 3) {
    std::sort(per_call.begin(), per_call.end());
    t.calls = calls;
    t.ns_per_call = per_call[(per_call.size() - 1) / 10];
    return t;
  }
  // Too few windows (a slow candidate): every window with calls in it, from
  // the second half of the calls (all of them if none), summed; the pipe's
  // constant latency cancels out between a window's two marks.
  for (const bool second_half : {true, false}) {
    int64_t n_sum = 0;
    double dt_sum = 0;
    for (size_t i = 1; i < marks.size(); ++i) {
      const int64_t n = marks[i].calls - marks[i - 1].calls;
      if (n <= 0 || (second_half && marks[i - 1].calls < last_calls / 2)) continue;
      n_sum += n;
      dt_sum += marks[i].seconds - marks[i - 1].seconds;
    }
    if (n_sum > 0 && dt_sum > 0) {
      t.calls = n_sum;
      t.ns_per_call = 1e9 * dt_sum / static_cast<double>(n_sum);
      return t;
    }
  }
  return t;
}

}  // namespace ratchet::worker
