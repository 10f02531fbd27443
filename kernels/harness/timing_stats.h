// Pure arithmetic of timing, kept free of CUDA so that it is unit-tested on
// machines without a GPU: summaries of repetition samples (the pipeline's
// T_k, on both harnesses), the span of a set of activity records, the
// cross-check between CUPTI and CUDA events, and when to stop repeating.
#ifndef RATCHET_KERNELS_HARNESS_TIMING_STATS_H_
#define RATCHET_KERNELS_HARNESS_TIMING_STATS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace ratchet::kernels {

struct SampleSummary {
  size_t n = 0;
  double median = 0;
  double p10 = 0;
  double p90 = 0;
  double min = 0;
  double max = 0;
  // (p90 - p10) / median; 0 when the median is 0.
  double spread = 0;
};

// Summarises `samples` (any order). p10 is the sample at floor(0.1 (n-1)),
// p90 at round(0.9 (n-1)) of the sorted samples, as the oracle computes
// them for T_b. An empty input gives all zeros.
SampleSummary Summarize(std::vector<double> samples);

// One GPU activity (kernel, memcpy, memset) in CUPTI's nanosecond clock.
struct ActivityInterval {
  uint64_t start = 0;
  uint64_t end = 0;
};

// The span from the earliest start to the latest end, in ns, across every
// record (so across all streams). Records with end < start or a zero start
// (incomplete) are ignored; nullopt when none is left.
std::optional<double> SpanNs(const std::vector<ActivityInterval>& records);

// One repetition's window in CUPTI's clock: from just before the harness
// enqueues the L2 flush to just after the device-wide synchronisation.
struct TimeWindow {
  uint64_t begin = 0;
  uint64_t end = 0;
};

// Assigns each record to the window holding its start (windows ascending,
// disjoint). Records that start outside every window are dropped: they are
// the harness's own work between repetitions. Lets the harness flush CUPTI
// once per workload instead of once per repetition (a forced flush makes the
// next launch pay for new CUPTI buffers, hundreds of microseconds).
std::vector<std::vector<ActivityInterval>> SplitByWindow(
    const std::vector<ActivityInterval>& records, const std::vector<TimeWindow>& windows);

// True when the CUPTI span and the event time differ by more than
// `rel` of the larger plus `abs_ns`: the cross-check of docs/harness.md.
// Measured on an H200, events read a steady ~2.6 us above the CUPTI span
// (their own overhead), hence the 5 us floor.
bool TimingsDisagree(double cupti_ns, double events_ns, double rel = 0.10,
                     double abs_ns = 5000.0);

// Whether the timing loop needs another repetition: fewer than
// `min_repetitions` done, or less than `min_time_ms` of measured time so far;
// never beyond `max_repetitions`.
bool NeedMoreRepetitions(size_t done, size_t min_repetitions, double measured_ns,
                         double min_time_ms, size_t max_repetitions);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_TIMING_STATS_H_
