// solution.json (docs/solutions.md): sources, knobs and, for CUDA, libraries.
#ifndef RATCHET_KERNELS_HARNESS_SOLUTION_H_
#define RATCHET_KERNELS_HARNESS_SOLUTION_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/languages.h"

namespace ratchet::kernels {

enum class SolutionBackend { kCpu, kCuda };

struct Solution {
  std::string name;
  std::string language;              // "cpp", "c" or "cuda".
  std::vector<std::string> sources;  // Absolute paths of compiled sources.
  std::vector<std::pair<std::string, std::string>> knobs;  // NAME -> value text.
  std::vector<std::string> libraries;  // CUDA only: "cublas", "cublasLt".
  // Python (IsPythonLanguage): the function called, "FILE.py::FUNCTION" (FILE one
  // of the sources, relative to the solution folder), and whether it writes
  // its outputs into tensors passed after the inputs (SOL-ExecBench's
  // destination-passing style, the default) or returns them.
  std::string entry_point;
  bool destination_passing_style = true;
  std::string dir;  // the solution folder
  std::vector<std::string> headers;  // Absolute paths of included files.
  // A C++ solution with a torch binding (public "cuda_cpp", ...): built by
  // torch.utils.cpp_extension inside the candidate process, with these
  // flags, and called through the Python host like a Python solution.
  bool torch_extension = false;
  std::vector<std::string> cflags, cuda_cflags, ldflags;
};

// The public languages whose solutions are Python modules, hosted by
// candidate_host.py rather than compiled (common/languages.h).
inline bool IsPythonLanguage(const std::string& language) {
  const SolutionLanguage* l = FindSolutionLanguage(language);
  return l != nullptr && l->kind == LanguageKind::kPython;
}
// The public C++ languages, built as torch extensions where the binding is
// torch.
inline bool IsTorchExtensionLanguage(const std::string& language) {
  const SolutionLanguage* l = FindSolutionLanguage(language);
  return l != nullptr && l->kind == LanguageKind::kTorchExtension;
}
// Whether the Python host runs `s`: a Python solution or a torch extension.
inline bool IsPython(const Solution& s) {
  return IsPythonLanguage(s.language) || s.torch_extension;
}

// Reads DIR/solution.json. `overrides` (from --knob) replace knob defaults and
// must name declared knobs. The CPU backend accepts "cpp"/"c++"/"c", the
// CUDA backend "cuda", both "pytorch" (a Python solution: `entry_point`
// required). Headers (.h, .hpp, .cuh) are listed but not compiled.
// Errors name the file and field.
absl::StatusOr<Solution> LoadSolution(
    const std::string& dir, const std::vector<std::pair<std::string, std::string>>& overrides,
    SolutionBackend backend = SolutionBackend::kCpu);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_SOLUTION_H_
