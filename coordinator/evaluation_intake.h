// Applies workers' reports to the research state (the research loop's first
// step each tick): the baseline's evaluation sets every thread's incumbent;
// a thread's evaluation that beats its incumbent by the campaign's min_gain
// becomes a claim, its first replays queued (VerificationDesk::OpenClaim);
// everything else is learned from at once. A training evaluation at a
// fraction of the budget (multi-fidelity) only decides whether its candidate
// trains at the next fraction.
// Every job's time counts against the GPU-seconds budget, replays too.
#ifndef RATCHET_COORDINATOR_EVALUATION_INTAKE_H_
#define RATCHET_COORDINATOR_EVALUATION_INTAKE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "coordinator/event_log.h"
#include "coordinator/experience.h"
#include "coordinator/job_baselines.h"
#include "coordinator/job_queue.h"
#include "coordinator/store/store.h"
#include "coordinator/verification_desk.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

class EvaluationIntake {
 public:
  EvaluationIntake(store::Store* store, const Clock* clock, EventLog* events,
                   JobBaselines* baselines, Experience* experience, VerificationDesk* desk,
                   JobQueue* jobs);
  EvaluationIntake(const EvaluationIntake&) = delete;
  EvaluationIntake& operator=(const EvaluationIntake&) = delete;

  // One unprocessed evaluation of a research (not sleep) campaign, applied
  // and marked processed in one transaction.
  absl::Status Apply(const v1::Evaluation& evaluation);
  // An evaluation job whose leases lapsed max_attempts times counts as spent
  // and its candidate as failed; the baseline's fails the campaign.
  absl::Status JobFailed(const v1::Job& job);

 private:
  // What an evaluation tells the campaign's watchers, after it committed.
  struct Texts {
    std::string event;
    std::string experience;  // once, when the baseline lets proposing begin
    std::string baselines;   // when stored baselines froze
  };
  absl::Status ApplyBaseline(v1::Campaign& campaign, v1::Candidate& candidate,
                             const v1::Evaluation& evaluation,
                             std::vector<v1::ResearchThread>& threads, Texts* texts);
  // A training evaluation at a fidelity below 1 (multi_fidelity.h): its
  // score joins the rung; the candidate goes on to the next fidelity or
  // stops there. The baseline's only joins the rung.
  absl::Status ApplyLowFidelity(v1::Campaign& campaign, v1::Candidate& candidate,
                                const v1::Evaluation& evaluation, double fidelity,
                                Texts* texts);
  absl::Status ApplyToThread(v1::Campaign& campaign, v1::Candidate& candidate,
                             const v1::Evaluation& evaluation,
                             std::vector<v1::ResearchThread>& threads, Texts* texts);

  store::Store* const store_;
  const Clock* const clock_;
  EventLog* const events_;
  JobBaselines* const baselines_;
  Experience* const experience_;
  VerificationDesk* const desk_;
  JobQueue* const jobs_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_EVALUATION_INTAKE_H_
