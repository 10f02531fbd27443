// Experience (docs/research.md): what the research learned, as lessons filed
// under the problem's op type, read by the proposers of this campaign or,
// with `experience: shared`, of every campaign of that op type; and
// migration, which offers one island's incumbent to the next.
#ifndef RATCHET_COORDINATOR_EXPERIENCE_H_
#define RATCHET_COORDINATOR_EXPERIENCE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/event_log.h"
#include "coordinator/store/store.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

// What lessons are filed under: definition.json's "op_type", so that other
// shapes of the same operation share them; the problem name without one.
std::string OpType(const v1::Problem& problem);

class Experience {
 public:
  Experience(store::Store* store, const Clock* clock, EventLog* events);
  Experience(const Experience&) = delete;
  Experience& operator=(const Experience&) = delete;

  // The lessons the campaign's proposers read (none from a store that keeps
  // none).
  absl::StatusOr<std::vector<v1::Lesson>> Read(const v1::Campaign& campaign);
  // When a campaign begins proposing: counts into it the other campaigns'
  // lessons its proposers will read and returns the event that says so (or
  // says what `experience: campaign` leaves unread).
  absl::StatusOr<std::string> Note(v1::Campaign* campaign);
  // One lesson per knob the candidate changed against its parent (or one for
  // a code change), with its effect and, for a claim, the verdict; counted
  // into the campaign, which is stored.
  absl::Status RecordLessons(v1::Campaign& campaign, const v1::Candidate& candidate,
                             double score, const std::string& outcome,
                             const std::string& verdict);
  // Islands: offers the donor thread's incumbent to the next thread (a
  // ring), which adopts it when it beats its own.
  absl::Status Migrate(v1::Campaign& campaign, const v1::ResearchThread& donor);

 private:
  store::Store* const store_;
  const Clock* const clock_;
  EventLog* const events_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_EXPERIENCE_H_
