// What clients read: campaigns with their derived fields (threads, job and
// verdict counts), leaderboards, a candidate with its evaluations and
// verifications. Reads only.
#ifndef RATCHET_COORDINATOR_CAMPAIGN_VIEWS_H_
#define RATCHET_COORDINATOR_CAMPAIGN_VIEWS_H_

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/store/store.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

class CampaignViews {
 public:
  explicit CampaignViews(store::Store* store) : store_(store) {}

  absl::StatusOr<v1::Campaign> GetCampaign(int64_t id);
  absl::StatusOr<std::vector<v1::Campaign>> ListCampaigns();
  // Verified candidates (accepted and the baseline) first, then by score;
  // at most `limit` (0: all), without their files.
  absl::StatusOr<v1::Leaderboard> GetLeaderboard(int64_t campaign_id, int limit);
  absl::StatusOr<v1::CandidateDetail> GetCandidate(int64_t candidate_id);

 private:
  // Queued and leased jobs per campaign.
  using JobTally = std::map<int64_t, std::pair<int64_t, int64_t>>;
  // Fills in the derived fields (threads, job counts, verdict counts); job
  // counts from `tally` when given, else from the campaign's jobs.
  absl::Status Decorate(v1::Campaign* campaign, const JobTally* tally = nullptr);

  store::Store* const store_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_CAMPAIGN_VIEWS_H_
