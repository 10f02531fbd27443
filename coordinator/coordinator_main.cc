#include "coordinator/coordinator_main.h"

#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/coordinator.h"
#include "coordinator/proposers/llm/endpoints.h"
#include "coordinator/services.h"
#include "coordinator/store/store.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "common/auth.h"
#include "common/flags.h"
#include "common/grpc_metrics.h"
#include "common/metrics.h"
#include "common/problem_check.h"

namespace ratchet::coordinator {

namespace {

constexpr char kUsage[] =
    "usage: ratchet coordinator [--listen=127.0.0.1:50051] [--db=ratchet.db]\n"
    "                           [--port-file=FILE] [--metrics=127.0.0.1:9090]\n"
    "                           [--lease-seconds=30] [--heartbeat-seconds=3]\n"
    "                           [--group-commit=1] [--commit-window-us=0]\n"
    "                           [--llm-endpoints=FILE]\n"
    "  --db: an SQLite file (PATH or sqlite:PATH) or a PostgreSQL URL\n"
    "        (postgresql://[user[:password]@][host][:port]/database[?param=value...],\n"
    "        e.g. postgresql:///ratchet?host=/run/postgresql); see docs/cluster.md\n"
    "  --group-commit: 1 batches workers' state transitions into shared\n"
    "        transactions (one commit each batch), 0 commits each alone\n"
    "  --llm-endpoints: the LLM endpoints (URLs and keys) that llm campaigns\n"
    "        may name; YAML or JSON, see docs/llm.md\n"
    "security (docs/security.md):\n"
    "  --tls-cert=FILE --tls-key=FILE  the coordinator's certificate (TLS on)\n"
    "  --tls-ca=FILE     the CA whose certificates identify workers and verifiers\n"
    "  --tokens=FILE     clients' tokens: lines 'SHA256 ROLE NAME' (ratchet token add)\n"
    "  --insecure        serve without TLS on a non-loopback address (anyone\n"
    "                    who reaches it may do anything)\n"
    "  --max-campaigns-per-client=20 --max-streams-per-client=16\n"
    "  --max-queued-jobs-per-client=10000  jobs a client's campaigns may hold\n"
    "                    queued or running, a submit's counted at once\n"
    "  --max-spec-bytes-per-client=67108864  bytes of specs a client's running\n"
    "                    or paused campaigns may hold (0: no limit, each)\n"
    "  --max-message-mb=16  the largest request accepted\n";

int Fail(const std::string& message) {
  std::fprintf(stderr, "ratchet coordinator: %s\n", message.c_str());
  return 1;
}

// The services health checks name (grpc_health_probe -service=...).
const std::vector<std::string>& ServiceNames() {
  static const std::vector<std::string> kNames = {
      v1::CoordinatorService::service_full_name(), v1::WorkerService::service_full_name(),
      v1::VerifierService::service_full_name()};
  return kNames;
}

// Every method this server answers: the label values of its per-RPC metrics.
std::vector<std::string> ServedMethods() {
  std::vector<std::string> methods = GrpcMethodNames(ServiceNames());
  for (const char* m : {"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch",
                        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"})
    methods.push_back(m);
  return methods;
}

// "" (the server as a whole) and each service.
void SetServing(grpc::Server* server, bool serving) {
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus("", serving);
  for (const std::string& name : ServiceNames()) health->SetServingStatus(name, serving);
}

}  // namespace

int CoordinatorMain(int argc, char** argv) {
  auto flags = Flags::Parse(argc - 1, argv + 1, {"help", "insecure"});
  if (!flags.ok()) return Fail(std::string(flags.status().message()));
  // Submits are checked once, here: a binary without the problem reader
  // would queue problems no harness can read (common/problem_check.h).
  if (RegisteredProblemCheck() == nullptr)
    return Fail("this binary has no kernel problem reader to check submits with");
  if (flags->Has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto unknown = flags->Unknown(
      {"listen", "db", "port-file", "metrics", "lease-seconds", "heartbeat-seconds",
       "group-commit", "commit-window-us", "tls-cert", "tls-key", "tls-ca", "tokens",
       "insecure", "max-campaigns-per-client", "max-streams-per-client", "max-message-mb",
       "max-queued-jobs-per-client", "max-spec-bytes-per-client", "llm-endpoints"});
  if (!unknown.empty() || !flags->positional().empty()) {
    std::fprintf(stderr, "ratchet coordinator: unknown argument %s\n%s",
                 unknown.empty() ? flags->positional()[0].c_str()
                                 : ("--" + unknown[0]).c_str(),
                 kUsage);
    return 2;
  }
  const std::string listen = flags->Get("listen", "127.0.0.1:50051");
  const std::string db = flags->Get("db", "ratchet.db");
  CoordinatorOptions options;
  auto lease = flags->GetInt("lease-seconds", 30);
  auto heartbeat = flags->GetInt("heartbeat-seconds", 3);
  if (!lease.ok()) return Fail(std::string(lease.status().message()));
  if (!heartbeat.ok()) return Fail(std::string(heartbeat.status().message()));
  if (*lease < 2 || *heartbeat < 1 || *heartbeat * 2 > *lease)
    return Fail("need --lease-seconds >= 2 and --heartbeat-seconds at most half of it");
  options.lease_ms = *lease * 1000;
  options.heartbeat_ms = *heartbeat * 1000;
  auto group_commit = flags->GetInt("group-commit", 1);
  auto window = flags->GetInt("commit-window-us", 0);
  if (!group_commit.ok()) return Fail(std::string(group_commit.status().message()));
  if (!window.ok()) return Fail(std::string(window.status().message()));
  if (*window < 0 || *window > 100'000) return Fail("--commit-window-us must be 0..100000");
  options.group_commit.enabled = *group_commit != 0;
  options.group_commit.window_us = static_cast<int>(*window);

  auth::ServerSecurity security;
  security.cert_file = flags->Get("tls-cert");
  security.key_file = flags->Get("tls-key");
  security.ca_file = flags->Get("tls-ca");
  security.tokens_file = flags->Get("tokens");
  security.insecure = flags->Has("insecure");
  auto authenticator = auth::Authenticator::Create(security, listen);
  if (!authenticator.ok()) return Fail(std::string(authenticator.status().message()));
  ClientLimits limits;
  auto max_campaigns = flags->GetInt("max-campaigns-per-client", limits.campaigns_per_client);
  auto max_streams = flags->GetInt("max-streams-per-client", limits.streams_per_client);
  auto max_queued_jobs = flags->GetInt("max-queued-jobs-per-client", limits.queued_jobs_per_client);
  auto max_spec_bytes = flags->GetInt("max-spec-bytes-per-client", limits.spec_bytes_per_client);
  auto max_message_mb = flags->GetInt("max-message-mb", 16);
  for (const auto* v :
       {&max_campaigns, &max_streams, &max_queued_jobs, &max_spec_bytes, &max_message_mb})
    if (!v->ok()) return Fail(std::string(v->status().message()));
  if (*max_campaigns < 0 || *max_streams < 0 || *max_queued_jobs < 0 || *max_spec_bytes < 0 ||
      *max_campaigns > 1'000'000 || *max_streams > 1'000'000 || *max_message_mb < 1 ||
      *max_message_mb > 1024)
    return Fail("--max-campaigns-per-client, --max-streams-per-client, "
                "--max-queued-jobs-per-client and --max-spec-bytes-per-client must be >= 0 "
                "(0: no limit), --max-message-mb 1..1024");
  limits.campaigns_per_client = static_cast<int>(*max_campaigns);
  limits.streams_per_client = static_cast<int>(*max_streams);
  limits.queued_jobs_per_client = *max_queued_jobs;
  limits.spec_bytes_per_client = *max_spec_bytes;

  // Signals are taken by a dedicated thread (sigwait), so block them first in
  // every thread this process starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string db_shown = store::RedactStoreUrl(db);
  auto store = store::OpenStore(db);
  if (!store.ok()) return Fail("cannot open store " + db_shown + ": " + store.status().ToString());

  auto registry = std::make_shared<prometheus::Registry>();
  RegisterBuildInfo(*registry, "coordinator");
  std::unique_ptr<MetricsServer> metrics;
  if (flags->Has("metrics")) {
    auto m = MetricsServer::Start(flags->Get("metrics"), registry);
    if (!m.ok()) return Fail(std::string(m.status().message()));
    metrics = std::move(*m);
    std::fprintf(stderr, "coordinator: metrics on port %d\n", metrics->port());
  }

  if (flags->Has("llm-endpoints")) {
    auto endpoints = llm::LlmEndpoints::Load(flags->Get("llm-endpoints"));
    if (!endpoints.ok()) return Fail(std::string(endpoints.status().message()));
    std::string names;
    for (const auto& name : endpoints->names()) names += " " + name;
    std::fprintf(stderr, "coordinator: LLM endpoints:%s\n",
                 names.empty() ? " none" : names.c_str());
    options.llm_endpoints = std::make_shared<const llm::LlmEndpoints>(*std::move(endpoints));
  }

  Coordinator coordinator(store->get(), options, registry);
  // Open (no TLS): every caller may do everything, as on a developer's
  // loopback; otherwise each call is authorized (services.h).
  const auth::Authenticator* auth = (*authenticator)->tls() ? authenticator->get() : nullptr;
  CoordinatorServiceImpl client_service(&coordinator, auth, limits);
  WorkerServiceImpl worker_service(&coordinator, auth);
  VerifierServiceImpl verifier_service(&coordinator, auth);

  grpc::EnableDefaultHealthCheckService(true);
  // Reflection lets grpcurl and the like list and call the services; it
  // shows the API (proto/), no data (docs/security.md).
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, (*authenticator)->ServerCredentials(), &port);
  builder.RegisterService(&client_service);
  builder.RegisterService(&worker_service);
  builder.RegisterService(&verifier_service);
  builder.SetMaxReceiveMessageSize(static_cast<int>(*max_message_mb) << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> interceptors;
  interceptors.push_back(std::make_unique<GrpcServerMetrics>(*registry, ServedMethods()));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) return Fail("cannot listen on " + listen);
  coordinator.Start();
  SetServing(server.get(), true);
  std::fprintf(stderr, "coordinator: serving on port %d (%s), store %s\n", port,
               (*authenticator)->tls() ? "TLS, callers authenticated"
                                       : "no TLS: open to every caller",
               db_shown.c_str());

  if (flags->Has("port-file")) {
    // Write then rename, so a reader never sees a half-written port.
    const std::string path = flags->Get("port-file");
    {
      std::ofstream out(path + ".tmp");
      out << port << "\n";
    }
    if (std::rename((path + ".tmp").c_str(), path.c_str()) != 0)
      return Fail("cannot write port file " + path);
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  std::fprintf(stderr, "coordinator: signal %d, shutting down\n", signal_number);
  // Probes and load balancers see the coming stop before calls start failing.
  SetServing(server.get(), false);
  coordinator.Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace ratchet::coordinator
