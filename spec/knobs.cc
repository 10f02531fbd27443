#include "spec/knobs.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ratchet::spec {

const Knob* KnobSpace::Find(const std::string& name) const {
  for (const Knob& k : knobs)
    if (k.name == name) return &k;
  return nullptr;
}

// Knob values are passed to the compiler verbatim: numbers as written.
absl::StatusOr<std::string> KnobValue(const nlohmann::json& v, const std::string& where) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  if (v.is_number()) return v.dump();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "1" : "0");
  return absl::InvalidArgumentError(
      absl::StrCat("solution.json: ", where, " must be a number or a string"));
}

absl::StatusOr<KnobSpace> ParseKnobSpace(const v1::Solution& solution) {
  KnobSpace space;
  auto it = solution.files().find("solution.json");
  if (it == solution.files().end())
    return absl::InvalidArgumentError("solution has no solution.json");
  nlohmann::json doc = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object())
    return absl::InvalidArgumentError("solution.json is not a JSON object");
  if (!doc.contains("knobs")) return space;
  const nlohmann::json& knobs = doc["knobs"];
  if (!knobs.is_object())
    return absl::InvalidArgumentError("solution.json: \"knobs\" must be an object");
  for (auto& [name, decl] : knobs.items()) {
    std::string where = absl::StrCat("knobs.", name);
    if (!decl.is_object() || !decl.contains("choices") || !decl["choices"].is_array() ||
        decl["choices"].empty())
      return absl::InvalidArgumentError(absl::StrCat(
          "solution.json: ", where, " needs a non-empty \"choices\" array"));
    Knob knob;
    knob.name = name;
    for (const auto& c : decl["choices"]) {
      auto value = KnobValue(c, where + ".choices");
      if (!value.ok()) return value.status();
      knob.choices.push_back(*value);
    }
    if (decl.contains("default")) {
      auto value = KnobValue(decl["default"], where + ".default");
      if (!value.ok()) return value.status();
      knob.default_value = *value;
      if (std::find(knob.choices.begin(), knob.choices.end(), *value) == knob.choices.end())
        return absl::InvalidArgumentError(absl::StrCat(
            "solution.json: ", where, ".default ", *value, " is not one of its choices"));
    } else {
      knob.default_value = knob.choices.front();
    }
    space.knobs.push_back(std::move(knob));
  }
  return space;
}

absl::Status NormalizeKnobs(const KnobSpace& space, v1::Solution* solution) {
  for (const auto& [name, value] : solution->knobs()) {
    const Knob* knob = space.Find(name);
    if (knob == nullptr)
      return absl::InvalidArgumentError(absl::StrCat("knob ", name, " is not declared"));
    if (std::find(knob->choices.begin(), knob->choices.end(), value) == knob->choices.end())
      return absl::InvalidArgumentError(
          absl::StrCat("knob ", name, "=", value, " is not one of its choices"));
  }
  for (const Knob& knob : space.knobs)
    if (!solution->knobs().count(knob.name))
      (*solution->mutable_knobs())[knob.name] = knob.default_value;
  return absl::OkStatus();
}

}  // namespace ratchet::spec
