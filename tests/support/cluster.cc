#include "tests/support/cluster.h"

#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/netns.h"

namespace ratchet::testing {

std::vector<std::string> UnreachablePeakFlags() {
  return {"--peak-gbps=1000000", "--peak-gflops=10000000"};
}

Cluster::Cluster(std::string ratchet, std::string dir, Options options)
    : ratchet_(std::move(ratchet)),
      dir_(std::move(dir)),
      options_(std::move(options)),
      db_(options_.db.empty() ? dir_ + "/ratchet.db" : options_.db) {}

Cluster::~Cluster() { StopAll(); }

std::vector<std::string> Cluster::Wrap(const std::string& service,
                                       std::vector<std::string> argv) const {
  if (!options_.ns) return argv;
  std::vector<std::string> wrapped = {NetnsTopology::IpBinary(), "netns", "exec",
                                      options_.ns(service)};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

std::vector<std::string> Cluster::WithFlags(std::vector<std::string> argv,
                                            const std::vector<std::string>& flags) const {
  argv.insert(argv.end(), flags.begin(), flags.end());
  if (options_.metrics) argv.push_back("--metrics=127.0.0.1:0");
  return argv;
}

void Cluster::Start(int workers) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  StartVerifier();
  for (int i = 1; i <= workers; ++i) StartWorker(absl::StrCat("w", i));
  ASSERT_NO_FATAL_FAILURE(WaitForWorkers());
}

void Cluster::StartCoordinator() {
  // A port file per start: a restart must not read the last one's.
  const std::string port_file = absl::StrCat(dir_, "/port", ++coordinator_starts_);
  std::vector<std::string> flags = {
      ratchet_, "coordinator", absl::StrCat("--listen=", options_.coordinator_host, ":", port_),
      "--db=" + db_, "--port-file=" + port_file,
      absl::StrCat("--lease-seconds=", options_.lease_seconds),
      absl::StrCat("--heartbeat-seconds=", options_.heartbeat_seconds)};
  // Off loopback (a test's own network namespace) plaintext must be asked
  // for; these tests are about failures, not credentials (security_test).
  if (options_.coordinator_host != "127.0.0.1") flags.push_back("--insecure");
  const std::vector<std::string> argv = WithFlags(flags, options_.coordinator_flags);
  coordinator_ = std::make_unique<Process>(Wrap("coordinator", argv), LogPath("coordinator"));
  ASSERT_TRUE(WaitForFile(port_file, 60'000)) << ReadFile(LogPath("coordinator"));
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(port_file)), &port));
  if (port_ != 0) ASSERT_EQ(port, port_) << "restarted on another port";
  port_ = port;
  address_ = absl::StrCat(options_.coordinator_host, ":", port_);
  stub_ = v1::CoordinatorService::NewStub(
      grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
}

void Cluster::StartVerifier() {
  verifier_ = std::make_unique<Process>(
      Wrap("verifier",
           WithFlags({ratchet_, "verifier", "--coordinator=" + address_}, options_.verifier_flags)),
      LogPath("verifier"));
}

void Cluster::StartWorker(const std::string& name) {
  const std::string scratch = dir_ + "/scratch-" + name;
  mkdir(scratch.c_str(), 0755);
  workers_[name] = std::make_unique<Process>(
      Wrap(name, WithFlags({ratchet_, "worker", "--coordinator=" + address_, "--name=" + name,
                            "--scratch=" + scratch},
                           options_.worker_flags)),
      LogPath(name));
}

void Cluster::WaitForWorkers() {
  // A worker logs this once the coordinator has taken its registration
  // (after calibrating, unless given its peaks).
  for (const auto& [name, process] : workers_)
    ASSERT_TRUE(PollUntil(
        [&] { return absl::StrContains(ReadFile(LogPath(name)), "registered as"); }, 60'000))
        << name << " did not register:\n"
        << ReadFile(LogPath(name));
}

int64_t Cluster::Submit(const std::string& spec_path) {
  CommandResult r =
      RunCommand(Wrap("coordinator", {ratchet_, "submit", spec_path, "--coordinator=" + address_}));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  int64_t id = 0;
  EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(r.out), &id)) << r.out;
  return id;
}

CommandResult Cluster::Cli(std::vector<std::string> args) {
  args.insert(args.begin(), ratchet_);
  args.push_back("--coordinator=" + address_);
  return RunCommand(Wrap("coordinator", std::move(args)));
}

v1::Campaign Cluster::GetCampaign(int64_t id) {
  grpc::ClientContext ctx;
  v1::GetCampaignRequest req;
  req.set_campaign_id(id);
  v1::Campaign campaign;
  EXPECT_TRUE(stub_->GetCampaign(&ctx, req, &campaign).ok());
  return campaign;
}

v1::Campaign Cluster::WaitFor(int64_t id, int timeout_s,
                              const std::function<bool(const v1::Campaign&)>& done,
                              const std::string& what) {
  v1::Campaign campaign;
  for (int i = 0; i < timeout_s * 5; ++i) {
    campaign = GetCampaign(id);
    if (done(campaign)) return campaign;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ADD_FAILURE() << "campaign " << id << ": not " << what << " after " << timeout_s << " s";
  return campaign;
}

v1::Campaign Cluster::WaitUntilDone(int64_t id, int timeout_s) {
  return WaitFor(
      id, timeout_s,
      [](const v1::Campaign& c) {
        return c.state() != v1::CAMPAIGN_RUNNING && c.state() != v1::CAMPAIGN_PAUSED;
      },
      "done");
}

int Cluster::ConnectedWorkers() {
  grpc::ClientContext ctx;
  v1::ListWorkersResponse resp;
  if (!stub_->ListWorkers(&ctx, v1::ListWorkersRequest(), &resp).ok()) return -1;
  int n = 0;
  for (const auto& w : resp.workers()) n += w.connected();
  return n;
}

bool Cluster::ServicesRunning() {
  return coordinator_ && coordinator_->Running() && verifier_ && verifier_->Running();
}

bool Cluster::AllRunning() {
  bool ok = ServicesRunning();
  for (auto& [name, w] : workers_) ok = ok && w->Running();
  return ok;
}

void Cluster::StopAll() {
  for (auto& [name, w] : workers_) w->Stop(SIGTERM);
  if (verifier_) verifier_->Stop(SIGTERM);
  if (coordinator_) coordinator_->Stop(SIGTERM);
}

std::string Cluster::Metrics(const std::string& service) const {
  const int port = MetricsPortFromLog(LogPath(service));
  return port > 0 ? HttpGet(port, "/metrics") : "";
}

std::string Cluster::Logs() const {
  std::string out;
  for (const char* service : {"coordinator", "verifier"})
    absl::StrAppend(&out, "---- ", service, "\n", ReadFile(LogPath(service)));
  for (const auto& [name, w] : workers_)
    absl::StrAppend(&out, "---- ", name, "\n", ReadFile(LogPath(name)));
  return out;
}

}  // namespace ratchet::testing
