#include "spec/frozen_files.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/auth.h"

namespace ratchet::spec {
namespace {

// One name against one part of a glob (`*` and `?` within the name).
bool NameMatches(absl::string_view glob, absl::string_view name) {
  size_t g = 0, n = 0, star = absl::string_view::npos, mark = 0;
  while (n < name.size()) {
    if (g < glob.size() && (glob[g] == '?' || glob[g] == name[n])) {
      ++g;
      ++n;
    } else if (g < glob.size() && glob[g] == '*') {
      star = g++;
      mark = n;
    } else if (star != absl::string_view::npos) {
      g = star + 1;
      n = ++mark;
    } else {
      return false;
    }
  }
  while (g < glob.size() && glob[g] == '*') ++g;
  return g == glob.size();
}

bool PartsMatch(const std::vector<absl::string_view>& glob, size_t gi,
                const std::vector<absl::string_view>& path, size_t pi) {
  if (gi == glob.size()) return pi == path.size();
  if (glob[gi] == "**") {
    for (size_t skip = pi; skip <= path.size(); ++skip)
      if (PartsMatch(glob, gi + 1, path, skip)) return true;
    return false;
  }
  return pi < path.size() && NameMatches(glob[gi], path[pi]) &&
         PartsMatch(glob, gi + 1, path, pi + 1);
}

}  // namespace

bool GlobMatches(absl::string_view glob, absl::string_view path) {
  const std::vector<absl::string_view> g = absl::StrSplit(glob, '/');
  const std::vector<absl::string_view> p = absl::StrSplit(path, '/');
  return PartsMatch(g, 0, p, 0);
}

bool IsEditable(const v1::TrainingSettings& training, absl::string_view path) {
  for (const std::string& glob : training.editable())
    if (GlobMatches(glob, path)) return true;
  return false;
}

std::map<std::string, std::string> FrozenHashes(const std::map<std::string, std::string>& files,
                                                const v1::TrainingSettings& training) {
  std::map<std::string, std::string> frozen;
  for (const auto& [path, content] : files)
    if (!IsEditable(training, path)) frozen[path] = auth::Sha256Hex(content);
  return frozen;
}

absl::Status CheckFrozenFiles(const std::map<std::string, std::string>& files,
                              const v1::TrainingSettings& training) {
  const std::map<std::string, std::string> frozen(training.frozen().begin(),
                                                  training.frozen().end());
  for (const auto& [path, hash] : frozen) {
    auto it = files.find(path);
    if (it == files.end())
      return absl::InvalidArgumentError(
          absl::StrCat("frozen file '", path, "' is missing (only editable files may change)"));
    if (auth::Sha256Hex(it->second) != hash)
      return absl::InvalidArgumentError(
          absl::StrCat("changes frozen file '", path, "' (only editable files may change)"));
  }
  for (const auto& [path, content] : files)
    if (!frozen.count(path) && !IsEditable(training, path))
      return absl::InvalidArgumentError(
          absl::StrCat("adds file '", path, "', which no editable glob allows"));
  return absl::OkStatus();
}

}  // namespace ratchet::spec
