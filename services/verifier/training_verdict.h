// The verifier's judgement of a training claim (TASK_TRAIN_BUDGET,
// TASK_TRAIN_TARGET) from its replays: training runs of the candidate and of
// the incumbent, each with a fresh seed.
//
// The runs' scores (1 / bpb; 3600 / training seconds once the target is
// reached, else 0) rank candidates in the research loop, but a verdict rests
// on the runs' own figures, lower is better: bits per byte after the budget,
// or training seconds to a loss target whose reach is itself tested. One
// look (training runs take minutes each), at the campaign's significance.
// docs/verifier.md, "Training claims", has the whole policy.
#ifndef RATCHET_SERVICES_VERIFIER_TRAINING_VERDICT_H_
#define RATCHET_SERVICES_VERIFIER_TRAINING_VERDICT_H_

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::verifier {

namespace v1 = ::ratchet::v1;

// The speedrun's rule for a loss target: the mean of the candidate's replay
// losses must be below it at this one-sided one-sample t-test's p.
inline constexpr double kTargetSignificance = 0.01;

// Fills outcome, reason, detail, candidate_scores, incumbent_scores (the
// runs' scores) and evidence (figure "bpb" or "training_seconds", whose
// medians, gain, Welch test and noise floor it holds; for train-target the
// candidate's mean loss and the target test's t and p) of a copy of `claim`.
// Reasons by outcome, in this precedence:
//   rejected-hack   "frozen-edit", "causal-leak", "memorized-validation" (the
//                   validation loss far below the held-out split's), "ignores-seed"
//                   (bit-identical bpb and loss for different seeds, where the
//                   incumbent's vary)
//   rejected-wrong  "wrong-on-replay" (non-finite, collapsed, bad output)
//   rejected-flaky  "failed-on-replay" (over budget, crash, no evaluation, ...),
//                   "incumbent-failed"
//   rejected-noise  "target-not-reached" (train-target), "noise",
//                   "below-min-gain", "below-noise-floor"
v1::Verification DecideTraining(const v1::Verification& claim, const v1::ReplayBundle& replays);

}  // namespace ratchet::verifier

#endif  // RATCHET_SERVICES_VERIFIER_TRAINING_VERDICT_H_
