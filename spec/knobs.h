// The knobs a solution declares in its solution.json (docs/solutions.md):
// what a spec's baseline.knobs and replay settings are checked against.
#ifndef RATCHET_SPEC_KNOBS_H_
#define RATCHET_SPEC_KNOBS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::spec {

struct Knob {
  std::string name;
  std::vector<std::string> choices;  // as passed to the compiler, verbatim
  std::string default_value;
};

struct KnobSpace {
  std::vector<Knob> knobs;  // in declaration order
  const Knob* Find(const std::string& name) const;
};

// A choice or default as solution.json writes it, spelled as the compiler
// and the coordinator get it: strings verbatim, numbers as written, booleans
// 1 or 0. InvalidArgument naming `where` for any other JSON value.
absl::StatusOr<std::string> KnobValue(const nlohmann::json& value, const std::string& where);

// Reads the "knobs" object of `solution.files["solution.json"]`. A solution
// without knobs has an empty space; a malformed declaration is an error.
absl::StatusOr<KnobSpace> ParseKnobSpace(const v1::Solution& solution);

// Every declared knob gets an explicit value (its default where unset), so that
// "unset" and "set to the default" are the same candidate. Fails on a value
// that is not one of the knob's choices or an undeclared knob.
absl::Status NormalizeKnobs(const KnobSpace& space, v1::Solution* solution);

}  // namespace ratchet::spec

#endif  // RATCHET_SPEC_KNOBS_H_
