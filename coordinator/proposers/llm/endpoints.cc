#include "coordinator/proposers/llm/endpoints.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spec/validation.h"
#include "yaml-cpp/yaml.h"

namespace ratchet::llm {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kEndpointKeys = {"base_url", "api_key_file", "api_key_env",
                                                "model", "models"};

// Errors say where: "FILE:LINE: endpoints.NAME.KEY: what".
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}
  absl::Status Error(const YAML::Node& at, const std::string& key, const std::string& what) const {
    const YAML::Mark mark = at.IsDefined() ? at.Mark() : YAML::Mark::null_mark();
    const std::string line = mark.is_null() ? "" : absl::StrCat(":", mark.line + 1);
    return absl::InvalidArgumentError(absl::StrCat(source_, line, ": ", key, ": ", what));
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

// A key is sent in an HTTP header: anything but visible ASCII (a newline
// above all) could add headers of its own.
bool UsableKey(const std::string& key) {
  return !key.empty() && std::all_of(key.begin(), key.end(),
                                     [](char c) { return c > ' ' && c < 0x7f; });
}

absl::StatusOr<std::string> Scalar(const Reader& r, const YAML::Node& n, const std::string& key) {
  if (!n.IsScalar()) return r.Error(n, key, "expected a string");
  return n.Scalar();
}

absl::StatusOr<LlmEndpoints::Endpoint> ReadEndpoint(const Reader& r, const std::string& name,
                                                    const YAML::Node& node) {
  const std::string where = "endpoints." + name;
  if (!node.IsMap())
    return r.Error(node, where,
                   "expected a map with keys " + absl::StrJoin(kEndpointKeys, ", "));
  LlmEndpoints::Endpoint e;
  std::string key_file, key_env;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.Scalar();
    const std::string at = absl::StrCat(where, ".", key);
    if (key == "api_key")
      return r.Error(kv.first, at,
                     "a key is not written in this file; use api_key_file (a file only the "
                     "coordinator can read) or api_key_env");
    if (std::find(kEndpointKeys.begin(), kEndpointKeys.end(), key) == kEndpointKeys.end())
      return r.Error(kv.first, at,
                     "unknown key (known: " + absl::StrJoin(kEndpointKeys, ", ") + ")");
    if (!seen.insert(key).second) return r.Error(kv.first, at, "given twice");
    if (key == "models") {
      if (!kv.second.IsSequence() || kv.second.size() == 0)
        return r.Error(kv.second, at, "expected a non-empty list of model names");
      for (size_t i = 0; i < kv.second.size(); ++i) {
        auto m = Scalar(r, kv.second[i], absl::StrCat(at, "[", i, "]"));
        if (!m.ok()) return m.status();
        if (m->empty()) return r.Error(kv.second[i], absl::StrCat(at, "[", i, "]"), "empty");
        e.models.push_back(*m);
      }
      continue;
    }
    auto value = Scalar(r, kv.second, at);
    if (!value.ok()) return value.status();
    if (key == "base_url") e.base_url = *value;
    if (key == "model") e.model = *value;
    if (key == "api_key_file") key_file = *value;
    if (key == "api_key_env") key_env = *value;
  }

  if (e.base_url.empty())
    return r.Error(node, where + ".base_url",
                   "missing (e.g. http://127.0.0.1:8000 for a local vLLM)");
  if ((!absl::StartsWith(e.base_url, "http://") && !absl::StartsWith(e.base_url, "https://")) ||
      std::any_of(e.base_url.begin(), e.base_url.end(),
                  [](char c) { return c <= ' ' || c == 0x7f; }))
    return r.Error(node["base_url"], where + ".base_url",
                   absl::StrCat("must be an http:// or https:// URL, got '", e.base_url, "'"));
  // The URL shows in the events of every campaign that uses the endpoint.
  const std::string authority = e.base_url.substr(e.base_url.find("//") + 2);
  if (authority.substr(0, authority.find('/')).find('@') != std::string::npos)
    return r.Error(node["base_url"], where + ".base_url",
                   "must not hold credentials (user:password@); put a key in api_key_file");
  if (!e.models.empty() && !e.model.empty() &&
      std::find(e.models.begin(), e.models.end(), e.model) == e.models.end())
    return r.Error(node["model"], where + ".model",
                   absl::StrCat("'", e.model, "' is not one of models"));
  if (e.models.empty() && !e.model.empty()) e.models.push_back(e.model);  // only that one

  if (!key_file.empty() && !key_env.empty())
    return r.Error(node, where, "give api_key_file or api_key_env, not both");
  if (!key_file.empty()) {
    fs::path path = key_file;
    if (path.is_relative()) path = fs::path(r.source()).parent_path() / path;
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return r.Error(node["api_key_file"], where + ".api_key_file",
                     absl::StrCat("cannot read ", path.string(), ": ", std::strerror(errno)));
    std::stringstream text;
    text << in.rdbuf();
    e.api_key = std::string(absl::StripAsciiWhitespace(text.str()));
    if (e.api_key.empty())
      return r.Error(node["api_key_file"], where + ".api_key_file",
                     path.string() + " is empty");
    if (!UsableKey(e.api_key))
      return r.Error(node["api_key_file"], where + ".api_key_file",
                     path.string() + " holds more than one word or non-ASCII characters");
  }
  if (!key_env.empty()) {
    const char* value = std::getenv(key_env.c_str());
    if (value == nullptr || *value == '\0')
      return r.Error(node["api_key_env"], where + ".api_key_env",
                     absl::StrCat("the environment variable ", key_env,
                                  " is not set where the coordinator runs"));
    e.api_key = std::string(absl::StripAsciiWhitespace(value));
    if (!UsableKey(e.api_key))
      return r.Error(node["api_key_env"], where + ".api_key_env",
                     key_env + " holds more than one word or non-ASCII characters");
  }
  return e;
}

}  // namespace

absl::StatusOr<LlmEndpoints> LlmEndpoints::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read LLM endpoints file ", path, ": ", std::strerror(errno)));
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path);
}

absl::StatusOr<LlmEndpoints> LlmEndpoints::Parse(const std::string& text,
                                                 const std::string& source) {
  const Reader r(source);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ":", e.mark.line + 1, ": not valid YAML or JSON: ", e.msg));
  }
  if (!root.IsMap())
    return r.Error(root, "(top level)", "expected a map with the key endpoints");
  YAML::Node list;
  bool seen = false;
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    if (key != "endpoints") return r.Error(kv.first, key, "unknown key (known: endpoints)");
    if (seen) return r.Error(kv.first, key, "given twice");
    seen = true;
    list = kv.second;
  }
  if (!seen || list.IsNull())
    return r.Error(root, "endpoints", "missing (a map from endpoint name to its settings)");
  if (!list.IsMap())
    return r.Error(list, "endpoints", "expected a map from endpoint name to its settings");
  LlmEndpoints out;
  for (const auto& kv : list) {
    const std::string name = kv.first.Scalar();
    // The rule specs name endpoints by (llm.endpoint), so every endpoint
    // defined here can be named.
    if (auto st = spec::ValidateEndpointName(name); !st.ok())
      return r.Error(kv.first, "endpoints." + name, std::string(st.message()));
    if (out.endpoints_.count(name) > 0)
      return r.Error(kv.first, "endpoints." + name, "duplicate endpoint name");
    auto e = ReadEndpoint(r, name, kv.second);
    if (!e.ok()) return e.status();
    out.endpoints_[name] = *std::move(e);
  }
  return out;
}

absl::StatusOr<ResolvedEndpoint> LlmEndpoints::Resolve(const std::string& name,
                                                       const std::string& model) const {
  auto it = endpoints_.find(name);
  if (it == endpoints_.end()) {
    if (endpoints_.empty())
      return absl::NotFoundError(absl::StrCat(
          "no LLM endpoint named '", name,
          "': this coordinator has none (its operator configures them with "
          "--llm-endpoints FILE; docs/llm.md)"));
    return absl::NotFoundError(absl::StrCat("no LLM endpoint named '", name,
                                            "' on this coordinator (configured: ",
                                            absl::StrJoin(names(), ", "), ")"));
  }
  const Endpoint& e = it->second;
  ResolvedEndpoint out;
  out.name = name;
  out.base_url = e.base_url;
  out.api_key = e.api_key;
  out.model = model.empty() ? e.model : model;
  if (out.model.empty())
    return absl::InvalidArgumentError(absl::StrCat(
        "endpoint '", name, "' has no default model; name one in llm.models"));
  if (!e.models.empty() && std::find(e.models.begin(), e.models.end(), out.model) == e.models.end())
    return absl::PermissionDeniedError(absl::StrCat("endpoint '", name, "' does not allow model '",
                                                    out.model, "' (allowed: ",
                                                    absl::StrJoin(e.models, ", "), ")"));
  return out;
}

std::vector<std::string> LlmEndpoints::names() const {
  std::vector<std::string> out;
  for (const auto& [name, e] : endpoints_) out.push_back(name);
  return out;
}

}  // namespace ratchet::llm
