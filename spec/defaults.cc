#include "spec/defaults.h"

#include <algorithm>
#include <iterator>
#include <string>
#include <vector>

namespace ratchet::spec {
namespace {

void DefaultTiers(v1::VerificationPolicy* policy) {
  const auto& named = policy->tiers();
  std::vector<std::string> tiers;
  for (int i = 0; i < static_cast<int>(std::size(kTiers)); ++i) {
    const bool wanted = i < kAlwaysOnTiers || named.empty() ||
                        std::find(named.begin(), named.end(), kTiers[i]) != named.end();
    if (wanted) tiers.push_back(kTiers[i]);
  }
  // An unknown name is ValidateCampaignSpec's to refuse: kept, at the end.
  for (const std::string& t : named)
    if (std::find(tiers.begin(), tiers.end(), t) == tiers.end()) tiers.push_back(t);
  policy->clear_tiers();
  for (const std::string& t : tiers) policy->add_tiers(t);
}

}  // namespace

void ApplyDefaults(v1::CampaignSpec* spec) {
  if (spec->task() == v1::TASK_UNSPECIFIED) spec->set_task(kDefaultTask);
  if (spec->proposer() == v1::PROPOSER_UNSPECIFIED) spec->set_proposer(kDefaultProposer);
  if (spec->device() == v1::DEVICE_UNSPECIFIED) spec->set_device(kDefaultDevice);
  if (spec->experience().empty()) spec->set_experience(kDefaultExperience);
  if (spec->threads() == 0) spec->set_threads(kDefaultThreads);
  if (spec->in_flight_per_thread() == 0) spec->set_in_flight_per_thread(kDefaultInFlightPerThread);
  if (spec->weight() == 0) spec->set_weight(kDefaultWeight);

  v1::Budget* budget = spec->mutable_budget();
  if (budget->max_evaluations() == 0) budget->set_max_evaluations(kDefaultMaxEvaluations);

  ApplyVerificationDefaults(spec->mutable_verification());

  v1::HarnessSettings* h = spec->mutable_harness();
  if (h->warmups() == 0) h->set_warmups(kDefaultWarmups);
  if (h->repetitions() == 0) h->set_repetitions(kDefaultRepetitions);
  if (h->correctness_rounds() == 0) h->set_correctness_rounds(kDefaultCorrectnessRounds);
  if (h->timeout_seconds() == 0 && IsTraining(spec->task())) {
    // A training job runs its budget, then the evaluation.
    const v1::TrainingSettings& t = spec->training();
    h->set_timeout_seconds(t.budget_seconds() > 0 ? t.budget_seconds() +
                                                        t.warmup_allowance_seconds() +
                                                        kDefaultTrainingSlackSeconds
                                                  : 3600);
  }
  if (h->timeout_seconds() == 0) h->set_timeout_seconds(kDefaultTimeoutSeconds);
  if (h->screen() == v1::SCREEN_UNSPECIFIED) h->set_screen(kDefaultScreen);

  if (spec->proposer() == v1::PROPOSER_LLM) ApplyLlmDefaults(spec->mutable_llm());
  if (IsTraining(spec->task())) {
    v1::TrainingSettings* t = spec->mutable_training();
    if (t->nproc() == 0) t->set_nproc(std::max(1, spec->gpus()));
    if (t->grace_seconds() == 0) t->set_grace_seconds(kDefaultTrainingGraceSeconds);
    if (t->eval_windows() == 0) t->set_eval_windows(kDefaultEvalWindows);
    if (t->eval_seq_len() == 0) t->set_eval_seq_len(kDefaultEvalSeqLen);
    if (t->eval_seed() == 0) t->set_eval_seed(kDefaultEvalSeed);
    if (t->halving() == 0) t->set_halving(kDefaultHalving);
  }
}

void ApplyVerificationDefaults(v1::VerificationPolicy* v) {
  if (v->replays() == 0) v->set_replays(kDefaultReplays);
  if (v->significance() == 0) v->set_significance(kDefaultSignificance);
  if (v->timing_tolerance() == 0) v->set_timing_tolerance(kDefaultTimingTolerance);
  if (v->noise_sigmas() == 0) v->set_noise_sigmas(kDefaultNoiseSigmas);
  if (v->max_replays() == 0) v->set_max_replays(kDefaultMaxReplays);
  DefaultTiers(v);
}

v1::VerificationPolicy AppliedVerification(const v1::VerificationPolicy& policy) {
  v1::VerificationPolicy applied = policy;
  ApplyVerificationDefaults(&applied);
  return applied;
}

bool TierEnabled(const v1::VerificationPolicy& policy, const std::string& tier) {
  const v1::VerificationPolicy applied = AppliedVerification(policy);
  return std::find(applied.tiers().begin(), applied.tiers().end(), tier) !=
         applied.tiers().end();
}

void ApplyLlmDefaults(v1::LlmSettings* llm) {
  if (llm->max_tokens() == 0) llm->set_max_tokens(kDefaultLlmMaxTokens);
  if (llm->timeout_seconds() == 0) llm->set_timeout_seconds(kDefaultLlmTimeoutSeconds);
  if (llm->max_concurrency() == 0) llm->set_max_concurrency(kDefaultLlmMaxConcurrency);
  for (auto& m : *llm->mutable_models())
    if (m.weight() == 0) m.set_weight(kDefaultLlmModelWeight);
}

}  // namespace ratchet::spec
