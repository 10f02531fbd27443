// ratchet-harness: compiles a candidate, checks it against the PyTorch
// reference and times it. Contract: docs/harness.md.
//
// What is the CPU's own: g++, the candidate process (ratchet-candidate, or
// candidate_host.py for a Python solution) over a shared-memory arena, this
// process's clock, cache flushes of this machine's last-level cache, and the
// CPU's peaks. Everything else (the
// command line, the stages, the result) is the driver's
// (harness_driver.h), shared with ratchet-harness-cuda.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/usable_cpus.h"
#include "kernels/harness/candidate_process.h"
#include "kernels/harness/harness_driver.h"
#include "kernels/harness/python_solution.h"
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

class CpuBackend : public HarnessBackend {
 public:
  ~CpuBackend() override { Release(); }

  bool Compile(const Solution& s, HarnessRun& run) override {
    if (IsPython(s)) return python_.Prepare(s, run);
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
    if (python_.active())
      return python_.Start(run, ArenaBytesFor(run.problem), dir + "/output.log", nullptr);
    return CandidateProcess::Start(SelfExeDir() + "/ratchet-candidate", run.library,
                                   ArenaBytesFor(run.problem), dir, dir + "/output.log");
  }

  CandidateBackend* Attach(CandidateProcess* process, const HarnessRun& run) override {
    calls_ = std::make_unique<ProcessBackend>(process, FlushBytes(), run.args.seed);
    return calls_.get();
  }

  void Release() override {
    calls_.reset();
    python_.Release();
  }

  void SpeedOfLight(const Definition& def, double flops, double bytes, double oracle_flops,
                    const HarnessResult& result, WorkloadResult* wr) const override {
    wr->t_sol_ns = SolTimeNs(flops, bytes, result.peak_gflops, result.peak_gbps);
  }

 private:
  PythonSolutionHost python_;  // a Python solution's host, when it is one
  std::unique_ptr<ProcessBackend> calls_;
};

}  // namespace
}  // namespace ratchet::kernels

int main(int argc, char** argv) {
  using namespace ratchet::kernels;
  return HarnessMain(HarnessKind::kCpu, argc, argv, [] { return std::make_unique<CpuBackend>(); });
}
