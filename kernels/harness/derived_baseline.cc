#include "kernels/harness/derived_baseline.h"

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/ascii.h"
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
IMPL = _knob("IMPL", "reference")

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


class _LibraryKernel:
    """A kernel of ratchet's library (library/NAME/, the CUDA source written
    for the built-in problem NAME), built here by nvcc with its knobs
    (RATCHET_KNOB_<NAME>_<KNOB>) and called through the kernel ABI
    (library/include/ratchet/kernel_abi.h) with ctypes. library.json says how
    this problem's arguments map onto the kernel's: which input or output,
    leading dimensions collapsed, constants the reference fixes."""

    DTYPES = {"float32": 0, "float16": 1, "bfloat16": 2, "float64": 3, "int8": 4, "int32": 5,
              "int64": 6, "bool": 7, "uint8": 8, "float8_e4m3fn": 9, "float8_e5m2": 10,
              "int16": 11}

    def __init__(self, spec):
        import ctypes
        import shutil
        import subprocess

        class Tensor(ctypes.Structure):
            _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int),
                        ("ndim", ctypes.c_int32), ("shape", ctypes.POINTER(ctypes.c_int64)),
                        ("strides", ctypes.POINTER(ctypes.c_int64))]

        self.ctypes, self.Tensor, self.spec = ctypes, Tensor, spec
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "library")
        nvcc = shutil.which("nvcc") or os.path.join(
            os.environ.get("CUDA_HOME") or "/usr/local/cuda", "bin", "nvcc")
        major, minor = torch.cuda.get_device_capability()
        prefix = spec["knob_prefix"]
        defines = ["-D%s=%s" % (k, os.environ["RATCHET_KNOB_" + prefix + k])
                   for k in spec["knobs"] if "RATCHET_KNOB_" + prefix + k in os.environ]
        out = os.path.join(os.environ.get("HOME") or ".", "ratchet_library_%s.so" % spec["kernel"])
        cmd = ([nvcc, "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
                "-arch=sm_%d%d" % (major, minor), "-I" + os.path.join(root, "include")]
               + defines + [os.path.join(root, spec["kernel"], f) for f in spec["sources"]]
               + ["-o", out] + ["-l" + lib for lib in spec["libraries"]])
        built = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               universal_newlines=True)
        if built.returncode != 0:
            raise RuntimeError("library kernel %s did not build: %s\n%s"
                               % (spec["kernel"], " ".join(cmd), built.stdout[-3000:]))
        self.run = ctypes.CDLL(out).ratchet_run_cuda
        self.run.restype = ctypes.c_int
        self.device_scalars = {}

    def _device_scalar(self, key, value, dtype):
        t = self.device_scalars.get(key)
        if t is None:
            t = self.device_scalars[key] = torch.tensor(value, dtype=getattr(torch, dtype),
                                                        device="cuda")
        return t

    def _fill(self, slot, t, dtype, keep):
        shape = (self.ctypes.c_int64 * max(1, t.dim()))(*t.shape)
        strides = (self.ctypes.c_int64 * max(1, t.dim()))(*t.stride())
        keep += [shape, strides, t]
        slot.data, slot.dtype, slot.ndim = t.data_ptr(), self.DTYPES[dtype], t.dim()
        slot.shape, slot.strides = shape, strides

    @staticmethod
    def _collapsed(t, n):
        return t if n <= 1 else t.view(-1, *t.shape[n:])

    def __call__(self, inputs, outputs):
        keep = []
        ins = (self.Tensor * len(self.spec["inputs"]))()
        for k, a in enumerate(self.spec["inputs"]):
            if a["problem_index"] < 0:
                t = self._device_scalar(("c", k), a["constant"], a["dtype"])
            elif a["scalar"]:
                v = inputs[a["problem_index"]]
                v = v.item() if isinstance(v, torch.Tensor) else v
                t = self._device_scalar(("s", k, v), v, a["dtype"])
            else:
                t = self._collapsed(inputs[a["problem_index"]], a["collapse"])
            self._fill(ins[k], t, a["dtype"], keep)
        outs = (self.Tensor * len(self.spec["outputs"]))()
        for k, a in enumerate(self.spec["outputs"]):
            self._fill(outs[k], self._collapsed(outputs[a["problem_index"]], a["collapse"]),
                       a["dtype"], keep)
        rc = self.run(ins, len(self.spec["inputs"]), outs, len(self.spec["outputs"]),
                      self.ctypes.c_void_p(torch.cuda.current_stream().cuda_stream))
        if rc != 0:
            raise RuntimeError("library kernel %s returned %d" % (self.spec["kernel"], rc))


_library = None
if IMPL != "reference":
    import json
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "library.json")) as f:
        _library = _LibraryKernel(json.load(f)[IMPL])


def run(*args):
    inputs, outputs = args[:len(args) - N_OUTPUTS], args[len(args) - N_OUTPUTS:]
    if _library is not None:
        _library(inputs, outputs)
        return
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

absl::StatusOr<std::map<std::string, std::string>> DeriveBaseline(
    const Definition& definition, bool cuda, const std::vector<LibraryKernelFiles>& library) {
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
  // The library's kernels that fit, behind IMPL, with their own knobs.
  std::map<std::string, std::string> files;
  std::vector<std::string> sources = {"kernel.py", "reference.py"};
  if (cuda) {
    const std::vector<LibraryMatch> matches = MatchKernelLibrary(definition, library);
    if (!matches.empty()) {
      Json impl = {"reference"};
      Json spec = Json::object();
      for (const LibraryMatch& m : matches) {
        impl.push_back(m.kernel);
        const std::string prefix = absl::AsciiStrToUpper(m.kernel) + "_";
        Json entry = {{"kernel", m.kernel}, {"knob_prefix", prefix}, {"sources", Json::array()},
                      {"libraries", m.libraries}, {"knobs", Json::array()}};
        for (const std::string& f : m.sources) entry["sources"].push_back(f);
        for (const auto& [name, declaration] : m.knobs_json) {
          entry["knobs"].push_back(name);
          knobs[prefix + name] = Json::parse(declaration);
        }
        for (const char* side : {"inputs", "outputs"}) {
          Json args = Json::array();
          for (const LibraryMatch::Argument& a :
               std::string(side) == "inputs" ? m.inputs : m.outputs)
            args.push_back({{"problem_index", a.problem_index}, {"collapse", a.collapse},
                            {"constant", a.constant}, {"dtype", a.dtype}, {"scalar", a.scalar}});
          entry[side] = args;
        }
        spec[m.kernel] = entry;
        const LibraryKernelFiles* lib = nullptr;
        for (const LibraryKernelFiles& l : library)
          if (l.name == m.kernel) lib = &l;
        for (const std::vector<std::string>* list : {&m.sources, &m.headers})
          for (const std::string& f : *list) {
            const std::string path = absl::StrCat("library/", m.kernel, "/", f);
            files[path] = lib->files.at(f);
            sources.push_back(path);
          }
      }
      knobs["IMPL"] = {{"choices", impl}, {"default", "reference"}};
      files["library.json"] = spec.dump(2) + "\n";
      files["library/include/ratchet/kernel_abi.h"] = EmbeddedKernelAbi();
      sources.push_back("library.json");
      sources.push_back("library/include/ratchet/kernel_abi.h");
    }
  }
  Json solution = {
      {"name", definition.name + "-derived"},
      {"definition", definition.name},
      {"description",
       "Derived from the problem's reference: the reference itself behind knobs "
       "(torch.compile and its mode, CUDA graphs, TF32, inference mode, threads), and "
       "the library kernels that fit it (IMPL) with theirs."},
      {"language", "pytorch"},
      {"sources", sources},
      {"entry_point", "kernel.py::run"},
      {"knobs", knobs}};
  files["solution.json"] = solution.dump(2) + "\n";
  files["kernel.py"] = absl::StrReplaceAll(
      kKernel, {{"@N_OUTPUTS@", std::to_string(definition.outputs.size())}});
  files["reference.py"] = definition.reference;
  if (!absl::EndsWith(files["reference.py"], "\n")) files["reference.py"] += "\n";
  return files;
}

}  // namespace ratchet::kernels
