// The problem readers (kernels/problem/problem.cc): definition.json and the
// lines of workload.jsonl, both untrusted (a campaign carries them to every
// worker's harness). The input is split at the first "\n---\n" into a
// definition and a workload file (without one, both are the whole input);
// workloads are read against that definition when it parses, else against a
// fixed one, so that mutations of either reach deep.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "kernels/problem/problem.h"

namespace {

constexpr char kFixedDefinition[] = R"({
  "name": "fuzz", "op_type": "norm",
  "axes": {"batch": {"type": "var"}, "hidden": {"type": "const", "value": 64},
           "heads": {"type": "const", "value": 4},
           "head_dim": {"type": "expr", "expression": "hidden // heads"}},
  "constraints": ["hidden % heads == 0"],
  "inputs": {"x": {"shape": ["batch", "hidden"], "dtype": "bfloat16"},
             "eps": {"shape": null, "dtype": "float32"}},
  "outputs": {"y": {"shape": ["batch", "heads", "head_dim"], "dtype": "float16"}},
  "reference": "def run(x, eps):\n    return x\n",
  "ratchet": {"flops": "3 * batch * hidden", "bytes": "2 * batch * hidden"}
})";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ratchet::kernels;
  const std::string text(reinterpret_cast<const char*>(data), size);
  const size_t cut = text.find("\n---\n");
  const std::string def_text = cut == std::string::npos ? text : text.substr(0, cut);
  const std::string wl_text = cut == std::string::npos ? text : text.substr(cut + 5);

  static const Definition fixed = *ParseDefinition(kFixedDefinition, "definition.json");
  auto def = ParseDefinition(def_text, "definition.json");
  const Definition& d = def.ok() ? *def : fixed;
  auto workloads = ParseWorkloads(d, wl_text, "workload.jsonl", "/nonexistent");
  if (workloads.ok()) {
    // What the harness computes next from a parsed workload.
    for (const Workload& w : *workloads) {
      (void)WorkloadFlops(d, w);
      (void)WorkloadBytes(d, w);
      for (const TensorSpec& t : d.inputs) (void)NumElements(ResolveShape(t, w));
    }
  }
  // Error messages go into the harness's JSON result: they must be UTF-8.
  for (const absl::Status& s : {def.status(), workloads.status()})
    if (InvalidUtf8Offset(s.message()) != absl::string_view::npos) {
      std::fprintf(stderr, "message is not UTF-8: %s\n", std::string(s.message()).c_str());
      __builtin_trap();
    }
  return 0;
}
