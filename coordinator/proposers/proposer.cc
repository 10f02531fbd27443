#include "coordinator/proposers/proposer.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/proposers/builtin.h"
#include "coordinator/proposers/llm/llm_proposer.h"
#include "spec/names.h"

namespace ratchet::proposers {

absl::StatusOr<std::unique_ptr<Proposer>> MakeProposer(const std::string& name) {
  if (name == "evolve" || name.empty()) return NewEvolveProposer();
  if (name == "random") return NewRandomProposer();
  if (name == "grid") return NewGridProposer();
  if (name == "replay" || name == "llm")
    return absl::InvalidArgumentError(
        absl::StrCat("proposer '", name, "' needs its settings from the campaign spec"));
  return absl::InvalidArgumentError(
      absl::StrCat("unknown proposer '", name, "' (known: ",
                   absl::StrJoin(spec::SpecWords<v1::Proposer>(), ", "), ")"));
}

absl::StatusOr<std::unique_ptr<Proposer>> MakeProposer(const v1::CampaignSpec& spec,
                                                       const llm::LlmEndpoints* llm_endpoints) {
  if (spec.proposer() == v1::PROPOSER_LLM) {
    if (!spec.has_llm())
      return absl::InvalidArgumentError("proposer 'llm' needs an llm: section in the spec");
    auto p = llm::LlmProposer::Create(spec.llm(), llm_endpoints);
    if (!p.ok()) return p.status();
    return std::unique_ptr<Proposer>(std::move(*p));
  }
  if (spec.proposer() == v1::PROPOSER_REPLAY) {
    if (spec.replay().empty())
      return absl::InvalidArgumentError("proposer 'replay' needs a non-empty replay: list");
    auto space = ParseKnobSpace(spec.baseline());
    if (!space.ok()) return space.status();
    std::vector<std::map<std::string, std::string>> settings;
    for (int i = 0; i < spec.replay_size(); ++i) {
      v1::Solution probe;
      *probe.mutable_knobs() = spec.replay(i).knobs();
      if (absl::Status s = NormalizeKnobs(*space, &probe); !s.ok())
        return absl::InvalidArgumentError(absl::StrCat("replay[", i, "]: ", s.message()));
      settings.emplace_back(probe.knobs().begin(), probe.knobs().end());
    }
    return NewReplayProposer(std::move(settings));
  }
  return MakeProposer(spec::Name(spec.proposer()));
}

}  // namespace ratchet::proposers
