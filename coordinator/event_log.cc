#include "coordinator/event_log.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_format.h"

namespace ratchet::coordinator {
namespace {

constexpr size_t kMaxEvents = 10'000;

}  // namespace

std::string ShortScore(double score) { return absl::StrFormat("%.4f", score); }

EventLog::EventLog(const Clock* clock, Wakeup* wakeup) : clock_(clock), wakeup_(wakeup) {}

void EventLog::Emit(int64_t campaign_id, const std::string& text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({next_seq_++, campaign_id, clock_->NowUnixMs(), text});
    if (events_.size() > kMaxEvents) events_.pop_front();
  }
  std::fprintf(stderr, "[campaign %lld] %s\n", static_cast<long long>(campaign_id),
               text.c_str());
  wakeup_->Notify();
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
