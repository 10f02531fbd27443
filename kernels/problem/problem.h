// The problem format: SOL-ExecBench's definition.json and workload.jsonl.
//
// A Problem is parsed once; each Workload binds the var axes and says how
// every input is produced. Errors name the file, the line (workload.jsonl)
// and the field, e.g.
//   "workload.jsonl:3: field 'inputs.A.type': unknown input type \"rand\"".
#ifndef RATCHET_KERNELS_PROBLEM_PROBLEM_H_
#define RATCHET_KERNELS_PROBLEM_PROBLEM_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/utf8.h"
#include "absl/strings/string_view.h"
#include "kernels/correctness/compare.h"
#include "kernels/problem/dtype.h"

namespace ratchet::kernels {

struct Axis {
  enum class Kind { kConst, kVar, kExpr };
  std::string name;
  Kind kind = Kind::kVar;
  int64_t value = 0;        // kConst.
  std::string expression;   // kExpr.
};

// One dimension of a shape: an axis name or a literal size.
struct Dim {
  std::string axis;  // Empty when literal.
  int64_t literal = 0;
};

struct TensorSpec {
  std::string name;
  DType dtype = DType::kFloat32;
  bool scalar = false;     // "shape": null; a Python scalar for the reference.
  std::vector<Dim> shape;  // Empty and !scalar: a 0-d tensor.
};

struct Definition {
  std::string name;
  std::string op_type;
  std::string description;
  std::vector<Axis> axes;  // Definition order.
  std::vector<TensorSpec> inputs;
  std::vector<TensorSpec> outputs;
  std::string reference;
  std::string custom_inputs_entrypoint;  // Empty when absent.
  std::vector<std::string> constraints;
  // ratchet extension: {"ratchet": {"flops": "...", "bytes": "..."}}.
  std::string flops_expr;
  std::string bytes_expr;
  // Definition-wide tolerance defaults (optional; workloads override):
  // "tolerance": {"atol": x, "rtol": y, "max_error_factor": k}. The last is
  // ratchet's (issue 11): how many tolerances a mismatched element may be off
  // (kernels/correctness/compare.h).
  std::optional<double> atol, rtol, max_error_factor;

  const Axis* FindAxis(absl::string_view name) const;
};

struct InputSource {
  enum class Kind { kRandom, kScalar, kCustom, kSafetensors };
  Kind kind = Kind::kRandom;
  double value = 0;            // kScalar (bool/int/float all as double).
  bool value_is_bool = false;
  std::string path;            // kSafetensors, resolved against the problem dir.
  std::string tensor_key;      // kSafetensors.
};

struct Workload {
  int index = 0;         // 0-based position among workloads.
  int line = 0;          // 1-based line in workload.jsonl.
  std::string uuid;
  std::map<std::string, int64_t> axes;       // Every axis, resolved.
  std::vector<InputSource> inputs;           // Definition input order.
  double atol = 1e-2;
  double rtol = 1e-2;
  // Per-workload "tolerance": {"max_error_factor": k}, else the definition's,
  // else the default; callers copy it into Tolerance::max_error_factor.
  double max_error_factor = kDefaultMaxErrorFactor;
  // True when the line or the definition gives atol or rtol; else outputs are
  // checked with their dtype's default (ToleranceFor).
  bool tolerance_given = false;

  // "M=256,N=1024": the var axes as bound on this line, in definition order.
  std::string axes_label;
};

struct Problem {
  std::string dir;
  Definition definition;
  std::vector<Workload> workloads;
};

// Both readers take untrusted text: any malformed input (invalid JSON or
// UTF-8, wrong types) is an InvalidArgument status, never an exception.
absl::StatusOr<Definition> ParseDefinition(absl::string_view json_text,
                                           absl::string_view file_label);
// `problem_dir` resolves relative safetensors paths.
absl::StatusOr<std::vector<Workload>> ParseWorkloads(
    const Definition& def, absl::string_view jsonl_text,
    absl::string_view file_label, absl::string_view problem_dir);
// Reads DIR/definition.json and DIR/workload.jsonl.
absl::StatusOr<Problem> LoadProblem(const std::string& dir);

// The most one tensor of one workload may take (2^34 bytes, 16 GiB): a
// number in a workload line must not ask a worker for petabytes.
inline constexpr int64_t kMaxTensorBytes = int64_t{1} << 34;
// InvalidArgument naming the workload line, the tensor and its largest axis
// when a tensor of a workload is over kMaxTensorBytes.
absl::Status CheckTensorSizes(const Definition& def, const std::vector<Workload>& workloads);
// The whole check of a problem's text, as submit runs it (common/problem_check.h,
// registered when this file is linked): the definition, every workload line,
// and CheckTensorSizes.
absl::Status CheckProblemText(absl::string_view definition_json,
                              absl::string_view workload_jsonl);

// JSON readers check text first (common/utf8.h): nlohmann's parse error
// would quote the bad bytes, and a message with them cannot be written into
// a JSON result; ToValidUtf8 is for messages that quote input.
using ::ratchet::InvalidUtf8Offset;
using ::ratchet::ToValidUtf8;

// The workload's tolerance fields as CompareOutputs takes them (atol, rtol,
// max_error_factor; the match fraction stays the default 99%).
Tolerance ToleranceOf(const Workload& w);
// What an output of `out_dtype` is checked with: the workload's (or the
// definition's) atol/rtol when either gives one, else the dtype's default
// (DefaultToleranceFor: tight enough that fp32 computed in a narrower type
// shows); max_error_factor always from the workload.
Tolerance ToleranceFor(const Workload& w, DType out_dtype);

// Concrete shape of `spec` under the workload's axes (empty for scalars and
// 0-d tensors).
std::vector<int64_t> ResolveShape(const TensorSpec& spec, const Workload& w);
int64_t NumElements(const std::vector<int64_t>& shape);

// Flops and bytes of one call under `w`. Bytes default to every input read
// once plus every output written once; flops default to 0.
absl::StatusOr<double> WorkloadFlops(const Definition& def, const Workload& w);
absl::StatusOr<double> WorkloadBytes(const Definition& def, const Workload& w);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_PROBLEM_PROBLEM_H_
