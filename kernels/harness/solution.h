// solution.json (docs/solutions.md): sources, knobs and, for CUDA, libraries.
#ifndef RATCHET_KERNELS_HARNESS_SOLUTION_H_
#define RATCHET_KERNELS_HARNESS_SOLUTION_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ratchet::kernels {

enum class SolutionBackend { kCpu, kCuda };

struct Solution {
  std::string name;
  std::string language;              // "cpp", "c" or "cuda".
  std::vector<std::string> sources;  // Absolute paths of compiled sources.
  std::vector<std::pair<std::string, std::string>> knobs;  // NAME -> value text.
  std::vector<std::string> libraries;  // CUDA only: "cublas", "cublasLt".
};

// Reads DIR/solution.json. `overrides` (from --knob) replace knob defaults and
// must name declared knobs. The CPU backend accepts "cpp"/"c++"/"c", the CUDA
// backend "cuda". Headers (.h, .hpp, .cuh) are listed but not compiled.
// Errors name the file and field.
absl::StatusOr<Solution> LoadSolution(
    const std::string& dir, const std::vector<std::pair<std::string, std::string>>& overrides,
    SolutionBackend backend = SolutionBackend::kCpu);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_SOLUTION_H_
