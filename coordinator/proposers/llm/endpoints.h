// LLM endpoints are configured on the coordinator by its operator
// (`ratchet coordinator --llm-endpoints FILE`, docs/llm.md), never by a
// campaign spec: a spec only chooses one by name (`llm.endpoint`). Were the
// URL and the key's source in the spec, any submitter could have the
// coordinator send any of its secrets (an environment variable, a file) as a
// bearer token to a server of the submitter's choosing.
//
// The file (YAML or JSON):
//
//   endpoints:
//     local-vllm: {base_url: "http://127.0.0.1:8000", model: qwen2.5-coder}
//     openai:
//       base_url: https://api.openai.com
//       api_key_file: /etc/ratchet/openai.key   # or api_key_env: OPENAI_API_KEY
//       models: [gpt-4.1, gpt-4.1-mini]          # the models specs may ask for
//       model: gpt-4.1                           # for specs that name none
//
// Keys are read once, when the file is loaded; a relative api_key_file is
// relative to the endpoints file.
#ifndef RATCHET_COORDINATOR_PROPOSERS_LLM_ENDPOINTS_H_
#define RATCHET_COORDINATOR_PROPOSERS_LLM_ENDPOINTS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ratchet::llm {

// What a request to a named endpoint needs.
struct ResolvedEndpoint {
  std::string name;
  std::string base_url;
  std::string api_key;  // "" = no Authorization header
  std::string model;
};

class LlmEndpoints {
 public:
  struct Endpoint {
    std::string base_url;
    std::string api_key;
    std::string model;                // default for a spec that names none; may be ""
    std::vector<std::string> models;  // the models allowed; empty = any
  };

  LlmEndpoints() = default;  // none configured

  // Reads and checks the operator's file; InvalidArgument naming the file,
  // the line and the key at fault (an unknown key, a duplicate endpoint, an
  // unreadable or empty key file, an unset api_key_env, ...).
  static absl::StatusOr<LlmEndpoints> Load(const std::string& path);
  // The same from text; `source` names it in errors and its directory is
  // where relative key files are looked for.
  static absl::StatusOr<LlmEndpoints> Parse(const std::string& text, const std::string& source);

  // The endpoint `name` with `model` ("" = the endpoint's default).
  // NotFound: no endpoint of that name. PermissionDenied: the operator
  // listed the endpoint's models and `model` is not one of them.
  // InvalidArgument: no model named and the endpoint has no default.
  absl::StatusOr<ResolvedEndpoint> Resolve(const std::string& name,
                                           const std::string& model) const;

  std::vector<std::string> names() const;
  bool empty() const { return endpoints_.empty(); }

 private:
  std::map<std::string, Endpoint> endpoints_;
};

}  // namespace ratchet::llm

#endif  // RATCHET_COORDINATOR_PROPOSERS_LLM_ENDPOINTS_H_
