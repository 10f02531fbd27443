// Python solutions ("pytorch", "triton", ...; docs/harness.md "Python
// solutions") and C++ ones with a torch binding ("cuda_cpp", built by
// torch.utils.cpp_extension in the candidate process): hosted by
// candidate_host.py, a Python candidate process that
// speaks the same channel as ratchet-candidate. Both harnesses use this: the
// CPU one with the shared arena, the CUDA one with the device arena.
#ifndef RATCHET_KERNELS_HARNESS_PYTHON_SOLUTION_H_
#define RATCHET_KERNELS_HARNESS_PYTHON_SOLUTION_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/harness/candidate_process.h"
#include "kernels/harness/harness_driver.h"
#include "kernels/harness/solution.h"

namespace ratchet::kernels {

// CUTLASS's headers for C++ solutions, where SOL-ExecBench's build looks:
// `cutlass_dir`/include and /tools/util/include (`cutlass_dir` is
// $CUTLASS_DIR, else /usr/local/cutlass), those that exist. The harness
// resolves them from its own environment, not the candidate's.
std::vector<std::string> CutlassIncludePaths(const char* cutlass_dir);

class PythonSolutionHost {
 public:
  ~PythonSolutionHost();

  // The compile stage of a Python solution: finds the interpreter that
  // imports torch (--python, $RATCHET_PYTHON, else /usr/bin/python3 and each
  // python3 on PATH, by the full name it reports), sets run.library to the
  // host script beside the harness and run.load_target to what it imports
  // (entry point, destination passing, knobs). False once run.Fail was called.
  bool Prepare(const Solution& s, HarnessRun& run);

  // Whether Prepare chose this host for the run.
  bool active() const { return solution_ != nullptr; }

  // Starts the host: `python -I -B` on the script (fd 4), in a fresh folder
  // of $TMPDIR holding a copy of the sources (Python resolves imports to
  // full paths, which the candidate's user could not walk inside the run's
  // private folder), its output in `log`.
  absl::StatusOr<std::unique_ptr<CandidateProcess>> Start(
      const HarnessRun& run, size_t arena_bytes, const std::string& log,
      const std::function<void(channel::ControlBlock*)>& prepare);

  // Removes the folders Start made (not the torch extension's build).
  void Release();

 private:
  // What candidate_host.py builds a torch extension from, beside the sources.
  static constexpr const char* kExtensionFile = ".ratchet_extension.json";
  absl::Status WriteExtensionSpec(const std::string& path);

  std::string python_;
  std::unique_ptr<Solution> solution_;
  std::vector<std::string> dirs_;
  std::string extension_dir_;  // the torch extension's build, kept for the run
};

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_PYTHON_SOLUTION_H_
