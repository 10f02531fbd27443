#include "services/verifier/screening.h"

#include <cctype>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ratchet::verifier {
namespace {

struct Pattern {
  const char* category;
  const char* token;
};

// Tokens match whole identifiers (a token ending in '(' must be called).
constexpr Pattern kPatterns[] = {
    {"threads", "pthread_create"}, {"threads", "std::thread"}, {"threads", "std::async"},
    {"threads", "std::jthread"},   {"processes", "fork("},     {"processes", "vfork("},
    {"processes", "clone("},       {"processes", "system("},   {"processes", "popen("},
    {"processes", "execv"},        {"processes", "execl"},     {"processes", "posix_spawn"},
    {"streams", "cudaStreamCreate"}, {"streams", "cudaStreamCreateWithFlags"},
    {"streams", "cudaStreamCreateWithPriority"}, {"streams", "cudaLaunchHostFunc"},
    {"dynamic-loading", "dlopen"}, {"dynamic-loading", "dlsym"}, {"dynamic-loading", "dlvsym"},
    {"dynamic-loading", "dl_iterate_phdr"}, {"dynamic-loading", "link_map"},
    {"dynamic-loading", "_r_debug"}, {"dynamic-loading", "cuGetProcAddress"},
    {"memory-protection", "pkey_mprotect"}, {"memory-protection", "mremap"},
    {"processes", "syscall("}, {"processes", "ptrace"},
    {"environment-or-files", "fread"}, {"environment-or-files", "read("},
    {"environment-or-files", "secure_getenv"}, {"environment-or-files", "environ"},
    {"environment-or-files", "/dev/"}, {"environment-or-files", "readlink"},
    {"clocks", "clock("}, {"clocks", "time("}, {"clocks", "timespec_get"},
    {"clocks", "__rdtscp"},
    {"clocks", "cudaEventSynchronize"},
    {"assembly", "asm"}, {"assembly", "__asm__"}, {"assembly", "asm("},
    {"memory-protection", "mprotect"}, {"memory-protection", "mmap"},
    {"environment-or-files", "getenv"}, {"environment-or-files", "fopen"},
    {"environment-or-files", "ifstream"}, {"environment-or-files", "ofstream"},
    {"environment-or-files", "open("}, {"environment-or-files", "/proc/"},
    {"clocks", "clock_gettime"}, {"clocks", "gettimeofday"}, {"clocks", "std::chrono"},
    {"clocks", "__rdtsc"}, {"clocks", "rdtsc"}, {"clocks", "cudaEventRecord"},
    {"clocks", "cudaEventElapsedTime"}, {"clocks", "clock64"}, {"clocks", "globaltimer"},
    {"signals", "signal("}, {"signals", "sigaction"},
};

bool IsIdentifierChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// True when `token` occurs in `line` not glued to a longer identifier.
bool Contains(const std::string& line, const std::string& token) {
  for (size_t at = line.find(token); at != std::string::npos; at = line.find(token, at + 1)) {
    const bool starts_word = token[0] == '/' || token[0] == '%' || at == 0 ||
                             !IsIdentifierChar(line[at - 1]);
    const char last = token.back();
    const size_t end = at + token.size();
    const bool ends_word = !IsIdentifierChar(last) || end >= line.size() ||
                           !IsIdentifierChar(line[end]) ||
                           // prefixes of a family (execv → execvp, cudaStreamCreate...)
                           std::string(token) == "execv" || std::string(token) == "execl";
    if (starts_word && ends_word) return true;
  }
  return false;
}

}  // namespace

std::vector<ScreeningFlag> ScreenSource(const std::map<std::string, std::string>& files) {
  std::vector<ScreeningFlag> flags;
  for (const auto& [path, content] : files) {
    if (path == "solution.json") continue;
    std::istringstream in(content);
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      if (auto comment = line.find("//"); comment != std::string::npos) line.resize(comment);
      for (const Pattern& p : kPatterns) {
        if (!Contains(line, p.token)) continue;
        // One flag per category and line: cudaStreamCreateWithFlags is also cudaStreamCreate.
        bool seen = false;
        for (const auto& f : flags)
          seen |= f.file == path && f.line == number && f.category == p.category;
        if (!seen) flags.push_back({p.category, p.token, path, number});
      }
    }
  }
  return flags;
}

std::vector<ScreeningFlag> AddedFlags(const std::map<std::string, std::string>& candidate,
                                      const std::map<std::string, std::string>& incumbent) {
  std::vector<ScreeningFlag> before = ScreenSource(incumbent), added;
  for (const ScreeningFlag& f : ScreenSource(candidate)) {
    bool known = false;
    for (const ScreeningFlag& b : before) known |= b.construct == f.construct;
    if (!known) added.push_back(f);
  }
  return added;
}

std::string DescribeFlag(const ScreeningFlag& f) {
  return absl::StrCat(f.category, ": ", f.construct, " (", f.file, ":", f.line, ")");
}

std::string DescribeFlags(const std::vector<ScreeningFlag>& flags) {
  return absl::StrJoin(flags, "; ", [](std::string* out, const ScreeningFlag& f) {
    absl::StrAppend(out, DescribeFlag(f));
  });
}

}  // namespace ratchet::verifier
