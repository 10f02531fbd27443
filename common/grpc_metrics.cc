#include "common/grpc_metrics.h"

#include <chrono>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/descriptor.h"
#include "grpcpp/support/interceptor.h"

namespace ratchet {

namespace {

using grpc::experimental::InterceptionHookPoints;

// 1 ms .. 60 s: unary calls take milliseconds, AcquireJob long-polls for
// seconds, and a watch stream counts with its whole life (beyond 60 s: +Inf).
const prometheus::Histogram::BucketBoundaries& HandlingBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return kBuckets;
}

class CallMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallMetricsInterceptor(GrpcServerMetrics* metrics,
                         const GrpcServerMetrics::MethodSeries& method)
      : metrics_(metrics), method_(method), start_(std::chrono::steady_clock::now()) {}

  // A call destroyed without sending a status (the client went away first).
  ~CallMetricsInterceptor() override {
    if (!recorded_) Record(grpc::StatusCode::CANCELLED);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (!recorded_ && methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS))
      Record(methods->GetSendStatus().error_code());
    methods->Proceed();
  }

 private:
  void Record(grpc::StatusCode code) {
    recorded_ = true;
    metrics_->Record(
        method_, code,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }

  GrpcServerMetrics* const metrics_;
  // Looked up when the call starts: its method string may be gone by the destructor.
  const GrpcServerMetrics::MethodSeries& method_;
  const std::chrono::steady_clock::time_point start_;
  bool recorded_ = false;
};

}  // namespace

std::string StatusCodeName(grpc::StatusCode code) {
  // gRPC and absl share the canonical code numbering, and so their names.
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

std::vector<std::string> GrpcMethodNames(const std::vector<std::string>& services) {
  std::vector<std::string> names;
  const auto* pool = google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& service_name : services) {
    const google::protobuf::ServiceDescriptor* service = pool->FindServiceByName(service_name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i)
      names.push_back("/" + service->full_name() + "/" + service->method(i)->name());
  }
  return names;
}

GrpcServerMetrics::GrpcServerMetrics(prometheus::Registry& registry,
                                     const std::vector<std::string>& methods) {
  handled_ = &prometheus::BuildCounter()
                  .Name("ratchet_grpc_server_handled_total")
                  .Help("RPCs the server completed, by method and gRPC status code")
                  .Register(registry);
  auto& seconds = prometheus::BuildHistogram()
                      .Name("ratchet_grpc_server_handling_seconds")
                      .Help("Seconds from a call's start to its status, by method "
                            "(streams: their whole life)")
                      .Register(registry);
  // Every method's series exist from the start, so that rate() sees the first call.
  for (const std::string& method : methods) {
    MethodSeries& series = methods_[method];
    series.label = method;
    series.handled_ok = &handled_->Add({{"method", method}, {"code", "OK"}});
    series.seconds = &seconds.Add({{"method", method}}, HandlingBuckets());
  }
  unknown_.label = "unknown";
  unknown_.handled_ok = &handled_->Add({{"method", "unknown"}, {"code", "OK"}});
  unknown_.seconds = &seconds.Add({{"method", "unknown"}}, HandlingBuckets());
}

grpc::experimental::Interceptor* GrpcServerMetrics::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new CallMetricsInterceptor(this, SeriesOf(info->method()));
}

const GrpcServerMetrics::MethodSeries& GrpcServerMetrics::SeriesOf(const char* method) const {
  if (method == nullptr) return unknown_;
  auto it = methods_.find(std::string_view(method));
  return it == methods_.end() ? unknown_ : it->second;
}

void GrpcServerMetrics::Record(const MethodSeries& series, grpc::StatusCode code,
                               double seconds) {
  if (code == grpc::StatusCode::OK)
    series.handled_ok->Increment();
  else
    handled_->Add({{"method", series.label}, {"code", StatusCodeName(code)}}).Increment();
  series.seconds->Observe(seconds);
}

}  // namespace ratchet
