// Prometheus metrics for every service: one registry per process, served over
// HTTP at /metrics by prometheus-cpp's exposer.
#ifndef RATCHET_COMMON_METRICS_H_
#define RATCHET_COMMON_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ratchet {

class MetricsServer {
 public:
  // Serves `registry` on `address` ("127.0.0.1:9100"; port 0 picks a free one).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry);
  int port() const { return port_; }

 private:
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace ratchet

#endif  // RATCHET_COMMON_METRICS_H_
