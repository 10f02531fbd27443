#include "coordinator/proposers/knob_space.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ratchet::proposers {

std::string ContentHash(const v1::Solution& solution) {
  // FNV-1a over a canonical, length-prefixed serialisation: stable across
  // processes and versions, unlike std::hash or absl::Hash.
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](const std::string& s) {
    std::string framed = absl::StrCat(s.size(), ":", s);
    for (unsigned char c : framed) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  std::map<std::string, std::string> files(solution.files().begin(), solution.files().end());
  std::map<std::string, std::string> knobs(solution.knobs().begin(), solution.knobs().end());
  for (const auto& [path, content] : files) {
    mix(path);
    mix(content);
  }
  mix("knobs");
  for (const auto& [name, value] : knobs) {
    mix(name);
    mix(value);
  }
  return absl::StrFormat("%016x", h);
}

std::string DescribeKnobChange(const v1::Solution& from, const v1::Solution& to) {
  std::map<std::string, std::string> a(from.knobs().begin(), from.knobs().end());
  std::map<std::string, std::string> b(to.knobs().begin(), to.knobs().end());
  std::vector<std::string> parts;
  for (const auto& [name, value] : b) {
    auto old = a.find(name);
    std::string before = old == a.end() ? "-" : old->second;
    if (before != value) parts.push_back(absl::StrCat(name, " ", before, "\u2192", value));
  }
  std::map<std::string, std::string> fa(from.files().begin(), from.files().end());
  std::map<std::string, std::string> fb(to.files().begin(), to.files().end());
  if (fa != fb) parts.push_back("source changed");
  return parts.empty() ? "no change" : absl::StrJoin(parts, ", ");
}

}  // namespace ratchet::proposers
