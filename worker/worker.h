// The worker: registers its hardware with the coordinator, heartbeats, leases
// jobs, runs each in the sandbox through the harness and reports the
// evaluation. Work is pulled; the worker reconnects and re-registers by itself
// whenever the coordinator goes away and comes back.
#ifndef RATCHET_WORKER_WORKER_H_
#define RATCHET_WORKER_WORKER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "spec/defaults.h"
#include "worker/device_busy.h"
#include "worker/rounds_cache.h"
#include "worker/sandbox.h"

namespace grpc {
class ClientContext;
}

namespace ratchet::worker {

struct WorkerOptions {
  std::string coordinator;         // HOST:PORT
  // How it reaches the coordinator (TLS and its certificate); null: a
  // plain channel to `coordinator`.
  std::shared_ptr<grpc::Channel> channel;
  std::string name;                // shown in ListWorkers
  std::string scratch_root;        // job folders are made under this
  std::string harness_path;        // the ratchet-harness executable
  std::string cuda_harness_path;   // ratchet-harness-cuda, for jobs with device "cuda"
  std::string tb_cache_dir;        // persistent T_b cache; "" = none
  // The oracle's rounds per campaign seed (rounds_cache.h); "" = none.
  std::string rounds_cache_dir;
  int rounds_cache_entries = 3;
  std::string python;              // --python for the harness; "" = its default
  // The `ratchet` executable whose `ratchet launch` runs a training job's
  // ranks (worker/training_job.h); "" = this process's own executable.
  std::string launcher_path;
  int slots = 1;                   // jobs at a time
  // CUDA kernel jobs per GPU at a time. 1: a job holds the GPU from its
  // oracle to its end. More: they share it through the harness's
  // --device-lock, each holding the GPU only from its first use of it, so
  // that one's start, given rounds and compilation overlap another's GPU
  // work (never two jobs' GPU work).
  int gpu_jobs = 1;
  int wait_ms = 2000;              // AcquireJob long-poll
  double default_timeout_seconds = spec::kDefaultTimeoutSeconds;
  double cpu_seconds = 0;          // RLIMIT_CPU; 0 = timeout x cores
  int64_t memory_bytes = int64_t{8} << 30;  // RLIMIT_DATA per process
  int64_t scratch_bytes = int64_t{8} << 30;  // most a job's scratch folder may hold; 0 = no limit
  bool keep_scratch = false;       // leave job folders behind (debugging)
};

class Worker {
 public:
  // `registry` may be null (no metrics).
  Worker(WorkerOptions options, Sandbox sandbox, v1::Hardware hardware,
         std::shared_ptr<prometheus::Registry> registry);
  ~Worker();

  // Runs the register/heartbeat thread and `slots` job threads until Stop().
  void Run();
  // Kills running jobs and makes Run() return. Callable from any thread.
  void Stop();

  // Runs one job to an evaluation (ids, outcome, workloads, sandbox filled);
  // never throws, never fails: every failure is an outcome. `cancel` may be
  // null. Sets *cancelled when the job was killed through `cancel`. A job
  // whose device is "cuda" runs ratchet-harness-cuda on GPU `slot` modulo the
  // GPU count (slot i -> GPU i), and is refused on a worker without GPUs.
  v1::Evaluation RunJob(const v1::Job& job, const std::atomic<bool>* cancel,
                        bool* cancelled, int slot = 0);

  // The harness command line for `job` (without the sandbox), for tests.
  // `job_dir` is the job's scratch folder (problem/, solution/, work/...).
  std::vector<std::string> HarnessArgv(const v1::Job& job, const std::string& job_dir,
                                       int slot) const;

  std::string worker_id() const;
  // Why this worker cannot run the job's device ("" when it can).
  std::string CannotRun(const v1::Job& job) const;

 private:
  struct JobEntry {
    std::atomic<bool> cancel{false};
    bool running = true;  // false while only its report is pending
    // A training job's latest progress (the launcher's lines), sent with the
    // next heartbeat once: progress_seq counts updates, progress_sent is the
    // one the coordinator last took. Guarded by the Worker's mu_.
    std::optional<v1::JobProgress> progress;
    int64_t progress_seq = 0;
    int64_t progress_sent = 0;
  };

  void ControlLoop();
  void SlotLoop(int slot);
  bool RegisterOnce();
  void HeartbeatOnce();
  void ExecuteAndReport(const v1::Job& job, int slot);
  void Report(const v1::Job& job, v1::Evaluation eval);
  // Sleeps up to `seconds` or until Stop(); false once stopping.
  bool SleepFor(double seconds);
  // Blocks until registered; false once stopping.
  bool WaitRegistered(std::string* worker_id);
  void NeedRegister();
  void RecordFinish(const v1::Evaluation& eval);

  const WorkerOptions options_;
  const Sandbox sandbox_;
  const v1::Hardware hardware_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;

  std::atomic<bool> stopping_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string worker_id_;            // GUARDED_BY(mu_)
  bool registered_ = false;          // GUARDED_BY(mu_)
  bool need_register_ = true;        // GUARDED_BY(mu_)
  double heartbeat_seconds_ = 5;     // GUARDED_BY(mu_)
  std::map<int64_t, std::shared_ptr<JobEntry>> jobs_;  // GUARDED_BY(mu_)
  std::set<grpc::ClientContext*> polls_;               // GUARDED_BY(mu_)

  // One per GPU: a CUDA job compiles without it and holds one of its
  // `gpu_jobs` places for the oracle, correctness and timing, so jobs of
  // several slots on one GPU overlap their compilation with each other's GPU
  // work; with more than one place the harness's --device-lock (on
  // `lock_file`) keeps their GPU work apart.
  struct GpuGate {
    std::mutex mu;
    std::condition_variable cv;
    int free = 1;
    std::string lock_file;
  };
  std::vector<std::unique_ptr<GpuGate>> gpu_gates_;
  std::unique_ptr<RoundsCache> rounds_cache_;

  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>* jobs_total_ = nullptr;
  prometheus::Gauge* jobs_running_ = nullptr;
  prometheus::Histogram* job_seconds_ = nullptr;
  prometheus::Family<prometheus::Histogram>* stage_seconds_ = nullptr;
  // ratchet_worker_device_busy_seconds_total{device="cpu"|"gpuN"}; null
  // without metrics.
  std::unique_ptr<DeviceBusy> device_busy_;
};

// 128 random bits in hex: the secret a harness run echoes in its result.
std::string NewNonce();

// Whether the job's harness gets the stored baselines the job carries
// (--baseline FILE, docs/harness.md): when it carries some and runs on the
// CPU harness; the CUDA harness gets them once it reads the flag.
bool PassesBaseline(const v1::Job& job);

// The --baseline file for the job's stored baselines (docs/cluster.md,
// "Baselines"): {"software": "...", "workloads": [{"index", "t_b_ns",
// "t_b_eager_ns", "t_b_compile_ns", "t_ref_kernel_ns", "t_b_spread",
// "measurements"}, ...]}, one entry per workload in index order.
std::string BaselineFileJson(const v1::Job& job);

// One "ratchet-mark W CALLS NS" line of the harness (kernels/harness/
// back_to_back.h): the calls made so far, the harness's stamp, and when this
// process read the line (both seconds of the machine's monotonic clock).
struct Mark {
  int64_t calls = 0;
  double seconds = 0;
  double arrived = 0;
};
// False when a mark arrived before its stamp (beyond a millisecond) or the
// stamps or call counts went back: marks not written by the harness as it
// made the calls.
bool MarksArePlausible(const std::vector<Mark>& marks);

// Per-call time from the marks of one workload. The harness brackets each
// batch of calls with two marks; a window between marks with no calls in it
// (the harness placing inputs and checking outputs) does not count. The
// figure is the lower decile of the per-call times of the windows with calls
// (0.5 ms or longer, in the second half of the calls), so that windows
// stretched by other load drop out; with fewer than three such windows, all
// the windows with calls of the second half summed. calls 0: no figure.
struct IndependentTime {
  int64_t calls = 0;
  double ns_per_call = 0;
};
IndependentTime PerCallFromMarks(const std::vector<Mark>& marks);
// The outside figure of each workload from its marks, or the flag
// "independent-timing-failed" where there is none.
void AttachIndependentTimes(const std::map<int, std::vector<Mark>>& marks, v1::Evaluation* eval);

// A job's problem, solution and stored baselines written into `scratch`
// (problem/, solution/, baseline.json). InvalidArgument: a solution path
// that is not a plain relative path (the candidate's fault).
absl::Status WriteJobFolder(const v1::Job& job, const std::filesystem::path& scratch);
// How many measurements each T_b taken from the stored baselines rests on,
// for reports.
void NoteBaselineMeasurements(const v1::Job& job, v1::Evaluation* eval);

// The worker's channel settings: quick reconnects after a coordinator
// restart, keepalives.
grpc::ChannelArguments WorkerChannelArgs();

// Writes one line to stderr with a timestamp; thread-safe.
void Log(const std::string& line);

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_WORKER_H_
