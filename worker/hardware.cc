#include "worker/hardware.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

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

}  // namespace

v1::Hardware DescribeHardware() {
  v1::Hardware hw;
  std::string model = ProcField("/proc/cpuinfo", "model name");
  if (model.empty()) model = ProcField("/proc/cpuinfo", "Model");  // arm64
  hw.set_cpu_model(model.empty() ? "unknown" : model);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  hw.set_cpu_cores(cores > 0 ? static_cast<int>(cores)
                             : static_cast<int>(std::thread::hardware_concurrency()));
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

std::string HardwareSummary(const v1::Hardware& hw) {
  return absl::StrFormat("%s, %d cores, %.1f GiB, %.1f GB/s, %.1f GFLOP/s, GPUs [%s]",
                         hw.cpu_model(), hw.cpu_cores(),
                         hw.memory_bytes() / double(1 << 30), hw.peak_gbps(),
                         hw.peak_gflops(), absl::StrJoin(hw.gpus(), ", "));
}

}  // namespace ratchet::worker
