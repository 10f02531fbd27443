// A whole cluster of real `ratchet` processes for end-to-end tests: one
// coordinator, one verifier and named workers, each logging to DIR/NAME.log,
// talking real gRPC; optionally each service in a network namespace of its
// own (see netns.h).
#ifndef RATCHET_TESTS_SUPPORT_CLUSTER_H_
#define RATCHET_TESTS_SUPPORT_CLUSTER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ratchet/v1/ratchet.grpc.pb.h"
#include "tests/support/process.h"

namespace ratchet::testing {

// Worker flags that give every worker the same CPU peaks, far above what any
// CPU reaches (1 PB/s, 10 PFLOP/s), instead of measuring them. Measured
// peaks move with the host's load, and the roofline's T_sol with them: on a
// busy machine a kernel can time under a T_sol measured low and score 1.0
// whatever it does, and two workers that measured differently score the same
// kernel differently. With these T_sol is next to nothing, a SOL score is
// about T_b / (T_b + T_k), and candidates rank as their times do on any host.
// (`ratchet worker --peak-gbps=X --peak-gflops=Y` is how an operator pins a
// worker's roofline to a datasheet's figures.)
std::vector<std::string> UnreachablePeakFlags();

class Cluster {
 public:
  struct Options {
    std::string db;  // --db of the coordinator; DIR/ratchet.db when empty
    int lease_seconds = 10;
    int heartbeat_seconds = 1;
    bool metrics = false;  // every service serves /metrics on a free port
    std::vector<std::string> coordinator_flags;
    std::vector<std::string> verifier_flags;
    std::vector<std::string> worker_flags = {"--no-gpu"};
    // When set, service `name` runs in namespace ns(name) and the
    // coordinator listens on coordinator_host there.
    std::function<std::string(const std::string&)> ns;
    std::string coordinator_host = "127.0.0.1";
  };

  // `ratchet` is the binary; logs, scratch and port files go to `dir`.
  Cluster(std::string ratchet, std::string dir, Options options);
  ~Cluster();  // StopAll
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // The functions that start things fail the test (gtest fatal failures) when
  // a service does not come up; call them under ASSERT_NO_FATAL_FAILURE.

  // Coordinator, verifier and workers w1..wN, all registered.
  void Start(int workers);
  // Starts the coordinator, or restarts it on the port it had; returns once
  // it serves.
  void StartCoordinator();
  void StartVerifier();
  void StartWorker(const std::string& name);
  // Waits until every worker started so far has registered.
  void WaitForWorkers();

  // Submits through the CLI, as a user would; returns the campaign id.
  int64_t Submit(const std::string& spec_path);
  // `ratchet ARGS... --coordinator=ADDRESS`.
  CommandResult Cli(std::vector<std::string> args);

  // The campaign as the coordinator reports it (over gRPC from this process,
  // so not for services in namespaces).
  v1::Campaign GetCampaign(int64_t id);
  // Polls GetCampaign until `done` holds; a test failure naming `what` after
  // timeout_s.
  v1::Campaign WaitFor(int64_t id, int timeout_s,
                       const std::function<bool(const v1::Campaign&)>& done,
                       const std::string& what);
  // Until the campaign neither runs nor is paused.
  v1::Campaign WaitUntilDone(int64_t id, int timeout_s);
  int ConnectedWorkers();  // -1 when the coordinator does not answer

  Process* coordinator() { return coordinator_.get(); }
  Process* worker(const std::string& name) { return workers_.at(name).get(); }
  bool ServicesRunning();  // coordinator and verifier
  bool AllRunning();       // and every worker
  // SIGTERM to everything still running, as an operator would (a killed
  // process stays dead).
  void StopAll();

  const std::string& address() const { return address_; }
  const std::string& db() const { return db_; }
  v1::CoordinatorService::Stub* stub() { return stub_.get(); }
  std::string LogPath(const std::string& service) const { return dir_ + "/" + service + ".log"; }
  // The /metrics page of a service ("coordinator", "verifier", "w1", ...).
  std::string Metrics(const std::string& service) const;
  // Every service's log, for a failed test.
  std::string Logs() const;

 private:
  std::vector<std::string> Wrap(const std::string& service, std::vector<std::string> argv) const;
  std::vector<std::string> WithFlags(std::vector<std::string> argv,
                                     const std::vector<std::string>& flags) const;

  const std::string ratchet_;
  const std::string dir_;
  const Options options_;
  const std::string db_;
  int port_ = 0;
  int coordinator_starts_ = 0;
  std::string address_;
  std::unique_ptr<Process> coordinator_, verifier_;
  std::map<std::string, std::unique_ptr<Process>> workers_;
  std::unique_ptr<v1::CoordinatorService::Stub> stub_;
};

}  // namespace ratchet::testing

#endif  // RATCHET_TESTS_SUPPORT_CLUSTER_H_
