// The coordinator's side of stored baselines (stored_baselines.h): oracle
// measurements recorded from evaluations, frozen baselines handed out with
// jobs. Keeps the campaigns' baseline keys and the stored baselines of each
// (problem, hardware), re-read when older than a few seconds (another
// coordinator may have frozen some) or when this coordinator changed them.
#ifndef RATCHET_COORDINATOR_JOB_BASELINES_H_
#define RATCHET_COORDINATOR_JOB_BASELINES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "coordinator/store/store.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

class JobBaselines {
 public:
  JobBaselines(store::Store* store, const Clock* clock);
  JobBaselines(const JobBaselines&) = delete;
  JobBaselines& operator=(const JobBaselines&) = delete;

  // An ok evaluation (never a replay) whose harness timed T_b itself adds
  // its measurements to the baselines of its problem on its worker's
  // hardware and software, until they freeze. Inside the evaluation's
  // transaction; sets *event when one froze and *changed to the key to
  // Forget() once the transaction commits.
  absl::Status Record(const v1::Campaign& campaign, const v1::Evaluation& evaluation,
                      std::string* event, std::string* changed);
  void Forget(const std::string& changed);

  // The frozen baselines of every workload of the campaign's problem on the
  // worker's hardware, for the software its harness last reported (for
  // Job.baselines); empty when some are missing.
  absl::StatusOr<std::vector<v1::Baseline>> ForJob(int64_t campaign_id,
                                                   const v1::CampaignSpec& spec,
                                                   const v1::Hardware& hardware,
                                                   const std::string& worker_id);
  // The software a worker's harness reported (its next jobs get its baselines).
  void NoteSoftware(const std::string& worker_id, const std::string& software);

 private:
  struct Keys {
    std::string problem;
    std::vector<std::string> workloads;
  };
  struct Stored {
    std::vector<v1::Baseline> baselines;
    int64_t loaded_ms = 0;
  };

  store::Store* const store_;
  const Clock* const clock_;
  std::mutex mu_;  // guards everything below
  std::map<int64_t, std::shared_ptr<const Keys>> keys_;  // by campaign
  std::map<std::string, std::shared_ptr<const Stored>> stored_;  // by problem|hardware
  std::map<std::string, std::string> worker_software_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_JOB_BASELINES_H_
