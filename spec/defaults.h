// What a campaign spec means when a field is left out, and the names its
// fields may hold: written once, here. The coordinator applies the defaults
// to every spec it is sent (SubmitCampaign), whatever the client; the CLI
// applies the same ones to the spec it reads from YAML. docs/campaign-spec.md
// tables them.
//
// Proto3 cannot tell an unset number from 0, so ApplyDefaults fills a field
// only where 0 (or "") is not a setting of its own. Four fields take 0 as a
// setting: seed, verification.min_gain, llm.temperature and llm.max_retries.
// Their defaults below are written into the spec by the CLI when the YAML
// leaves them out; a gRPC client that leaves them out gets 0.
#ifndef RATCHET_SPEC_DEFAULTS_H_
#define RATCHET_SPEC_DEFAULTS_H_

#include <cstdint>
#include <string>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::spec {

// ---------------------------------------------------------------------------
// The names a field may hold (the enums' words: spec/names.h).

// Where a campaign's lessons come from (docs/research.md).
inline constexpr const char* kExperiences[] = {"campaign", "shared"};
// The verifier's tiers (docs/verifier.md, "Tiers"), in the order they
// escalate. The first kAlwaysOnTiers run whatever a spec says.
inline constexpr const char* kTiers[] = {"guards", "replay", "adversarial",
                                         "independent-timing"};
inline constexpr int kAlwaysOnTiers = 2;
// The tiers a replay job switches on (Job.adversarial, .independent_timing).
inline constexpr const char* kTierAdversarial = kTiers[2];
inline constexpr const char* kTierIndependentTiming = kTiers[3];

// Replays a side: the most a policy may ask for (replays, max_replays), the
// most the verifier's schedule reaches and the most the coordinator queues for a claim.
inline constexpr int kMaxReplaysPerSide = 20;

// ---------------------------------------------------------------------------
// Defaults for fields left out.

// CampaignSpec
inline constexpr v1::Task kDefaultTask = v1::TASK_KERNEL;
inline constexpr v1::Proposer kDefaultProposer = v1::PROPOSER_EVOLVE;
inline constexpr v1::Device kDefaultDevice = v1::DEVICE_CPU;
inline constexpr const char* kDefaultExperience = "campaign";
inline constexpr int kDefaultThreads = 2;
inline constexpr int kDefaultInFlightPerThread = 2;
inline constexpr double kDefaultWeight = 1;
inline constexpr uint64_t kDefaultSeed = 1;  // 0 is a seed: written by the CLI only

// Budget (max_wall_seconds and max_gpu_seconds: 0 = unlimited)
inline constexpr int kDefaultMaxEvaluations = 50;

// VerificationPolicy (tiers: all of kTiers)
inline constexpr int kDefaultReplays = 3;
inline constexpr double kDefaultMinGain = 0.01;  // 0 is a setting: written by the CLI only
inline constexpr double kDefaultSignificance = 0.05;
inline constexpr double kDefaultTimingTolerance = 0.5;
inline constexpr double kDefaultNoiseSigmas = 2.0;
inline constexpr int kDefaultMaxReplays = kMaxReplaysPerSide;

// HarnessSettings: SOL-ExecBench's timing settings.
inline constexpr int kDefaultWarmups = 10;
inline constexpr int kDefaultRepetitions = 50;
inline constexpr int kDefaultCorrectnessRounds = 10;
inline constexpr double kDefaultTimeoutSeconds = 120;  // one job, compile included
inline constexpr v1::Screen kDefaultScreen = v1::SCREEN_AUTO;

// TrainingSettings (train-budget, train-target; docs/training.md)
inline constexpr double kDefaultTrainingGraceSeconds = 30;
inline constexpr int kDefaultEvalWindows = 64;
inline constexpr int kDefaultEvalSeqLen = 256;
inline constexpr int kDefaultEvalSeed = 1;
inline constexpr int kDefaultHalving = 3;  // multi-fidelity: the best third goes on
// A training job's wall limit when the spec gives none: the budget plus
// this much for start-up, the checkpoint and the evaluation.
inline constexpr double kDefaultTrainingSlackSeconds = 600;

// True for train-budget and train-target.
inline bool IsTraining(v1::Task task) {
  return task == v1::TASK_TRAIN_BUDGET || task == v1::TASK_TRAIN_TARGET;
}

// LlmSettings (docs/llm.md; models: the endpoint's default model)
inline constexpr double kDefaultLlmTemperature = 0.7;  // 0 is a setting: CLI only
inline constexpr int kDefaultLlmMaxRetries = 4;        // 0 is a setting: CLI only
inline constexpr int kDefaultLlmMaxTokens = 4096;
inline constexpr double kDefaultLlmTimeoutSeconds = 120;  // one HTTP request
inline constexpr int kDefaultLlmMaxConcurrency = 4;
inline constexpr double kDefaultLlmModelWeight = 1;

// Fills every field left out (0, "" or *_UNSPECIFIED) that has a default
// above, except the four whose 0 is a setting. Tiers become the kTiers the
// spec names, in kTiers' order, always with the first kAlwaysOnTiers (all of
// them when it names none). The llm section gets its defaults when the
// proposer is llm.
// Idempotent; values it does not fill are left as they are (a spec that
// ValidateCampaignSpec refuses stays refused).
void ApplyDefaults(v1::CampaignSpec* spec);

// The llm section's part of ApplyDefaults (for LlmProposer::Create, which
// also takes settings that did not come through a spec).
void ApplyLlmDefaults(v1::LlmSettings* llm);

// The verification section's part of ApplyDefaults, for a policy read back
// with a claim (the verifier, the coordinator's verification desk): a claim
// stored before its spec had defaults applied means the same as one after.
void ApplyVerificationDefaults(v1::VerificationPolicy* policy);
// A copy of `policy` with ApplyVerificationDefaults applied.
v1::VerificationPolicy AppliedVerification(const v1::VerificationPolicy& policy);

// Whether `policy` runs `tier`: the tiers ApplyVerificationDefaults leaves
// it (every one of kTiers when it names none).
bool TierEnabled(const v1::VerificationPolicy& policy, const std::string& tier);

}  // namespace ratchet::spec

#endif  // RATCHET_SPEC_DEFAULTS_H_
