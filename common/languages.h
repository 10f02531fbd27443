// Which solution languages each device's harness runs, and how: the one table
// that the harness (kernels/harness/solution.cc) reads a solution.json by and
// that the submit check (spec/validation.cc) refuses a baseline by, so that a
// spec passes submit exactly when its baseline's language can run.
#ifndef RATCHET_COMMON_LANGUAGES_H_
#define RATCHET_COMMON_LANGUAGES_H_

#include <string>

#include "absl/strings/string_view.h"

namespace ratchet {

enum class LanguageKind {
  kNative,          // compiled by the harness (cpp, cuda)
  kPython,          // a Python module in the candidate host; entry_point FILE.py::FUNCTION
  kTorchExtension,  // C++ built as a torch extension; entry_point FILE::FUNCTION
};

struct SolutionLanguage {
  const char* name;
  LanguageKind kind;
  bool cpu;   // the CPU harness (device: cpu) runs it
  bool cuda;  // the CUDA harness (device: cuda) runs it
};

// The GPU-only DSLs and torch extensions launch GPU kernels, so only the CUDA
// harness runs them.
inline constexpr SolutionLanguage kSolutionLanguages[] = {
    {"cpp", LanguageKind::kNative, true, false},
    {"c++", LanguageKind::kNative, true, false},
    {"c", LanguageKind::kNative, true, false},
    {"cuda", LanguageKind::kNative, false, true},
    {"pytorch", LanguageKind::kPython, true, true},
    {"triton", LanguageKind::kPython, false, true},
    {"cute_dsl", LanguageKind::kPython, false, true},
    {"cutile", LanguageKind::kPython, false, true},
    {"cudnn_frontend", LanguageKind::kPython, false, true},
    {"cuda_cpp", LanguageKind::kTorchExtension, false, true},
    {"cutlass", LanguageKind::kTorchExtension, false, true},
    {"cudnn", LanguageKind::kTorchExtension, false, true},
    {"cublas", LanguageKind::kTorchExtension, false, true},
};

// The language of `name`, or nullptr when no harness knows it.
inline const SolutionLanguage* FindSolutionLanguage(absl::string_view name) {
  for (const SolutionLanguage& l : kSolutionLanguages)
    if (name == l.name) return &l;
  return nullptr;
}

// The language a solution.json without "language" has on a device.
inline const char* DefaultSolutionLanguage(bool cuda) { return cuda ? "cuda" : "cpp"; }

inline bool LanguageRunsOn(absl::string_view name, bool cuda) {
  const SolutionLanguage* l = FindSolutionLanguage(name);
  return l != nullptr && (cuda ? l->cuda : l->cpu);
}

// "cpp, c++, c, pytorch": the languages a device runs, for messages.
inline std::string LanguagesOf(bool cuda) {
  std::string out;
  for (const SolutionLanguage& l : kSolutionLanguages) {
    if (!(cuda ? l.cuda : l.cpu)) continue;
    if (!out.empty()) out += ", ";
    out += l.name;
  }
  return out;
}

}  // namespace ratchet

#endif  // RATCHET_COMMON_LANGUAGES_H_
