#include "common/names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"

namespace ratchet {
namespace {

std::string Lowered(const std::string& enum_name, const char* prefix) {
  return absl::AsciiStrToLower(absl::StripPrefix(enum_name, prefix));
}

}  // namespace

std::string OutcomeName(v1::Outcome outcome) {
  if (outcome == v1::OUTCOME_UNSPECIFIED || !v1::Outcome_IsValid(outcome)) return "unspecified";
  return Lowered(v1::Outcome_Name(outcome), "OUTCOME_");
}

v1::Outcome OutcomeFromName(const std::string& name) {
  for (int i = v1::Outcome_MIN; i <= v1::Outcome_MAX; ++i) {
    if (!v1::Outcome_IsValid(i) || i == v1::OUTCOME_UNSPECIFIED) continue;
    auto outcome = static_cast<v1::Outcome>(i);
    if (OutcomeName(outcome) == name) return outcome;
  }
  return v1::OUTCOME_UNSPECIFIED;
}

std::string CampaignStateName(v1::CampaignState state) {
  if (state == v1::CAMPAIGN_STATE_UNSPECIFIED || !v1::CampaignState_IsValid(state))
    return "unknown";
  return Lowered(v1::CampaignState_Name(state), "CAMPAIGN_");
}

std::string VerdictName(v1::VerdictOutcome outcome) {
  if (outcome == v1::VERDICT_UNSPECIFIED || !v1::VerdictOutcome_IsValid(outcome))
    return "unspecified";
  return absl::StrReplaceAll(Lowered(v1::VerdictOutcome_Name(outcome), "VERDICT_"),
                             {{"_", "-"}});
}

v1::VerdictOutcome VerdictFromName(const std::string& name) {
  for (int i = v1::VerdictOutcome_MIN; i <= v1::VerdictOutcome_MAX; ++i) {
    if (!v1::VerdictOutcome_IsValid(i) || i == v1::VERDICT_UNSPECIFIED) continue;
    auto outcome = static_cast<v1::VerdictOutcome>(i);
    if (VerdictName(outcome) == name) return outcome;
  }
  return v1::VERDICT_UNSPECIFIED;
}

bool IsRejected(v1::VerdictOutcome outcome) {
  return outcome == v1::VERDICT_REJECTED || outcome == v1::VERDICT_REJECTED_HACK ||
         outcome == v1::VERDICT_REJECTED_NOISE || outcome == v1::VERDICT_REJECTED_WRONG ||
         outcome == v1::VERDICT_REJECTED_FLAKY;
}

}  // namespace ratchet
