// Claims and verdicts (docs/verifier.md): an evaluation that beats its
// thread's incumbent becomes a claim (a Verification) and the desk queues its
// first round of replays, candidate and incumbent interleaved. Once every
// replay has ended, a verifier leases the claim (a lease on the coordinator's
// clock) with the whole bundle, and reports either a verdict or that a
// promising claim needs more replays: the desk queues them and the claim
// waits again. Only the verifier holding the claim reports, and a verdict
// carries only the scores of replays this coordinator handed out; an
// accepted verdict moves the thread's incumbent to the replays' median.
#ifndef RATCHET_COORDINATOR_VERIFICATION_DESK_H_
#define RATCHET_COORDINATOR_VERIFICATION_DESK_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/coordinator_metrics.h"
#include "coordinator/event_log.h"
#include "coordinator/experience.h"
#include "coordinator/job_queue.h"
#include "coordinator/store/store.h"
#include "coordinator/wakeup.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

class VerificationDesk {
 public:
  // A verifier's hold on a claim lasts verification_lease_ms on `clock`.
  VerificationDesk(store::Store* store, const Clock* clock, int64_t verification_lease_ms,
                   Wakeup* wakeup, EventLog* events, CoordinatorMetrics* metrics,
                   JobQueue* jobs, Experience* experience);
  VerificationDesk(const VerificationDesk&) = delete;
  VerificationDesk& operator=(const VerificationDesk&) = delete;

  // ---- For the research loop, inside its transactions.
  // A claim that `evaluation` (of a candidate of `thread`) beats the
  // thread's incumbent, with the policy's replays a side queued; returns its
  // id.
  absl::StatusOr<int64_t> OpenClaim(const v1::Campaign& campaign,
                                    const v1::ResearchThread& thread,
                                    const v1::Evaluation& evaluation);
  // The campaign's wall-clock budget ran out before these were decided: each
  // pending one is rejected (reason budget-ended), its candidate too.
  absl::Status AbandonPending(const std::vector<v1::Verification>& verifications);

  // ---- For verifiers. ReportVerdict changes research state: the caller
  // holds the coordinator's research lock.
  // Leases the oldest pending claim whose replays have all ended to
  // `verifier_id` and returns it with its bundle, waiting up to wait_ms for
  // one; no verification in the response when there was none.
  absl::StatusOr<v1::AcquireVerificationResponse> AcquireVerification(
      const std::string& verifier_id, int wait_ms);
  // A verdict, or (VERDICT_MORE_REPLAYS) the holder's request for more
  // replays of a claim not yet decided.
  absl::StatusOr<v1::ReportVerdictResponse> ReportVerdict(
      const v1::ReportVerdictRequest& request);

 private:
  // Queues replays of the claim's candidate and incumbent until each side
  // has `per_side` (inside the caller's transaction); returns how many.
  absl::StatusOr<int> QueueReplays(const v1::Verification& v, int per_side);
  // Every replay job of `v` (without its files), their evaluations, and the
  // noise floors and replay workers' hardware the verifier judges noise by.
  absl::StatusOr<v1::ReplayBundle> Bundle(const v1::Verification& v);
  // OK when `verifier_id` holds the claim now: it leased it last and the
  // lease has not lapsed.
  absl::Status Holds(const v1::Verification& stored, const std::string& verifier_id);
  // The holder's request for `replays` a side in total: queues the
  // difference and puts the claim back to waiting (no holder). Returns the
  // event that tells it.
  absl::StatusOr<std::string> MoreReplays(v1::Verification v, int replays);
  // Every score a verdict reports is the score of a distinct replay of the
  // claim's verification (candidate or incumbent side) that this coordinator
  // handed out; an acceptance needs both sides.
  absl::Status VerdictMatchesReplays(const v1::Verification& stored,
                                     const v1::Verification& verdict);
  // Stores the decided verification and drops any of its replays still
  // queued.
  absl::Status RecordVerdict(const v1::Verification& v);
  // The verdict's effect on the research: the candidate's status, and for an
  // acceptance the thread's incumbent and the campaign's best; its lesson.
  // Returns the event that tells it.
  absl::StatusOr<std::string> ApplyVerdict(const v1::Verification& v);
  // Adds a decided verification's incumbent replays to the noise floors.
  absl::Status UpdateNoiseFloors(const v1::Verification& v, const v1::Campaign& campaign);

  store::Store* const store_;
  const Clock* const clock_;
  Wakeup* const wakeup_;
  EventLog* const events_;
  CoordinatorMetrics* const metrics_;
  JobQueue* const jobs_;
  Experience* const experience_;
  const int64_t lease_ms_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_VERIFICATION_DESK_H_
