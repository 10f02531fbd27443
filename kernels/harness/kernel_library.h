// ratchet's kernel library: the built-in problems' CUDA baselines
// (tasks/kernels/*/baseline, embedded at build time), offered to a problem
// they were not written for wherever its op type and signature fit
// (docs/harness.md, "Derived baselines"). An adapter maps the problem's
// inputs and outputs onto the kernel's: by dtype and rank (leading
// dimensions collapsed where the problem has more), by name first; a scalar
// the kernel takes and the problem fixes in its reference (`EPS = 1e-5`)
// becomes a constant. The checks then decide whether the match was right.
#ifndef RATCHET_KERNELS_HARNESS_KERNEL_LIBRARY_H_
#define RATCHET_KERNELS_HARNESS_KERNEL_LIBRARY_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kernels/problem/problem.h"

namespace ratchet::kernels {

struct LibraryKernelFiles {
  std::string name;  // its folder under tasks/kernels
  // "definition.json", "baseline/solution.json", "baseline/kernel.cu", ...
  std::map<std::string, std::string> files;
};

// The library as built into this binary, and the ABI header it includes
// (ratchet/kernel_abi.h).
const std::vector<LibraryKernelFiles>& EmbeddedKernelLibrary();
const char* EmbeddedKernelAbi();

// How one library kernel serves a problem.
struct LibraryMatch {
  std::string kernel;                 // the library kernel's name
  std::vector<std::string> sources;   // its compiled sources (baseline/...)
  std::vector<std::string> headers;   // its other files
  std::vector<std::string> libraries; // "cublas", "cublasLt"
  // Its knobs as its solution.json declares them (name -> {choices, default}).
  std::vector<std::pair<std::string, std::string>> knobs_json;
  struct Argument {
    int problem_index = -1;  // the problem's input/output; -1: a constant
    int collapse = 1;        // leading dimensions of the problem's tensor made one
    double constant = 0;     // when problem_index < 0
    std::string dtype;       // the kernel's dtype for it
    bool scalar = false;
  };
  std::vector<Argument> inputs, outputs;  // in the kernel's order
};

// Every kernel of `library` that fits `problem`, best first (a same op
// type before none named).
std::vector<LibraryMatch> MatchKernelLibrary(const Definition& problem,
                                             const std::vector<LibraryKernelFiles>& library);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_KERNEL_LIBRARY_H_
