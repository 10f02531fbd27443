#include "kernels/bench.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "kernels/harness/contract.h"
#include "kernels/harness/result_table.h"
#include "kernels/harness/solution.h"
#include "kernels/harness/subprocess.h"

namespace ratchet::kernels {
namespace {

constexpr char kBenchUsage[] =
    "usage: ratchet bench <problem-dir> <solution-dir> [--json] [--seed N]\n"
    "         [--knob K=V]... [--warmups N] [--repetitions N] [--rounds N]\n"
    "         [--python PATH] [--peak-gbps X --peak-gflops Y] [--scratch DIR]\n"
    "         [--device cpu|cuda] [--baseline RESULT.json]\n"
    "         [--oracle-only] [--given-rounds DIR]\n"
    "  Evaluates a solution as a worker would: compile, check against the\n"
    "  reference, time, score. Exit 0 when the outcome is ok, 1 when it is\n"
    "  not (compile_error, wrong_answer, crash, timeout, harness_error, ...),\n"
    "  2 for a usage error.\n"
    "  --device: the harness to run; by default cuda for a CUDA solution, and\n"
    "  for Python, torch-extension and public-format ones where a GPU is present.\n"
    "  --baseline: T_b from an earlier --json result of the same problem and\n"
    "  software, as a campaign's jobs get it, instead of timing the reference.\n"
    "  --oracle-only, --given-rounds: the rounds of a seed made once (in\n"
    "  --scratch), then given to runs of that seed, as a worker does.\n";

// A solution that runs on either harness but is written for GPUs: Python
// (pytorch, triton, ...), a C++ torch extension (cuda_cpp, ...), or any in
// the public format ("spec": {"languages": [...]}).
bool PrefersGpu(const nlohmann::json& m) {
  if (!m.is_object()) return false;
  if (m.contains("spec") && m["spec"].is_object()) return true;
  if (!m.contains("language") || !m["language"].is_string()) return false;
  const std::string lang = m["language"].get<std::string>();
  return IsPythonLanguage(lang) || IsTorchExtensionLanguage(lang);
}

// The harness's flags that bench writes itself (from its arguments, and a
// temporary --out) or that would print over its own table.
bool IsBenchOwned(const std::string& flag) {
  const std::string name = flag.substr(0, flag.find('='));
  return name == "--problem" || name == "--solution" || name == "--out" || name == "--print";
}

bool GpuPresent() { return access("/dev/nvidiactl", F_OK) == 0; }

int BenchUsage(const std::string& why) {
  std::fprintf(stderr, "ratchet bench: %s\n%s", why.c_str(), kBenchUsage);
  return 2;
}

}  // namespace

int BenchMain(int argc, char** argv) {
  std::vector<std::string> positional;
  std::vector<std::string> pass;
  bool json = false;
  std::string device;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") {
      json = true;
    } else if (a == "--device") {
      if (i + 1 >= argc) return BenchUsage("--device needs a value");
      device = argv[++i];
      if (device != "cpu" && device != "cuda")
        return BenchUsage(absl::StrCat("--device must be cpu or cuda, not '", device, "'"));
    } else if (a == "-h" || a == "--help") {
      std::fputs(kBenchUsage, stdout);
      return 0;
    } else if (IsBenchOwned(a)) {
      return BenchUsage(absl::StrCat("unknown option ", a));
    } else if (a.rfind("--", 0) == 0) {
      // The harness's flags, checked below by its own reader (contract.h).
      pass.push_back(a);
      if (IsHarnessSwitch(a) || a.find('=') != std::string::npos) continue;
      if (i + 1 >= argc) return BenchUsage(absl::StrCat(a, " needs a value"));
      pass.push_back(argv[++i]);
    } else if (!a.empty() && a[0] == '-') {
      return BenchUsage(absl::StrCat("unknown option ", a));
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() != 2) {
    return BenchUsage("expected <problem-dir> and <solution-dir>");
  }
  for (const std::string& dir : positional) {
    if (access(dir.c_str(), R_OK | X_OK) != 0) {
      return BenchUsage(absl::StrCat("cannot read folder ", dir));
    }
  }
  // CUDA solutions go to the CUDA harness, those written for GPUs too where
  // a GPU is present; everything else to the CPU one.
  nlohmann::json manifest = nlohmann::json::parse(
      ReadFileOrEmpty(positional[1] + "/solution.json"), nullptr, /*allow_exceptions=*/false);
  const bool cuda =
      !device.empty() ? device == "cuda"
                      : (manifest.is_object() && manifest.contains("language") &&
                         manifest["language"].is_string() && manifest["language"] == "cuda") ||
                            (PrefersGpu(manifest) && GpuPresent());
  const HarnessKind kind = cuda ? HarnessKind::kCuda : HarnessKind::kCpu;
  // The harness's command line, read as the harness reads it; --out is a
  // temporary file, made once the rest is known to be right.
  std::vector<std::string> flags = {"--problem", positional[0], "--solution", positional[1],
                                    "--out", "(temporary)"};
  flags.insert(flags.end(), pass.begin(), pass.end());
  auto args = ParseArgv(kind, flags);
  if (!args.ok()) return BenchUsage(std::string(args.status().message()));
  const std::string harness = SelfExeDir() + "/" + HarnessName(kind);
  if (access(harness.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "ratchet bench: %s not found\n", harness.c_str());
    return 1;
  }
  char tmpl[] = "/tmp/ratchet-bench-XXXXXX.json";
  const int fd = mkstemps(tmpl, 5);
  if (fd < 0) {
    std::fprintf(stderr, "ratchet bench: cannot create a temporary file\n");
    return 1;
  }
  close(fd);
  args->out = tmpl;
  std::vector<std::string> cmd = {harness};
  for (std::string& a : ToArgv(*args)) cmd.push_back(std::move(a));
  auto rc = RunProcess(cmd, "");
  const std::string text = ReadFileOrEmpty(tmpl);
  std::remove(tmpl);
  if (!rc.ok() || text.empty()) {
    std::fprintf(stderr, "ratchet bench: the harness produced no result (%s)\n",
                 rc.ok() ? absl::StrCat("exit ", *rc).c_str() : std::string(rc.status().message()).c_str());
    return (rc.ok() && *rc == 2) ? 2 : 1;
  }
  std::fputs(json ? text.c_str() : FormatResultTable(text).c_str(), stdout);
  // The exit status says whether the evaluation ended ok, for scripts; the
  // result is read as the worker reads it.
  const absl::StatusOr<HarnessResult> result = FromJson(text);
  const std::string outcome = result.ok() ? result->outcome : "unreadable";
  if (outcome != kOutcomeOk && !json)
    std::fprintf(stderr, "ratchet bench: outcome %s\n", outcome.c_str());
  return outcome == kOutcomeOk ? 0 : 1;
}

}  // namespace ratchet::kernels
