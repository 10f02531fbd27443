// NVIDIA SOL-ExecBench's public solution format (its docs/solution.md): a
// solution.json with a build spec and its sources inline. ratchet reads and
// checks it with the benchmark's own rules, exports a ratchet CUDA candidate
// in it (a generated torch binding calls the candidate's ratchet_run_cuda)
// and imports one back into a folder (docs/harness.md, "The public solution
// format").
#ifndef RATCHET_KERNELS_HARNESS_PUBLIC_SOLUTION_H_
#define RATCHET_KERNELS_HARNESS_PUBLIC_SOLUTION_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {

struct PublicSourceFile {
  std::string path;  // Relative, no "..".
  std::string content;
};

struct PublicCompileOptions {
  std::vector<std::string> cflags;
  std::vector<std::string> cuda_cflags = {"-O3", "--use_fast_math"};
  std::vector<std::string> ld_flags = {"-lcuda"};
};

struct PublicSolution {
  std::string name;
  std::string definition;  // The Definition's name.
  std::string author;
  std::optional<std::string> description;
  // spec
  std::vector<std::string> languages;        // e.g. {"cuda_cpp"}.
  std::vector<std::string> target_hardware;  // "B200", "LOCAL".
  std::string entry_point;                   // "file::function".
  bool destination_passing_style = true;
  std::optional<std::string> binding;  // "torch" or absent.
  std::vector<std::string> dependencies;
  std::optional<PublicCompileOptions> compile_options;
  std::vector<PublicSourceFile> sources;

  // The text it was parsed from (empty when built in code): import keeps it
  // verbatim, fields that ratchet does not read included.
  std::string source_json;
};

// Parses and checks `json_text` with SOL-ExecBench's validation rules
// (required fields and their types, known languages not mixing C++ and
// Python, an entry point "file::function" whose file is among the sources
// and has a suffix of its language, relative source paths without ".." and
// without duplicates). Never throws: any malformed input, invalid UTF-8 and
// duplicate keys included, is an InvalidArgument naming the field.
absl::StatusOr<PublicSolution> ParsePublicSolution(const std::string& json_text);

// Whether `json_text` is meant as a public solution (an object with a "spec"
// object and no ratchet "language"), whether or not it is a valid one.
bool LooksLikePublicSolution(const std::string& json_text);

// Pretty JSON in the schema's key order, ending in a newline.
std::string PublicSolutionToJson(const PublicSolution& solution);

// The first line of the binding that ExportCudaCandidate generates; import
// recognises a ratchet export by it.
inline constexpr char kRatchetBindingMarker[] = "// ratchet binding:";
inline constexpr char kRatchetBindingFile[] = "binding.cu";
inline constexpr char kRatchetAbiHeaderPath[] = "ratchet/kernel_abi.h";

struct CudaCandidateExport {
  std::string name;    // The public solution's name.
  std::string author;  // Default "ratchet".
  std::string description;
  // kernel_abi.h's text: the candidate includes <ratchet/kernel_abi.h>, which
  // the benchmark does not have, so it travels as a source.
  std::string abi_header;
};

// A ratchet "cuda" candidate (its files, solution.json among them, and the
// knob values chosen for it) as a cuda_cpp solution with a torch binding:
// the sources that solution.json lists, kernel_abi.h, and a generated
// binding.cu whose run(inputs..., outputs...) calls ratchet_run_cuda on the
// current stream. Every declared knob becomes -DNAME=VALUE in
// compile_options.cuda_cflags (the candidate's value, else its default), so
// the solution is self-contained. "cpp" candidates are refused: the
// benchmark evaluates GPU solutions.
absl::StatusOr<PublicSolution> ExportCudaCandidate(
    const Definition& definition, const std::map<std::string, std::string>& files,
    const std::map<std::string, std::string>& knobs, const CudaCandidateExport& options);

// Writes every source under `out_dir` (refusing paths that leave it), the
// public JSON as out_dir/sol_execbench.json and a ratchet solution.json:
// for a ratchet export, language "cuda" with the candidate's sources and
// its -D knobs as knob defaults, which `ratchet bench` runs; otherwise the
// public language, which the harness refuses as not runnable yet.
absl::Status ImportPublicSolution(const PublicSolution& solution, const std::string& out_dir);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_PUBLIC_SOLUTION_H_
