// A campaign's events: what happened, one line each, in order, for watchers
// (WatchCampaign) and the coordinator's log. Kept in memory only: the last
// 10,000 of all campaigns.
#ifndef RATCHET_COORDINATOR_EVENT_LOG_H_
#define RATCHET_COORDINATOR_EVENT_LOG_H_

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "coordinator/wakeup.h"

namespace ratchet::coordinator {

struct CampaignEventRecord {
  int64_t seq = 0;
  int64_t campaign_id = 0;
  int64_t unix_ms = 0;
  std::string text;
};

// A score as events print it.
std::string ShortScore(double score);

class EventLog {
 public:
  // Every event wakes `wakeup`'s waiters (a watcher, or a verifier waiting
  // for the claim an event announces).
  EventLog(const Clock* clock, Wakeup* wakeup);
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  void Emit(int64_t campaign_id, const std::string& text);

  // Events of the campaign after `*cursor` (a sequence number), waiting up to
  // wait_ms for one; advances the cursor.
  std::vector<CampaignEventRecord> WaitForEvents(int64_t campaign_id, int64_t* cursor,
                                                 int wait_ms);

 private:
  const Clock* const clock_;
  Wakeup* const wakeup_;
  std::mutex mu_;
  std::deque<CampaignEventRecord> events_;
  int64_t next_seq_ = 1;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_EVENT_LOG_H_
