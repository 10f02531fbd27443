// Research from nothing: a baseline derived from a problem's own reference
// when a kernel campaign names none (docs/harness.md, "Derived baselines").
//
// The baseline is a Python solution (language "pytorch") that runs the
// reference itself, with knobs that the built-in proposer can search on any
// problem: torch.compile and its mode, CUDA-graph replay, TF32 matmuls
// (where the tolerance allows; the checks decide), inference mode and, on a
// CPU, the thread count. A knob the installed torch or the device cannot
// honour leaves the call as it was (so the search finds no gain there,
// rather than a failure).
#ifndef RATCHET_KERNELS_HARNESS_DERIVED_BASELINE_H_
#define RATCHET_KERNELS_HARNESS_DERIVED_BASELINE_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/harness/kernel_library.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {

// The derived solution's files (solution.json, kernel.py, reference.py) for
// `definition`, whose reference must define run(inputs...) returning its
// outputs. `cuda` chooses the knob space (graphs and TF32 need a GPU;
// threads only matter on a CPU).
// On a GPU the kernels of `library` that fit the problem (kernel_library.h)
// are offered too: knob IMPL chooses "reference" or one of them, whose own
// knobs follow as NAME_KNOB.
absl::StatusOr<std::map<std::string, std::string>> DeriveBaseline(
    const Definition& definition, bool cuda,
    const std::vector<LibraryKernelFiles>& library = EmbeddedKernelLibrary());

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_DERIVED_BASELINE_H_
