#include "kernels/harness/solution.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "kernels/harness/subprocess.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {
namespace {

using Json = nlohmann::ordered_json;

bool IsIdentifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

bool IsHeader(const std::string& f) {
  return absl::EndsWith(f, ".h") || absl::EndsWith(f, ".hpp") || absl::EndsWith(f, ".cuh");
}

absl::StatusOr<Solution> LoadSolutionUnguarded(
    const std::string& dir, const std::vector<std::pair<std::string, std::string>>& overrides,
    SolutionBackend backend) {
  const std::string path = dir + "/solution.json";
  const std::string text = ReadFileOrEmpty(path);
  if (text.empty()) return absl::NotFoundError(absl::StrCat(path, ": cannot read"));
  // Checked first: nlohmann's parse error quotes the bad bytes, and a
  // message holding them cannot be written into the JSON result.
  if (const size_t bad = InvalidUtf8Offset(text); bad != absl::string_view::npos)
    return absl::InvalidArgumentError(absl::StrCat(path, ": not valid UTF-8 (byte ", bad, ")"));
  Json j;
  try {
    j = Json::parse(text);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": invalid JSON: ", ToValidUtf8(e.what())));
  }
  auto err = [&](const std::string& field, const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": field '", field, "': ", what));
  };
  if (!j.is_object()) return err("", "top level must be an object");
  Solution s;
  // value() throws on a present field of another type: check first.
  for (const char* field : {"name", "language"})
    if (auto it = j.find(field); it != j.end() && !it->is_string() && !it->is_null())
      return err(field, absl::StrCat("expected a string, got ", it->type_name()));
  if (auto it = j.find("name"); it != j.end() && it->is_string()) s.name = it->get<std::string>();
  const bool cuda = backend == SolutionBackend::kCuda;
  std::string lang = DefaultSolutionLanguage(cuda);
  if (auto it = j.find("language"); it != j.end() && it->is_string()) lang = it->get<std::string>();
  // The public format saved as solution.json: point at the converter rather
  // than fail on its inline sources.
  if (auto spec = j.find("spec"); spec != j.end() && spec->is_object() && !j.contains("language"))
    return err("spec", "this is a SOL-ExecBench solution; `ratchet import FILE DIR` writes it as "
                       "a folder that ratchet reads");
  // Python solutions run in the Python host; those of the GPU-only DSLs
  // (triton, ...) only on the CUDA harness, where their modules can launch.
  const bool python = IsPythonLanguage(lang);
  if (python && !LanguageRunsOn(lang, cuda))
    return err("language", absl::StrCat("\"", lang, "\" solutions launch GPU kernels: they run "
                                        "on the CUDA harness (device: cuda), not the CPU one"));
  // The public C++ languages with a torch binding (the public default):
  // a torch extension, built in the candidate process, on the CUDA harness.
  const bool torch_extension = IsTorchExtensionLanguage(lang);
  if (torch_extension) {
    auto b = j.find("binding");
    if (b != j.end() && !b->is_null() && !(b->is_string() && *b == "torch"))
      return err("binding", "the only binding is \"torch\" (or null)");
    if (backend == SolutionBackend::kCpu)
      return err("language", absl::StrCat("\"", lang, "\" solutions are CUDA torch extensions: "
                                          "they run on the CUDA harness (device: cuda)"));
  }
  // One table for both harnesses and the submit check (common/languages.h).
  if (!LanguageRunsOn(lang, cuda)) {
    return err("language", absl::StrCat("\"", lang, "\" is not supported by the ",
                                        cuda ? "CUDA" : "CPU", " harness (", LanguagesOf(cuda),
                                        ")"));
  }
  s.language = lang;
  s.dir = dir;
  s.torch_extension = torch_extension;
  auto src = j.find("sources");
  if (src == j.end() || !src->is_array() || src->empty()) {
    return err("sources", "a non-empty list of source files is required");
  }
  for (size_t i = 0; i < src->size(); ++i) {
    const std::string f = absl::StrCat("sources[", i, "]");
    if (!(*src)[i].is_string()) return err(f, "expected a file name");
    const std::string rel = (*src)[i].get<std::string>();
    if (rel.empty() || rel[0] == '/' || rel.find("..") != std::string::npos) {
      return err(f, "must be a path inside the solution folder");
    }
    const std::string abs = dir + "/" + rel;
    struct stat st;
    if (stat(abs.c_str(), &st) != 0) return err(f, absl::StrCat("no such file ", abs));
    if (IsHeader(rel)) {  // Included, not compiled.
      s.headers.push_back(abs);
      continue;
    }
    s.sources.push_back(abs);
  }
  if (python || torch_extension) {
    auto ep = j.find("entry_point");
    if (ep == j.end() || !ep->is_string())
      return err("entry_point", torch_extension
                                    ? "a torch extension names its function: \"FILE.cpp::FUNCTION\""
                                    : "a Python solution names its function: \"FILE.py::FUNCTION\"");
    s.entry_point = ep->get<std::string>();
    const size_t sep = s.entry_point.find("::");
    const std::string file = s.entry_point.substr(0, sep);
    if (sep == std::string::npos || s.entry_point.find("::", sep + 2) != std::string::npos ||
        file.empty() || !IsIdentifier(s.entry_point.substr(sep + 2)))
      return err("entry_point", absl::StrCat("\"", s.entry_point,
                                             "\": expected \"FILE.py::FUNCTION\""));
    if (std::find(s.sources.begin(), s.sources.end(), dir + "/" + file) == s.sources.end())
      return err("entry_point", absl::StrCat("\"", file, "\" is not one of the sources"));
    if (auto d = j.find("destination_passing_style"); d != j.end() && !d->is_null()) {
      if (!d->is_boolean()) return err("destination_passing_style", "expected true or false");
      s.destination_passing_style = d->get<bool>();
    }
  }
  if (auto co = j.find("compile_options"); co != j.end() && !co->is_null()) {
    if (!torch_extension) return err("compile_options", "only a torch extension takes them");
    if (!co->is_object()) return err("compile_options", "expected an object");
    for (auto [key, into] : {std::pair<const char*, std::vector<std::string>*>{"cflags", &s.cflags},
                             {"cuda_cflags", &s.cuda_cflags},
                             {"ld_flags", &s.ldflags}}) {
      auto f = co->find(key);
      if (f == co->end() || f->is_null()) continue;
      const std::string field = absl::StrCat("compile_options.", key);
      if (!f->is_array()) return err(field, "expected a list of flags");
      for (const Json& flag : *f) {
        if (!flag.is_string()) return err(field, "expected a list of flags");
        into->push_back(flag.get<std::string>());
      }
    }
  }
  if (auto libs = j.find("libraries"); libs != j.end() && !libs->is_null()) {
    if (!libs->is_array()) return err("libraries", "expected a list such as [\"cublas\", \"cublasLt\"]");
    for (size_t i = 0; i < libs->size(); ++i) {
      const std::string f = absl::StrCat("libraries[", i, "]");
      if (!(*libs)[i].is_string()) return err(f, "expected a library name");
      const std::string lib = (*libs)[i].get<std::string>();
      if (backend != SolutionBackend::kCuda) {
        return err(f, "libraries are supported by the CUDA harness only");
      }
      if (lib != "cublas" && lib != "cublasLt") {
        return err(f, absl::StrCat("unknown library \"", lib, "\" (cublas, cublasLt)"));
      }
      s.libraries.push_back(lib);
    }
  }
  std::map<std::string, std::string> values;
  std::vector<std::string> order;
  if (auto k = j.find("knobs"); k != j.end() && !k->is_null()) {
    if (!k->is_object()) return err("knobs", "expected an object of name -> {choices, default}");
    for (auto it = k->begin(); it != k->end(); ++it) {
      const std::string f = "knobs." + it.key();
      if (!IsIdentifier(it.key())) return err(f, "knob names must be C identifiers");
      const Json& kv = it.value();
      if (!kv.is_object() || !kv.contains("default")) return err(f + ".default", "missing");
      const Json& d = kv["default"];
      values[it.key()] = d.is_string() ? d.get<std::string>() : d.dump();
      order.push_back(it.key());
    }
  }
  for (const auto& [name, value] : overrides) {
    if (values.count(name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--knob ", name, "=", value, ": solution.json declares no knob \"", name, "\""));
    }
    values[name] = value;
  }
  for (const auto& name : order) s.knobs.emplace_back(name, values[name]);
  return s;
}

}  // namespace

absl::StatusOr<Solution> LoadSolution(
    const std::string& dir, const std::vector<std::pair<std::string, std::string>>& overrides,
    SolutionBackend backend) {
  // The checks above test types before they read; an exception they miss
  // must still be an error, not an abort that the worker blames on the
  // candidate.
  try {
    return LoadSolutionUnguarded(dir, overrides, backend);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, "/solution.json: malformed: ", ToValidUtf8(e.what())));
  }
}

}  // namespace ratchet::kernels
