#include "coordinator/event_log.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_format.h"

namespace ratchet::coordinator {
namespace {

constexpr size_t kMaxEvents = 10'000;
// Events per store transaction at most, so that one batch holds the store
// (and the research loop waiting on it) only briefly.
constexpr size_t kMaxBatch = 500;

}  // namespace

std::string ShortScore(double score) { return absl::StrFormat("%.4f", score); }

EventLog::EventLog(const Clock* clock, Wakeup* wakeup, store::Store* store)
    : clock_(clock), wakeup_(wakeup), store_(store) {
  if (store_ != nullptr) writer_ = std::thread([this] { WriteLoop(); });
}

EventLog::~EventLog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  queued_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void EventLog::Emit(int64_t campaign_id, const std::string& text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    CampaignEventRecord record{next_seq_++, campaign_id, clock_->NowUnixMs(), text};
    if (store_ != nullptr) unwritten_.push_back(record);
    events_.push_back(std::move(record));
    if (events_.size() > kMaxEvents) events_.pop_front();
  }
  if (store_ != nullptr) queued_.notify_one();
  std::fprintf(stderr, "[campaign %lld] %s\n", static_cast<long long>(campaign_id),
               text.c_str());
  wakeup_->Notify();
}

void EventLog::Flush() {
  if (store_ == nullptr) return;
  std::unique_lock<std::mutex> lock(mu_);
  const int64_t last = next_seq_ - 1;
  written_.wait(lock, [&] { return written_seq_ >= last; });
}

void EventLog::WriteLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    queued_.wait(lock, [&] { return stopping_ || !unwritten_.empty(); });
    if (unwritten_.empty()) return;  // stopping, with everything written
    std::vector<CampaignEventRecord> batch;
    while (!unwritten_.empty() && batch.size() < kMaxBatch) {
      batch.push_back(std::move(unwritten_.front()));
      unwritten_.pop_front();
    }
    lock.unlock();
    // One retry: a PostgreSQL transaction fails at once when its connection
    // is lost, and the next one reconnects (store.h). Past that the batch is
    // dropped: the log must neither hold up the research nor grow without
    // bound while the store is down.
    absl::Status status = WriteBatch(batch);
    if (!status.ok()) status = WriteBatch(batch);
    lock.lock();
    int64_t done = batch.back().seq;
    if (!status.ok()) {
      size_t dropped = batch.size();
      // Shutting down: what is left would only wait on the same failure.
      if (stopping_ && !unwritten_.empty()) {
        dropped += unwritten_.size();
        done = unwritten_.back().seq;
        unwritten_.clear();
      }
      std::fprintf(stderr, "coordinator: %zu events not stored: %s\n", dropped,
                   status.ToString().c_str());
    }
    written_seq_ = done;
    written_.notify_all();
  }
}

absl::Status EventLog::WriteBatch(const std::vector<CampaignEventRecord>& batch) {
  return store_->Transaction([&]() -> absl::Status {
    for (const auto& e : batch) {
      auto seq = store_->AppendEvent(e.campaign_id, e.unix_ms, e.text);
      if (!seq.ok()) return seq.status();
    }
    return absl::OkStatus();
  });
}

std::vector<CampaignEventRecord> EventLog::WaitForEvents(int64_t campaign_id, int64_t* cursor,
                                                         int wait_ms) {
  const Wakeup::Deadline deadline = Wakeup::In(wait_ms);
  std::vector<CampaignEventRecord> out;
  while (true) {
    const uint64_t seen = wakeup_->generation();
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& e : events_)
        if (e.seq > *cursor && e.campaign_id == campaign_id) out.push_back(e);
      // Skip past events of other campaigns too, so the scan stays short.
      if (!events_.empty()) *cursor = std::max(*cursor, events_.back().seq);
    }
    if (!out.empty() || !wakeup_->WaitUntil(deadline, seen)) return out;
  }
}

}  // namespace ratchet::coordinator
