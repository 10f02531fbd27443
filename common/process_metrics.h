// The standard process_* metrics of Prometheus clients (CPU, memory, file
// descriptors, threads, start time), read from /proc/self at each scrape.
#ifndef RATCHET_COMMON_PROCESS_METRICS_H_
#define RATCHET_COMMON_PROCESS_METRICS_H_

#include <vector>

#include "prometheus/collectable.h"
#include "prometheus/metric_family.h"

namespace ratchet {

class ProcessMetrics final : public prometheus::Collectable {
 public:
  ProcessMetrics();
  // process_cpu_seconds_total, process_resident_memory_bytes,
  // process_virtual_memory_bytes, process_open_fds, process_max_fds,
  // process_start_time_seconds, process_threads; a figure /proc does not
  // give is left out rather than reported as 0.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  double start_time_seconds_ = 0;  // Unix seconds; 0 when /proc did not say
};

}  // namespace ratchet

#endif  // RATCHET_COMMON_PROCESS_METRICS_H_
