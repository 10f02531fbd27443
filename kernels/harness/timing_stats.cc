#include "kernels/harness/timing_stats.h"

#include <algorithm>
#include <cmath>

namespace ratchet::kernels {

SampleSummary Summarize(std::vector<double> samples) {
  SampleSummary s;
  s.n = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  const size_t m = samples.size();
  s.median = m % 2 ? samples[m / 2] : 0.5 * (samples[m / 2 - 1] + samples[m / 2]);
  s.p10 = samples[static_cast<size_t>(0.1 * static_cast<double>(m - 1))];
  s.p90 = samples[static_cast<size_t>(std::lround(0.9 * static_cast<double>(m - 1)))];
  s.min = samples.front();
  s.max = samples.back();
  s.spread = s.median > 0 ? (s.p90 - s.p10) / s.median : 0;
  return s;
}

std::optional<double> SpanNs(const std::vector<ActivityInterval>& records) {
  bool any = false;
  uint64_t lo = 0, hi = 0;
  for (const ActivityInterval& r : records) {
    if (r.start == 0 || r.end < r.start) continue;
    if (!any || r.start < lo) lo = r.start;
    if (!any || r.end > hi) hi = r.end;
    any = true;
  }
  if (!any) return std::nullopt;
  return static_cast<double>(hi - lo);
}

std::vector<std::vector<ActivityInterval>> SplitByWindow(
    const std::vector<ActivityInterval>& records, const std::vector<TimeWindow>& windows) {
  std::vector<std::vector<ActivityInterval>> out(windows.size());
  for (const ActivityInterval& r : records) {
    // The last window that begins at or before the record's start.
    auto it = std::upper_bound(windows.begin(), windows.end(), r.start,
                               [](uint64_t t, const TimeWindow& w) { return t < w.begin; });
    if (it == windows.begin()) continue;
    --it;
    if (r.start <= it->end) out[static_cast<size_t>(it - windows.begin())].push_back(r);
  }
  return out;
}

bool TimingsDisagree(double cupti_ns, double events_ns, double rel, double abs_ns) {
  return std::fabs(cupti_ns - events_ns) > rel * std::max(cupti_ns, events_ns) + abs_ns;
}

bool NeedMoreRepetitions(size_t done, size_t min_repetitions, double measured_ns,
                         double min_time_ms, size_t max_repetitions) {
  if (done >= max_repetitions) return false;
  if (done < min_repetitions) return true;
  return measured_ns < min_time_ms * 1e6;
}

}  // namespace ratchet::kernels
