// The verifier's judgement of a claimed improvement from its replays.
//
// A claim is accepted only if, on fresh inputs on (where possible) another
// worker, the candidate is correct in every replay and its replay scores beat
// the incumbent's beyond their noise: a one-sided Welch test at the campaign's
// significance level (with one replay a side, the worst candidate replay must
// beat the best incumbent one), and the median gain must reach the campaign's
// minimum. Never a single lucky run, never the claim's own figure.
#ifndef RATCHET_SERVICES_VERIFIER_VERDICT_H_
#define RATCHET_SERVICES_VERIFIER_VERDICT_H_

#include <vector>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::verifier {

namespace v1 = ::ratchet::v1;

// True once every replay job is DONE or FAILED.
bool ReplaysFinished(const v1::GetReplaysResponse& replays);

// Fills outcome, reason, detail, candidate_scores and incumbent_scores of a
// copy of `claim`. Reasons: "wrong-on-replay", "failed-on-replay",
// "below-sol" and "timing-disagreement" (flags the harness raised on a
// candidate replay), "incumbent-failed", "noise", "below-min-gain".
v1::Verification Decide(const v1::Verification& claim, const v1::GetReplaysResponse& replays);

}  // namespace ratchet::verifier

#endif  // RATCHET_SERVICES_VERIFIER_VERDICT_H_
