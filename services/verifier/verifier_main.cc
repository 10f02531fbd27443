#include "services/verifier/verifier_main.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "grpcpp/grpcpp.h"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "common/auth.h"
#include "common/flags.h"
#include "common/metrics.h"
#include "common/names.h"
#include "services/verifier/verdict.h"

namespace ratchet::verifier {
namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

constexpr char kUsage[] =
    "usage: ratchet verifier --coordinator=HOST:PORT [--name=NAME] [--metrics=ADDR]\n"
    "                        [--concurrency=4]   claims verified at once\n"
    "         [--tls-ca=FILE --tls-cert=FILE --tls-key=FILE [--tls-server-name=NAME]]\n"
    "  --tls-*: the cluster's CA and this verifier's certificate (ratchet pki issue\n"
    "           DIR verifier:NAME); it then acts as NAME (docs/security.md)\n";

void Sleep(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::unique_ptr<grpc::ClientContext> Context(int seconds) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
  return ctx;
}

class Verifier {
 public:
  Verifier(std::shared_ptr<grpc::Channel> channel, std::string id,
           std::shared_ptr<prometheus::Registry> registry)
      : stub_(v1::VerifierService::NewStub(channel)),
        id_(std::move(id)) {
    verdicts_ = &prometheus::BuildCounter()
                     .Name("ratchet_verifier_verdicts_total")
                     .Help("Verdicts reported by this verifier, by outcome and reason")
                     .Register(*registry);
  }

  void Run() {
    int backoff_ms = 200;
    while (!g_stop) {
      v1::AcquireVerificationRequest req;
      req.set_verifier_id(id_);
      req.set_wait_ms(2000);
      v1::AcquireVerificationResponse resp;
      grpc::Status s = stub_->AcquireVerification(Context(10).get(), req, &resp);
      if (!s.ok()) {
        std::fprintf(stderr, "verifier: coordinator unavailable (%s); retrying\n",
                     s.error_message().c_str());
        Sleep(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      backoff_ms = 200;
      if (resp.has_verification()) Verify(resp.verification(), resp.replays());
    }
  }

 private:
  // The coordinator hands a claim out with every replay ended: judge it now,
  // or ask for the next look's replays and let it come back (to any
  // verifier) when they have ended.
  void Verify(const v1::Verification& claim, const v1::ReplayBundle& replays) {
    std::fprintf(stderr, "verifier: claim %lld: #%lld %.4f vs incumbent #%lld %.4f, %d replays\n",
                 (long long)claim.id(), (long long)claim.candidate_id(), claim.claimed_score(),
                 (long long)claim.incumbent_candidate_id(), claim.incumbent_score(),
                 replays.jobs_size());
    // Suspicious constructs that the candidate's source adds to its
    // incumbent's double the replays (more evidence) and are shown in the
    // verdict, whatever it is. The bundle carries both sources: a verifier
    // reads nothing else of the coordinator's.
    const v1::Verification screened = ScreenClaim(claim, Files(replays.candidate_solution()),
                                                  Files(replays.incumbent_solution()));
    v1::ReportVerdictRequest report;
    report.set_verifier_id(id_);
    v1::ReportVerdictResponse ack;
    if (const int wanted = ReplaysWanted(screened, replays); wanted > 0) {
      report.mutable_verification()->set_id(claim.id());
      report.mutable_verification()->set_campaign_id(claim.campaign_id());
      report.mutable_verification()->set_outcome(v1::VERDICT_MORE_REPLAYS);
      report.set_replays(wanted);
      grpc::Status refused;
      if (Retry([&] { return refused = stub_->ReportVerdict(Context(10).get(), report, &ack); })) {
        std::fprintf(stderr, "verifier: claim %lld: %d replays a side, asked for %d\n",
                     (long long)claim.id(), ReplaysPerSide(screened, replays), wanted);
        return;
      }
      // A coordinator that queues no more (the policy's cap) wants a
      // decision on what there is; anything else leaves the lease to lapse.
      if (refused.error_code() != grpc::StatusCode::FAILED_PRECONDITION) return;
      ack.Clear();
    }
    const v1::Verification verdict = Judge(screened, replays);
    *report.mutable_verification() = verdict;
    report.clear_replays();
    if (!Retry([&] { return stub_->ReportVerdict(Context(10).get(), report, &ack); })) return;
    const bool accepted = verdict.outcome() == v1::VERDICT_ACCEPTED;
    verdicts_->Add({{"outcome", VerdictName(verdict.outcome())}, {"reason", verdict.reason()}})
        .Increment();
    std::fprintf(stderr, "verifier: claim %lld %s%s: %s\n", (long long)claim.id(),
                 accepted ? "ACCEPTED" : VerdictName(verdict.outcome()).c_str(),
                 accepted ? "" : (" (" + verdict.reason() + ")").c_str(),
                 verdict.detail().c_str());
  }

  static std::map<std::string, std::string> Files(const v1::Solution& solution) {
    return {solution.files().begin(), solution.files().end()};
  }

  // Retries while the coordinator is unreachable; false on any other error.
  template <typename Call>
  bool Retry(Call call) {
    int backoff_ms = 200;
    while (!g_stop) {
      grpc::Status s = call();
      if (s.ok()) return true;
      if (s.error_code() != grpc::StatusCode::UNAVAILABLE &&
          s.error_code() != grpc::StatusCode::DEADLINE_EXCEEDED) {
        std::fprintf(stderr, "verifier: %s\n", s.error_message().c_str());
        return false;
      }
      Sleep(backoff_ms);
      backoff_ms = std::min(backoff_ms * 2, 5000);
    }
    return false;
  }

  std::unique_ptr<v1::VerifierService::Stub> stub_;
  std::string id_;
  prometheus::Family<prometheus::Counter>* verdicts_;
};

}  // namespace

int VerifierMain(int argc, char** argv) {
  auto flags = Flags::Parse(argc - 1, argv + 1, {"help"});
  if (!flags.ok()) {
    std::fprintf(stderr, "ratchet verifier: %s\n%s", flags.status().message().data(), kUsage);
    return 2;
  }
  if (flags->Has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  auto unknown = flags->Unknown({"coordinator", "name", "metrics", "concurrency", "tls-ca",
                                 "tls-cert", "tls-key", "tls-server-name"});
  if (!unknown.empty() || !flags->positional().empty()) {
    std::fprintf(stderr, "ratchet verifier: unexpected argument\n%s", kUsage);
    return 2;
  }
  auto concurrency = flags->GetInt("concurrency", 4);
  if (!concurrency.ok() || *concurrency < 1 || *concurrency > 64) {
    std::fprintf(stderr, "ratchet verifier: --concurrency must be 1..64\n");
    return 2;
  }
  const std::string address = flags->Get("coordinator", "127.0.0.1:50051");
  std::string name = flags->Get("name", "verifier");
  std::string id = absl::StrFormat("%s-%06x", name, std::random_device{}() & 0xffffff);
  auto security = auth::ClientSecurityFromFlags(*flags);
  std::shared_ptr<grpc::Channel> channel;
  if (security.ok() && !security->token.empty())
    security = absl::InvalidArgumentError("a verifier proves who it is with --tls-cert, not a token");
  if (security.ok() && !security->cert_file.empty()) {
    // Authenticated, it acts under the name its certificate proves.
    auto cert_name = auth::CertificateName(security->cert_file);
    if (!cert_name.ok()) security = cert_name.status();
    else id = *cert_name;
  }
  if (security.ok()) {
    auto dialed = auth::Dial(address, *security);
    if (!dialed.ok()) security = dialed.status();
    else channel = *dialed;
  }
  if (!security.ok()) {
    std::fprintf(stderr, "ratchet verifier: %s\n", security.status().message().data());
    return 2;
  }

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  auto registry = std::make_shared<prometheus::Registry>();
  RegisterBuildInfo(*registry, "verifier");
  std::unique_ptr<MetricsServer> metrics;
  if (flags->Has("metrics")) {
    auto m = MetricsServer::Start(flags->Get("metrics"), registry);
    if (!m.ok()) {
      std::fprintf(stderr, "ratchet verifier: %s\n", m.status().message().data());
      return 1;
    }
    metrics = std::move(*m);
    std::fprintf(stderr, "verifier: metrics on port %d\n", metrics->port());
  }
  std::fprintf(stderr, "verifier %s: using coordinator %s\n", id.c_str(), address.c_str());
  // Each loop judges one claim at a time; several judge claims at once. The
  // stub is safe to share between threads.
  Verifier verifier(channel, id, registry);
  std::vector<std::thread> loops;
  for (int i = 0; i < *concurrency; ++i) loops.emplace_back([&verifier] { verifier.Run(); });
  for (auto& t : loops) t.join();
  std::fprintf(stderr, "verifier %s: stopped\n", id.c_str());
  return 0;
}

}  // namespace ratchet::verifier
