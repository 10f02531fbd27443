#include "coordinator/spec_validation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/reflection.h"
#include "nlohmann/json.hpp"

namespace ratchet {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

// What a string field may hold.
enum class Chars {
  kLine,  // one line: no control characters at all (names end up in logs,
          // file names and the `run.sh` that `ratchet export` writes)
  kText,  // file contents: anything but NUL
};

struct StringRule {
  size_t max_bytes;
  Chars chars;
  std::vector<std::string> one_of;  // empty: any value; "" always passes (default)
};

const std::map<std::string, StringRule>& StringRules() {
  static const auto* rules = new std::map<std::string, StringRule>{
      {"name", {kMaxNameBytes, Chars::kLine, {}}},
      {"task", {16, Chars::kLine, {"kernel", "sleep"}}},
      {"proposer", {16, Chars::kLine, {"evolve", "random", "grid", "replay", "llm"}}},
      {"device", {16, Chars::kLine, {"cpu", "cuda"}}},
      {"experience", {16, Chars::kLine, {"campaign", "shared"}}},
      {"gpu_model", {kMaxNameBytes, Chars::kLine, {}}},
      {"problem.name", {kMaxShortStringBytes, Chars::kLine, {}}},
      {"problem.definition_json", {kMaxDefinitionBytes, Chars::kText, {}}},
      {"problem.workload_jsonl", {kMaxWorkloadBytes, Chars::kText, {}}},
      {"harness.screen", {16, Chars::kLine, {"auto", "on", "off"}}},
      {"verification.tiers",
       {32, Chars::kLine, {"guards", "replay", "adversarial", "independent-timing"}}},
      {"llm.base_url", {kMaxUrlBytes, Chars::kLine, {}}},
      {"llm.api_key_env", {kMaxNameBytes, Chars::kLine, {}}},
      {"llm.models.name", {kMaxShortStringBytes, Chars::kLine, {}}},
      {"llm.endpoint", {kMaxNameBytes, Chars::kLine, {}}},
      {"owner", {kMaxShortStringBytes, Chars::kLine, {}}},
  };
  return *rules;
}

bool IsCIdentifier(absl::string_view s) {
  if (s.empty() || !(absl::ascii_isalpha(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

absl::Status CheckString(absl::string_view where, absl::string_view value, size_t max_bytes,
                         Chars chars) {
  if (value.size() > max_bytes)
    return Invalid(where, absl::StrCat(value.size(), " bytes; at most ", max_bytes));
  if (!IsValidUtf8(value)) return Invalid(where, "not valid UTF-8");
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == 0) return Invalid(where, absl::StrCat("NUL byte at ", i));
    if (chars == Chars::kLine && (c < 0x20 || c == 0x7F))
      return Invalid(where, absl::StrCat("control character 0x", absl::Hex(c, absl::kZeroPad2),
                                         " at byte ", i, "; one line of text only"));
  }
  return absl::OkStatus();
}

std::string Range(const SpecBound& b) {
  auto num = [](double v) {
    return v >= 1e15 ? absl::StrCat(static_cast<uint64_t>(v)) : absl::StrCat(v);
  };
  return absl::StrCat(b.lo_open ? "(" : "[", num(b.lo), ", ", num(b.hi), b.hi_open ? ")" : "]",
                      b.zero_is_default ? " (0 = default)" : "");
}

absl::Status CheckNumber(const std::string& where, const std::string& path, double v,
                         const std::string& text) {
  const auto& bounds = CampaignSpecBounds();
  auto it = std::find_if(bounds.begin(), bounds.end(),
                         [&](const SpecBound& b) { return path == b.path; });
  // Every number has a bound (spec_validation_test checks the table against
  // the proto); one added without is refused until it gets one.
  if (it == bounds.end()) return Invalid(where, "no bound is known for this field");
  const SpecBound& b = *it;
  if (!std::isfinite(v)) return Invalid(where, absl::StrCat(text, " is not a finite number"));
  if (b.zero_is_default && v == 0) return absl::OkStatus();
  const bool low = b.lo_open ? v <= b.lo : v < b.lo;
  const bool high = b.hi_open ? v >= b.hi : v > b.hi;
  if (low || high) return Invalid(where, absl::StrCat(text, " is out of range ", Range(b)));
  return absl::OkStatus();
}

// Map entries (map<string, string>) have fields "key" and "value".
absl::Status CheckMapField(const Message& m, const FieldDescriptor* f, const std::string& where,
                           const std::string& path);

// Walks every set field: numbers against the table, strings against their
// rule (or the default one: UTF-8, no NUL, at most kMaxOtherStringBytes).
absl::Status Walk(const Message& m, const std::string& where, const std::string& path) {
  const Reflection* r = m.GetReflection();
  std::vector<const FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    const std::string fwhere = where.empty() ? f->name() : absl::StrCat(where, ".", f->name());
    const std::string fpath = path.empty() ? f->name() : absl::StrCat(path, ".", f->name());
    if (f->is_map()) {
      if (auto s = CheckMapField(m, f, fwhere, fpath); !s.ok()) return s;
      continue;
    }
    const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const std::string iwhere = f->is_repeated() ? absl::StrCat(fwhere, "[", i, "]") : fwhere;
      const bool rep = f->is_repeated();
      absl::Status s;
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_MESSAGE:
          s = Walk(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f), iwhere, fpath);
          break;
        case FieldDescriptor::CPPTYPE_STRING: {
          const std::string v = rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
          auto rule = StringRules().find(fpath);
          if (rule == StringRules().end()) {
            s = CheckString(iwhere, v, kMaxOtherStringBytes, Chars::kText);
          } else {
            s = CheckString(iwhere, v, rule->second.max_bytes, rule->second.chars);
            const auto& one_of = rule->second.one_of;
            if (s.ok() && !one_of.empty() && !v.empty() &&
                std::find(one_of.begin(), one_of.end(), v) == one_of.end())
              s = Invalid(iwhere, absl::StrCat("unknown value '", v, "' (known: ",
                                               absl::StrJoin(one_of, ", "), ")"));
          }
          break;
        }
        case FieldDescriptor::CPPTYPE_INT32: {
          const int32_t v = rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
          s = CheckNumber(iwhere, fpath, v, absl::StrCat(v));
          break;
        }
        case FieldDescriptor::CPPTYPE_INT64: {
          const int64_t v = rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
          s = CheckNumber(iwhere, fpath, static_cast<double>(v), absl::StrCat(v));
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT32: {
          const uint32_t v = rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
          s = CheckNumber(iwhere, fpath, v, absl::StrCat(v));
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT64: {
          const uint64_t v = rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
          s = CheckNumber(iwhere, fpath, static_cast<double>(v), absl::StrCat(v));
          break;
        }
        case FieldDescriptor::CPPTYPE_DOUBLE: {
          const double v = rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f);
          s = CheckNumber(iwhere, fpath, v, absl::StrCat(v));
          break;
        }
        case FieldDescriptor::CPPTYPE_FLOAT: {
          const float v = rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f);
          s = CheckNumber(iwhere, fpath, v, absl::StrCat(v));
          break;
        }
        case FieldDescriptor::CPPTYPE_BOOL:
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const int v = rep ? r->GetRepeatedEnumValue(m, f, i) : r->GetEnumValue(m, f);
          if (f->enum_type()->FindValueByNumber(v) == nullptr)
            s = Invalid(iwhere, absl::StrCat("unknown enum value ", v));
          break;
        }
      }
      if (!s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::Status CheckKnobs(const google::protobuf::Map<std::string, std::string>& knobs,
                        const std::string& where) {
  if (knobs.size() > kMaxKnobs)
    return Invalid(where, absl::StrCat(knobs.size(), " knobs; at most ", kMaxKnobs));
  for (const auto& [name, value] : knobs) {
    const std::string at = absl::StrCat(where, "[", name, "]");
    if (name.size() > kMaxKnobNameBytes || !IsCIdentifier(name))
      return Invalid(where, absl::StrCat("knob name '", absl::CHexEscape(name.substr(0, 80)),
                                         "' is not a C identifier of at most ",
                                         kMaxKnobNameBytes, " bytes"));
    if (auto s = CheckString(at, value, kMaxShortStringBytes, Chars::kLine); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckMapField(const Message& m, const FieldDescriptor* f, const std::string& where,
                           const std::string& path) {
  // Both maps of the spec (files, knobs) are map<string, string>; a map of
  // another type would get no check here, so it is refused.
  if (f->message_type()->map_key()->cpp_type() != FieldDescriptor::CPPTYPE_STRING ||
      f->message_type()->map_value()->cpp_type() != FieldDescriptor::CPPTYPE_STRING)
    return Invalid(where, "map field has no validation rule");
  if (path == "baseline.files") return absl::OkStatus();  // CheckSolution reads them
  if (path == "baseline.knobs" || path == "replay.knobs") {
    // The typed view: the same map, without reflection.
    const auto* owner = m.GetDescriptor() == v1::Solution::descriptor()
                            ? &static_cast<const v1::Solution&>(m).knobs()
                            : &static_cast<const v1::KnobSetting&>(m).knobs();
    return CheckKnobs(*owner, where);
  }
  return Invalid(where, "map field has no validation rule");
}

// The solution's files and what its solution.json says about them.
absl::Status CheckSolution(const v1::Solution& solution, const std::string& where,
                           const std::string& device, bool required) {
  if (solution.files().size() > kMaxSolutionFiles)
    return Invalid(where + ".files",
                   absl::StrCat(solution.files().size(), " files; at most ", kMaxSolutionFiles));
  size_t total = 0;
  for (const auto& [name, content] : solution.files()) {
    if (auto s = ValidateSolutionFileName(name); !s.ok())
      return Invalid(where + ".files", s.message());
    const std::string at = absl::StrCat(where, ".files[", name, "]");
    if (auto s = CheckString(at, content, kMaxFileBytes, Chars::kText); !s.ok()) return s;
    total += content.size();
  }
  if (total > kMaxSolutionBytes)
    return Invalid(where + ".files",
                   absl::StrCat(total, " bytes in all; at most ", kMaxSolutionBytes));
  auto it = solution.files().find("solution.json");
  if (it == solution.files().end()) {
    if (required) return Invalid(where, "has no solution.json");
    return absl::OkStatus();
  }
  const std::string at = where + ".files[solution.json]";
  const nlohmann::json doc = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Invalid(at, "not a JSON object");
  // The harness of the campaign's device runs it (kernels/harness/solution.cc).
  const bool cuda = device == "cuda";
  if (auto lang = doc.find("language"); lang != doc.end() && !lang->is_null()) {
    if (!lang->is_string()) return Invalid(at, "\"language\" must be a string");
    const std::string l = lang->get<std::string>();
    const std::vector<std::string> known =
        cuda ? std::vector<std::string>{"cuda"} : std::vector<std::string>{"cpp", "c++", "c"};
    if (std::find(known.begin(), known.end(), l) == known.end())
      return Invalid(at, absl::StrCat("language '", absl::CHexEscape(l.substr(0, 80)),
                                      "' is not run on device ", cuda ? "cuda" : "cpu",
                                      " (known: ", absl::StrJoin(known, ", "), ")"));
  }
  auto sources = doc.find("sources");
  if (sources == doc.end() || !sources->is_array() || sources->empty())
    return Invalid(at, "\"sources\" must be a non-empty list of file names");
  for (size_t i = 0; i < sources->size(); ++i) {
    const auto& src = (*sources)[i];
    const std::string sat = absl::StrCat(at, ": sources[", i, "]");
    if (!src.is_string()) return Invalid(sat, "expected a file name");
    const std::string name = src.get<std::string>();
    if (auto s = ValidateSolutionFileName(name); !s.ok()) return Invalid(sat, s.message());
    if (solution.files().find(name) == solution.files().end())
      return Invalid(sat, absl::StrCat("'", name, "' is not one of the solution's files"));
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<SpecBound>& CampaignSpecBounds() {
  // Generous for real campaigns (the demo: 2 threads, 40 evaluations,
  // 12 repetitions, 90 s), small enough that one request cannot queue a
  // million jobs or hold a worker for days. Replays stay at the verifier's
  // cap of 20 a side.
  static const auto* bounds = new std::vector<SpecBound>{
      // CampaignSpec
      {"threads", 1, 64, false, false, true},
      {"seed", 0, 18446744073709551615.0},
      {"in_flight_per_thread", 1, 16, false, false, true},
      {"migrate_every", 0, 1'000'000},
      {"merge_every", 0, 1'000'000},
      {"tournament_size", 0, 1000},
      {"weight", 0, 1000, true, false, true},
      {"gpus", 0, 64},
      {"sleep_ms", 0, 3'600'000},
      // Budget
      {"budget.max_evaluations", 1, 100'000, false, false, true},
      {"budget.max_wall_seconds", 0, 30 * 86400.0},
      {"budget.max_gpu_seconds", 0, 1e7},
      // VerificationPolicy
      {"verification.replays", 1, 20, false, false, true},
      {"verification.min_gain", 0, 10},
      {"verification.significance", 0, 0.5, true, true, true},
      {"verification.timing_tolerance", 0, 10},
      {"verification.noise_sigmas", 0, 100},
      {"verification.max_replays", 1, 20, false, false, true},
      // HarnessSettings
      {"harness.warmups", 0, 1000},
      {"harness.repetitions", 1, 10'000, false, false, true},
      {"harness.correctness_rounds", 1, 100, false, false, true},
      {"harness.timeout_seconds", 0, 86400, true, false, true},
      // LlmSettings
      {"llm.models.weight", 0, 1e6},
      {"llm.models.prompt_price_per_1k", 0, 1000},
      {"llm.models.completion_price_per_1k", 0, 1000},
      {"llm.temperature", 0, 2},
      {"llm.max_tokens", 1, 1'000'000, false, false, true},
      {"llm.timeout_seconds", 0, 3600, true, false, true},
      {"llm.max_retries", 0, 20},
      {"llm.max_concurrency", 1, 256, false, false, true},
      {"llm.max_cost_usd", 0, 1e6},
      {"llm.merge_every", 0, 1'000'000},
  };
  return *bounds;
}

bool IsValidUtf8(absl::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // Table 3-7 of the Unicode standard: the second byte's range depends on
    // the first (no overlong forms, surrogates or code points past U+10FFFF).
    size_t extra;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) extra = 1;
    else if (c == 0xE0) extra = 2, lo = 0xA0;
    else if (c == 0xED) extra = 2, hi = 0x9F;
    else if (c >= 0xE1 && c <= 0xEF) extra = 2;
    else if (c == 0xF0) extra = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) extra = 3;
    else if (c == 0xF4) extra = 3, hi = 0x8F;
    else return false;
    if (i + extra >= n) return false;
    if (s[i + 1] < lo || s[i + 1] > hi) return false;
    for (size_t k = 2; k <= extra; ++k)
      if ((s[i + k] & 0xC0) != 0x80) return false;
    i += extra + 1;
  }
  return true;
}

absl::Status ValidateSolutionFileName(absl::string_view name) {
  const std::string shown = absl::StrCat("file name '", absl::CHexEscape(name.substr(0, 80)),
                                         name.size() > 80 ? "...'" : "'");
  if (name.empty()) return absl::InvalidArgumentError("empty file name");
  if (name.size() > kMaxFileNameBytes)
    return absl::InvalidArgumentError(
        absl::StrCat(shown, ": ", name.size(), " bytes; at most ", kMaxFileNameBytes));
  if (!IsValidUtf8(name)) return absl::InvalidArgumentError(shown + ": not valid UTF-8");
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7F || ch == '\\')
      return absl::InvalidArgumentError(shown + ": control character or backslash");
  }
  if (name[0] == '/')
    return absl::InvalidArgumentError(shown + ": absolute; names are relative to the solution");
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..")
      return absl::InvalidArgumentError(
          shown + ": every part must be a plain name (no '', '.' or '..')");
  }
  return absl::OkStatus();
}

absl::Status ValidateCampaignSpec(const v1::CampaignSpec& spec) {
  // Size first, before anything walks a huge message.
  const size_t bytes = spec.ByteSizeLong();
  if (bytes > kMaxSpecBytes)
    return Invalid("spec", absl::StrCat(bytes, " bytes; at most ", kMaxSpecBytes));
  // Counts of repeated fields.
  if (static_cast<size_t>(spec.replay_size()) > kMaxReplaySettings)
    return Invalid("replay", absl::StrCat(spec.replay_size(), " settings; at most ",
                                          kMaxReplaySettings));
  if (static_cast<size_t>(spec.llm().models_size()) > kMaxLlmModels)
    return Invalid("llm.models",
                   absl::StrCat(spec.llm().models_size(), " models; at most ", kMaxLlmModels));
  if (spec.verification().tiers_size() > 8)
    return Invalid("verification.tiers",
                   absl::StrCat(spec.verification().tiers_size(), " tiers; at most 8"));
  if (auto s = Walk(spec, "", ""); !s.ok()) return s;
  // Files and the language: a kernel campaign's baseline must be runnable
  // by the harness of its device.
  const bool kernel = spec.task().empty() || spec.task() == "kernel";
  return CheckSolution(spec.baseline(), "baseline", spec.device(), /*required=*/kernel);
}

}  // namespace ratchet
