// A small command-line reader shared by every subcommand: `--name=value`,
// `--name value`, bare `--switch`, and positional arguments.
#ifndef RATCHET_COMMON_FLAGS_H_
#define RATCHET_COMMON_FLAGS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ratchet {

class Flags {
 public:
  // `switches` names the flags that take no value. Flags may repeat; Get
  // returns the last, GetAll every occurrence. Fails on "--" with no name.
  static absl::StatusOr<Flags> Parse(int argc, char** argv,
                                     const std::vector<std::string>& switches = {});

  bool Has(const std::string& name) const { return values_.count(name) > 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const;
  std::vector<std::string> GetAll(const std::string& name) const;
  absl::StatusOr<long long> GetInt(const std::string& name, long long fallback) const;
  absl::StatusOr<double> GetDouble(const std::string& name, double fallback) const;
  const std::vector<std::string>& positional() const { return positional_; }

  // Names given that are not in `known`; for "unknown flag" errors.
  std::vector<std::string> Unknown(const std::vector<std::string>& known) const;

 private:
  std::multimap<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

}  // namespace ratchet

#endif  // RATCHET_COMMON_FLAGS_H_
