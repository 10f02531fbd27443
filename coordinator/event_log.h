// A campaign's events: what happened, one line each, in order, for watchers
// (WatchCampaign), the coordinator's log and, through the store, for anyone
// later (ListEvents, `ratchet events`). Watchers are served from memory: the
// last 10,000 events of all campaigns. The store keeps every campaign's last
// 20,000 (store.h, "Events"), across restarts.
//
// Emit never waits for the store: it queues the event, and a writer thread of
// the log's own appends the queue to the store in batches, one transaction
// per batch. The coordinator emits events from inside its research lock and
// from busy RPCs (an evaluation, a claim, a verdict each make one); a commit
// (an fsync on SQLite) per event there would cost more than the work it
// describes, and events queued while one batch commits simply form the next.
// The price: events emitted just before a crash (the batch in flight) may be
// missing from the store, never the state they describe, which is stored by
// its own transactions.
#ifndef RATCHET_COORDINATOR_EVENT_LOG_H_
#define RATCHET_COORDINATOR_EVENT_LOG_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "coordinator/store/store.h"
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
  // for the claim an event announces). With a store, every event is written
  // to it as well; without one (nullptr), events live in memory only.
  EventLog(const Clock* clock, Wakeup* wakeup, store::Store* store = nullptr);
  // Writes what is still queued before it returns.
  ~EventLog();
  EventLog(const EventLog&) = delete;
  EventLog& operator=(const EventLog&) = delete;

  void Emit(int64_t campaign_id, const std::string& text);

  // Returns once every event emitted before the call has been written to the
  // store (or given up on, see WriteLoop): a reader of the store then sees
  // them all.
  void Flush();

  // Events of the campaign after `*cursor` (a sequence number of this log,
  // not the store's), waiting up to wait_ms for one; advances the cursor.
  std::vector<CampaignEventRecord> WaitForEvents(int64_t campaign_id, int64_t* cursor,
                                                 int wait_ms);

 private:
  // The writer thread: appends queued events to the store, a batch per
  // transaction, until the log is destroyed and the queue is empty.
  void WriteLoop();
  absl::Status WriteBatch(const std::vector<CampaignEventRecord>& batch);

  const Clock* const clock_;
  Wakeup* const wakeup_;
  store::Store* const store_;

  std::mutex mu_;
  std::deque<CampaignEventRecord> events_;   // for watchers
  int64_t next_seq_ = 1;
  std::deque<CampaignEventRecord> unwritten_;  // emitted, not yet in the store
  int64_t written_seq_ = 0;                    // the last event the writer is done with
  bool stopping_ = false;
  std::condition_variable queued_;   // unwritten_ grew, or stopping_
  std::condition_variable written_;  // written_seq_ moved
  std::thread writer_;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_EVENT_LOG_H_
