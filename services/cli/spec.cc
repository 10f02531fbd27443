#include "services/cli/spec.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/auth.h"
#include "kernels/harness/derived_baseline.h"
#include "kernels/problem/problem.h"
#include "nlohmann/json.hpp"
#include "spec/defaults.h"
#include "spec/knobs.h"
#include "spec/names.h"
#include "spec/validation.h"
#include "yaml-cpp/yaml.h"

namespace ratchet::cli {
namespace {

namespace fs = std::filesystem;
using ratchet::v1::CampaignSpec;

const std::vector<std::string> kTopKeys = {
    "name",     "task",   "problem", "baseline",     "threads", "proposer",
    "seed",     "budget", "verification", "harness", "device",  "in_flight_per_thread",
    "llm",      "replay",   "training",
    // Research loop (docs/research.md).
    "migrate_every", "merge_every", "tournament_size", "experience"};
const std::vector<std::string> kBudgetKeys = {"max_evaluations", "max_wall_seconds",
                                              "max_gpu_seconds"};
const std::vector<std::string> kVerificationKeys = {
    "replays", "min_gain", "significance", "tiers", "timing_tolerance", "noise_sigmas",
    "max_replays"};
const std::vector<std::string> kHarnessKeys = {"warmups", "repetitions", "correctness_rounds",
                                               "timeout_seconds", "screen"};
// base_url and api_key_env are read only for the validator to refuse them
// with a reason (and the line).
const std::vector<std::string> kLlmKeys = {
    "endpoint",    "base_url",        "api_key_env",  "models",      "temperature",
    "max_tokens",  "timeout_seconds", "max_retries",  "max_concurrency",
    "max_cost_usd", "merge_every"};
const std::vector<std::string> kLlmModelKeys = {"name", "weight", "prompt_price_per_1k",
                                                "completion_price_per_1k"};
// Training campaigns (docs/training.md, "Campaigns").
const std::vector<std::string> kTrainingKeys = {
    "data",         "budget_seconds", "max_steps",  "target_loss", "nproc",
    "warmup_allowance_seconds",       "grace_seconds", "eval_windows", "eval_seq_len",
    "eval_seed",    "editable",       "fidelities", "halving"};
// Scheduling among campaigns (docs/cluster.md, "Scheduling").
const std::vector<std::string> kSchedulingKeys = {"weight", "gpu_model", "gpus", "sleep_ms"};

// A word of the YAML that CheckString passed, as its enum value; "" (left
// out) stays *_UNSPECIFIED for spec::ApplyDefaults.
template <typename E>
E EnumOf(const std::string& word) {
  E value{};
  spec::Parse(word, &value);
  return value;
}

// At most `max_bytes` (the validator's limit for what is read): a spec that
// names /dev/zero or a huge file fails at once instead of filling memory.
absl::StatusOr<std::string> ReadFile(const fs::path& path,
                                     size_t max_bytes = spec::kMaxFileBytes) {
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
  return s.find('\0') == std::string::npos && spec::IsValidUtf8(s);
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

  // A string, checked by its field's rule (spec/validation.h): size,
  // characters and, where the field names something, the names it may hold.
  absl::Status GetString(const YAML::Node& map, const std::string& prefix,
                         const std::string& key, std::string* out) const {
    YAML::Node node = map[key];
    if (!node.IsDefined()) return absl::OkStatus();
    if (!node.IsScalar()) return Error(node, prefix + key, "expected a string, got " + Kind(node));
    if (absl::Status s = spec::CheckString(prefix + key, node.Scalar()); !s.ok())
      return Error(node, prefix + key, std::string(s.message()));
    *out = node.Scalar();
    return absl::OkStatus();
  }

  // Numbers, checked against their field's bound (spec/validation.h) as
  // written: a 0 in the YAML is a 0, not "unset".
  absl::Status GetInt(const YAML::Node& map, const std::string& prefix, const std::string& key,
                      long long* out) const {
    YAML::Node node = map[key];
    if (!node.IsDefined()) return absl::OkStatus();
    long long v;
    if (!node.IsScalar() || !absl::SimpleAtoi(node.Scalar(), &v)) {
      return Error(node, prefix + key, "expected an integer, got " + Kind(node));
    }
    if (absl::Status s = spec::CheckNumber(prefix + key, static_cast<double>(v), node.Scalar(),
                                           /*written=*/true);
        !s.ok())
      return Error(node, prefix + key, std::string(s.message()));
    *out = v;
    return absl::OkStatus();
  }

  absl::Status GetDouble(const YAML::Node& map, const std::string& prefix, const std::string& key,
                         double* out) const {
    YAML::Node node = map[key];
    if (!node.IsDefined()) return absl::OkStatus();
    double v;
    if (!node.IsScalar() || !absl::SimpleAtod(node.Scalar(), &v) || !std::isfinite(v)) {
      return Error(node, prefix + key, "expected a number, got " + Kind(node));
    }
    if (absl::Status s = spec::CheckNumber(prefix + key, v, node.Scalar(), /*written=*/true);
        !s.ok())
      return Error(node, prefix + key, std::string(s.message()));
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
                                            " has no definition.json (a folder of problems is a "
                                            "suite: `ratchet submit` runs one campaign each)"));
  }
  fs::path wl_path = dir / "workload.jsonl";
  if (!fs::is_regular_file(wl_path, ec)) {
    return absl::NotFoundError(absl::StrCat(where, ": problem folder ", dir.string(),
                                            " has no workload.jsonl"));
  }
  absl::StatusOr<std::string> def = ReadFile(def_path, spec::kMaxDefinitionBytes);
  if (!def.ok()) return def.status();
  absl::StatusOr<std::string> wl = ReadFile(wl_path, spec::kMaxWorkloadBytes);
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
    if (++entries > 16 * spec::kMaxSolutionFiles || paths.size() > spec::kMaxSolutionFiles)
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": baseline folder ", dir.string(), " holds more than ",
                       spec::kMaxSolutionFiles, " files (a solution folder holds its sources)"));
    const std::string name = it->path().filename().string();
    // Hidden entries (.git, editor swap files) and Python's byte-code caches
    // are not part of a solution.
    if ((!name.empty() && name[0] == '.') || name == "__pycache__") {
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

// `llm:` — which of the coordinator's LLM endpoints the llm proposer asks,
// and how (docs/llm.md). What the section must hold beyond its values'
// bounds (an endpoint, no base_url or api_key_env, named models) is the
// validator's to say, at the line of the key.
absl::Status ReadLlm(const SpecReader& r, const YAML::Node& root, ratchet::v1::LlmSettings* out) {
  absl::StatusOr<YAML::Node> llm = r.GetMap(root, "llm", kLlmKeys);
  if (!llm.ok()) return llm.status();
  const YAML::Node& n = *llm;
  std::string endpoint, base_url, api_key_env;
  // Where 0 is a setting of its own, the default is written here
  // (spec/defaults.h); the rest are left to spec::ApplyDefaults.
  long long max_tokens = 0, max_retries = spec::kDefaultLlmMaxRetries, max_concurrency = 0,
            merge_every = 0;
  double temperature = spec::kDefaultLlmTemperature, timeout = 0, max_cost = 0;
  for (absl::Status st : {
           r.GetString(n, "llm.", "endpoint", &endpoint),
           r.GetString(n, "llm.", "base_url", &base_url),
           r.GetString(n, "llm.", "api_key_env", &api_key_env),
           r.GetDouble(n, "llm.", "temperature", &temperature),
           r.GetInt(n, "llm.", "max_tokens", &max_tokens),
           r.GetDouble(n, "llm.", "timeout_seconds", &timeout),
           r.GetInt(n, "llm.", "max_retries", &max_retries),
           r.GetInt(n, "llm.", "max_concurrency", &max_concurrency),
           r.GetDouble(n, "llm.", "max_cost_usd", &max_cost),
           r.GetInt(n, "llm.", "merge_every", &merge_every),
       }) {
    if (!st.ok()) return st;
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
    if (m.IsScalar()) {  // a bare name: the default weight, free
      model->set_name(m.Scalar());
      continue;
    }
    if (!m.IsMap())
      return r.Error(m, prefix.substr(0, prefix.size() - 1),
                     "expected a model name or a map with keys " +
                         absl::StrJoin(kLlmModelKeys, ", "));
    if (absl::Status s = r.CheckKeys(m, prefix, kLlmModelKeys); !s.ok()) return s;
    std::string name;
    double weight = 0, prompt_price = 0, completion_price = 0;
    for (absl::Status st : {
             r.GetString(m, prefix, "name", &name),
             r.GetDouble(m, prefix, "weight", &weight),
             r.GetDouble(m, prefix, "prompt_price_per_1k", &prompt_price),
             r.GetDouble(m, prefix, "completion_price_per_1k", &completion_price),
         }) {
      if (!st.ok()) return st;
    }
    model->set_name(name);
    model->set_weight(weight);
    model->set_prompt_price_per_1k(prompt_price);
    model->set_completion_price_per_1k(completion_price);
  }
  out->set_endpoint(endpoint);
  out->set_base_url(base_url);
  out->set_api_key_env(api_key_env);
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
// The training: section. `data` is a folder relative to the spec file (made
// absolute: workers find it at the same path) whose manifest.json is hashed
// here, so that every worker can check it has the same data.
absl::Status ReadTraining(const SpecReader& r, const YAML::Node& root, const fs::path& base_dir,
                          ratchet::v1::CampaignSpec* out) {
  absl::StatusOr<YAML::Node> node = r.GetMap(root, "training", kTrainingKeys);
  if (!node.ok()) return node.status();
  if (!root["training"].IsDefined())
    return r.Error(root["task"], "training",
                   "missing: a training task needs a training: section (data, budget_seconds "
                   "or target_loss, editable)");
  std::string data;
  long long max_steps = 0, nproc = 0, windows = 0, seq_len = 0, eval_seed = 0, halving = 0;
  double budget = 0, target = 0, allowance = 0, grace = 0;
  const std::string p = "training.";
  for (absl::Status st : {
           r.GetString(*node, p, "data", &data),
           r.GetDouble(*node, p, "budget_seconds", &budget),
           r.GetInt(*node, p, "max_steps", &max_steps),
           r.GetDouble(*node, p, "target_loss", &target),
           r.GetInt(*node, p, "nproc", &nproc),
           r.GetDouble(*node, p, "warmup_allowance_seconds", &allowance),
           r.GetDouble(*node, p, "grace_seconds", &grace),
           r.GetInt(*node, p, "eval_windows", &windows),
           r.GetInt(*node, p, "eval_seq_len", &seq_len),
           r.GetInt(*node, p, "eval_seed", &eval_seed),
           r.GetInt(*node, p, "halving", &halving),
       }) {
    if (!st.ok()) return st;
  }
  if (data.empty())
    return r.Error((*node)["data"], "training.data",
                   "missing (a folder of ratchet data prepare: train_*.bin, val_*.bin, "
                   "token_bytes.bin, manifest.json)");
  std::error_code ec;
  const fs::path data_dir = fs::weakly_canonical(fs::absolute(base_dir / data), ec);
  const fs::path manifest = data_dir / "manifest.json";
  if (ec || !fs::is_regular_file(manifest, ec))
    return r.Error((*node)["data"], "training.data",
                   absl::StrCat(data_dir.string(), " has no manifest.json (make the folder with "
                                                   "ratchet data prepare)"));
  absl::StatusOr<std::string> manifest_text = ReadFile(manifest, 64 << 20);
  if (!manifest_text.ok()) return manifest_text.status();
  ratchet::v1::TrainingSettings* t = out->mutable_training();
  t->set_data_dir(data_dir.string());
  t->set_data_manifest_sha256(auth::Sha256Hex(*manifest_text));
  t->set_budget_seconds(budget);
  t->set_max_steps(max_steps);
  t->set_target_loss(target);
  t->set_nproc(static_cast<int32_t>(nproc));
  t->set_warmup_allowance_seconds(allowance);
  t->set_grace_seconds(grace);
  t->set_eval_windows(static_cast<int32_t>(windows));
  t->set_eval_seq_len(static_cast<int32_t>(seq_len));
  t->set_eval_seed(static_cast<int32_t>(eval_seed));
  t->set_halving(static_cast<int32_t>(halving));
  if (YAML::Node f = (*node)["fidelities"]; f.IsDefined()) {
    if (!f.IsSequence())
      return r.Error(f, "training.fidelities",
                     "expected a list of fractions of the budget, e.g. [0.25, 1], got " +
                         SpecReader::Kind(f));
    for (size_t i = 0; i < f.size(); ++i) {
      double v = 0;
      if (!f[i].IsScalar() || !absl::SimpleAtod(f[i].Scalar(), &v))
        return r.Error(f[i], absl::StrCat("training.fidelities[", i, "]"),
                       "expected a number in (0, 1]");
      t->add_fidelities(v);
    }
  }
  if (YAML::Node e = (*node)["editable"]; e.IsDefined()) {
    if (!e.IsSequence())
      return r.Error(e, "training.editable",
                     "expected a list of globs, e.g. [model.py, train.py], got " +
                         SpecReader::Kind(e));
    for (size_t i = 0; i < e.size(); ++i) {
      if (!e[i].IsScalar())
        return r.Error(e[i], absl::StrCat("training.editable[", i, "]"),
                       "expected a glob, got " + SpecReader::Kind(e[i]));
      t->add_editable(e[i].Scalar());
    }
  }
  return absl::OkStatus();
}

absl::Status ReadReplay(const SpecReader& r, const YAML::Node& root,
                        ratchet::v1::CampaignSpec* out) {
  YAML::Node list = root["replay"];
  if (!list.IsSequence() || list.size() == 0)
    return r.Error(list, "replay",
                   "expected a non-empty list of knob settings, e.g. [{VEC: 8, UNROLL: 4}]");
  // The coordinator checks the settings against the same space.
  absl::StatusOr<spec::KnobSpace> space = spec::ParseKnobSpace(out->baseline());
  if (!space.ok())
    return r.Error(list, "replay", absl::StrCat("the baseline's knobs: ", space.status().message()));
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node entry = list[i];
    const std::string where = absl::StrCat("replay[", i, "]");
    if (!entry.IsMap())
      return r.Error(entry, where, "expected a map of knob: value, got " + SpecReader::Kind(entry));
    ratchet::v1::KnobSetting* setting = out->add_replay();
    for (const auto& kv : entry) {
      const std::string name = kv.first.Scalar();
      if (!kv.second.IsScalar())
        return r.Error(kv.second, where + "." + name, "expected a value, got " +
                                                          SpecReader::Kind(kv.second));
      const std::string value = kv.second.Scalar();
      const spec::Knob* knob = space->Find(name);
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

absl::StatusOr<CampaignSpec> ParseUnvalidated(const YAML::Node& root,
                                              const std::string& yaml_path) {
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

  // What the YAML leaves out stays 0 or "" for spec::ApplyDefaults, except
  // where 0 is a setting of its own: those defaults are written here.
  CampaignSpec spec;
  std::string name = fs::path(yaml_path).stem().string();
  std::string task, proposer, device, problem, baseline, screen, experience, gpu_model;
  long long threads = 0, seed = spec::kDefaultSeed, in_flight = 0, max_evaluations = 0,
            replays = 0, max_replays = 0, warmups = 0, repetitions = 0, correctness_rounds = 0,
            migrate_every = 0, merge_every = 0, tournament_size = 0, gpus = 0, sleep_ms = 0;
  double max_wall = 0, max_gpu = 0, min_gain = spec::kDefaultMinGain, significance = 0,
         timing_tolerance = 0, noise_sigmas = 0, timeout = 0, weight = 0;

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
           r.GetInt(root, "", "threads", &threads),
           r.GetString(root, "", "proposer", &proposer),
           r.GetInt(root, "", "seed", &seed),
           r.GetString(root, "", "device", &device),
           r.GetInt(root, "", "in_flight_per_thread", &in_flight),
           r.GetInt(*budget, "budget.", "max_evaluations", &max_evaluations),
           r.GetDouble(*budget, "budget.", "max_wall_seconds", &max_wall),
           r.GetDouble(*budget, "budget.", "max_gpu_seconds", &max_gpu),
           r.GetInt(*verification, "verification.", "replays", &replays),
           r.GetDouble(*verification, "verification.", "min_gain", &min_gain),
           r.GetDouble(*verification, "verification.", "significance", &significance),
           r.GetDouble(*verification, "verification.", "timing_tolerance", &timing_tolerance),
           r.GetDouble(*verification, "verification.", "noise_sigmas", &noise_sigmas),
           r.GetInt(*verification, "verification.", "max_replays", &max_replays),
           r.GetInt(*harness, "harness.", "warmups", &warmups),
           r.GetInt(*harness, "harness.", "repetitions", &repetitions),
           r.GetInt(*harness, "harness.", "correctness_rounds", &correctness_rounds),
           r.GetDouble(*harness, "harness.", "timeout_seconds", &timeout),
           r.GetString(*harness, "harness.", "screen", &screen),
           // Research loop (docs/research.md).
           r.GetInt(root, "", "migrate_every", &migrate_every),
           r.GetInt(root, "", "merge_every", &merge_every),
           r.GetInt(root, "", "tournament_size", &tournament_size),
           r.GetString(root, "", "experience", &experience),
           // Scheduling: the campaign's share of the workers and what a worker needs.
           r.GetDouble(root, "", "weight", &weight),
           r.GetString(root, "", "gpu_model", &gpu_model),
           r.GetInt(root, "", "gpus", &gpus),
           r.GetInt(root, "", "sleep_ms", &sleep_ms),
       }) {
    if (!st.ok()) return st;
  }
  if (name.empty()) return r.Error(root["name"], "name", "must not be empty");
  // Tiers: a list of known names; guards and replay run whatever it says.
  std::vector<std::string> tiers;
  if (YAML::Node t = (*verification)["tiers"]; t.IsDefined()) {
    if (!t.IsSequence())
      return r.Error(t, "verification.tiers",
                     absl::StrCat("expected a list of tiers (", absl::StrJoin(spec::kTiers, ", "),
                                  "), got ", SpecReader::Kind(t)));
    for (const auto& item : t) {
      if (!item.IsScalar())
        return r.Error(item, "verification.tiers",
                       "expected a tier's name, got " + SpecReader::Kind(item));
      if (absl::Status st = spec::CheckString("verification.tiers", item.Scalar()); !st.ok())
        return r.Error(item, "verification.tiers", std::string(st.message()));
      if (std::find(tiers.begin(), tiers.end(), item.Scalar()) == tiers.end())
        tiers.push_back(item.Scalar());
    }
  }
  const bool sleep = task == "sleep";
  const bool training = task == "train-budget" || task == "train-target";
  if (root["training"].IsDefined() && !training)
    return r.Error(root["training"], "training", "only used with task: train-budget or train-target");
  if (problem.empty() && !sleep && !training) {
    return absl::InvalidArgumentError(
        absl::StrCat(yaml_path, ": problem: missing (a folder with definition.json and "
                                "workload.jsonl)"));
  }
  if (baseline.empty() && training) {
    return absl::InvalidArgumentError(absl::StrCat(
        yaml_path, ": baseline: missing (a training project: train.py, model.py, solution.json)"));
  }
  if (training && !problem.empty())
    return r.Error(root["problem"], "problem",
                   "not used by a training campaign (its data is training.data)");

  const fs::path base_dir = fs::path(yaml_path).parent_path();
  if (training) {
    s = ReadTraining(r, root, base_dir, &spec);
    if (!s.ok()) return s;
    // The project's folder names it, where a kernel campaign names its problem
    // (lessons, noise floors, the tables).
    fs::path project = (base_dir / baseline).lexically_normal();
    if (project.filename().empty()) project = project.parent_path();
    spec.mutable_problem()->set_name(project.filename().string());
  } else if (!sleep) {
    s = ReadProblem(base_dir / problem, r.Where(root["problem"], "problem"),
                    spec.mutable_problem());
    if (!s.ok()) return s;
  }
  if (!sleep && !baseline.empty()) {
    s = ReadSolution(base_dir / baseline, r.Where(root["baseline"], "baseline"),
                     spec.mutable_baseline());
    if (!s.ok()) return s;
  } else if (!sleep) {
    // Research from nothing: the problem's own reference, behind knobs.
    auto def = kernels::ParseDefinition(spec.problem().definition_json(),
                                        (base_dir / problem / "definition.json").string());
    auto files = def.ok() ? kernels::DeriveBaseline(*def, device == "cuda")
                          : absl::StatusOr<std::map<std::string, std::string>>(def.status());
    if (!files.ok())
      return absl::InvalidArgumentError(absl::StrCat(
          yaml_path, ": baseline: missing, and none can be derived from the problem's reference: ",
          files.status().message()));
    for (const auto& [name, content] : *files) (*spec.mutable_baseline()->mutable_files())[name] = content;
  }

  // Every number was checked against its bound as it was read, so the
  // narrowing casts below keep the value.
  spec.set_name(name);
  spec.set_task(EnumOf<v1::Task>(task));
  spec.set_threads(static_cast<int32_t>(threads));
  spec.set_proposer(EnumOf<v1::Proposer>(proposer));
  spec.set_seed(static_cast<uint64_t>(seed));
  spec.mutable_budget()->set_max_evaluations(static_cast<int32_t>(max_evaluations));
  spec.mutable_budget()->set_max_wall_seconds(max_wall);
  spec.mutable_budget()->set_max_gpu_seconds(max_gpu);
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
  spec.mutable_harness()->set_screen(EnumOf<v1::Screen>(screen));
  spec.set_device(EnumOf<v1::Device>(device));
  spec.set_in_flight_per_thread(static_cast<int32_t>(in_flight));
  spec.set_migrate_every(static_cast<int32_t>(migrate_every));
  spec.set_merge_every(static_cast<int32_t>(merge_every));
  spec.set_tournament_size(static_cast<int32_t>(tournament_size));
  spec.set_experience(experience);
  spec.set_weight(weight);
  spec.set_gpu_model(gpu_model);
  spec.set_gpus(static_cast<int32_t>(gpus));
  spec.set_sleep_ms(static_cast<int32_t>(sleep_ms));

  // Proposer settings: read only for their proposer; required by it.
  const std::string proposer_or_default =
      proposer.empty() ? spec::Name(spec::kDefaultProposer) : proposer;
  for (const auto& [section, needs] :
       {std::pair<const char*, const char*>{"llm", "an llm: section (endpoint, models, ...)"},
        {"replay", "a replay: list of knob settings"}}) {
    if (proposer_or_default == section && !root[section].IsDefined())
      return r.Error(root["proposer"], section,
                     absl::StrCat("missing: proposer ", section, " needs ", needs));
    if (root[section].IsDefined() && proposer_or_default != section)
      return r.Error(root[section], section, absl::StrCat("only used with proposer: ", section));
  }
  if (proposer == "llm") {
    if (absl::Status st = ReadLlm(r, root, spec.mutable_llm()); !st.ok()) return st;
  }
  if (proposer == "replay") {
    if (absl::Status st = ReadReplay(r, root, &spec); !st.ok()) return st;
  }
  spec::ApplyDefaults(&spec);
  return spec;
}

// The line (1-based) of the YAML node that a field's place names
// ("llm.models[1].name", "baseline.files[k.cc]"), as deep as the document
// has it; 0 when it has not even the first key.
int LineOf(const YAML::Node& root, absl::string_view field) {
  int line = 0;
  try {
    YAML::Node node;
    node.reset(root);
    // Keys separated by '.', each with [index] parts; a non-numeric index
    // (a file or knob name) ends the walk.
    size_t i = 0;
    while (i < field.size()) {
      const size_t end = field.find_first_of(".[", i);
      const std::string key(field.substr(i, end == absl::string_view::npos ? end : end - i));
      const YAML::Node& here = node;
      if (!here.IsMap() || !here[key].IsDefined()) return line;
      node.reset(here[key]);
      line = node.Mark().line + 1;
      i = end == absl::string_view::npos ? field.size() : end;
      while (i < field.size() && field[i] == '[') {
        const size_t close = field.find(']', i);
        size_t index;
        if (close == absl::string_view::npos ||
            !absl::SimpleAtoi(field.substr(i + 1, close - i - 1), &index))
          return line;
        const YAML::Node& list = node;
        if (!list.IsSequence() || index >= list.size()) return line;
        node.reset(list[index]);
        line = node.Mark().line + 1;
        i = close + 1;
      }
      if (i < field.size() && field[i] == '.') ++i;
    }
  } catch (const YAML::Exception&) {
  }
  return line;
}

}  // namespace

absl::StatusOr<CampaignSpec> ParseCampaignSpec(const std::string& yaml_text,
                                               const std::string& yaml_path) {
  // The spec's text is the user's, and (through the fuzzer) anyone's: an
  // exception from yaml-cpp or the JSON reader is an error in the spec.
  YAML::Node root;
  absl::StatusOr<CampaignSpec> spec;
  try {
    try {
      root = YAML::Load(yaml_text);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat(yaml_path, ":", e.mark.line + 1, ": not valid YAML: ", e.msg));
    }
    spec = ParseUnvalidated(root, yaml_path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(yaml_path, ":", e.mark.line + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(yaml_path, ": ", e.what()));
  }
  if (!spec.ok()) return spec.status();
  // The coordinator's own check (spec/validation.h): the same message here
  // as at submit, before anything is sent, at the line of the field it names.
  if (absl::Status s = spec::ValidateCampaignSpec(*spec); !s.ok()) {
    const int line = LineOf(root, s.message().substr(0, s.message().find(": ")));
    return absl::InvalidArgumentError(
        line > 0 ? absl::StrCat(yaml_path, ":", line, ": ", s.message())
                 : absl::StrCat(yaml_path, ": ", s.message()));
  }
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

absl::StatusOr<std::vector<CampaignSpec>> LoadCampaignSuite(const std::string& yaml_path) {
  std::error_code ec;
  if (!fs::is_regular_file(yaml_path, ec))
    return absl::NotFoundError(absl::StrCat(yaml_path, ": no such spec file"));
  absl::StatusOr<std::string> text = ReadFile(yaml_path, 1 << 20);
  if (!text.ok()) return text.status();
  // The suite is seen in the YAML's own problem entry; everything else is
  // ParseCampaignSpec's, once per problem.
  YAML::Node root;
  try {
    root = YAML::Load(*text);
  } catch (const std::exception&) {
    root = YAML::Node();
  }
  const YAML::Node problem = root.IsMap() ? root["problem"] : YAML::Node();
  fs::path folder;
  if (problem.IsDefined() && problem.IsScalar())
    folder = (fs::path(yaml_path).parent_path() / problem.Scalar()).lexically_normal();
  std::vector<std::string> members;
  if (!folder.empty() && fs::is_directory(folder, ec) &&
      !fs::exists(folder / "definition.json", ec)) {
    for (const auto& e : fs::directory_iterator(folder, ec))
      if (e.is_directory() && fs::exists(e.path() / "definition.json", ec))
        members.push_back(e.path().filename().string());
    std::sort(members.begin(), members.end());
  }
  std::vector<CampaignSpec> specs;
  if (members.empty()) {
    absl::StatusOr<CampaignSpec> one = ParseCampaignSpec(*text, yaml_path);
    if (!one.ok()) return one.status();
    specs.push_back(*std::move(one));
    return specs;
  }
  const std::string name =
      root["name"].IsDefined() && root["name"].IsScalar() ? root["name"].Scalar() : "suite";
  const bool own_baseline = root["baseline"].IsDefined();
  for (const std::string& m : members) {
    YAML::Node one = YAML::Clone(root);
    one["problem"] = (folder / m).string();
    one["name"] = absl::StrCat(name, "/", m);
    if (!own_baseline && fs::is_directory(folder / m / "baseline", ec))
      one["baseline"] = (folder / m / "baseline").string();
    if (!one["experience"].IsDefined()) one["experience"] = "shared";
    YAML::Emitter emitted;
    emitted << one;
    absl::StatusOr<CampaignSpec> spec = ParseCampaignSpec(emitted.c_str(), yaml_path);
    if (!spec.ok())
      return absl::Status(spec.status().code(),
                          absl::StrCat("suite problem ", m, ": ", spec.status().message()));
    specs.push_back(*std::move(spec));
  }
  return specs;
}

}  // namespace ratchet::cli
