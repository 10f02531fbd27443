// `llm`: asks an OpenAI-compatible model to improve the thread's incumbent
// (docs/llm.md). Each proposal is one chat completion: the model is drawn by
// weight with the campaign's seeded generator, the prompt is built from the
// problem, the parent, the thread's recent attempts, lessons (the campaign's,
// and with `experience: shared` other campaigns' of the op type) and other
// threads' incumbents (or, every `merge_every` proposals of a thread, asks to
// merge the parent with another thread's incumbent), and the
// answer is parsed strictly (edit_format.h). What each call cost is reported
// in Proposal::usage for the campaign's accounting and cap.
#ifndef RATCHET_COORDINATOR_PROPOSERS_LLM_LLM_PROPOSER_H_
#define RATCHET_COORDINATOR_PROPOSERS_LLM_LLM_PROPOSER_H_

#include <memory>

#include "absl/status/statusor.h"
#include "coordinator/proposers/llm/chat_client.h"
#include "coordinator/proposers/llm/endpoints.h"
#include "coordinator/proposers/llm/prompt.h"
#include "coordinator/proposers/proposer.h"
#include "spec/validation.h"

namespace ratchet::llm {

// Checks the settings; InvalidArgument naming the bad field. A spec that
// carries a base_url or an api_key_env is refused: endpoints and their keys
// are the coordinator operator's (endpoints.h). The spec's rule
// (spec/validation.h).
using spec::ValidateLlmSettings;

// The settings with defaults filled in for unset fields (spec/defaults.h).
v1::LlmSettings WithDefaults(v1::LlmSettings settings);

double CostUsd(const v1::LlmModel& model, int64_t prompt_tokens, int64_t completion_tokens);

class LlmProposer : public proposers::Proposer {
 public:
  // Resolves the settings' endpoint and models among the operator's
  // `endpoints` (null = none configured); InvalidArgument if the settings
  // are bad, the endpoint is unknown or a model is not allowed there.
  static absl::StatusOr<std::unique_ptr<LlmProposer>> Create(const v1::LlmSettings& settings,
                                                             const LlmEndpoints* endpoints);

  absl::StatusOr<proposers::Proposal> Propose(const proposers::ProposalContext& context) override;
  bool slow() const override { return true; }

  const v1::LlmSettings& settings() const { return settings_; }

 private:
  LlmProposer(v1::LlmSettings settings, std::unique_ptr<ChatClient> client);

  const v1::LlmSettings settings_;
  std::unique_ptr<ChatClient> client_;
  PromptLimits limits_;
};

}  // namespace ratchet::llm

#endif  // RATCHET_COORDINATOR_PROPOSERS_LLM_LLM_PROPOSER_H_
