// Per-RPC counts and latencies of a gRPC server, as a server interceptor:
// ratchet_grpc_server_handled_total{method, code} and
// ratchet_grpc_server_handling_seconds{method}. A call counts when its status
// is sent (a stream when it ends). Labels are bounded: `method` is one of the
// server's own method names or "unknown", `code` a gRPC status code's name.
#ifndef RATCHET_COMMON_GRPC_METRICS_H_
#define RATCHET_COMMON_GRPC_METRICS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace ratchet {

// "OK", "NOT_FOUND", ...: the name of a gRPC status code; "UNKNOWN" for a
// number that is none.
std::string StatusCodeName(grpc::StatusCode code);

// "/pkg.Service/Method" of every method of each named service in the
// generated protobuf pool (e.g. "ratchet.v1.CoordinatorService").
std::vector<std::string> GrpcMethodNames(const std::vector<std::string>& services);

class GrpcServerMetrics final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `methods`: the method names the server serves ("/pkg.Service/Method").
  // `registry` must outlive the server.
  GrpcServerMetrics(prometheus::Registry& registry, const std::vector<std::string>& methods);

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

  // One method's series: the method's own, or "unknown"'s.
  struct MethodSeries {
    std::string label;
    prometheus::Counter* handled_ok = nullptr;  // the common case, looked up once
    prometheus::Histogram* seconds = nullptr;
  };
  // The series of `method` (a raw name from the call; null: unknown).
  const MethodSeries& SeriesOf(const char* method) const;
  // A call of `method` ended with `code` after `seconds`.
  void Record(const MethodSeries& method, grpc::StatusCode code, double seconds);

 private:
  prometheus::Family<prometheus::Counter>* handled_;
  std::map<std::string, MethodSeries, std::less<>> methods_;  // fixed after construction
  MethodSeries unknown_;
};

}  // namespace ratchet

#endif  // RATCHET_COMMON_GRPC_METRICS_H_
