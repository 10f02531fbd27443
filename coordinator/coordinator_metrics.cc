#include "coordinator/coordinator_metrics.h"

#include <set>
#include <string>
#include <utility>

#include "common/names.h"

namespace ratchet::coordinator {

std::string JobKindName(v1::JobKind kind) {
  return kind == v1::JOB_REPLAY ? "replay" : "evaluate";
}

std::string VerdictReasonLabel(const std::string& reason) {
  // The verifier's vocabulary (services/verifier/verdict.cc: its checks and
  // the harness's hack flags) and the coordinator's own "budget-ended".
  static const std::set<std::string> kReasons = {
      "",  // accepted
      "budget-ended", "noise", "below-min-gain", "below-noise-floor", "incumbent-failed",
      "failed-on-replay", "wrong-on-replay", "out-of-bounds-on-replay",
      "independent-timing-failed", "timing-disagreement", "timing-unsteady",
      "stale-output", "cached-answer", "read-reference", "work-after-return",
      "modified-inputs", "precision-downgrade", "wrong-while-timed", "spawned-threads",
      "below-sol"};
  return kReasons.count(reason) > 0 ? reason : "other";
}

CoordinatorMetrics::CoordinatorMetrics(prometheus::Registry& registry) {
  commit_batches_ = &prometheus::BuildCounter()
                         .Name("ratchet_commit_batches_total")
                         .Help("Transactions that committed worker state transitions")
                         .Register(registry)
                         .Add({});
  commit_transitions_ = &prometheus::BuildCounter()
                             .Name("ratchet_commit_transitions_total")
                             .Help("Worker state transitions (acquire, complete, heartbeat) "
                                   "committed; divided by batches: the group-commit batch size")
                             .Register(registry)
                             .Add({});
  jobs_gauge_ = &prometheus::BuildGauge()
                     .Name("ratchet_jobs")
                     .Help("Jobs by state and kind")
                     .Register(registry);
  evaluations_counter_ = &prometheus::BuildCounter()
                              .Name("ratchet_evaluations_total")
                              .Help("Evaluations reported by workers, by outcome and kind")
                              .Register(registry);
  // Every outcome's series from the start, at 0: increase() over a window
  // needs a sample before the first count to see it.
  for (int o = v1::OUTCOME_OK; o <= v1::OUTCOME_HARNESS_ERROR; ++o)
    for (v1::JobKind kind : {v1::JOB_EVALUATE, v1::JOB_REPLAY})
      evaluations_counter_->Add(
          {{"outcome", OutcomeName(static_cast<v1::Outcome>(o))}, {"kind", JobKindName(kind)}});
  verdicts_counter_ = &prometheus::BuildCounter()
                           .Name("ratchet_verdicts_total")
                           .Help("Verifier verdicts by outcome and reason")
                           .Register(registry);
  best_score_gauge_ = &prometheus::BuildGauge()
                           .Name("ratchet_campaign_best_score")
                           .Help("Best verified score per campaign (by id: a name is the "
                                 "client's to choose, so no label)")
                           .Register(registry);
  workers_connected_ = &prometheus::BuildGauge()
                            .Name("ratchet_workers_connected")
                            .Help("Workers that heartbeated within a lease period")
                            .Register(registry)
                            .Add({});
  lease_expiries_ = &prometheus::BuildCounter()
                         .Name("ratchet_lease_expiries_total")
                         .Help("Job leases that lapsed without a report")
                         .Register(registry)
                         .Add({});
  llm_tokens_counter_ = &prometheus::BuildCounter()
                             .Name("ratchet_llm_tokens_total")
                             .Help("Tokens the llm proposer used, by campaign and kind")
                             .Register(registry);
  llm_cost_counter_ = &prometheus::BuildCounter()
                           .Name("ratchet_llm_cost_usd_total")
                           .Help("What the llm proposer's requests cost, by campaign")
                           .Register(registry);
  llm_answers_counter_ = &prometheus::BuildCounter()
                              .Name("ratchet_llm_answers_total")
                              .Help("llm proposals by result (candidate, malformed, "
                                    "duplicate, failed)")
                              .Register(registry);
}

void CoordinatorMetrics::EvaluationReported(v1::Outcome outcome, v1::JobKind kind) {
  evaluations_counter_->Add({{"outcome", OutcomeName(outcome)}, {"kind", JobKindName(kind)}})
      .Increment();
}

void CoordinatorMetrics::VerdictDecided(const v1::Verification& v) {
  verdicts_counter_
      ->Add({{"outcome", VerdictName(v.outcome())}, {"reason", VerdictReasonLabel(v.reason())}})
      .Increment();
}

void CoordinatorMetrics::LeaseExpired() { lease_expiries_->Increment(); }

void CoordinatorMetrics::LlmUsage(int64_t campaign_id, const proposers::ModelUsage& usage) {
  const std::string campaign = std::to_string(campaign_id);
  llm_tokens_counter_->Add({{"campaign", campaign}, {"kind", "prompt"}})
      .Increment(static_cast<double>(usage.prompt_tokens));
  llm_tokens_counter_->Add({{"campaign", campaign}, {"kind", "completion"}})
      .Increment(static_cast<double>(usage.completion_tokens));
  llm_cost_counter_->Add({{"campaign", campaign}}).Increment(usage.cost_usd);
}

void CoordinatorMetrics::LlmAnswer(const std::string& result) {
  llm_answers_counter_->Add({{"result", result}}).Increment();
}

std::optional<std::map<int64_t, int>> CoordinatorMetrics::UpdateGauges(
    store::Store* store, const GroupCommit& commits, int workers_connected) {
  // Summaries: this runs every second, and a spec may hold megabytes.
  auto campaigns = store->ListCampaignSummaries();
  if (!campaigns.ok()) return std::nullopt;
  std::map<std::pair<std::string, std::string>, int> by_state;
  for (const char* st : {"queued", "leased", "done", "failed"})
    for (const char* k : {"evaluate", "replay"}) by_state[{st, k}] = 0;
  for (const auto& c : *campaigns)
    best_score_gauge_->Add({{"campaign", std::to_string(c.id())}}).Set(c.best_score());
  // Counted by the store, not by reading every job: this runs every second.
  auto counts = store->CountJobs();
  if (!counts.ok()) return std::nullopt;
  std::map<int64_t, int> leased;
  for (const auto& n : *counts) {
    const char* st = n.state == v1::JOB_QUEUED   ? "queued"
                     : n.state == v1::JOB_LEASED ? "leased"
                     : n.state == v1::JOB_DONE   ? "done"
                                                 : "failed";
    by_state[{st, JobKindName(n.kind)}] += static_cast<int>(n.count);
    if (n.state == v1::JOB_LEASED) leased[n.campaign_id] += static_cast<int>(n.count);
  }
  for (const auto& [key, n] : by_state)
    jobs_gauge_->Add({{"state", key.first}, {"kind", key.second}}).Set(n);
  const int64_t batches = commits.batches(), transitions = commits.functions();
  commit_batches_->Increment(static_cast<double>(batches - counted_batches_));
  commit_transitions_->Increment(static_cast<double>(transitions - counted_transitions_));
  counted_batches_ = batches;
  counted_transitions_ = transitions;
  workers_connected_->Set(workers_connected);
  return leased;
}

}  // namespace ratchet::coordinator
