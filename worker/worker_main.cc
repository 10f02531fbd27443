#include "worker/worker_main.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/auth.h"
#include "common/flags.h"
#include "common/job_wall.h"
#include "common/metrics.h"
#include "worker/hardware.h"
#include "worker/sandbox.h"
#include "worker/worker.h"

namespace ratchet::worker {
namespace {

namespace fs = std::filesystem;

// $NAME when set and not empty, else `fallback`: what a flag defaults to
// when `ratchet local` (which starts workers with set flags) is to pass it.
std::string EnvOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

constexpr char kUsage[] =
    "usage: ratchet worker --coordinator=HOST:PORT [--name=NAME] [--metrics=ADDR]\n"
    "         [--scratch=DIR] [--sandbox=auto|bwrap|rlimits] [--slots=N] [--gpu-jobs=N]\n"
    "         [--python=PATH]\n"
    "         [--harness=PATH] [--memory-gb=G] [--cpu-seconds=S] [--wait-ms=MS]\n"
    "         [--peak-gbps=X --peak-gflops=Y] [--keep-scratch]\n"
    "         [--gpu-probe=PATH] [--no-gpu] [--no-gpu-calibration]\n"
    "         [--cuda-harness=PATH] [--tb-cache=DIR] [--rounds-cache=DIR|none]\n"
    "           (else $RATCHET_ROUNDS_CACHE)\n"
    "         [--scratch-mb=MB]\n"
    "         [--tls-ca=FILE --tls-cert=FILE --tls-key=FILE [--tls-server-name=NAME]]\n"
    "  --tls-*: the cluster's CA and this worker's certificate (ratchet pki issue\n"
    "           DIR worker:NAME); the coordinator knows it by NAME (docs/security.md)\n"
    "  --sandbox: auto (default) uses bwrap where it runs; without it, auto starts\n"
    "           only a loopback worker without credentials (ratchet local); rlimits\n"
    "           (or none) runs candidates unconfined, to be asked for in so many words\n";

int Fail(const std::string& message) {
  fprintf(stderr, "ratchet worker: %s\n%s", message.c_str(), kUsage);
  return 2;
}

std::string SelfDir() {
  const std::string self = SelfExecutable();
  return self.empty() ? "." : fs::path(self).parent_path().string();
}

std::string Hostname() {
  char buf[256] = {0};
  if (gethostname(buf, sizeof(buf) - 1) != 0) return "worker";
  return buf;
}

}  // namespace

int WorkerMain(int argc, char** argv) {
  auto flags = Flags::Parse(argc - 1, argv + 1,
                            {"keep-scratch", "help", "no-gpu", "no-gpu-calibration"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  if (flags->Has("help")) {
    fputs(kUsage, stdout);
    return 0;
  }
  auto unknown = flags->Unknown({"coordinator", "name", "metrics", "scratch", "sandbox",
                                 "slots", "gpu-jobs", "python", "harness", "memory-gb", "cpu-seconds",
                                 "wait-ms", "peak-gbps", "peak-gflops", "keep-scratch",
                                 "help", "gpu-probe", "no-gpu", "no-gpu-calibration",
                                 "cuda-harness", "tb-cache", "rounds-cache", "tls-ca", "tls-cert", "tls-key",
                                 "tls-server-name", "scratch-mb"});
  if (!unknown.empty()) return Fail(absl::StrCat("unknown flag --", unknown.front()));
  if (!flags->positional().empty())
    return Fail(absl::StrCat("unexpected argument '", flags->positional().front(), "'"));

  WorkerOptions options;
  options.coordinator = flags->Get("coordinator");
  if (options.coordinator.empty()) return Fail("--coordinator=HOST:PORT is required");
  options.name = flags->Get("name", Hostname());
  auto security = auth::ClientSecurityFromFlags(*flags);
  if (!security.ok()) return Fail(std::string(security.status().message()));
  if (!security->token.empty()) return Fail("a worker proves who it is with --tls-cert, not a token");
  options.python = flags->Get("python");
  options.keep_scratch = flags->Has("keep-scratch");
  auto slots = flags->GetInt("slots", 0);  // 0: not given (see below)
  // CUDA kernel jobs per GPU at a time (WorkerOptions::gpu_jobs); the flag,
  // else $RATCHET_GPU_JOBS (how `ratchet local`'s workers are told).
  long long gpu_jobs_default = 1;
  if (!flags->Has("gpu-jobs") && !absl::SimpleAtoi(EnvOr("RATCHET_GPU_JOBS", "1"), &gpu_jobs_default))
    return Fail("$RATCHET_GPU_JOBS must be a number");
  auto gpu_jobs = flags->GetInt("gpu-jobs", gpu_jobs_default);
  auto wait_ms = flags->GetInt("wait-ms", 2000);
  auto memory_gb = flags->GetDouble("memory-gb", 8);
  auto cpu_seconds = flags->GetDouble("cpu-seconds", 0);
  // A job's scratch folder (its build, caches, temporaries): 8 GiB holds a
  // CUDA build with room to spare; a candidate once wrote 2.5 GB in 95 s.
  auto scratch_mb = flags->GetInt("scratch-mb", 8192);
  auto peak_gbps = flags->GetDouble("peak-gbps", 0);
  auto peak_gflops = flags->GetDouble("peak-gflops", 0);
  for (const auto* s : {&slots.status(), &gpu_jobs.status(), &wait_ms.status(), &memory_gb.status(),
                        &cpu_seconds.status(), &peak_gbps.status(), &peak_gflops.status(),
                        &scratch_mb.status()})
    if (!s->ok()) return Fail(std::string(s->message()));
  if ((flags->Has("slots") && *slots < 1) || *slots > 256)
    return Fail("--slots must be between 1 and 256");
  if (*gpu_jobs < 1 || *gpu_jobs > kMaxJobsPerGpu)
    return Fail(absl::StrCat("--gpu-jobs must be between 1 and ", kMaxJobsPerGpu));
  options.gpu_jobs = static_cast<int>(*gpu_jobs);
  if (*wait_ms < 0 || *wait_ms > 60000) return Fail("--wait-ms must be between 0 and 60000");
  if (*memory_gb < 0) return Fail("--memory-gb must not be negative");
  if (*scratch_mb < 0 || *scratch_mb > (1LL << 30))
    return Fail("--scratch-mb must be between 0 (no limit) and 1073741824");
  options.slots = static_cast<int>(*slots);  // 0 until the GPUs are known
  options.wait_ms = static_cast<int>(*wait_ms);
  options.memory_bytes = static_cast<int64_t>(*memory_gb * (int64_t{1} << 30));
  options.scratch_bytes = static_cast<int64_t>(*scratch_mb) << 20;
  options.cpu_seconds = *cpu_seconds;

  options.harness_path = flags->Get("harness", SelfDir() + "/ratchet-harness");
  if (access(options.harness_path.c_str(), X_OK) != 0)
    return Fail(absl::StrCat("harness '", options.harness_path,
                             "' is not an executable (build ratchet-harness or pass --harness)"));

  // CUDA jobs run ratchet-harness-cuda; its absence only matters once a CUDA
  // job arrives (RunJob then reports it), so a CPU build still starts.
  options.cuda_harness_path = flags->Get("cuda-harness", SelfDir() + "/ratchet-harness-cuda");
  // T_b of PyTorch references, kept across jobs and restarts (the oracle's
  // cache; worker.cc copies it in and out of each job's sandbox).
  {
    const char* xdg = getenv("XDG_CACHE_HOME");
    const char* home = getenv("HOME");
    std::string base = xdg && *xdg ? std::string(xdg)
                       : home && *home ? std::string(home) + "/.cache"
                                       : std::string("/tmp");
    options.tb_cache_dir = flags->Get("tb-cache", base + "/ratchet/tb-cache");
  }


  // Signals are taken by one thread with sigwait; block them before any
  // thread starts so that every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::string warning;
  const std::string sandbox_choice = flags->Get("sandbox", "auto");
  auto sandbox = Sandbox::Create(sandbox_choice, &warning);
  if (!sandbox.ok()) return Fail(std::string(sandbox.status().message()));
  // Without bwrap, candidate code reads whatever this user can: the worker's
  // TLS key among it. A cluster worker (credentials, or a coordinator on
  // another machine) must not end up there by default; `ratchet local`
  // (loopback, no credentials) still may.
  if (sandbox_choice == "auto" && sandbox->mode() == Sandbox::Mode::kRlimits &&
      (!security->cert_file.empty() || !security->key_file.empty() ||
       !auth::IsLoopback(options.coordinator))) {
    return Fail(absl::StrCat(
        "bubblewrap is unavailable (", warning, "), and without it candidate code could read "
        "this worker's files, its TLS key among them; refusing to start a cluster worker ",
        !security->key_file.empty() ? "with TLS credentials" : "of a coordinator not on loopback",
        ". Install bwrap (apt install bubblewrap) and allow unprivileged user namespaces "
        "(sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu "
        "kernel.apparmor_restrict_unprivileged_userns=0), or pass --sandbox=rlimits to accept "
        "the risk"));
  }
  if (!warning.empty()) {
    Log("WARNING ************************************************************");
    Log("WARNING bubblewrap is unavailable: " + warning);
    Log("WARNING jobs run with rlimits and a process group ONLY: candidate code");
    Log("WARNING can reach the network and write anywhere this user can.");
    Log("WARNING ************************************************************");
  } else if (sandbox->mode() == Sandbox::Mode::kRlimits) {
    Log("WARNING --sandbox=rlimits: jobs run with rlimits and a process group only");
  } else {
    Log("sandbox: bwrap (" + sandbox->bwrap_path() + ")");
  }

  // After the mask: a channel starts gRPC's threads.
  auto channel = auth::Dial(options.coordinator, *security, WorkerChannelArgs());
  if (!channel.ok()) return Fail(std::string(channel.status().message()));
  options.channel = *channel;

  // A private folder under the scratch root, removed at exit.
  const char* tmpdir = getenv("TMPDIR");
  std::string root = flags->Get("scratch", std::string(tmpdir && *tmpdir ? tmpdir : "/tmp"));
  std::error_code ec;
  fs::create_directories(root, ec);
  // Absolute, because the sandbox binds it by path from another directory.
  root = fs::absolute(root, ec).lexically_normal().string();
  absl::StatusOr<std::string> scratch_root = MakePrivateFolder(root, "ratchet-worker");
  if (!scratch_root.ok()) return Fail(std::string(scratch_root.status().message()));
  options.scratch_root = *scratch_root;
  // The oracle's rounds per campaign seed, beside the job folders and gone
  // with them ("none": every evaluation runs its own oracle). The flag, else
  // $RATCHET_ROUNDS_CACHE (so that `ratchet local`'s workers can be told).
  options.rounds_cache_dir = flags->Get(
      "rounds-cache", EnvOr("RATCHET_ROUNDS_CACHE", options.scratch_root + "/rounds-cache"));
  if (options.rounds_cache_dir == "none") options.rounds_cache_dir.clear();

  v1::Hardware hw = DescribeHardware();
  if (*peak_gbps > 0 && *peak_gflops > 0) {
    hw.set_peak_gbps(*peak_gbps);
    hw.set_peak_gflops(*peak_gflops);
  } else {
    Log("measuring CPU peaks...");
    MeasurePeaks(&hw);
  }
  if (flags->Has("no-gpu")) {
    hw.clear_gpus();
    hw.clear_gpu_info();
    Log("CPU-only worker: --no-gpu");
  } else {
    const bool measure = !flags->Has("no-gpu-calibration");
    if (measure) Log("probing and calibrating GPUs...");
    Log(ProbeGpus(flags->Get("gpu-probe", SelfDir() + "/ratchet-gpu-probe"), measure,
                  /*timeout_seconds=*/180, &hw));
    for (const auto& gpu : hw.gpu_info()) Log(GpuSummary(gpu));
  }
  Log("hardware: " + HardwareSummary(hw));
  // Without --slots: one job at a time, or as many as the GPUs take.
  if (options.slots == 0)
    options.slots = std::max(1, options.gpu_jobs * std::max(1, hw.gpus_size()));

  std::shared_ptr<prometheus::Registry> registry;
  std::unique_ptr<MetricsServer> metrics;
  if (flags->Has("metrics")) {
    registry = std::make_shared<prometheus::Registry>();
    RegisterBuildInfo(*registry, "worker");
    auto server = MetricsServer::Start(flags->Get("metrics"), registry);
    if (!server.ok()) return Fail(std::string(server.status().message()));
    metrics = *std::move(server);
    Log(absl::StrCat("metrics on port ", metrics->port()));
  }

  Worker worker(options, *std::move(sandbox), hw, registry);
  std::thread waiter([&worker, stop_signals] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    Log(absl::StrCat("got ", SignalName(sig), "; killing running jobs and stopping"));
    worker.Stop();
  });
  Log(absl::StrCat("worker ", options.name, " starting: coordinator ", options.coordinator,
                   ", ", options.slots, " slot(s), harness ", options.harness_path));
  worker.Run();
  waiter.join();
  fs::remove_all(options.scratch_root, ec);
  Log("stopped");
  return 0;
}

}  // namespace ratchet::worker
