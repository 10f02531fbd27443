#include "worker/hardware.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/usable_cpus.h"
#include "nlohmann/json.hpp"

#if __has_include("kernels/sol/cpu_peaks.h")
#include "kernels/sol/cpu_peaks.h"
#define RATCHET_WORKER_HAVE_PEAKS 1
#endif

namespace ratchet::worker {
namespace {

// The value of the first "key : value" line whose key is `key`.
std::string ProcField(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (absl::StripAsciiWhitespace(line.substr(0, colon)) == key)
      return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return "";
}

// Runs argv (no shell) and collects its stdout, up to 1 MiB; kills it after
// `timeout_seconds`. Returns false with *why when it did not exit 0.
bool RunForOutput(const std::vector<std::string>& argv, double timeout_seconds,
                  std::string* out, std::string* why) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    *why = absl::StrCat("pipe: ", strerror(errno));
    return false;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    *why = absl::StrCat("fork: ", strerror(errno));
    close(fds[0]);
    close(fds[1]);
    return false;
  }
  if (pid == 0) {
    dup2(fds[1], 1);
    setpgid(0, 0);
    // The worker blocks SIGTERM/SIGINT for its sigwait thread; the child must
    // not inherit that, or it could not be stopped.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd p = {fds[0], POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (out->size() < (1u << 20)) out->append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (timed_out) kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    *why = absl::StrFormat("no answer within %gs (killed)", timeout_seconds);
    return false;
  }
  if (WIFSIGNALED(status)) {
    *why = absl::StrCat("killed by signal ", WTERMSIG(status));
    return false;
  }
  if (WEXITSTATUS(status) != 0) {
    *why = absl::StrCat("exited with status ", WEXITSTATUS(status));
    return false;
  }
  return true;
}

}  // namespace

v1::Hardware DescribeHardware() {
  v1::Hardware hw;
  std::string model = ProcField("/proc/cpuinfo", "model name");
  if (model.empty()) model = ProcField("/proc/cpuinfo", "Model");  // arm64
  hw.set_cpu_model(model.empty() ? "unknown" : model);
  // The CPUs this worker may run on (a Slurm or cgroup cpuset, taskset), not
  // every CPU online: its training processes get their threads by it.
  hw.set_cpu_cores(UsableCpus());
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page > 0) hw.set_memory_bytes(static_cast<int64_t>(pages) * page);
  // The NVIDIA driver lists each GPU here; no nvidia-smi or CUDA needed.
  std::error_code ec;
  std::vector<std::string> dirs;
  for (const auto& e : std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec))
    dirs.push_back(e.path().string());
  std::sort(dirs.begin(), dirs.end());  // by PCI bus id
  for (const auto& dir : dirs) {
    std::string gpu = ProcField(dir + "/information", "Model");
    if (!gpu.empty()) hw.add_gpus(gpu);
  }
  return hw;
}

void MeasurePeaks(v1::Hardware* hw) {
#ifdef RATCHET_WORKER_HAVE_PEAKS
  kernels::CpuPeaks peaks = kernels::MeasureCpuPeaks();
  hw->set_peak_gbps(peaks.gbps);
  hw->set_peak_gflops(peaks.gflops);
#else
  (void)hw;
#endif
}

absl::Status ParseGpuProbe(const std::string& text, v1::Hardware* hw, std::string* note) {
  using json = nlohmann::json;
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return absl::InvalidArgumentError("GPU probe output is not a JSON object");
  try {
    *note = doc.value("note", std::string());
    const json& gpus = doc.at("gpus");
    if (!gpus.is_array()) return absl::InvalidArgumentError("\"gpus\" is not an array");
    std::vector<v1::GpuInfo> infos;
    for (const json& g : gpus) {
      v1::GpuInfo info;
      info.set_index(g.at("index").get<int>());
      info.set_model(g.at("model").get<std::string>());
      info.set_sku(g.value("sku", std::string()));
      info.set_compute_capability(g.value("compute_capability", std::string()));
      info.set_sm_count(g.value("sm_count", 0));
      info.set_memory_bytes(g.value("memory_bytes", int64_t{0}));
      info.set_l2_bytes(g.value("l2_bytes", int64_t{0}));
      info.set_table_dram_gbps(g.value("table_dram_gbps", 0.0));
      info.set_table_bf16_tflops(g.value("table_bf16_tflops", 0.0));
      info.set_measured_copy_gbps(g.value("measured_copy_gbps", 0.0));
      info.set_measured_gemm_bf16_tflops(g.value("measured_gemm_bf16_tflops", 0.0));
      info.set_driver_version(g.value("driver_version", std::string()));
      info.set_cuda_version(g.value("cuda_version", std::string()));
      std::string error = g.value("error", std::string());
      if (!error.empty()) absl::StrAppend(note, note->empty() ? "" : "; ", "GPU ", info.index(),
                                          ": ", error);
      infos.push_back(std::move(info));
    }
    if (infos.empty()) return absl::OkStatus();
    // The NCCL all-reduce over all these GPUs (kernels/sol/nccl_busbw.h): 0
    // when not measured, and nccl_note says why.
    hw->set_nccl_ranks(doc.value("nccl_ranks", 0));
    hw->set_nccl_allreduce_busbw_gbps(doc.value("nccl_allreduce_busbw_gbps", 0.0));
    if (std::string why = doc.value("nccl_note", std::string()); !why.empty())
      absl::StrAppend(note, note->empty() ? "" : "; ", "NCCL all-reduce: ", why);
    hw->clear_gpus();
    hw->clear_gpu_info();
    for (auto& info : infos) {
      hw->add_gpus(info.model());
      *hw->add_gpu_info() = std::move(info);
    }
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("GPU probe output: ", e.what()));
  }
  return absl::OkStatus();
}

std::string ProbeGpus(const std::string& probe_path, bool measure, double timeout_seconds,
                      v1::Hardware* hw) {
  const std::string listed =
      hw->gpus_size() > 0 ? absl::StrCat(" (the driver lists ", hw->gpus_size(), " GPU(s))") : "";
  if (probe_path.empty() || access(probe_path.c_str(), X_OK) != 0) {
    return absl::StrCat("CPU-only worker: no GPU probe at '", probe_path,
                        "' (build ratchet-gpu-probe with the CUDA toolkit)", listed);
  }
  std::vector<std::string> argv = {probe_path};
  if (!measure) argv.push_back("--no-measure");
  std::string out, why;
  if (!RunForOutput(argv, timeout_seconds, &out, &why))
    return absl::StrCat("CPU-only worker: GPU probe ", probe_path, " failed: ", why, listed);
  std::string note;
  absl::Status st = ParseGpuProbe(out, hw, &note);
  if (!st.ok()) return absl::StrCat("CPU-only worker: ", st.message(), listed);
  if (hw->gpu_info_size() == 0)
    return absl::StrCat("CPU-only worker: ", note.empty() ? "no GPU" : note, listed);
  return absl::StrCat(hw->gpu_info_size(), " GPU(s), calibrated by ", probe_path,
                      note.empty() ? "" : absl::StrCat(" (", note, ")"));
}

std::string GpuSummary(const v1::GpuInfo& g) {
  return absl::StrFormat(
      "GPU %d %s (%s, sm %s, %d SMs, %.1f GiB, L2 %.0f MiB, driver %s, CUDA %s): "
      "copy %.0f GB/s (table %.0f), GEMM bf16 %.0f TFLOP/s (table %.0f)",
      g.index(), g.model(), g.sku().empty() ? "not in the peak table" : g.sku(),
      g.compute_capability(), g.sm_count(), g.memory_bytes() / double(1 << 30),
      g.l2_bytes() / double(1 << 20), g.driver_version(), g.cuda_version(),
      g.measured_copy_gbps(), g.table_dram_gbps(), g.measured_gemm_bf16_tflops(),
      g.table_bf16_tflops());
}

std::string HardwareSummary(const v1::Hardware& hw) {
  return absl::StrFormat("%s, %d cores, %.1f GiB, %.1f GB/s, %.1f GFLOP/s, GPUs [%s]",
                         hw.cpu_model(), hw.cpu_cores(),
                         hw.memory_bytes() / double(1 << 30), hw.peak_gbps(),
                         hw.peak_gflops(), absl::StrJoin(hw.gpus(), ", "));
}

}  // namespace ratchet::worker
