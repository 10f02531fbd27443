#include "kernels/harness/derived_baseline.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace ratchet::kernels {
namespace {

// kernel.py: the reference behind knobs. N_OUTPUTS is filled in.
constexpr char kKernel[] = R"PY("""Derived by ratchet from the problem's own reference (reference.py,
verbatim): the reference itself, called as a destination-passing solution,
behind knobs the search can turn (RATCHET_KNOB_*, declared in
solution.json). A knob this torch or device cannot honour changes nothing."""
import os

import torch

import reference

N_OUTPUTS = @N_OUTPUTS@


def _knob(name, default):
    return os.environ.get("RATCHET_KNOB_" + name, default)


COMPILE = _knob("COMPILE", "0") == "1"
COMPILE_MODE = _knob("COMPILE_MODE", "default")
CUDA_GRAPH = _knob("CUDA_GRAPH", "0") == "1"
TF32 = _knob("TF32", "0") == "1"
INFERENCE_MODE = _knob("INFERENCE_MODE", "0") == "1"
THREADS = int(_knob("THREADS", "0"))

if THREADS > 0:
    torch.set_num_threads(THREADS)
if TF32 and torch.cuda.is_available():
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True

_function = reference.run
if COMPILE and hasattr(torch, "compile"):
    _function = torch.compile(reference.run, dynamic=False,
                              mode=None if COMPILE_MODE == "default" else COMPILE_MODE)


def _call(inputs):
    if INFERENCE_MODE:
        with torch.inference_mode():
            return _function(*inputs)
    return _function(*inputs)


_graphs = {}  # by the inputs' shapes, strides, dtypes and scalar values


def _replayed(inputs):
    """The call captured once as a CUDA graph over copies of the inputs, then
    replayed: the inputs are copied in, the graph's outputs returned."""
    key = tuple((tuple(t.shape), t.stride(), t.dtype) if isinstance(t, torch.Tensor) else ("s", t)
                for t in inputs)
    entry = _graphs.get(key)
    if entry is None:
        static = [t.clone() if isinstance(t, torch.Tensor) else t for t in inputs]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(2):  # warm-up (and compilation) outside the capture
                _call(static)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = _call(static)
        entry = _graphs[key] = (graph, static, out)
    graph, static, out = entry
    for dst, src in zip(static, inputs):
        if isinstance(dst, torch.Tensor):
            dst.copy_(src)
    graph.replay()
    return out


def run(*args):
    inputs, outputs = args[:len(args) - N_OUTPUTS], args[len(args) - N_OUTPUTS:]
    on_gpu = any(isinstance(t, torch.Tensor) and t.is_cuda for t in inputs)
    result = _replayed(inputs) if CUDA_GRAPH and on_gpu else _call(inputs)
    if not isinstance(result, (tuple, list)):
        result = (result,)
    if len(result) != len(outputs):
        raise ValueError("the reference returned %d values for %d outputs"
                         % (len(result), len(outputs)))
    for out, value in zip(outputs, result):
        out.copy_(value)
)PY";

}  // namespace

absl::StatusOr<std::map<std::string, std::string>> DeriveBaseline(const Definition& definition,
                                                                   bool cuda) {
  if (definition.reference.empty())
    return absl::InvalidArgumentError(
        absl::StrCat(definition.name, ": no reference to derive a baseline from"));
  if (!absl::StrContains(definition.reference, "def run("))
    return absl::InvalidArgumentError(absl::StrCat(
        definition.name, ": the reference defines no run(...) to derive a baseline from"));
  if (definition.outputs.empty())
    return absl::InvalidArgumentError(absl::StrCat(definition.name, ": no outputs"));
  using Json = nlohmann::ordered_json;
  Json knobs = Json::object();
  knobs["COMPILE"] = {{"choices", {0, 1}}, {"default", 0}};
  if (cuda) {
    knobs["COMPILE_MODE"] = {
        {"choices", {"default", "reduce-overhead", "max-autotune-no-cudagraphs"}},
        {"default", "default"}};
    knobs["CUDA_GRAPH"] = {{"choices", {0, 1}}, {"default", 0}};
    knobs["TF32"] = {{"choices", {0, 1}}, {"default", 0}};
  } else {
    knobs["THREADS"] = {{"choices", {0, 1, 2, 4}}, {"default", 0}};
  }
  knobs["INFERENCE_MODE"] = {{"choices", {0, 1}}, {"default", 0}};
  Json solution = {
      {"name", definition.name + "-derived"},
      {"definition", definition.name},
      {"description",
       "Derived from the problem's reference: the reference itself behind knobs "
       "(torch.compile and its mode, CUDA graphs, TF32, inference mode, threads)."},
      {"language", "pytorch"},
      {"sources", {"kernel.py", "reference.py"}},
      {"entry_point", "kernel.py::run"},
      {"knobs", knobs}};
  std::map<std::string, std::string> files;
  files["solution.json"] = solution.dump(2) + "\n";
  files["kernel.py"] = absl::StrReplaceAll(
      kKernel, {{"@N_OUTPUTS@", std::to_string(definition.outputs.size())}});
  files["reference.py"] = definition.reference;
  if (!absl::EndsWith(files["reference.py"], "\n")) files["reference.py"] += "\n";
  return files;
}

}  // namespace ratchet::kernels
