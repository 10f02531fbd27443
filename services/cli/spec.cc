#include "services/cli/spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "coordinator/proposers/knob_space.h"
#include "coordinator/spec_validation.h"
#include "nlohmann/json.hpp"
#include "services/verifier/verdict.h"
#include "yaml-cpp/yaml.h"

namespace ratchet::cli {
namespace {

namespace fs = std::filesystem;
using ratchet::v1::CampaignSpec;

const std::vector<std::string> kTopKeys = {
    "name",     "task",   "problem", "baseline",     "threads", "proposer",
    "seed",     "budget", "verification", "harness", "device",  "in_flight_per_thread",
    "llm",      "replay",
    // Research loop (docs/research.md).
    "migrate_every", "merge_every", "tournament_size", "experience"};
const std::vector<std::string> kBudgetKeys = {"max_evaluations", "max_wall_seconds",
                                              "max_gpu_seconds"};
const std::vector<std::string> kVerificationKeys = {
    "replays", "min_gain", "significance", "tiers", "timing_tolerance", "noise_sigmas",
    "max_replays"};
// docs/verifier.md, "Tiers": guards and replay always run.
const std::vector<std::string> kVerificationTiers(std::begin(verifier::kTiers),
                                                  std::end(verifier::kTiers));
const std::vector<std::string> kHarnessKeys = {"warmups", "repetitions", "correctness_rounds",
                                               "timeout_seconds", "screen"};
// The cascade's screen stage (docs/harness.md, "The screen").
const std::vector<std::string> kScreenModes = {"auto", "on", "off"};
// "sleep": jobs that only sleep, for load tests of the coordinator
// (docs/cluster.md); no problem or baseline.
const std::vector<std::string> kTasks = {"kernel", "sleep"};
const std::vector<std::string> kProposers = {"evolve", "random", "grid", "replay", "llm"};
// base_url and api_key_env are known only to be refused with a reason.
const std::vector<std::string> kLlmKeys = {
    "endpoint",    "base_url",        "api_key_env",  "models",      "temperature",
    "max_tokens",  "timeout_seconds", "max_retries",  "max_concurrency",
    "max_cost_usd", "merge_every"};
const std::vector<std::string> kLlmModelKeys = {"name", "weight", "prompt_price_per_1k",
                                                "completion_price_per_1k"};
const std::vector<std::string> kDevices = {"cpu", "cuda"};
// Scheduling among campaigns (docs/cluster.md, "Scheduling").
const std::vector<std::string> kSchedulingKeys = {"weight", "gpu_model", "gpus", "sleep_ms"};

// At most `max_bytes` (the validator's limit for what is read): a spec that
// names /dev/zero or a huge file fails at once instead of filling memory.
absl::StatusOr<std::string> ReadFile(const fs::path& path, size_t max_bytes = kMaxFileBytes) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a regular file"));
  if (const auto size = fs::file_size(path, ec); !ec && size > max_bytes)
    return absl::InvalidArgumentError(
        absl::StrCat(path.string(), ": ", size, " bytes; at most ", max_bytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot read file"));
  std::ostringstream out;
  out << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path.string(), ": read error"));
  return out.str();
}

// Protobuf `string` fields must hold UTF-8; a binary file would make the
// whole request unparseable at the coordinator, so reject it here by name.
bool IsUtf8Text(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    if (c == 0) return false;
    int extra;
    if (c < 0x80) extra = 0;
    else if ((c >> 5) == 0x6) extra = 1;
    else if ((c >> 4) == 0xE) extra = 2;
    else if ((c >> 3) == 0x1E) extra = 3;
    else return false;
    if (i + extra >= s.size() && extra > 0) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += extra + 1;
  }
  return true;
}

// Reads keys of one YAML map, remembering where each came from so errors can
// point at "file:line: key".
class SpecReader {
 public:
  explicit SpecReader(std::string file) : file_(std::move(file)) {}

  std::string Where(const YAML::Node& node, const std::string& key) const {
    int line = node.Mark().line;
    if (line >= 0) return absl::StrCat(file_, ":", line + 1, ": ", key);
    return absl::StrCat(file_, ": ", key);
  }

  absl::Status Error(const YAML::Node& node, const std::string& key,
                     const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(Where(node, key), ": ", what));
  }

  // Every key of `map` must be in `known`.
  absl::Status CheckKeys(const YAML::Node& map, const std::string& prefix,
                         const std::vector<std::string>& known) const {
    for (const auto& kv : map) {
      if (!kv.first.IsScalar()) return Error(kv.first, prefix + "?", "keys must be plain names");
      std::string key = kv.first.Scalar();
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        return Error(kv.first, prefix + key,
                     absl::StrCat("unknown key (known: ", absl::StrJoin(known, ", "), ")"));
      }
    }
    return absl::OkStatus();
  }

  absl::Status GetString(const YAML::Node& map, const std::string& prefix,
                         const std::string& key, std::string* out) const {
    YAML::Node node = map[key];
    if (!node.IsDefined()) return absl::OkStatus();
    if (!node.IsScalar()) return Error(node, prefix + key, "expected a string, got " + Kind(node));
    *out = node.Scalar();
    return absl::OkStatus();
  }

  absl::Status GetInt(const YAML::Node& map, const std::string& prefix, const std::string& key,
                      long long min, long long* out) const {
    YAML::Node node = map[key];
    if (!node.IsDefined()) return absl::OkStatus();
    long long v;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &v)) {
      return Error(node, prefix + key, "expected an integer, got " + Kind(node));
    }
    if (v < min) {
      return Error(node, prefix + key, absl::StrCat("must be at least ", min, ", got ", v));
    }
    *out = v;
    return absl::OkStatus();
  }

  absl::Status GetDouble(const YAML::Node& map, const std::string& prefix, const std::string& key,
                         double min, bool min_exclusive, double* out) const {
    YAML::Node node = map[key];
    if (!node.IsDefined()) return absl::OkStatus();
    double v;
    if (!node.IsScalar() || !absl::SimpleAtod(node.Scalar(), &v) || !std::isfinite(v)) {
      return Error(node, prefix + key, "expected a number, got " + Kind(node));
    }
    if (min_exclusive ? v <= min : v < min) {
      return Error(node, prefix + key,
                   absl::StrCat("must be ", min_exclusive ? "greater than " : "at least ", min,
                                ", got ", node.Scalar()));
    }
    *out = v;
    return absl::OkStatus();
  }

  // A nested map such as `budget:`; absent is fine (all defaults).
  absl::StatusOr<YAML::Node> GetMap(const YAML::Node& map, const std::string& key,
                                    const std::vector<std::string>& known) const {
    YAML::Node node = map[key];
    if (!node.IsDefined()) return YAML::Node(YAML::NodeType::Map);
    if (!node.IsMap()) {
      return Error(node, key,
                   absl::StrCat("expected a map with keys ", absl::StrJoin(known, ", "), ", got ",
                                Kind(node)));
    }
    absl::Status s = CheckKeys(node, key + ".", known);
    if (!s.ok()) return s;
    return node;
  }

  static std::string Kind(const YAML::Node& node) {
    switch (node.Type()) {
      case YAML::NodeType::Null: return "nothing";
      case YAML::NodeType::Sequence: return "a list";
      case YAML::NodeType::Map: return "a map";
      case YAML::NodeType::Scalar: return "'" + node.Scalar() + "'";
      default: return "nothing";
    }
  }

 private:
  std::string file_;
};

absl::Status ReadProblem(const fs::path& dir, const std::string& where,
                         ratchet::v1::Problem* problem) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(where, ": problem folder ", dir.string(),
                                            " does not exist"));
  }
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": problem ", dir.string(), " is not a folder"));
  }
  fs::path def_path = dir / "definition.json";
  if (!fs::is_regular_file(def_path, ec)) {
    return absl::NotFoundError(absl::StrCat(where, ": problem folder ", dir.string(),
                                            " has no definition.json"));
  }
  fs::path wl_path = dir / "workload.jsonl";
  if (!fs::is_regular_file(wl_path, ec)) {
    return absl::NotFoundError(absl::StrCat(where, ": problem folder ", dir.string(),
                                            " has no workload.jsonl"));
  }
  absl::StatusOr<std::string> def = ReadFile(def_path, kMaxDefinitionBytes);
  if (!def.ok()) return def.status();
  absl::StatusOr<std::string> wl = ReadFile(wl_path, kMaxWorkloadBytes);
  if (!wl.ok()) return wl.status();

  nlohmann::json json = nlohmann::json::parse(*def, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(def_path.string(), ": not valid JSON"));
  }
  if (!json.is_object() || !json.contains("name") || !json["name"].is_string() ||
      json["name"].get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(def_path.string(), ": needs a non-empty string \"name\""));
  }
  // Each workload line must at least be a JSON object; the harness checks
  // the rest, but a broken line is easiest to fix when named here.
  int line_no = 0, workloads = 0;
  for (absl::string_view line : absl::StrSplit(*wl, '\n')) {
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    nlohmann::json w = nlohmann::json::parse(line, nullptr, false);
    if (w.is_discarded() || !w.is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(wl_path.string(), ":", line_no, ": not a JSON object"));
    }
    ++workloads;
  }
  if (workloads == 0) {
    return absl::InvalidArgumentError(absl::StrCat(wl_path.string(), ": has no workloads"));
  }
  problem->set_name(json["name"].get<std::string>());
  problem->set_definition_json(*std::move(def));
  problem->set_workload_jsonl(*std::move(wl));
  return absl::OkStatus();
}

absl::Status ReadSolution(const fs::path& dir, const std::string& where,
                          ratchet::v1::Solution* solution) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(where, ": baseline folder ", dir.string(),
                                            " does not exist"));
  }
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": baseline ", dir.string(), " is not a folder"));
  }
  fs::path sol_path = dir / "solution.json";
  if (!fs::is_regular_file(sol_path, ec)) {
    return absl::NotFoundError(absl::StrCat(where, ": baseline folder ", dir.string(),
                                            " has no solution.json"));
  }
  // Sorted so that the files (and the content hash) do not depend on
  // directory order.
  std::vector<fs::path> paths;
  size_t entries = 0;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    // A folder with more than a solution's files (a home folder, "/") is
    // refused before it is walked to the end.
    if (++entries > 16 * kMaxSolutionFiles || paths.size() > kMaxSolutionFiles)
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": baseline folder ", dir.string(), " holds more than ",
                       kMaxSolutionFiles, " files (a solution folder holds its sources)"));
    const std::string name = it->path().filename().string();
    // Hidden entries (.git, editor swap files) are not part of a solution.
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) paths.push_back(it->path());
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": cannot list ", dir.string(), ": ", ec.message()));
  }
  std::sort(paths.begin(), paths.end());
  for (const fs::path& p : paths) {
    absl::StatusOr<std::string> content = ReadFile(p);
    if (!content.ok()) return content.status();
    if (!IsUtf8Text(*content)) {
      return absl::InvalidArgumentError(absl::StrCat(
          p.string(), ": not a UTF-8 text file; solutions carry source text only"));
    }
    (*solution->mutable_files())[fs::relative(p, dir).generic_string()] = *std::move(content);
  }
  nlohmann::json json =
      nlohmann::json::parse(solution->files().at("solution.json"), nullptr, false);
  if (json.is_discarded() || !json.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(sol_path.string(), ": not a valid JSON object"));
  }
  return absl::OkStatus();
}

// `llm:` — how the llm proposer reaches its model (docs/llm.md).
absl::Status ReadLlm(const SpecReader& r, const YAML::Node& root, ratchet::v1::LlmSettings* out) {
  absl::StatusOr<YAML::Node> llm = r.GetMap(root, "llm", kLlmKeys);
  if (!llm.ok()) return llm.status();
  const YAML::Node& n = *llm;
  // Where the coordinator connects, and with which of its secrets, is its
  // operator's choice (docs/llm.md), never a submitter's.
  for (const char* key : {"base_url", "api_key_env"})
    if (n[key].IsDefined())
      return r.Error(n[key], absl::StrCat("llm.", key),
                     "not allowed in a campaign spec; name an LLM endpoint configured by the "
                     "coordinator's operator instead (endpoint: NAME; docs/llm.md)");
  std::string endpoint;
  long long max_tokens = kDefaultLlmMaxTokens, max_retries = kDefaultLlmMaxRetries,
            max_concurrency = kDefaultLlmMaxConcurrency, merge_every = 0;
  double temperature = kDefaultLlmTemperature, timeout = kDefaultLlmTimeoutSeconds,
         max_cost = 0;
  for (absl::Status st : {
           r.GetString(n, "llm.", "endpoint", &endpoint),
           r.GetDouble(n, "llm.", "temperature", 0, false, &temperature),
           r.GetInt(n, "llm.", "max_tokens", 1, &max_tokens),
           r.GetDouble(n, "llm.", "timeout_seconds", 0, true, &timeout),
           r.GetInt(n, "llm.", "max_retries", 0, &max_retries),
           r.GetInt(n, "llm.", "max_concurrency", 1, &max_concurrency),
           r.GetDouble(n, "llm.", "max_cost_usd", 0, false, &max_cost),
           r.GetInt(n, "llm.", "merge_every", 0, &merge_every),
       }) {
    if (!st.ok()) return st;
  }
  if (endpoint.empty())
    return r.Error(n, "llm.endpoint",
                   "missing (the name of an LLM endpoint configured on the coordinator, "
                   "e.g. local-vllm)");
  if (temperature > 2)
    return r.Error(n["temperature"], "llm.temperature",
                   absl::StrCat("must be at most 2, got ", temperature));
  for (auto [key, v, max] : {std::tuple<const char*, long long, long long>{
                                 "max_tokens", max_tokens, 1'000'000},
                             {"max_retries", max_retries, 20},
                             {"max_concurrency", max_concurrency, 256},
                             {"merge_every", merge_every, 1'000'000}}) {
    if (v > max)
      return r.Error(n[key], absl::StrCat("llm.", key),
                     absl::StrCat("must be at most ", max, ", got ", v));
  }
  // No models: the endpoint's default model.
  YAML::Node models = n["models"];
  if (models.IsDefined() && (!models.IsSequence() || models.size() == 0))
    return r.Error(models, "llm.models",
                   "expected a non-empty list of models, e.g. [{name: qwen2.5-coder-32b}]");
  for (size_t i = 0; models.IsDefined() && i < models.size(); ++i) {
    const YAML::Node m = models[i];
    const std::string prefix = absl::StrCat("llm.models[", i, "].");
    ratchet::v1::LlmModel* model = out->add_models();
    if (m.IsScalar()) {  // a bare name: weight 1, free
      model->set_name(m.Scalar());
      model->set_weight(1);
      continue;
    }
    if (!m.IsMap())
      return r.Error(m, prefix.substr(0, prefix.size() - 1),
                     "expected a model name or a map with keys " +
                         absl::StrJoin(kLlmModelKeys, ", "));
    if (absl::Status s = r.CheckKeys(m, prefix, kLlmModelKeys); !s.ok()) return s;
    std::string name;
    double weight = 1, prompt_price = 0, completion_price = 0;
    for (absl::Status st : {
             r.GetString(m, prefix, "name", &name),
             r.GetDouble(m, prefix, "weight", 0, true, &weight),
             r.GetDouble(m, prefix, "prompt_price_per_1k", 0, false, &prompt_price),
             r.GetDouble(m, prefix, "completion_price_per_1k", 0, false, &completion_price),
         }) {
      if (!st.ok()) return st;
    }
    if (name.empty()) return r.Error(m, prefix + "name", "missing (the model's name on the server)");
    model->set_name(name);
    model->set_weight(weight);
    model->set_prompt_price_per_1k(prompt_price);
    model->set_completion_price_per_1k(completion_price);
  }
  out->set_endpoint(endpoint);
  out->set_temperature(temperature);
  out->set_max_tokens(static_cast<int32_t>(max_tokens));
  out->set_timeout_seconds(timeout);
  out->set_max_retries(static_cast<int32_t>(max_retries));
  out->set_max_concurrency(static_cast<int32_t>(max_concurrency));
  out->set_max_cost_usd(max_cost);
  out->set_merge_every(static_cast<int32_t>(merge_every));
  return absl::OkStatus();
}

// `replay:` — the knob settings the replay proposer tries, in order.
absl::Status ReadReplay(const SpecReader& r, const YAML::Node& root,
                        ratchet::v1::CampaignSpec* spec) {
  YAML::Node list = root["replay"];
  if (!list.IsSequence() || list.size() == 0)
    return r.Error(list, "replay",
                   "expected a non-empty list of knob settings, e.g. [{VEC: 8, UNROLL: 4}]");
  // The coordinator checks the settings against the same space.
  absl::StatusOr<proposers::KnobSpace> space = proposers::ParseKnobSpace(spec->baseline());
  if (!space.ok())
    return r.Error(list, "replay", absl::StrCat("the baseline's knobs: ", space.status().message()));
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node entry = list[i];
    const std::string where = absl::StrCat("replay[", i, "]");
    if (!entry.IsMap())
      return r.Error(entry, where, "expected a map of knob: value, got " + SpecReader::Kind(entry));
    ratchet::v1::KnobSetting* setting = spec->add_replay();
    for (const auto& kv : entry) {
      const std::string name = kv.first.Scalar();
      if (!kv.second.IsScalar())
        return r.Error(kv.second, where + "." + name, "expected a value, got " +
                                                          SpecReader::Kind(kv.second));
      const std::string value = kv.second.Scalar();
      const proposers::Knob* knob = space->Find(name);
      if (knob == nullptr)
        return r.Error(kv.first, where + "." + name, "the baseline declares no such knob");
      if (std::find(knob->choices.begin(), knob->choices.end(), value) == knob->choices.end())
        return r.Error(kv.second, where + "." + name,
                       absl::StrCat(value, " is not one of its choices (",
                                    absl::StrJoin(knob->choices, ", "), ")"));
      (*setting->mutable_knobs())[name] = value;
    }
  }
  return absl::OkStatus();
}

// yaml-cpp keeps every pair of a map and answers a lookup with the first,
// so `threads: 1` followed by `threads: 64` would silently read as 1. Every
// map of the document is walked; aliases are nodes seen again, so the walk
// is bounded in depth and in nodes (a "billion laughs" document is refused
// rather than expanded).
class DuplicateKeyCheck {
 public:
  explicit DuplicateKeyCheck(std::string file) : file_(std::move(file)) {}

  absl::Status Check(const YAML::Node& node, int depth = 0) {
    if (++visited_ > kMaxNodes)
      return absl::InvalidArgumentError(
          absl::StrCat(file_, ": more than ", kMaxNodes, " YAML nodes (aliases included)"));
    if (depth > kMaxDepth)
      return absl::InvalidArgumentError(absl::StrCat(file_, ":", node.Mark().line + 1,
                                                     ": nested more than ", kMaxDepth, " deep"));
    if (node.IsMap()) {
      std::map<std::string, int> seen;  // key -> 1-based line
      for (const auto& kv : node) {
        if (kv.first.IsScalar()) {
          const int line = kv.first.Mark().line + 1;
          auto [it, inserted] = seen.emplace(kv.first.Scalar(), line);
          if (!inserted)
            return absl::InvalidArgumentError(
                absl::StrCat(file_, ":", line, ": ", kv.first.Scalar(),
                             ": duplicate key (first at line ", it->second, ")"));
        }
        if (absl::Status s = Check(kv.first, depth + 1); !s.ok()) return s;
        if (absl::Status s = Check(kv.second, depth + 1); !s.ok()) return s;
      }
    } else if (node.IsSequence()) {
      for (const auto& item : node)
        if (absl::Status s = Check(item, depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  static constexpr int kMaxDepth = 32;
  static constexpr int kMaxNodes = 100'000;
  std::string file_;
  int visited_ = 0;
};

absl::StatusOr<CampaignSpec> ParseUnvalidated(const std::string& yaml_text,
                                              const std::string& yaml_path) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(yaml_path, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        yaml_path, ": expected a map of settings (name, task, problem, baseline, ...)"));
  }
  if (absl::Status s = DuplicateKeyCheck(yaml_path).Check(root); !s.ok()) return s;
  SpecReader r(yaml_path);
  std::vector<std::string> top_keys = kTopKeys;
  top_keys.insert(top_keys.end(), kSchedulingKeys.begin(), kSchedulingKeys.end());
  absl::Status s = r.CheckKeys(root, "", top_keys);
  if (!s.ok()) return s;

  CampaignSpec spec;
  std::string name = fs::path(yaml_path).stem().string();
  std::string task = kDefaultTask, proposer = kDefaultProposer, device = kDefaultDevice;
  std::string problem, baseline;
  long long threads = kDefaultThreads, seed = kDefaultSeed,
            in_flight = kDefaultInFlightPerThread;
  long long max_evaluations = kDefaultMaxEvaluations, replays = kDefaultReplays,
            warmups = kDefaultWarmups, repetitions = kDefaultRepetitions,
            correctness_rounds = kDefaultCorrectnessRounds;
  double max_wall = kDefaultMaxWallSeconds, min_gain = kDefaultMinGain,
         significance = kDefaultSignificance,
         timeout = kDefaultTimeoutSeconds;
  // 0 leaves the coordinator's default (docs/verifier.md, "Policy").
  double timing_tolerance = 0, noise_sigmas = 0;
  long long max_replays = 0;
  std::string screen = kDefaultScreen;

  // `value` of map[key] (prefix: the map's place, e.g. "harness.") must be in `allowed`.
  auto one_of_in = [&](const YAML::Node& map, const std::string& prefix, const std::string& key,
                       const std::string& value,
                       const std::vector<std::string>& allowed) -> absl::Status {
    if (std::find(allowed.begin(), allowed.end(), value) != allowed.end())
      return absl::OkStatus();
    return r.Error(map[key], prefix + key,
                   absl::StrCat("unknown ", key, " '", value, "' (known: ",
                                absl::StrJoin(allowed, ", "), ")"));
  };
  auto one_of = [&](const std::string& key, const std::string& value,
                    const std::vector<std::string>& allowed) {
    return one_of_in(root, "", key, value, allowed);
  };

  absl::StatusOr<YAML::Node> budget = r.GetMap(root, "budget", kBudgetKeys);
  if (!budget.ok()) return budget.status();
  absl::StatusOr<YAML::Node> verification = r.GetMap(root, "verification", kVerificationKeys);
  if (!verification.ok()) return verification.status();
  absl::StatusOr<YAML::Node> harness = r.GetMap(root, "harness", kHarnessKeys);
  if (!harness.ok()) return harness.status();

  for (absl::Status st : {
           r.GetString(root, "", "name", &name),
           r.GetString(root, "", "task", &task),
           r.GetString(root, "", "problem", &problem),
           r.GetString(root, "", "baseline", &baseline),
           r.GetInt(root, "", "threads", 1, &threads),
           r.GetString(root, "", "proposer", &proposer),
           r.GetInt(root, "", "seed", 0, &seed),
           r.GetString(root, "", "device", &device),
           r.GetInt(root, "", "in_flight_per_thread", 1, &in_flight),
           r.GetInt(*budget, "budget.", "max_evaluations", 1, &max_evaluations),
           r.GetDouble(*budget, "budget.", "max_wall_seconds", 0, false, &max_wall),
           r.GetInt(*verification, "verification.", "replays", 1, &replays),
           r.GetDouble(*verification, "verification.", "min_gain", 0, false, &min_gain),
           r.GetDouble(*verification, "verification.", "significance", 0, true, &significance),
           r.GetDouble(*verification, "verification.", "timing_tolerance", 0, true,
                       &timing_tolerance),
           r.GetDouble(*verification, "verification.", "noise_sigmas", 0, false, &noise_sigmas),
           r.GetInt(*verification, "verification.", "max_replays", 1, &max_replays),
           r.GetInt(*harness, "harness.", "warmups", 0, &warmups),
           r.GetInt(*harness, "harness.", "repetitions", 1, &repetitions),
           r.GetInt(*harness, "harness.", "correctness_rounds", 1, &correctness_rounds),
           r.GetDouble(*harness, "harness.", "timeout_seconds", 0, true, &timeout),
           r.GetString(*harness, "harness.", "screen", &screen),
       }) {
    if (!st.ok()) return st;
  }
  for (absl::Status st : {one_of("task", task, kTasks), one_of("proposer", proposer, kProposers),
                          one_of("device", device, kDevices),
                          one_of_in(*harness, "harness.", "screen", screen, kScreenModes)}) {
    if (!st.ok()) return st;
  }
  if (name.empty()) return r.Error(root["name"], "name", "must not be empty");
  // A one-sided test at 0.5 or above accepts a coin flip.
  if (significance >= 0.5)
    return r.Error((*verification)["significance"], "verification.significance",
                   absl::StrCat("must be below 0.5, got ", significance));
  // Tiers: a list of known names; guards and replay run whatever it says.
  std::vector<std::string> tiers;
  if (YAML::Node t = (*verification)["tiers"]; t.IsDefined()) {
    if (!t.IsSequence())
      return r.Error(t, "verification.tiers",
                     absl::StrCat("expected a list of tiers (", absl::StrJoin(kVerificationTiers, ", "),
                                  "), got ", SpecReader::Kind(t)));
    for (const auto& item : t) {
      if (!item.IsScalar() || std::find(kVerificationTiers.begin(), kVerificationTiers.end(),
                                        item.Scalar()) == kVerificationTiers.end())
        return r.Error(item, "verification.tiers",
                       absl::StrCat("unknown tier '", item.IsScalar() ? item.Scalar() : SpecReader::Kind(item),
                                    "' (known: ", absl::StrJoin(kVerificationTiers, ", "), ")"));
      if (std::find(tiers.begin(), tiers.end(), item.Scalar()) == tiers.end())
        tiers.push_back(item.Scalar());
    }
  }
  // Replays per side are capped at 20 by the coordinator; so is the raised count.
  if (replays > 20)
    return r.Error((*verification)["replays"], "verification.replays",
                   absl::StrCat("at most 20 replays a side, got ", replays));
  if (max_replays > 20)
    return r.Error((*verification)["max_replays"], "verification.max_replays",
                   absl::StrCat("at most 20 replays a side, got ", max_replays));
  if (problem.empty() && task != "sleep") {
    return absl::InvalidArgumentError(
        absl::StrCat(yaml_path, ": problem: missing (a folder with definition.json and "
                                "workload.jsonl)"));
  }
  if (baseline.empty() && task != "sleep") {
    return absl::InvalidArgumentError(absl::StrCat(
        yaml_path, ": baseline: missing (a solution folder with solution.json)"));
  }
  constexpr long long kIntMax = 2147483647;
  for (auto [key, v] : {std::pair<const char*, long long>{"threads", threads},
                        {"in_flight_per_thread", in_flight},
                        {"budget.max_evaluations", max_evaluations},
                        {"verification.replays", replays},
                        {"harness.warmups", warmups},
                        {"harness.repetitions", repetitions},
                        {"harness.correctness_rounds", correctness_rounds}}) {
    if (v > kIntMax) {
      return absl::InvalidArgumentError(
          absl::StrCat(yaml_path, ": ", key, ": ", v, " is too large"));
    }
  }

  const fs::path base_dir = fs::path(yaml_path).parent_path();
  if (task != "sleep") {
    s = ReadProblem(base_dir / problem, r.Where(root["problem"], "problem"),
                    spec.mutable_problem());
    if (!s.ok()) return s;
    s = ReadSolution(base_dir / baseline, r.Where(root["baseline"], "baseline"),
                     spec.mutable_baseline());
    if (!s.ok()) return s;
  }

  spec.set_name(name);
  spec.set_task(task);
  spec.set_threads(static_cast<int32_t>(threads));
  spec.set_proposer(proposer);
  spec.set_seed(static_cast<uint64_t>(seed));
  spec.mutable_budget()->set_max_evaluations(static_cast<int32_t>(max_evaluations));
  spec.mutable_budget()->set_max_wall_seconds(max_wall);
  spec.mutable_verification()->set_replays(static_cast<int32_t>(replays));
  spec.mutable_verification()->set_min_gain(min_gain);
  spec.mutable_verification()->set_significance(significance);
  spec.mutable_verification()->set_timing_tolerance(timing_tolerance);
  spec.mutable_verification()->set_noise_sigmas(noise_sigmas);
  spec.mutable_verification()->set_max_replays(static_cast<int32_t>(max_replays));
  for (const std::string& t : tiers) spec.mutable_verification()->add_tiers(t);
  spec.mutable_harness()->set_warmups(static_cast<int32_t>(warmups));
  spec.mutable_harness()->set_repetitions(static_cast<int32_t>(repetitions));
  spec.mutable_harness()->set_correctness_rounds(static_cast<int32_t>(correctness_rounds));
  spec.mutable_harness()->set_timeout_seconds(timeout);
  spec.mutable_harness()->set_screen(screen);
  spec.set_device(device);
  spec.set_in_flight_per_thread(static_cast<int32_t>(in_flight));

  // Scheduling: the campaign's share of the workers and what a worker needs.
  double weight = 1;
  long long gpus = 0, sleep_ms = 0;
  std::string gpu_model;
  for (absl::Status st : {r.GetDouble(root, "", "weight", 0, true, &weight),
                          r.GetString(root, "", "gpu_model", &gpu_model),
                          r.GetInt(root, "", "gpus", 1, &gpus),
                          r.GetInt(root, "", "sleep_ms", 0, &sleep_ms)}) {
    if (!st.ok()) return st;
  }
  if ((root["gpus"].IsDefined() || root["gpu_model"].IsDefined()) && device != "cuda")
    return r.Error(root["gpus"].IsDefined() ? root["gpus"] : root["gpu_model"],
                   root["gpus"].IsDefined() ? "gpus" : "gpu_model", "needs device: cuda");
  if (root["sleep_ms"].IsDefined() && task != "sleep")
    return r.Error(root["sleep_ms"], "sleep_ms", "only used with task: sleep");
  if (gpus > 64) return r.Error(root["gpus"], "gpus", absl::StrCat("at most 64, got ", gpus));
  if (sleep_ms > 3'600'000)
    return r.Error(root["sleep_ms"], "sleep_ms", absl::StrCat("at most 3600000, got ", sleep_ms));
  spec.set_weight(weight);
  spec.set_gpu_model(gpu_model);
  spec.set_gpus(static_cast<int32_t>(gpus));
  spec.set_sleep_ms(static_cast<int32_t>(sleep_ms));

  // Proposer settings: required by their proposer, refused by the others so
  // that a typo in `proposer:` cannot silently ignore them.
  for (const auto& [section, needs] :
       {std::pair<const char*, const char*>{"llm", "an llm: section (endpoint, models, ...)"},
        {"replay", "a replay: list of knob settings"}}) {
    if (proposer == section && !root[section].IsDefined())
      return r.Error(root["proposer"], section,
                     absl::StrCat("missing: proposer ", section, " needs ", needs));
    if (root[section].IsDefined() && proposer != section)
      return r.Error(root[section], section, absl::StrCat("only used with proposer: ", section));
  }
  if (proposer == "llm") {
    if (absl::Status st = ReadLlm(r, root, spec.mutable_llm()); !st.ok()) return st;
  }
  if (proposer == "replay") {
    if (absl::Status st = ReadReplay(r, root, &spec); !st.ok()) return st;
  }

  // Research loop: budgets beyond evaluations and wall time, islands, merges,
  // parent selection and where lessons come from.
  double max_gpu = 0;
  long long migrate_every = 0, merge_every = 0, tournament_size = 0;
  std::string experience = "campaign";
  for (absl::Status st : {
           r.GetDouble(*budget, "budget.", "max_gpu_seconds", 0, false, &max_gpu),
           r.GetInt(root, "", "migrate_every", 0, &migrate_every),
           r.GetInt(root, "", "merge_every", 0, &merge_every),
           r.GetInt(root, "", "tournament_size", 0, &tournament_size),
           r.GetString(root, "", "experience", &experience),
       }) {
    if (!st.ok()) return st;
  }
  if (absl::Status st = one_of("experience", experience, {"campaign", "shared"}); !st.ok())
    return st;
  for (auto [key, v] : {std::pair<const char*, long long>{"migrate_every", migrate_every},
                        {"merge_every", merge_every},
                        {"tournament_size", tournament_size}})
    if (v > 1'000'000)
      return absl::InvalidArgumentError(absl::StrCat(yaml_path, ": ", key, ": ", v, " is too large"));
  spec.mutable_budget()->set_max_gpu_seconds(max_gpu);
  spec.set_migrate_every(static_cast<int32_t>(migrate_every));
  spec.set_merge_every(static_cast<int32_t>(merge_every));
  spec.set_tournament_size(static_cast<int32_t>(tournament_size));
  spec.set_experience(experience);
  return spec;
}

}  // namespace

absl::StatusOr<CampaignSpec> ParseCampaignSpec(const std::string& yaml_text,
                                               const std::string& yaml_path) {
  // The spec's text is the user's, and (through the fuzzer) anyone's: an
  // exception from yaml-cpp or the JSON reader is an error in the spec.
  absl::StatusOr<CampaignSpec> spec;
  try {
    spec = ParseUnvalidated(yaml_text, yaml_path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(yaml_path, ":", e.mark.line + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(yaml_path, ": ", e.what()));
  }
  if (!spec.ok()) return spec.status();
  // The coordinator's own check (coordinator/spec_validation.h): the same
  // message here as at submit, before anything is sent.
  if (absl::Status s = ValidateCampaignSpec(*spec); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat(yaml_path, ": ", s.message()));
  return spec;
}

absl::StatusOr<CampaignSpec> LoadCampaignSpec(const std::string& yaml_path) {
  std::error_code ec;
  if (!fs::is_regular_file(yaml_path, ec)) {
    return absl::NotFoundError(absl::StrCat(yaml_path, ": no such spec file"));
  }
  absl::StatusOr<std::string> text = ReadFile(yaml_path, 1 << 20);
  if (!text.ok()) return text.status();
  return ParseCampaignSpec(*text, yaml_path);
}

}  // namespace ratchet::cli
