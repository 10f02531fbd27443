// Prometheus metrics for every service: one registry per process, served over
// HTTP at /metrics by prometheus-cpp's exposer, with the process's own
// metrics (process_*) and what build it runs (ratchet_build_info) beside it.
#ifndef RATCHET_COMMON_METRICS_H_
#define RATCHET_COMMON_METRICS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/registry.h"

namespace ratchet {

class MetricsServer {
 public:
  // Serves `registry` and the process metrics on `address` ("127.0.0.1:9100";
  // port 0 picks a free one).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& address, std::shared_ptr<prometheus::Registry> registry);
  int port() const { return port_; }

 private:
  std::shared_ptr<prometheus::Collectable> process_metrics_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

// ratchet_build_info{service, version, commit} = 1: which build a process
// runs. `service` is "coordinator", "worker" or "verifier".
void RegisterBuildInfo(prometheus::Registry& registry, const std::string& service);

// The project version and the git commit it was configured at ("unknown"
// outside a git checkout).
const char* BuildVersion();
const char* BuildCommit();

}  // namespace ratchet

#endif  // RATCHET_COMMON_METRICS_H_
