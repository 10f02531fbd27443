#include "common/metrics.h"

#include "absl/strings/str_cat.h"
#include "common/process_metrics.h"

#ifndef RATCHET_VERSION
#define RATCHET_VERSION "unknown"
#endif
#ifndef RATCHET_COMMIT
#define RATCHET_COMMIT "unknown"
#endif

namespace ratchet {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& address, std::shared_ptr<prometheus::Registry> registry) {
  auto server = std::make_unique<MetricsServer>();
  try {
    server->exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  server->exposer_->RegisterCollectable(registry);
  server->process_metrics_ = std::make_shared<ProcessMetrics>();
  server->exposer_->RegisterCollectable(server->process_metrics_);
  auto ports = server->exposer_->GetListeningPorts();
  server->port_ = ports.empty() ? 0 : ports.front();
  return server;
}

void RegisterBuildInfo(prometheus::Registry& registry, const std::string& service) {
  prometheus::BuildGauge()
      .Name("ratchet_build_info")
      .Help("Always 1; the labels say which build this process runs")
      .Register(registry)
      .Add({{"service", service}, {"version", BuildVersion()}, {"commit", BuildCommit()}})
      .Set(1);
}

const char* BuildVersion() { return RATCHET_VERSION; }
const char* BuildCommit() { return RATCHET_COMMIT; }

}  // namespace ratchet
