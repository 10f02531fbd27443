// ratchet-harness: compiles a candidate, checks it against the PyTorch
// reference and times it. Contract: docs/harness.md.
//
// What is the CPU's own: g++, the candidate process (ratchet-candidate, or
// candidate_host.py for a Python solution) over a shared-memory arena, this process's clock, cache flushes of this
// machine's last-level cache, and the CPU's peaks. Everything else (the
// command line, the stages, the result) is the driver's
// (harness_driver.h), shared with ratchet-harness-cuda.
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "kernels/harness/candidate_process.h"
#include "kernels/harness/harness_driver.h"
#include "kernels/harness/subprocess.h"
#include "kernels/sol/cpu_peaks.h"
#include "kernels/sol/sol.h"

namespace ratchet::kernels {
namespace {

using Clock = std::chrono::steady_clock;

size_t FlushBytes() {
  if (const char* env = std::getenv("RATCHET_FLUSH_MIB")) {
    size_t mib = 0;
    if (absl::SimpleAtoi(env, &mib)) return mib << 20;
  }
  // 2x the LLC, capped at 64 MiB: VMs and multi-die parts report the whole
  // package's L3 (300 MiB on the build machines), but one core only ever
  // sees its own slice (measured under 64 MiB here), and every extra byte
  // costs time on each repetition.
  return std::min<size_t>(2 * static_cast<size_t>(LastLevelCacheBytes()), size_t{64} << 20);
}

// The interpreter that hosts a Python solution: --python, $RATCHET_PYTHON,
// else the first of /usr/bin/python3 and each python3 on PATH that imports
// torch, by the full name it reports (a virtual environment's stays one).
absl::StatusOr<std::string> TorchPython(const HarnessRun& run, const std::string& log) {
  std::vector<std::string> pythons;
  if (!run.args.python.empty()) {
    pythons.push_back(run.args.python);
  } else if (const char* env = std::getenv("RATCHET_PYTHON"); env != nullptr && *env) {
    pythons.push_back(env);
  } else {
    pythons.push_back("/usr/bin/python3");
    if (const char* path = std::getenv("PATH"))
      for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty()))
        pythons.push_back(absl::StrCat(dir, "/python3"));
  }
  for (const std::string& py : pythons) {
    auto rc = RunProcess({py, "-I", "-c", "import sys, torch; print(sys.executable)"}, log);
    if (!rc.ok() || *rc != 0) continue;
    std::string out(absl::StripTrailingAsciiWhitespace(ReadFileOrEmpty(log)));
    out = out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
    if (!out.empty() && out[0] == '/') return out;
  }
  return absl::FailedPreconditionError(
      "no python that can import torch for the Python solution (set --python or $RATCHET_PYTHON)");
}

// Copies the solution's files (its sources, as listed) under `to`, readable
// by the candidate process whoever it runs as (this process's umask is 077).
absl::Status CopySources(const Solution& s, const std::string& to) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const std::string& abs : s.sources) {
    const fs::path rel = fs::path(abs).lexically_relative(s.dir);
    const fs::path dst = fs::path(to) / rel;
    for (fs::path d = dst.parent_path(); !fs::exists(d); d = d.parent_path()) {
      fs::create_directories(dst.parent_path(), ec);
      break;
    }
    fs::copy_file(abs, dst, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat("copying ", abs, ": ", ec.message()));
    fs::permissions(dst, fs::perms(0644), ec);
    for (fs::path d = dst.parent_path(); d != fs::path(to).parent_path(); d = d.parent_path())
      fs::permissions(d, fs::perms(0755), ec);
  }
  return absl::OkStatus();
}

class CpuBackend : public HarnessBackend {
 public:
  ~CpuBackend() override { Release(); }

  bool Compile(const Solution& s, HarnessRun& run) override {
    if (IsPython(s)) return PreparePython(s, run);
    ReportStage("compile");
    const auto t0 = Clock::now();
    auto abi = KernelAbiHeader();
    if (!abi.ok()) return run.Fail(kOutcomeHarnessError, std::string(abi.status().message()));
    const std::string build = run.scratch + "/build";
    if (auto st = FreshBuildDir(build, *abi); !st.ok())
      return run.Fail(kOutcomeHarnessError, std::string(st.message()));
    run.library = build + "/candidate.so";
    std::vector<std::string> cmd = {"g++", "-std=c++17", "-O3", "-march=native", "-shared",
                                    "-fPIC", "-fopenmp", "-pthread",
                                    "-I" + build + "/include",
                                    "-I" + build + "/include/ratchet", "-I" + run.args.solution};
    for (const auto& [k, v] : s.knobs) cmd.push_back(absl::StrCat("-D", k, "=", v));
    for (const auto& f : s.sources) cmd.push_back(f);
    cmd.push_back("-o");
    cmd.push_back(run.library);
    const std::string log = build + "/compile.log";
    auto rc = RunProcess(cmd, log);
    run.result.compile_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!rc.ok()) return run.Fail(kOutcomeHarnessError, std::string(rc.status().message()));
    if (*rc != 0) return run.Fail(kOutcomeCompileError, CompileErrorMessage(cmd, log));
    return true;
  }

  bool Prepare(HarnessRun& run) override {
    CpuPeaks peaks{run.args.peak_gbps, run.args.peak_gflops};
    if (run.args.peak_gbps <= 0) peaks = MeasureCpuPeaks();
    run.result.peak_gbps = peaks.gbps;
    run.result.peak_gflops = peaks.gflops;
    return true;
  }

  void ConfigureOracle(const HarnessRun& run, OracleOptions* oo) const override {
    oo->flush_bytes = FlushBytes();
    oo->threads = UsableCpus();
  }

  absl::StatusOr<std::unique_ptr<CandidateProcess>> StartProcess(const HarnessRun& run,
                                                                 const std::string& dir) override {
    if (!python_.empty()) {
      // Python resolves every import to a full path, which the candidate's
      // user cannot walk inside this run's private folder: its folder is a
      // fresh one in $TMPDIR instead (listable by it only), holding its own
      // copy of the solution. The host script goes on fd 4.
      const char* tmp = std::getenv("TMPDIR");
      std::string tmpl = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/ratchet-py-XXXXXX");
      if (mkdtemp(tmpl.data()) == nullptr)
        return absl::InternalError(absl::StrCat("mkdtemp ", tmpl, ": ", strerror(errno)));
      python_dirs_.push_back(tmpl);
      std::error_code ec;
      std::filesystem::permissions(tmpl, std::filesystem::perms(0711), ec);
      if (auto st = CopySources(*python_solution_, tmpl + "/solution"); !st.ok()) return st;
      return CandidateProcess::Start(python_, {"-I", "-B", "/proc/self/fd/4"}, run.library,
                                     ArenaBytesFor(run.problem), tmpl, dir + "/output.log",
                                     nullptr);
    }
    return CandidateProcess::Start(SelfExeDir() + "/ratchet-candidate", run.library,
                                   ArenaBytesFor(run.problem), dir, dir + "/output.log");
  }

  CandidateBackend* Attach(CandidateProcess* process, const HarnessRun& run) override {
    calls_ = std::make_unique<ProcessBackend>(process, FlushBytes(), run.args.seed);
    return calls_.get();
  }

  void Release() override {
    calls_.reset();
    std::error_code ec;
    for (const std::string& d : python_dirs_) std::filesystem::remove_all(d, ec);
    python_dirs_.clear();
  }

  void SpeedOfLight(const Definition& def, double flops, double bytes, double oracle_flops,
                    const HarnessResult& result, WorkloadResult* wr) const override {
    wr->t_sol_ns = SolTimeNs(flops, bytes, result.peak_gflops, result.peak_gbps);
  }

 private:
  // A Python solution is not compiled: its interpreter is found, its files
  // copied for each candidate process, and what the host imports named.
  bool PreparePython(const Solution& s, HarnessRun& run) {
    ReportStage("compile");
    const auto t0 = Clock::now();
    const std::string build = run.scratch + "/build";
    if (auto st = FreshDir(build); !st.ok())
      return run.Fail(kOutcomeHarnessError, std::string(st.message()));
    run.library = SelfExeDir() + "/candidate_host.py";
    if (ReadFileOrEmpty(run.library).empty())
      return run.Fail(kOutcomeHarnessError, "candidate_host.py not found beside the harness");
    auto py = TorchPython(run, build + "/python.log");
    if (!py.ok()) return run.Fail(kOutcomeHarnessError, std::string(py.status().message()));
    python_ = *py;
    python_solution_ = std::make_unique<Solution>(s);
    run.load_target = "solution/" + s.entry_point;
    if (!s.destination_passing_style) run.load_target += "\ndps=0";
    for (const auto& [k, v] : s.knobs) absl::StrAppend(&run.load_target, "\nknob ", k, "=", v);
    run.result.compile_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    return true;
  }

  std::string python_;  // set for a Python solution
  std::unique_ptr<Solution> python_solution_;
  std::vector<std::string> python_dirs_;  // the Python candidates' folders
  std::unique_ptr<ProcessBackend> calls_;
};

}  // namespace
}  // namespace ratchet::kernels

int main(int argc, char** argv) {
  using namespace ratchet::kernels;
  return HarnessMain(HarnessKind::kCpu, argc, argv, [] { return std::make_unique<CpuBackend>(); });
}
