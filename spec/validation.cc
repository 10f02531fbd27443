#include "spec/validation.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
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
#include "common/languages.h"
#include "common/problem_check.h"
#include "spec/defaults.h"
#include "spec/knobs.h"
#include "spec/names.h"

namespace ratchet::spec {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

absl::Status Invalid(absl::string_view where, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
}

bool IsIdentifier(absl::string_view s) {
  if (s.empty() || absl::ascii_isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// What a string field may hold.
enum class Chars {
  kLine,  // one line: no control characters at all (names end up in logs,
          // file names and the `run.sh` that `ratchet export` writes)
  kText,  // file contents: anything but NUL
  kName,  // letters, digits, '-', '_' and '.' (the operator's endpoint names)
};

struct StringRule {
  size_t max_bytes;
  Chars chars;
  std::vector<std::string> one_of;  // empty: any value; "" always passes (default)
  const char* noun = nullptr;       // "unknown NOUN 'x'"; null: the field's last part
};

template <size_t N>
std::vector<std::string> Names(const char* const (&names)[N]) {
  return {std::begin(names), std::end(names)};
}

const std::map<std::string, StringRule>& StringRules() {
  static const auto* rules = new std::map<std::string, StringRule>{
      {"name", {kMaxNameBytes, Chars::kLine, {}}},
      // The enums' words, as the YAML writes them and as an enum value is
      // checked (Walk); the legacy strings of older clients that
      // UpgradeLegacyFields could not read get the same message.
      {"task", {16, Chars::kLine, SpecWords<v1::Task>()}},
      {"proposer", {16, Chars::kLine, SpecWords<v1::Proposer>()}},
      {"device", {16, Chars::kLine, SpecWords<v1::Device>()}},
      {"legacy_task", {16, Chars::kLine, SpecWords<v1::Task>(), "task"}},
      {"legacy_proposer", {16, Chars::kLine, SpecWords<v1::Proposer>(), "proposer"}},
      {"legacy_device", {16, Chars::kLine, SpecWords<v1::Device>(), "device"}},
      {"experience", {16, Chars::kLine, Names(kExperiences)}},
      {"gpu_model", {kMaxNameBytes, Chars::kLine, {}}},
      {"problem.name", {kMaxShortStringBytes, Chars::kLine, {}}},
      {"problem.definition_json", {kMaxDefinitionBytes, Chars::kText, {}}},
      {"problem.workload_jsonl", {kMaxWorkloadBytes, Chars::kText, {}}},
      {"harness.screen", {16, Chars::kLine, SpecWords<v1::Screen>()}},
      {"harness.legacy_screen", {16, Chars::kLine, SpecWords<v1::Screen>(), "screen"}},
      {"verification.tiers", {32, Chars::kLine, Names(kTiers), "tier"}},
      {"llm.base_url", {kMaxUrlBytes, Chars::kLine, {}}},
      {"llm.api_key_env", {kMaxNameBytes, Chars::kLine, {}}},
      {"llm.models.name", {kMaxShortStringBytes, Chars::kLine, {}}},
      {"llm.endpoint", {kMaxEndpointNameBytes, Chars::kName, {}}},
      {"owner", {kMaxShortStringBytes, Chars::kLine, {}}},
      {"training.data_dir", {kMaxOtherStringBytes, Chars::kLine, {}}},
      {"training.data_manifest_sha256", {64, Chars::kLine, {}}},
      {"training.editable", {kMaxFileNameBytes, Chars::kLine, {}}},
  };
  return *rules;
}

// "llm.models[0].weight" -> "llm.models.weight": the table's path.
std::string PathOf(absl::string_view field) {
  std::string path;
  int depth = 0;
  for (char c : field) {
    if (c == '[') ++depth;
    if (depth == 0) path += c;
    if (c == ']' && depth > 0) --depth;
  }
  return path;
}

bool IsCIdentifier(absl::string_view s) {
  if (s.empty() || !(absl::ascii_isalpha(s[0]) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return absl::ascii_isalnum(c) || c == '_'; });
}

// The rule `value` breaks, without the field's name (At adds it), or OK.
absl::Status StringProblem(absl::string_view value, size_t max_bytes, Chars chars) {
  if (value.size() > max_bytes)
    return absl::InvalidArgumentError(absl::StrCat(value.size(), " bytes; at most ", max_bytes));
  if (!IsValidUtf8(value)) return absl::InvalidArgumentError("not valid UTF-8");
  for (size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == 0) return absl::InvalidArgumentError(absl::StrCat("NUL byte at ", i));
    if (chars == Chars::kLine && (c < 0x20 || c == 0x7F))
      return absl::InvalidArgumentError(absl::StrCat("control character 0x",
                                                     absl::Hex(c, absl::kZeroPad2), " at byte ",
                                                     i, "; one line of text only"));
    if (chars == Chars::kName && !absl::ascii_isalnum(c) && c != '-' && c != '_' && c != '.')
      return absl::InvalidArgumentError(
          absl::StrCat("'", absl::CHexEscape(value.substr(0, 80)),
                       "' is not a name (letters, digits, '-', '_' and '.')"));
  }
  return absl::OkStatus();
}

// `s` with the field's place in front.
absl::Status At(absl::string_view where, const absl::Status& s) {
  return s.ok() ? s : Invalid(where, s.message());
}

std::string Range(const SpecBound& b, bool written) {
  auto num = [](double v) {  // whole numbers in full: 1000000, not 1e+06
    if (v >= 18446744073709551615.0) return absl::StrCat(std::numeric_limits<uint64_t>::max());
    if (v >= 0 && v == std::floor(v)) return absl::StrCat(static_cast<uint64_t>(v));
    return absl::StrCat(v);
  };
  return absl::StrCat(b.lo_open ? "(" : "[", num(b.lo), ", ", num(b.hi), b.hi_open ? ")" : "]",
                      b.zero_is_default && !written ? " (0 = default)" : "");
}

// The word of an enum value that a spec writes as a word (spec/names.h), so
// that it is checked by the word's rule; "" for other enums.
std::string WordOf(const google::protobuf::EnumDescriptor* type, int v) {
  if (type == v1::Task_descriptor()) return Name(static_cast<v1::Task>(v));
  if (type == v1::Proposer_descriptor()) return Name(static_cast<v1::Proposer>(v));
  if (type == v1::Device_descriptor()) return Name(static_cast<v1::Device>(v));
  if (type == v1::Screen_descriptor()) return Name(static_cast<v1::Screen>(v));
  return "";
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
          s = At(iwhere, CheckString(fpath, v));
          break;
        }
        case FieldDescriptor::CPPTYPE_INT32: {
          const int32_t v = rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
          s = At(iwhere, CheckNumber(fpath, v, absl::StrCat(v), false));
          break;
        }
        case FieldDescriptor::CPPTYPE_INT64: {
          const int64_t v = rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
          s = At(iwhere, CheckNumber(fpath, static_cast<double>(v), absl::StrCat(v), false));
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT32: {
          const uint32_t v = rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
          s = At(iwhere, CheckNumber(fpath, v, absl::StrCat(v), false));
          break;
        }
        case FieldDescriptor::CPPTYPE_UINT64: {
          const uint64_t v = rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
          s = At(iwhere, CheckNumber(fpath, static_cast<double>(v), absl::StrCat(v), false));
          break;
        }
        case FieldDescriptor::CPPTYPE_DOUBLE: {
          const double v = rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f);
          s = At(iwhere, CheckNumber(fpath, v, absl::StrCat(v), false));
          break;
        }
        case FieldDescriptor::CPPTYPE_FLOAT: {
          const float v = rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f);
          s = At(iwhere, CheckNumber(fpath, v, absl::StrCat(v), false));
          break;
        }
        case FieldDescriptor::CPPTYPE_BOOL:
          break;
        case FieldDescriptor::CPPTYPE_ENUM: {
          const int v = rep ? r->GetRepeatedEnumValue(m, f, i) : r->GetEnumValue(m, f);
          if (f->enum_type()->FindValueByNumber(v) == nullptr)
            s = Invalid(iwhere, absl::StrCat("unknown enum value ", v));
          else if (const std::string word = WordOf(f->enum_type(), v); !word.empty())
            s = At(iwhere, CheckString(fpath, word));
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
    if (auto s = At(at, StringProblem(value, kMaxShortStringBytes, Chars::kLine)); !s.ok())
      return s;
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
  if (path == "training.frozen") return absl::OkStatus();  // the coordinator's: refilled
  if (path == "baseline.knobs" || path == "replay.knobs") {
    // The typed view: the same map, without reflection.
    const auto* owner = m.GetDescriptor() == v1::Solution::descriptor()
                            ? &static_cast<const v1::Solution&>(m).knobs()
                            : &static_cast<const v1::KnobSetting&>(m).knobs();
    return CheckKnobs(*owner, where);
  }
  return Invalid(where, "map field has no validation rule");
}

// The files' names, sizes and text.
absl::Status CheckSolutionFiles(const v1::Solution& solution, const std::string& where) {
  if (solution.files().size() > kMaxSolutionFiles)
    return Invalid(where + ".files",
                   absl::StrCat(solution.files().size(), " files; at most ", kMaxSolutionFiles));
  size_t total = 0;
  for (const auto& [name, content] : solution.files()) {
    if (auto s = ValidateSolutionFileName(name); !s.ok())
      return Invalid(where + ".files", s.message());
    const std::string at = absl::StrCat(where, ".files[", name, "]");
    if (auto s = At(at, StringProblem(content, kMaxFileBytes, Chars::kText)); !s.ok()) return s;
    total += content.size();
  }
  if (total > kMaxSolutionBytes)
    return Invalid(where + ".files",
                   absl::StrCat(total, " bytes in all; at most ", kMaxSolutionBytes));
  return absl::OkStatus();
}

// The solution's files and what its solution.json says about them.
absl::Status CheckSolution(const v1::Solution& solution, const std::string& where, bool cuda,
                           bool required) {
  if (auto s = CheckSolutionFiles(solution, where); !s.ok()) return s;
  auto it = solution.files().find("solution.json");
  if (it == solution.files().end()) {
    if (required) return Invalid(where, "has no solution.json");
    return absl::OkStatus();
  }
  const std::string at = where + ".files[solution.json]";
  const nlohmann::json doc = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return Invalid(at, "not a JSON object");
  // What the harness of the campaign's device would refuse when it loads the
  // solution (kernels/harness/solution.cc), refused now: its language, from
  // the one table both read (common/languages.h), its sources, its
  // entry_point and its knobs.
  std::string l = DefaultSolutionLanguage(cuda);
  if (auto lang = doc.find("language"); lang != doc.end() && !lang->is_null()) {
    if (!lang->is_string()) return Invalid(at, "\"language\" must be a string");
    l = lang->get<std::string>();
  }
  if (!LanguageRunsOn(l, cuda)) {
    const SolutionLanguage* known = FindSolutionLanguage(l);
    return Invalid(at, absl::StrCat("language '", absl::CHexEscape(l.substr(0, 80)),
                                    "' is not run on device ", cuda ? "cuda" : "cpu",
                                    known != nullptr && known->cuda ? " (it launches GPU kernels: "
                                                                      "device: cuda)" : "",
                                    " (known: ", LanguagesOf(cuda), ")"));
  }
  const LanguageKind kind = FindSolutionLanguage(l)->kind;
  auto sources = doc.find("sources");
  if (sources == doc.end() || !sources->is_array() || sources->empty())
    return Invalid(at, "\"sources\" must be a non-empty list of file names");
  std::vector<std::string> source_names;
  for (size_t i = 0; i < sources->size(); ++i) {
    const auto& src = (*sources)[i];
    const std::string sat = absl::StrCat(at, ": sources[", i, "]");
    if (!src.is_string()) return Invalid(sat, "expected a file name");
    const std::string name = src.get<std::string>();
    if (auto s = ValidateSolutionFileName(name); !s.ok()) return Invalid(sat, s.message());
    if (solution.files().find(name) == solution.files().end())
      return Invalid(sat, absl::StrCat("'", name, "' is not one of the solution's files"));
    source_names.push_back(name);
  }
  if (kind != LanguageKind::kNative) {
    // The host calls FUNCTION of FILE, one of the sources.
    auto ep = doc.find("entry_point");
    if (ep == doc.end() || !ep->is_string())
      return Invalid(at, absl::StrCat("\"entry_point\" is required for language '", l,
                                      "': \"FILE::FUNCTION\""));
    const std::string e = ep->get<std::string>();
    const size_t sep = e.find("::");
    const std::string file = e.substr(0, sep == std::string::npos ? e.size() : sep);
    if (sep == std::string::npos || e.find("::", sep + 2) != std::string::npos ||
        file.empty() || !IsIdentifier(e.substr(sep + 2)))
      return Invalid(at, absl::StrCat("entry_point '", absl::CHexEscape(e.substr(0, 80)),
                                      "': expected \"FILE::FUNCTION\""));
    if (std::find(source_names.begin(), source_names.end(), file) == source_names.end())
      return Invalid(at, absl::StrCat("entry_point: '", absl::CHexEscape(file.substr(0, 80)),
                                      "' is not one of the sources"));
  }
  // Knob declarations as the harness reads them (that the solution sets only
  // declared ones, the coordinator checks as it makes them explicit).
  if (auto space = ParseKnobSpace(solution); !space.ok())
    return Invalid(at, space.status().message());
  return absl::OkStatus();
}

// A training campaign's project and rules (docs/training.md, "Campaigns").
absl::Status CheckTraining(const v1::CampaignSpec& spec) {
  if (auto s = CheckSolutionFiles(spec.baseline(), "baseline"); !s.ok()) return s;
  for (const char* needed : {"train.py", "model.py"})
    if (!spec.baseline().files().count(needed))
      return Invalid("baseline", absl::StrCat("has no ", needed,
                                              " (a training project: train.py, model.py)"));
  if (auto it = spec.baseline().files().find("solution.json");
      it != spec.baseline().files().end()) {
    const nlohmann::json doc =
        nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded() || !doc.is_object())
      return Invalid("baseline.files[solution.json]", "not a JSON object");
  }
  if (!spec.problem().definition_json().empty() || !spec.problem().workload_jsonl().empty())
    return Invalid("problem", "not used by a training campaign (its data is training.data_dir)");
  const v1::TrainingSettings& t = spec.training();
  if (t.data_dir().empty() || t.data_dir()[0] != '/')
    return Invalid("training.data_dir",
                   "missing or not absolute (a folder of ratchet data prepare on the workers)");
  if (!t.data_manifest_sha256().empty() &&
      (t.data_manifest_sha256().size() != 64 ||
       t.data_manifest_sha256().find_first_not_of("0123456789abcdef") != std::string::npos))
    return Invalid("training.data_manifest_sha256", "expected 64 lower-case hex digits");
  for (int i = 0; i < t.editable_size(); ++i) {
    const std::string& glob = t.editable(i);
    if (auto s = ValidateSolutionFileName(glob); !s.ok())
      return Invalid(absl::StrCat("training.editable[", i, "]"), s.message());
  }
  if (spec.task() == v1::TASK_TRAIN_BUDGET) {
    if (t.budget_seconds() <= 0)
      return Invalid("training.budget_seconds", "missing (train-budget trains for this long)");
    if (t.target_loss() != 0)
      return Invalid("training.target_loss", "only used with task: train-target");
  } else {
    if (t.target_loss() <= 0)
      return Invalid("training.target_loss",
                     "missing (train-target times the runs to this validation loss)");
    if (t.budget_seconds() != 0)
      return Invalid("training.budget_seconds",
                     "only used with task: train-budget (harness.timeout_seconds bounds a run)");
  }
  if (t.fidelities_size() > kMaxFidelities)
    return Invalid("training.fidelities",
                   absl::StrCat(t.fidelities_size(), " fidelities; at most ", kMaxFidelities));
  for (int i = 1; i < t.fidelities_size(); ++i)
    if (t.fidelities(i) <= t.fidelities(i - 1))
      return Invalid(absl::StrCat("training.fidelities[", i, "]"),
                     "fidelities must rise (e.g. [0.25, 1])");
  if (t.fidelities_size() > 0 && t.fidelities(t.fidelities_size() - 1) != 1)
    return Invalid("training.fidelities", "the last fidelity must be 1 (the full budget)");
  if (spec.task() == v1::TASK_TRAIN_TARGET && t.fidelities_size() > 1)
    return Invalid("training.fidelities",
                   "train-budget only (a train-target run trains until it stops)");
  if (spec.task() == v1::TASK_TRAIN_TARGET && spec.verification().replays() == 1)
    return Invalid("verification.replays",
                   "train-target needs at least 2 replays (the t-test of the target loss)");
  if (spec.device() == v1::DEVICE_CUDA && spec.gpus() > 0 && t.nproc() != spec.gpus())
    return Invalid("training.nproc", absl::StrCat(t.nproc(), " processes on ", spec.gpus(),
                                                  " GPUs: one process per GPU"));
  if (spec.proposer() == v1::PROPOSER_LLM && t.editable_size() == 0)
    return Invalid("training.editable", "empty: the llm proposer edits files, and none may change");
  return absl::OkStatus();
}

// The llm section's rules beyond the bounds of its fields.
absl::Status CheckLlmSection(const v1::LlmSettings& llm) {
  // A spec must not choose where the coordinator connects or which of its
  // secrets it sends there: that is the operator's (docs/llm.md).
  constexpr char kUseEndpoint[] =
      "not allowed in a campaign spec; name an LLM endpoint configured by the "
      "coordinator's operator instead (llm.endpoint: NAME; docs/llm.md)";
  if (!llm.base_url().empty()) return Invalid("llm.base_url", kUseEndpoint);
  if (!llm.api_key_env().empty()) return Invalid("llm.api_key_env", kUseEndpoint);
  if (llm.endpoint().empty())
    return Invalid("llm.endpoint",
                   "missing (the name of an LLM endpoint configured by the coordinator's "
                   "operator, e.g. local-vllm; docs/llm.md)");
  for (int i = 0; i < llm.models_size(); ++i)
    if (llm.models(i).name().empty())
      return Invalid(absl::StrCat("llm.models[", i, "].name"),
                     "missing (the model's name on the endpoint)");
  return absl::OkStatus();
}

}  // namespace

const std::vector<SpecBound>& CampaignSpecBounds() {
  // Generous for real campaigns (the demo: 2 threads, 40 evaluations,
  // 12 repetitions, 90 s), small enough that one request cannot queue a
  // million jobs or hold a worker for days. Replays stay at the cap of
  // kMaxReplaysPerSide a side. Where 0 is proto3's "unset" and not a setting
  // of its own, it passes as the default (spec/defaults.h).
  static const auto* bounds = new std::vector<SpecBound>{
      // CampaignSpec
      {"threads", 1, 64, false, false, true},
      {"seed", 0, 18446744073709551615.0},
      {"in_flight_per_thread", 1, 16, false, false, true},
      {"migrate_every", 0, 1'000'000},
      {"merge_every", 0, 1'000'000},
      {"tournament_size", 0, 1000},
      {"weight", 0, 1000, true, false, true},
      {"gpus", 1, 64, false, false, true},
      {"sleep_ms", 0, 3'600'000},
      // Budget
      {"budget.max_evaluations", 1, 100'000, false, false, true},
      {"budget.max_wall_seconds", 0, 30 * 86400.0},
      {"budget.max_gpu_seconds", 0, 1e7},
      // VerificationPolicy
      {"verification.replays", 1, kMaxReplaysPerSide, false, false, true},
      {"verification.min_gain", 0, 10},
      {"verification.significance", 0, 0.5, true, true, true},
      {"verification.timing_tolerance", 0, 10, true, false, true},
      {"verification.noise_sigmas", 0, 100, true, false, true},
      {"verification.max_replays", 1, kMaxReplaysPerSide, false, false, true},
      // HarnessSettings
      {"harness.warmups", 1, 1000, false, false, true},
      {"harness.repetitions", 1, 10'000, false, false, true},
      {"harness.correctness_rounds", 1, 100, false, false, true},
      {"harness.timeout_seconds", 0, 86400, true, false, true},
      // LlmSettings
      {"llm.models.weight", 0, 1e6, true, false, true},
      {"llm.models.prompt_price_per_1k", 0, 1000},
      {"llm.models.completion_price_per_1k", 0, 1000},
      {"llm.temperature", 0, 2},
      {"llm.max_tokens", 1, 1'000'000, false, false, true},
      {"llm.timeout_seconds", 0, 3600, true, false, true},
      {"llm.max_retries", 0, 20},
      {"llm.max_concurrency", 1, 256, false, false, true},
      {"llm.max_cost_usd", 0, 1e6},
      {"llm.merge_every", 0, 1'000'000},
      // TrainingSettings (docs/training.md)
      {"training.budget_seconds", 0, 7 * 86400.0, true},
      {"training.max_steps", 0, 1e9},
      {"training.target_loss", 0, 100, true},
      {"training.nproc", 1, 64, false, false, true},
      {"training.warmup_allowance_seconds", 0, 3600},
      {"training.grace_seconds", 0, 600, true, false, true},
      {"training.eval_windows", 1, 1'000'000, false, false, true},
      {"training.eval_seq_len", 1, 65536, false, false, true},
      {"training.eval_seed", 1, 1e9, false, false, true},
      {"training.fidelities", 0, 1, true},
      {"training.halving", 2, 16, false, false, true},
  };
  return *bounds;
}

absl::Status ValidateEndpointName(absl::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("an endpoint name is not empty");
  return StringProblem(name, kMaxEndpointNameBytes, Chars::kName);
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
  if (static_cast<size_t>(spec.verification().tiers_size()) > kMaxTierEntries)
    return Invalid("verification.tiers", absl::StrCat(spec.verification().tiers_size(),
                                                      " tiers; at most ", kMaxTierEntries));
  if (auto s = Walk(spec, "", ""); !s.ok()) return s;
  // Settings that only one device, task or proposer uses: refused with the
  // others, so that a typo cannot silently ignore them.
  const bool cuda = spec.device() == v1::DEVICE_CUDA;
  if (spec.gpus() > 0 && !cuda) return Invalid("gpus", "needs device: cuda");
  if (!spec.gpu_model().empty() && !cuda) return Invalid("gpu_model", "needs device: cuda");
  const bool kernel = spec.task() == v1::TASK_UNSPECIFIED || spec.task() == v1::TASK_KERNEL;
  if (spec.sleep_ms() > 0 && spec.task() != v1::TASK_SLEEP)
    return Invalid("sleep_ms", "only used with task: sleep");
  if (spec.proposer() == v1::PROPOSER_LLM) {
    if (auto s = CheckLlmSection(spec.llm()); !s.ok()) return s;
  } else if (spec.llm().ByteSizeLong() > 0) {
    return Invalid("llm", "only used with proposer: llm");
  }
  if (spec.replay_size() > 0 && spec.proposer() != v1::PROPOSER_REPLAY)
    return Invalid("replay", "only used with proposer: replay");
  if (IsTraining(spec.task())) return CheckTraining(spec);
  if (spec.training().ByteSizeLong() > 0)
    return Invalid("training", "only used with task: train-budget or train-target");
  if (!kernel) return absl::OkStatus();
  // A kernel campaign's problem, and its baseline runnable by the harness of
  // its device.
  if (spec.problem().definition_json().empty())
    return Invalid("problem.definition_json", "missing (a kernel campaign's problem)");
  if (spec.problem().workload_jsonl().empty())
    return Invalid("problem.workload_jsonl", "missing (a kernel campaign's workloads)");
  // Parsed with the harness's own reader, every workload line, each tensor
  // bounded (common/problem_check.h): a malformed problem is refused here,
  // not on every worker it reaches.
  if (ProblemCheck check = RegisteredProblemCheck(); check != nullptr) {
    if (auto s = check(spec.problem().definition_json(), spec.problem().workload_jsonl());
        !s.ok())
      return Invalid("problem", s.message());
  }
  return CheckSolution(spec.baseline(), "baseline", cuda, /*required=*/true);
}

absl::Status ValidateLlmSettings(const v1::LlmSettings& llm) {
  if (static_cast<size_t>(llm.models_size()) > kMaxLlmModels)
    return Invalid("llm.models",
                   absl::StrCat(llm.models_size(), " models; at most ", kMaxLlmModels));
  if (auto s = Walk(llm, "llm", "llm"); !s.ok()) return s;
  return CheckLlmSection(llm);
}

absl::Status CheckNumber(absl::string_view field, double value, absl::string_view text,
                         bool written) {
  const std::string path = PathOf(field);
  const auto& bounds = CampaignSpecBounds();
  auto it = std::find_if(bounds.begin(), bounds.end(),
                         [&](const SpecBound& b) { return path == b.path; });
  // Every number has a bound (spec_validation_test checks the table against
  // the proto); one added without is refused until it gets one.
  if (it == bounds.end()) return absl::InvalidArgumentError("no bound is known for this field");
  const SpecBound& b = *it;
  if (!std::isfinite(value))
    return absl::InvalidArgumentError(absl::StrCat(text, " is not a finite number"));
  if (b.zero_is_default && value == 0 && !written) return absl::OkStatus();
  const bool low = b.lo_open ? value <= b.lo : value < b.lo;
  const bool high = b.hi_open ? value >= b.hi : value > b.hi;
  if (low || high)
    return absl::InvalidArgumentError(
        absl::StrCat(text, " is out of range ", Range(b, written)));
  return absl::OkStatus();
}

absl::Status CheckString(absl::string_view field, absl::string_view value) {
  auto rule = StringRules().find(PathOf(field));
  if (rule == StringRules().end()) return StringProblem(value, kMaxOtherStringBytes, Chars::kText);
  const StringRule& r = rule->second;
  if (auto s = StringProblem(value, r.max_bytes, r.chars); !s.ok()) return s;
  if (r.one_of.empty() || value.empty() ||
      std::find(r.one_of.begin(), r.one_of.end(), value) != r.one_of.end())
    return absl::OkStatus();
  const std::string path = rule->first;
  const std::string noun = r.noun != nullptr ? r.noun : path.substr(path.rfind('.') + 1);
  return absl::InvalidArgumentError(absl::StrCat("unknown ", noun, " '",
                                                 absl::CHexEscape(value.substr(0, 80)),
                                                 "' (known: ", absl::StrJoin(r.one_of, ", "),
                                                 ")"));
}

}  // namespace ratchet::spec
