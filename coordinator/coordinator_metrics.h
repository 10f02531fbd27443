// The coordinator's Prometheus metrics (docs/operations.md, "Metrics"): counters
// bumped as things happen, gauges recounted from the store by the research
// loop about once a second.
#ifndef RATCHET_COORDINATOR_COORDINATOR_METRICS_H_
#define RATCHET_COORDINATOR_COORDINATOR_METRICS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "coordinator/group_commit.h"
#include "coordinator/proposers/proposer.h"
#include "coordinator/store/store.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

// "evaluate" or "replay".
std::string JobKindName(v1::JobKind kind);

// A verdict's reason as a label: one of the verifier's fixed reasons, else
// "other" (a reason is the reporting verifier's string: it must not make
// series without bound).
std::string VerdictReasonLabel(const std::string& reason);

class CoordinatorMetrics {
 public:
  explicit CoordinatorMetrics(prometheus::Registry& registry);
  CoordinatorMetrics(const CoordinatorMetrics&) = delete;
  CoordinatorMetrics& operator=(const CoordinatorMetrics&) = delete;

  void EvaluationReported(v1::Outcome outcome, v1::JobKind kind);
  void VerdictDecided(const v1::Verification& v);  // by outcome and reason
  void LeaseExpired();
  void LlmUsage(int64_t campaign_id, const proposers::ModelUsage& usage);
  void LlmAnswer(const std::string& result);  // candidate, malformed, duplicate, failed

  // Recounts the gauges: jobs by state and kind, each campaign's best score,
  // the workers connected, and the commits of `commits` since the last call.
  // Returns the jobs leased now per campaign (the scheduler's recount), or
  // nullopt when the store could not be read. Not for concurrent calls.
  std::optional<std::map<int64_t, int>> UpdateGauges(store::Store* store,
                                                     const GroupCommit& commits,
                                                     int workers_connected);

 private:
  prometheus::Family<prometheus::Gauge>* jobs_gauge_;
  prometheus::Family<prometheus::Counter>* evaluations_counter_;
  prometheus::Family<prometheus::Counter>* verdicts_counter_;
  prometheus::Family<prometheus::Gauge>* best_score_gauge_;
  prometheus::Gauge* workers_connected_;
  prometheus::Counter* lease_expiries_;
  prometheus::Family<prometheus::Counter>* llm_tokens_counter_;
  prometheus::Family<prometheus::Counter>* llm_cost_counter_;
  prometheus::Family<prometheus::Counter>* llm_answers_counter_;
  prometheus::Counter* commit_batches_;
  prometheus::Counter* commit_transitions_;
  int64_t counted_batches_ = 0;      // by UpdateGauges
  int64_t counted_transitions_ = 0;  // by UpdateGauges
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_COORDINATOR_METRICS_H_
