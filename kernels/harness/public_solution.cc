#include "kernels/harness/public_solution.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/problem/dtype.h"

namespace ratchet::kernels {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// SOL-ExecBench's SupportedLanguages, split as its validator splits them.
constexpr const char* kPythonLanguages[] = {"pytorch", "triton", "cute_dsl", "cutile",
                                            "cudnn_frontend"};
constexpr const char* kCppLanguages[] = {"cuda_cpp", "cutlass", "cudnn", "cublas"};
constexpr const char* kCppSuffixes[] = {".cu", ".cpp", ".cc", ".cxx", ".c", ".h", ".hpp", ".cuh"};
constexpr const char* kHardware[] = {"B200", "LOCAL"};

template <size_t N>
bool OneOf(const std::string& s, const char* const (&set)[N]) {
  return std::find(std::begin(set), std::end(set), s) != std::end(set);
}

std::string KnownLanguages() {
  std::vector<std::string> all(std::begin(kPythonLanguages), std::end(kPythonLanguages));
  all.insert(all.end(), std::begin(kCppLanguages), std::end(kCppLanguages));
  return absl::StrJoin(all, ", ");
}

absl::Status FieldError(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("field '", field, "': ", what));
}

// A message may quote input; it must stay valid UTF-8 (the JSON it ends up in).
std::string Quote(const std::string& s) { return absl::StrCat("\"", ToValidUtf8(s), "\""); }

bool IsIdentifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

// What pydantic's Path checks see: absolute, or a ".." component.
absl::Status CheckSourcePath(const std::string& field, const std::string& path) {
  if (path.empty()) return FieldError(field, "must be a non-empty string");
  if (path[0] == '/') return FieldError(field, absl::StrCat("absolute path not allowed: ", Quote(path)));
  for (const auto& part : fs::path(path))
    if (part == "..")
      return FieldError(field, absl::StrCat("parent directory traversal (\"..\") not allowed: ",
                                            Quote(path)));
  if (path.find('\0') != std::string::npos) return FieldError(field, "must not hold a NUL byte");
  return absl::OkStatus();
}

absl::StatusOr<std::string> GetString(const Json& obj, const std::string& key,
                                      const std::string& field, bool required) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (required) return FieldError(field, "required");
    return std::string();
  }
  if (!it->is_string()) return FieldError(field, absl::StrCat("expected a string, got ", it->type_name()));
  std::string s = it->get<std::string>();
  if (required && s.empty()) return FieldError(field, "must be a non-empty string");
  return s;
}

absl::StatusOr<std::vector<std::string>> GetStringList(const Json& v, const std::string& field,
                                                       bool non_empty_items) {
  if (!v.is_array()) return FieldError(field, absl::StrCat("expected a list of strings, got ", v.type_name()));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string f = absl::StrCat(field, "[", i, "]");
    if (!v[i].is_string()) return FieldError(f, absl::StrCat("expected a string, got ", v[i].type_name()));
    out.push_back(v[i].get<std::string>());
    if (non_empty_items && out.back().empty()) return FieldError(f, "must be a non-empty string");
  }
  return out;
}

absl::Status ParseSpec(const Json& spec, PublicSolution& s) {
  if (!spec.is_object()) return FieldError("spec", absl::StrCat("expected an object, got ", spec.type_name()));
  auto langs = spec.find("languages");
  if (langs == spec.end()) return FieldError("spec.languages", "required");
  auto languages = GetStringList(*langs, "spec.languages", false);
  if (!languages.ok()) return languages.status();
  if (languages->empty()) return FieldError("spec.languages", "at least one language is required");
  std::vector<std::string> python, cpp;
  for (size_t i = 0; i < languages->size(); ++i) {
    const std::string& l = (*languages)[i];
    if (OneOf(l, kPythonLanguages)) {
      python.push_back(l);
    } else if (OneOf(l, kCppLanguages)) {
      cpp.push_back(l);
    } else {
      return FieldError(absl::StrCat("spec.languages[", i, "]"),
                        absl::StrCat("unknown language ", Quote(l), " (", KnownLanguages(), ")"));
    }
  }
  if (!python.empty() && !cpp.empty())
    return FieldError("spec.languages",
                      absl::StrCat("C++ and Python languages cannot be mixed, got ",
                                   absl::StrJoin(cpp, ", "), " and ", absl::StrJoin(python, ", ")));
  s.languages = *languages;

  auto hw = spec.find("target_hardware");
  if (hw == spec.end()) return FieldError("spec.target_hardware", "required");
  auto hardware = GetStringList(*hw, "spec.target_hardware", false);
  if (!hardware.ok()) return hardware.status();
  if (hardware->empty()) return FieldError("spec.target_hardware", "at least one target is required");
  for (size_t i = 0; i < hardware->size(); ++i)
    if (!OneOf((*hardware)[i], kHardware))
      return FieldError(absl::StrCat("spec.target_hardware[", i, "]"),
                        absl::StrCat("unknown hardware ", Quote((*hardware)[i]), " (B200, LOCAL)"));
  s.target_hardware = *hardware;

  auto entry = GetString(spec, "entry_point", "spec.entry_point", true);
  if (!entry.ok()) return entry.status();
  const size_t sep = entry->find("::");
  if (sep == std::string::npos || entry->find("::", sep + 2) != std::string::npos)
    return FieldError("spec.entry_point",
                      absl::StrCat("expected \"file::function\" with exactly one \"::\", got ",
                                   Quote(*entry)));
  const std::string file = entry->substr(0, sep), function = entry->substr(sep + 2);
  if (file.empty() || function.empty())
    return FieldError("spec.entry_point",
                      absl::StrCat("both the file and the function of \"file::function\" must be "
                                   "non-empty, got ", Quote(*entry)));
  const std::string suffix = fs::path(file).extension().string();
  if (!cpp.empty() && !OneOf(suffix, kCppSuffixes))
    return FieldError("spec.entry_point",
                      absl::StrCat("C++ languages need a C++/CUDA entry file, got ", Quote(file)));
  if (!python.empty() && suffix != ".py")
    return FieldError("spec.entry_point",
                      absl::StrCat("Python languages need a .py entry file, got ", Quote(file)));
  s.entry_point = *entry;

  if (auto it = spec.find("destination_passing_style"); it != spec.end()) {
    if (!it->is_boolean())
      return FieldError("spec.destination_passing_style",
                        absl::StrCat("expected true or false, got ", it->type_name()));
    s.destination_passing_style = it->get<bool>();
  }
  if (auto it = spec.find("binding"); it != spec.end() && !it->is_null()) {
    if (!it->is_string() || it->get<std::string>() != "torch")
      return FieldError("spec.binding", "the only binding is \"torch\" (or null)");
    s.binding = "torch";
  }
  // The benchmark checks only that dependencies are non-empty strings; the
  // names in its docs are resolved when it builds.
  if (auto it = spec.find("dependencies"); it != spec.end()) {
    auto deps = GetStringList(*it, "spec.dependencies", true);
    if (!deps.ok()) return deps.status();
    s.dependencies = *deps;
  }
  if (auto it = spec.find("compile_options"); it != spec.end() && !it->is_null()) {
    if (!it->is_object())
      return FieldError("spec.compile_options", absl::StrCat("expected an object, got ", it->type_name()));
    PublicCompileOptions co;
    for (auto [key, dest] : {std::pair{"cflags", &co.cflags}, std::pair{"cuda_cflags", &co.cuda_cflags},
                             std::pair{"ld_flags", &co.ld_flags}}) {
      auto f = it->find(key);
      if (f == it->end()) continue;
      auto list = GetStringList(*f, absl::StrCat("spec.compile_options.", key), false);
      if (!list.ok()) return list.status();
      *dest = *list;
    }
    s.compile_options = co;
  }
  return absl::OkStatus();
}

absl::StatusOr<PublicSolution> ParseUnguarded(const std::string& text) {
  // Checked first: nlohmann's parse error would quote the bad bytes.
  if (const size_t bad = InvalidUtf8Offset(text); bad != absl::string_view::npos)
    return absl::InvalidArgumentError(absl::StrCat("not valid UTF-8 (byte ", bad, ")"));
  // nlohmann keeps the last of duplicate keys; the benchmark's json.loads
  // does too, so a duplicate would mean different things to different
  // readers. The callback sees every key of every object.
  std::vector<std::set<std::string>> open;
  std::string duplicate;
  auto cb = [&](int, Json::parse_event_t ev, Json& parsed) {
    if (ev == Json::parse_event_t::object_start) open.emplace_back();
    if (ev == Json::parse_event_t::object_end && !open.empty()) open.pop_back();
    if (ev == Json::parse_event_t::key && !open.empty() && parsed.is_string() &&
        !open.back().insert(parsed.get<std::string>()).second && duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  Json j;
  try {
    j = Json::parse(text, cb);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", ToValidUtf8(e.what())));
  }
  if (!duplicate.empty())
    return absl::InvalidArgumentError(absl::StrCat("duplicate key ", Quote(duplicate)));
  if (!j.is_object()) return FieldError("", "top level must be an object");

  PublicSolution s;
  for (auto [key, dest] : {std::pair{"name", &s.name}, std::pair{"definition", &s.definition},
                           std::pair{"author", &s.author}}) {
    auto v = GetString(j, key, key, true);
    if (!v.ok()) return v.status();
    *dest = *v;
  }
  if (auto it = j.find("description"); it != j.end() && !it->is_null()) {
    if (!it->is_string()) return FieldError("description", absl::StrCat("expected a string, got ", it->type_name()));
    s.description = it->get<std::string>();
  }
  auto spec = j.find("spec");
  if (spec == j.end()) return FieldError("spec", "required");
  if (auto st = ParseSpec(*spec, s); !st.ok()) return st;

  auto src = j.find("sources");
  if (src == j.end()) return FieldError("sources", "required");
  if (!src->is_array() || src->empty())
    return FieldError("sources", "expected a non-empty list of {path, content}");
  std::set<std::string> seen;
  for (size_t i = 0; i < src->size(); ++i) {
    const std::string f = absl::StrCat("sources[", i, "]");
    const Json& e = (*src)[i];
    if (!e.is_object()) return FieldError(f, absl::StrCat("expected {path, content}, got ", e.type_name()));
    PublicSourceFile file;
    auto path = GetString(e, "path", f + ".path", true);
    if (!path.ok()) return path.status();
    auto content = GetString(e, "content", f + ".content", true);
    if (!content.ok()) return content.status();
    if (auto st = CheckSourcePath(f + ".path", *path); !st.ok()) return st;
    if (!seen.insert(*path).second) return FieldError(f + ".path", absl::StrCat("duplicate source path ", Quote(*path)));
    s.sources.push_back({*path, *content});
  }
  const std::string entry_file = s.entry_point.substr(0, s.entry_point.find("::"));
  if (seen.count(entry_file) == 0)
    return FieldError("spec.entry_point",
                      absl::StrCat("entry file ", Quote(entry_file), " is not among the sources"));
  s.source_json = text;
  return s;
}

// --- Export ----------------------------------------------------------------

// C++ words a definition's input name may not become in the binding.
bool IsReservedWord(const std::string& s) {
  static const std::set<std::string> kWords = {
      "alignas", "alignof", "and", "asm", "auto", "bool", "break", "case", "catch", "char",
      "class", "const", "constexpr", "const_cast", "continue", "decltype", "default", "delete",
      "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false",
      "float", "for", "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace",
      "new", "noexcept", "not", "nullptr", "operator", "or", "private", "protected", "public",
      "register", "reinterpret_cast", "return", "short", "signed", "sizeof", "static",
      "static_assert", "static_cast", "struct", "switch", "template", "this", "throw", "true",
      "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual", "void",
      "volatile", "while", "xor", "at", "torch", "c10", "std", "run", "m"};
  return kWords.count(s) > 0 || absl::StartsWith(s, "ratchet") || absl::StartsWith(s, "__");
}

const char* TorchScalarType(DType d) {
  switch (d) {
    case DType::kFloat32: return "at::kFloat";
    case DType::kFloat16: return "at::kHalf";
    case DType::kBFloat16: return "at::kBFloat16";
    case DType::kFloat64: return "at::kDouble";
    case DType::kInt8: return "at::kChar";
    case DType::kInt32: return "at::kInt";
    case DType::kInt64: return "at::kLong";
    case DType::kBool: return "at::kBool";
    case DType::kUInt8: return "at::kByte";
    case DType::kFloat8E4M3: return "at::kFloat8_e4m3fn";
    case DType::kFloat8E5M2: return "at::kFloat8_e5m2";
    case DType::kInt16: return "at::kShort";
  }
  return "at::kFloat";
}

// How pybind11 hands a Python scalar of this dtype to the torch binding.
const char* ScalarCppType(DType d) {
  if (d == DType::kBool) return "bool";
  return IsFloating(d) ? "double" : "int64_t";
}

absl::StatusOr<std::string> GenerateBinding(const Definition& def) {
  if (def.outputs.empty()) return absl::InvalidArgumentError("the definition has no outputs");
  std::vector<std::string> names;
  std::set<std::string> used;
  auto param = [&](const std::string& name, size_t i) {
    std::string p = IsIdentifier(name) && !IsReservedWord(name) ? name : absl::StrCat("arg", i);
    while (!used.insert(p).second) p += "_";
    return p;
  };
  const size_t n_in = def.inputs.size(), n_out = def.outputs.size();
  for (size_t i = 0; i < n_in; ++i) names.push_back(param(def.inputs[i].name, i));
  for (size_t i = 0; i < n_out; ++i) names.push_back(param(def.outputs[i].name, n_in + i));

  std::vector<std::string> params, scalars, inputs, outputs;
  const std::string device = absl::StrCat(names[n_in], ".device()");
  for (size_t i = 0; i < n_in; ++i) {
    const TensorSpec& t = def.inputs[i];
    const std::string& n = names[i];
    if (t.scalar) {
      params.push_back(absl::StrCat(ScalarCppType(t.dtype), " ", n));
      // ratchet passes scalars as 0-d device tensors (kernel_abi.h).
      scalars.push_back(absl::StrCat("  const at::Tensor ", n, "_t = at::scalar_tensor(", n,
                                     ", at::TensorOptions().dtype(", TorchScalarType(t.dtype),
                                     ").device(", device, "));\n"));
      inputs.push_back(absl::StrCat("View(", n, "_t, \"", n, "\")"));
    } else {
      params.push_back(absl::StrCat("torch::Tensor ", n));
      inputs.push_back(absl::StrCat("View(", n, ", \"", n, "\")"));
    }
  }
  for (size_t i = 0; i < n_out; ++i) {
    const std::string& n = names[n_in + i];
    params.push_back(absl::StrCat("torch::Tensor ", n));
    outputs.push_back(absl::StrCat("View(", n, ", \"", n, "\")"));
  }
  const std::string inputs_decl =
      n_in == 0 ? "  const ratchet_tensor* ratchet_inputs = nullptr;\n"
                : absl::StrCat("  const ratchet_tensor ratchet_inputs[] = {", absl::StrJoin(inputs, ", "),
                               "};\n");
  return absl::StrCat(
      kRatchetBindingMarker, " generated by `ratchet export --format sol-execbench` for ",
      ToValidUtf8(def.name), ".\n"
      "// run() takes the definition's inputs, then its outputs (destination passing),\n"
      "// and calls the candidate's ratchet_run_cuda on the current stream.\n"
      "#include <ATen/cuda/CUDAContext.h>\n"
      "#include <c10/cuda/CUDAGuard.h>\n"
      "#include <torch/extension.h>\n"
      "\n"
      "#include \"ratchet/kernel_abi.h\"\n"
      "\n"
      "namespace {\n"
      "\n"
      "ratchet_dtype RatchetDType(const at::Tensor& t, const char* name) {\n"
      "  switch (t.scalar_type()) {\n"
      "    case at::kFloat: return RATCHET_FLOAT32;\n"
      "    case at::kHalf: return RATCHET_FLOAT16;\n"
      "    case at::kBFloat16: return RATCHET_BFLOAT16;\n"
      "    case at::kDouble: return RATCHET_FLOAT64;\n"
      "    case at::kChar: return RATCHET_INT8;\n"
      "    case at::kInt: return RATCHET_INT32;\n"
      "    case at::kLong: return RATCHET_INT64;\n"
      "    case at::kBool: return RATCHET_BOOL;\n"
      "    case at::kByte: return RATCHET_UINT8;\n"
      "    case at::kFloat8_e4m3fn: return RATCHET_FLOAT8_E4M3;\n"
      "    case at::kFloat8_e5m2: return RATCHET_FLOAT8_E5M2;\n"
      "    case at::kShort: return RATCHET_INT16;\n"
      "    default: TORCH_CHECK(false, name, \": dtype \", t.scalar_type(), \" has no ratchet dtype\");\n"
      "  }\n"
      "}\n"
      "\n"
      "// Points into `t`'s sizes and strides: `t` must outlive the call.\n"
      "ratchet_tensor View(const at::Tensor& t, const char* name) {\n"
      "  TORCH_CHECK(t.is_cuda(), name, \": expected a CUDA tensor\");\n"
      "  // ratchet candidates may assume row-major contiguous tensors.\n"
      "  TORCH_CHECK(t.is_contiguous(), name, \": expected a contiguous tensor\");\n"
      "  return ratchet_tensor{t.data_ptr(), RatchetDType(t, name), static_cast<int32_t>(t.dim()),\n"
      "                        t.sizes().data(), t.strides().data()};\n"
      "}\n"
      "\n"
      "}  // namespace\n"
      "\n"
      "void run(", absl::StrJoin(params, ", "), ") {\n",
      "  const at::cuda::CUDAGuard guard(", device, ");\n",
      absl::StrJoin(scalars, ""), inputs_decl,
      "  ratchet_tensor ratchet_outputs[] = {", absl::StrJoin(outputs, ", "), "};\n",
      "  const int rc = ratchet_run_cuda(ratchet_inputs, ", n_in, ", ratchet_outputs, ", n_out,
      ",\n                                  at::cuda::getCurrentCUDAStream().stream());\n"
      "  TORCH_CHECK(rc == 0, \"ratchet_run_cuda returned \", rc);\n"
      "}\n"
      "\n"
      "PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {\n"
      "  m.def(\"run\", &run, \"ratchet candidate for ", ToValidUtf8(def.name), "\");\n"
      "}\n");
}

// Knob values go into compiler flags (and a ninja file on the benchmark's
// side): plain tokens only.
bool IsPlainValue(const std::string& v) {
  if (v.empty()) return false;
  for (char c : v)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' || c == '+'))
      return false;
  return true;
}

bool IsCompiled(const std::string& path) {
  for (const char* s : {".cu", ".cpp", ".cc", ".cxx", ".c"})
    if (absl::EndsWith(path, s)) return true;
  return false;
}

// --- Import ----------------------------------------------------------------

absl::Status WriteFileUnder(const fs::path& root, const std::string& rel, const std::string& text) {
  if (auto st = CheckSourcePath("path", rel); !st.ok())
    return absl::InvalidArgumentError(absl::StrCat("source ", Quote(rel), " would leave ", root.string()));
  const fs::path target = (root / rel).lexically_normal();
  const fs::path back = target.lexically_relative(root.lexically_normal());
  if (back.empty() || *back.begin() == ".." || back == ".")
    return absl::InvalidArgumentError(absl::StrCat("source ", Quote(rel), " would leave ", root.string()));
  std::error_code ec;
  fs::create_directories(target.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", target.parent_path().string(), ": ", ec.message()));
  // A symlink planted in out_dir must not redirect the write.
  if (fs::is_symlink(fs::symlink_status(target, ec)))
    return absl::InvalidArgumentError(absl::StrCat(target.string(), " is a symbolic link"));
  std::ofstream f(target, std::ios::binary | std::ios::trunc);
  f << text;
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", target.string()));
  return absl::OkStatus();
}

// A -D value as solution.json writes it: a number where it reads as one.
Json KnobDefault(const std::string& v) {
  Json n = Json::parse(v, nullptr, false);
  if (!n.is_discarded() && n.is_number()) return n;
  return v;
}

}  // namespace

absl::StatusOr<PublicSolution> ParsePublicSolution(const std::string& json_text) {
  // Types are checked before they are read; anything missed is still an
  // error, not an abort.
  try {
    return ParseUnguarded(json_text);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("malformed: ", ToValidUtf8(e.what())));
  }
}

bool LooksLikePublicSolution(const std::string& json_text) {
  if (InvalidUtf8Offset(json_text) != absl::string_view::npos) return false;
  const Json j = Json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("spec") && j["spec"].is_object() && !j.contains("language");
}

std::string PublicSolutionToJson(const PublicSolution& s) {
  Json j;
  j["name"] = s.name;
  j["definition"] = s.definition;
  j["author"] = s.author;
  if (s.description) j["description"] = *s.description;
  Json spec;
  spec["languages"] = s.languages;
  spec["target_hardware"] = s.target_hardware;
  spec["entry_point"] = s.entry_point;
  spec["destination_passing_style"] = s.destination_passing_style;
  if (s.binding) spec["binding"] = *s.binding;
  spec["dependencies"] = s.dependencies;
  if (s.compile_options) {
    spec["compile_options"] = {{"cflags", s.compile_options->cflags},
                               {"cuda_cflags", s.compile_options->cuda_cflags},
                               {"ld_flags", s.compile_options->ld_flags}};
  }
  j["spec"] = spec;
  Json sources = Json::array();
  for (const auto& f : s.sources) sources.push_back({{"path", f.path}, {"content", f.content}});
  j["sources"] = sources;
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::StatusOr<PublicSolution> ExportCudaCandidate(
    const Definition& definition, const std::map<std::string, std::string>& files,
    const std::map<std::string, std::string>& knobs, const CudaCandidateExport& options) {
  auto sj = files.find("solution.json");
  if (sj == files.end()) return absl::InvalidArgumentError("the candidate has no solution.json");
  Json doc = Json::parse(sj->second, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return absl::InvalidArgumentError("the candidate's solution.json is not a JSON object");
  const std::string language =
      doc.contains("language") && doc["language"].is_string() ? doc["language"].get<std::string>() : "cpp";
  if (language != "cuda")
    return absl::FailedPreconditionError(absl::StrCat(
        "the candidate's language is ", Quote(language),
        ": SOL-ExecBench evaluates CUDA solutions, so only \"cuda\" candidates can be exported"));
  if (options.abi_header.empty()) return absl::InvalidArgumentError("kernel_abi.h's text is required");

  PublicSolution s;
  s.name = options.name.empty() ? absl::StrCat(definition.name, "_ratchet") : options.name;
  s.definition = definition.name;
  s.author = options.author.empty() ? "ratchet" : options.author;
  if (!options.description.empty()) s.description = options.description;
  s.languages = {"cuda_cpp"};
  s.target_hardware = {"B200", "LOCAL"};
  s.entry_point = absl::StrCat(kRatchetBindingFile, "::run");
  s.destination_passing_style = true;
  s.binding = "torch";
  PublicCompileOptions co;

  auto src = doc.find("sources");
  if (src == doc.end() || !src->is_array() || src->empty())
    return absl::InvalidArgumentError("the candidate's solution.json lists no sources");
  for (const auto& e : *src) {
    if (!e.is_string()) return absl::InvalidArgumentError("solution.json: sources must be file names");
    const std::string path = e.get<std::string>();
    if (auto st = CheckSourcePath("sources", path); !st.ok()) return st;
    if (path == kRatchetBindingFile || path == kRatchetAbiHeaderPath)
      return absl::InvalidArgumentError(absl::StrCat("the candidate's ", Quote(path), " would be overwritten by the export"));
    // The benchmark compiles only the top folder's sources.
    if (IsCompiled(path) && path.find('/') != std::string::npos)
      return absl::InvalidArgumentError(absl::StrCat(
          "source ", Quote(path), ": SOL-ExecBench compiles only sources in the top folder"));
    auto f = files.find(path);
    if (f == files.end()) return absl::InvalidArgumentError(absl::StrCat("source ", Quote(path), " is missing"));
    if (f->second.empty()) return absl::InvalidArgumentError(absl::StrCat("source ", Quote(path), " is empty"));
    s.sources.push_back({path, f->second});
  }
  auto binding = GenerateBinding(definition);
  if (!binding.ok()) return binding.status();
  s.sources.push_back({kRatchetBindingFile, *binding});
  s.sources.push_back({kRatchetAbiHeaderPath, options.abi_header});

  // Every declared knob, with the candidate's value where it has one.
  std::map<std::string, std::string> chosen = knobs;
  std::vector<std::string> order;
  if (auto k = doc.find("knobs"); k != doc.end() && k->is_object()) {
    for (auto it = k->begin(); it != k->end(); ++it) {
      order.push_back(it.key());
      if (chosen.count(it.key())) continue;
      if (!it->is_object() || !it->contains("default"))
        return absl::InvalidArgumentError(absl::StrCat("knob ", Quote(it.key()), " has no default"));
      const Json& d = (*it)["default"];
      chosen[it.key()] = d.is_string() ? d.get<std::string>() : d.dump();
    }
  }
  for (const auto& [name, value] : knobs)
    if (std::find(order.begin(), order.end(), name) == order.end())
      return absl::InvalidArgumentError(absl::StrCat("knob ", Quote(name), " is not declared in solution.json"));
  for (const auto& name : order) {
    const std::string& value = chosen[name];
    if (!IsIdentifier(name) || !IsPlainValue(value))
      return absl::InvalidArgumentError(
          absl::StrCat("knob ", Quote(name), "=", Quote(value), " cannot be a compiler flag"));
    co.cuda_cflags.push_back(absl::StrCat("-D", name, "=", value));
  }
  if (auto libs = doc.find("libraries"); libs != doc.end() && libs->is_array()) {
    for (const auto& l : *libs) {
      if (!l.is_string() || (l != "cublas" && l != "cublasLt"))
        return absl::InvalidArgumentError("solution.json: libraries must be cublas or cublasLt");
      co.ld_flags.push_back(absl::StrCat("-l", l.get<std::string>()));
    }
    if (!libs->empty()) s.dependencies.push_back("cublas");
  }
  s.compile_options = co;
  return s;
}

absl::Status ImportPublicSolution(const PublicSolution& s, const std::string& out_dir) {
  const fs::path root(out_dir);
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", out_dir, ": ", ec.message()));
  for (const auto& f : s.sources)
    if (f.path == "solution.json" || f.path == "sol_execbench.json")
      return absl::InvalidArgumentError(
          absl::StrCat("source ", Quote(f.path), " would overwrite the file import writes"));
  std::set<std::string> normal;
  for (const auto& f : s.sources) {
    // "a.cu" and "./a.cu" are one file.
    if (!normal.insert(fs::path(f.path).lexically_normal().string()).second)
      return absl::InvalidArgumentError(absl::StrCat("source ", Quote(f.path), " names a file twice"));
    if (auto st = WriteFileUnder(root, f.path, f.content); !st.ok()) return st;
  }
  const std::string public_json = s.source_json.empty() ? PublicSolutionToJson(s) : s.source_json;
  if (auto st = WriteFileUnder(root, "sol_execbench.json", public_json); !st.ok()) return st;

  const PublicSourceFile* binding = nullptr;
  for (const auto& f : s.sources)
    if (f.path == kRatchetBindingFile && absl::StartsWith(f.content, kRatchetBindingMarker)) binding = &f;
  const bool ours = binding != nullptr && s.entry_point == absl::StrCat(kRatchetBindingFile, "::run");

  Json r;
  r["name"] = s.name;
  r["definition"] = s.definition;
  if (s.description) r["description"] = *s.description;
  if (!ours) {
    // Kept in the public language with its entry point: the harness runs
    // the languages it can and names the others as not runnable yet
    // (kernels/harness/solution.cc).
    r["language"] = s.languages.empty() ? "" : s.languages[0];
    Json sources = Json::array();
    for (const auto& f : s.sources) sources.push_back(f.path);
    r["sources"] = sources;
    r["entry_point"] = s.entry_point;
    r["destination_passing_style"] = s.destination_passing_style;
    // A C++ solution is a torch extension, built with its compile options
    // (the public defaults where it gives none).
    if (!s.languages.empty() && OneOf(s.languages[0], kCppLanguages)) {
      const PublicCompileOptions co = s.compile_options.value_or(PublicCompileOptions{});
      r["binding"] = "torch";
      r["compile_options"] = {
          {"cflags", co.cflags}, {"cuda_cflags", co.cuda_cflags}, {"ld_flags", co.ld_flags}};
    }
  } else {
    r["language"] = "cuda";
    Json sources = Json::array();
    for (const auto& f : s.sources)
      if (f.path != kRatchetBindingFile && f.path != kRatchetAbiHeaderPath) sources.push_back(f.path);
    r["sources"] = sources;
    Json knobs = Json::object();
    Json libraries = Json::array();
    if (s.compile_options) {
      for (const auto& flag : s.compile_options->cuda_cflags) {
        if (!absl::StartsWith(flag, "-D")) continue;
        const size_t eq = flag.find('=');
        if (eq == std::string::npos) continue;
        knobs[flag.substr(2, eq - 2)] = {{"default", KnobDefault(flag.substr(eq + 1))}};
      }
      for (const auto& flag : s.compile_options->ld_flags)
        if (flag == "-lcublas" || flag == "-lcublasLt") libraries.push_back(flag.substr(2));
    }
    if (!libraries.empty()) r["libraries"] = libraries;
    if (!knobs.empty()) r["knobs"] = knobs;
  }
  return WriteFileUnder(root, "solution.json",
                        r.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
}

}  // namespace ratchet::kernels
