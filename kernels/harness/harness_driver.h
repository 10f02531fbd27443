// The one main of both harnesses (docs/harness.md, "What it does"): the
// command line and the secrets read through the contract (contract.h), then
//
//   compile -> [screen] -> oracle -> correctness -> timing -> score
//
// over a HarnessBackend that knows what differs: how to compile a candidate,
// how to host it (the candidate process and the pipeline's backend over it,
// with its clock), the device and the peaks, and the speed of light. The
// result is written once no candidate process is left, and a harness_error
// result when anything escapes, so that the worker never blames the
// candidate for the harness's fault.
//
// This process is the trusted side (docs/verifier.md, "Threat model"): it
// never loads candidate code, and T_b is timed before any candidate code of
// the run exists.
#ifndef RATCHET_KERNELS_HARNESS_HARNESS_DRIVER_H_
#define RATCHET_KERNELS_HARNESS_HARNESS_DRIVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/harness/candidate_process.h"
#include "kernels/harness/contract.h"
#include "kernels/harness/oracle_client.h"
#include "kernels/harness/pipeline.h"
#include "kernels/harness/solution.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {

// One run's state, shared by the driver and its backend.
struct HarnessRun {
  HarnessArgs args;
  // The args' counts with the harness's defaults filled in, and the
  // independent timing (--back-to-back, else $RATCHET_INDEPENDENT_TIMING).
  int warmups = 0, repetitions = 0, rounds = 0;
  double back_to_back = 0;
  Problem problem;
  std::string scratch;  // the run's private folder
  std::string library;  // the compiled candidate (the backend's Compile sets it)
  // What the candidate process loads: "" for `library` itself; a Python
  // solution's "FILE.py::FUNCTION" (candidate_host.py).
  std::string load_target;
  HarnessResult result;
  // Ends the run with `outcome` and `message` in the result. Always false,
  // so that a stage can `return run.Fail(...)`.
  bool Fail(const std::string& outcome, const std::string& message);
};

class HarnessBackend {
 public:
  virtual ~HarnessBackend() = default;
  // Before compilation; the problem is loaded and the scratch folder made.
  virtual bool BeforeCompile(HarnessRun& run) { return true; }
  // Compiles the solution into run.library (SCRATCH/build/candidate.so) and
  // sets the result's compile_seconds; false once run.Fail was called.
  virtual bool Compile(const Solution& solution, HarnessRun& run) = 0;
  // After compilation, before any oracle or candidate process: the device,
  // the peaks.
  virtual bool Prepare(HarnessRun& run) = 0;
  // The backend's part of every oracle request (flush size, threads, device).
  virtual void ConfigureOracle(const HarnessRun& run, OracleOptions* oo) const = 0;
  // Starts a candidate process that will host run.library in `dir` (its
  // working folder, which exists; its output in dir/output.log). Errors are
  // the harness's.
  virtual absl::StatusOr<std::unique_ptr<CandidateProcess>> StartProcess(
      const HarnessRun& run, const std::string& dir) = 0;
  // The pipeline's backend over `process`, its library loaded, with the
  // process's round trip taken off every call's time. Valid until Release.
  virtual CandidateBackend* Attach(CandidateProcess* process, const HarnessRun& run) = 0;
  // Frees what StartProcess and Attach made; the process is gone by then.
  virtual void Release() = 0;
  // T_sol of workload `wr` (and on CUDA its flops, bytes and the below-sol
  // flag): `flops` and `bytes` from the definition, `oracle_flops` counted
  // by the oracle (0 when it could not).
  virtual void SpeedOfLight(const Definition& def, double flops, double bytes,
                            double oracle_flops, const HarnessResult& result,
                            WorkloadResult* wr) const = 0;
};

// Everything a harness's main does: BecomeTrustedParent, the secrets and
// the command line, one run over `make_backend()`, the result. Returns the
// exit status (contract.h).
int HarnessMain(HarnessKind kind, int argc, char** argv,
                const std::function<std::unique_ptr<HarnessBackend>()>& make_backend);

// For backends.

// Progress on stderr, one line per stage ("stage: compile").
void ReportStage(const std::string& stage);

// The text of kernel_abi.h, the header beside this executable that
// candidates include as "ratchet/kernel_abi.h"; an error when it is missing.
absl::StatusOr<std::string> KernelAbiHeader();
// Makes `build` anew, with `abi` as include/ratchet/kernel_abi.h in it.
absl::Status FreshBuildDir(const std::string& build, const std::string& abi);

// A compile_error's message: the command line and the tail of its output.
std::string CompileErrorMessage(const std::vector<std::string>& cmd, const std::string& log);

// Adds `flag` to `flags` unless it is there.
void AddFlag(std::vector<std::string>* flags, const std::string& flag);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_HARNESS_DRIVER_H_
