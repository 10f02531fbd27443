#include "common/flags.h"

#include <algorithm>
#include <cstdlib>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace ratchet {

absl::StatusOr<Flags> Flags::Parse(int argc, char** argv,
                                   const std::vector<std::string>& switches) {
  Flags flags;
  for (int i = 0; i < argc; ++i) {
    std::string arg = argv[i];
    if (!absl::StartsWith(arg, "--") || arg == "-") {
      flags.positional_.push_back(arg);
      continue;
    }
    std::string body = arg.substr(2);
    if (body.empty()) return absl::InvalidArgumentError("bare '--' is not a flag");
    auto eq = body.find('=');
    if (eq != std::string::npos) {
      flags.values_.emplace(body.substr(0, eq), body.substr(eq + 1));
    } else if (std::find(switches.begin(), switches.end(), body) != switches.end()) {
      flags.values_.emplace(body, "true");
    } else if (i + 1 < argc) {
      flags.values_.emplace(body, argv[++i]);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", body, " needs a value"));
    }
  }
  return flags;
}

std::string Flags::Get(const std::string& name, const std::string& fallback) const {
  auto range = values_.equal_range(name);
  if (range.first == range.second) return fallback;
  return std::prev(range.second)->second;
}

std::vector<std::string> Flags::GetAll(const std::string& name) const {
  std::vector<std::string> out;
  auto range = values_.equal_range(name);
  for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
  return out;
}

absl::StatusOr<long long> Flags::GetInt(const std::string& name, long long fallback) const {
  if (!Has(name)) return fallback;
  long long v;
  if (!absl::SimpleAtoi(Get(name), &v))
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " wants an integer, got '", Get(name), "'"));
  return v;
}

absl::StatusOr<double> Flags::GetDouble(const std::string& name, double fallback) const {
  if (!Has(name)) return fallback;
  double v;
  if (!absl::SimpleAtod(Get(name), &v))
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " wants a number, got '", Get(name), "'"));
  return v;
}

std::vector<std::string> Flags::Unknown(const std::vector<std::string>& known) const {
  std::vector<std::string> out;
  for (const auto& [name, value] : values_)
    if (std::find(known.begin(), known.end(), name) == known.end() &&
        std::find(out.begin(), out.end(), name) == out.end())
      out.push_back(name);
  return out;
}

}  // namespace ratchet
