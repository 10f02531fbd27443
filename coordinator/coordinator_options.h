// What an operator (or a test) sets on a coordinator.
#ifndef RATCHET_COORDINATOR_COORDINATOR_OPTIONS_H_
#define RATCHET_COORDINATOR_COORDINATOR_OPTIONS_H_

#include <cstdint>
#include <memory>

#include "common/clock.h"
#include "coordinator/group_commit.h"

namespace ratchet::llm {
class LlmEndpoints;
}  // namespace ratchet::llm

namespace ratchet::coordinator {

struct CoordinatorOptions {
  int64_t lease_ms = 30'000;               // a job lease without renewal
  int64_t heartbeat_ms = 3'000;            // what workers are told to use
  int max_attempts = 3;                    // leases per job before it fails
  int64_t verification_lease_ms = 600'000; // a verifier's hold on a claim
  int64_t tick_ms = 200;                   // research loop period
  // Batching of AcquireJob/CompleteJob/heartbeat transitions (group_commit.h).
  GroupCommitOptions group_commit;
  // The operator's LLM endpoints (--llm-endpoints); an llm spec names one.
  // Null: none, and every llm campaign is refused.
  std::shared_ptr<const llm::LlmEndpoints> llm_endpoints;
  // Every time of day the coordinator decides by (leases, budgets, pauses,
  // claims) is read here; tests pass a FakeClock. Not owned; never null.
  const Clock* clock = SystemClock::Get();
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_COORDINATOR_OPTIONS_H_
