// The verifier's judgement of a claimed improvement from its replays.
//
// A claim is accepted only if, on fresh inputs on (where possible) another
// worker, the candidate passes every replay's checks and its replay scores
// beat the incumbent's beyond their noise: a one-sided Welch test at the
// campaign's significance level (with one replay a side, the worst candidate
// replay must beat the best incumbent one), and the median gain must reach
// both the campaign's minimum and its noise floor. Never a single lucky run,
// never the claim's own figure. docs/verifier.md has the whole policy.
#ifndef RATCHET_SERVICES_VERIFIER_VERDICT_H_
#define RATCHET_SERVICES_VERIFIER_VERDICT_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "ratchet/v1/ratchet.pb.h"
#include "spec/defaults.h"

namespace ratchet::verifier {

namespace v1 = ::ratchet::v1;

// The tiers in the order they escalate, and a default the tests compare
// with: the spec's (spec/defaults.h). A claim's policy is read through
// spec::AppliedVerification, the spec's defaults written once.
using spec::kDefaultSignificance;
using spec::kTiers;

// spec::TierEnabled.
bool TierEnabled(const v1::VerificationPolicy& policy, const std::string& tier);

// True once every replay job is DONE or FAILED (the coordinator hands a
// claim out only then).
bool ReplaysFinished(const v1::ReplayBundle& replays);

// Replays per side: the policy's count, doubled (up to max_replays) when
// screening flagged constructs the candidate adds.
int ReplayCount(const v1::VerificationPolicy& policy, bool screening_flagged);

// Sequential replays (docs/verifier.md, Noise). A claim whose replays show a
// gain worth having but not yet a significant one gets more replays instead
// of a rejection, at planned looks: the first (the claim's
// replays_requested, else the policy's count), then doubled up to
// max_replays a side. Every look tests at LookSignificance, the campaign's
// significance over the planned looks (Bonferroni), so pure noise is accepted
// at some look with probability below the significance however the looks go.
std::vector<int> ReplaySchedule(const v1::Verification& claim);
double LookSignificance(const v1::Verification& claim);

// Replay jobs a side so far (the larger of the candidate's and the
// incumbent's counts).
int ReplaysPerSide(const v1::Verification& claim, const v1::ReplayBundle& replays);

// How many more replays a side to ask for before deciding; 0 to decide now.
// Positive only once every replay has finished, a later look is planned, and
// the claim is promising: Decide would reject it as "noise" alone (no hack,
// wrong, flaky or incumbent finding), its median gain reaches the required
// gain (min_gain and the noise floors), and the Welch p is below
// kPromisingFactor x the campaign's significance (with one replay a side,
// which has no test, the gain alone).
inline constexpr double kPromisingFactor = 4.0;
int MoreReplaysWanted(const v1::Verification& claim, const v1::ReplayBundle& replays);

// The replays a side to ask the coordinator for in total before deciding
// (VERDICT_MORE_REPLAYS), or 0 to decide on the bundle now: the first look's
// count while the bundle has fewer (the coordinator queues the policy's
// replays; screening may want twice as many), then the next look while the
// claim is promising (MoreReplaysWanted).
int ReplaysWanted(const v1::Verification& screened, const v1::ReplayBundle& replays);

// An outside figure faster than the in-process one by more than the
// incumbent's own ratio (never above 1) over (1 + timing_tolerance) x this is
// a candidate that did less work when called back to back. Warm caches make
// honest back-to-back calls faster than cold in-process ones, and a
// memory-bound candidate gains from them more than a compute-bound
// incumbent: about the ratio of cache to DRAM bandwidth, hence 2.
inline constexpr double kWarmAllowance = 2.0;

// Workload flags and harness messages that are evidence of a hack.
bool IsHackFlag(const std::string& flag);

// The noise floor for a claim: the stored one of the problem's score on the
// hardware the candidate was replayed on (several machines: the noisiest),
// pooled with this verification's incumbent replays `inc`; its figure, key
// and degrees of freedom go to `ev`.
v1::NoiseFloor PooledNoiseFloor(const v1::ReplayBundle& replays,
                                const std::set<std::string>& hardware,
                                const std::vector<double>& inc, v1::VerdictEvidence* ev);

// Fills outcome, reason, detail, candidate_scores, incumbent_scores and
// evidence of a copy of `claim` (whose evidence may already hold the
// screening flags and replays_requested, the first look's replays). The
// Welch test uses LookSignificance; the evidence records the looks taken and
// the replays a side. Reasons by outcome:
//   rejected-hack   the harness's check ("stale-output", "cached-answer",
//                   "read-reference", "work-after-return", "modified-inputs",
//                   "precision-downgrade", "wrong-while-timed",
//                   "spawned-threads", "below-sol"), or "timing-disagreement"
//                   (the harness's clocks, or in-process vs independent,
//                   slower or faster, on every timed replay)
//   rejected-wrong  "wrong-on-replay", "out-of-bounds-on-replay"
//   rejected-flaky  "failed-on-replay", "independent-timing-failed",
//                   "timing-unsteady" (the outside clock disagreed, either
//                   way, on some replays but not all), "incumbent-failed"
//                   (and "budget-ended", which the
//                   coordinator records for claims the wall budget cut off)
//   rejected-noise  "noise", "below-min-gain", "below-noise-floor"
v1::Verification Decide(const v1::Verification& claim, const v1::ReplayBundle& replays);

// The claim as the verifier judges it: the screening flags of the
// constructs that the candidate's files add to the incumbent's in its
// evidence, with the replay count those flags call for (replays_requested).
v1::Verification ScreenClaim(const v1::Verification& claim,
                             const std::map<std::string, std::string>& candidate_files,
                             const std::map<std::string, std::string>& incumbent_files);

// Decide on a screened claim, with the screening flags named in the detail.
v1::Verification Judge(const v1::Verification& screened, const v1::ReplayBundle& replays);

}  // namespace ratchet::verifier

#endif  // RATCHET_SERVICES_VERIFIER_VERDICT_H_
