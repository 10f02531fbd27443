// The names of API enums as reports, metrics and the harness's result JSON
// spell them: "compile_error", "finished". One table, derived from the proto.
#ifndef RATCHET_COMMON_NAMES_H_
#define RATCHET_COMMON_NAMES_H_

#include <string>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet {

// "ok", "compile_error", ...; "unspecified" for anything else.
std::string OutcomeName(v1::Outcome outcome);
// The inverse, exact match; OUTCOME_UNSPECIFIED for an unknown name.
v1::Outcome OutcomeFromName(const std::string& name);
// "running", "finished", "failed", "cancelled"; "unknown" otherwise.
std::string CampaignStateName(v1::CampaignState state);
// "pending", "accepted", "rejected", "rejected-hack", "rejected-noise",
// "rejected-wrong", "rejected-flaky"; "unspecified" otherwise.
std::string VerdictName(v1::VerdictOutcome outcome);
// The inverse, exact match; VERDICT_UNSPECIFIED for an unknown name.
v1::VerdictOutcome VerdictFromName(const std::string& name);
// True for VERDICT_REJECTED and each of its classes.
bool IsRejected(v1::VerdictOutcome outcome);

}  // namespace ratchet

#endif  // RATCHET_COMMON_NAMES_H_
