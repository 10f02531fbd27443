// The worker's loop against a fake coordinator over real gRPC on loopback,
// with a shell script standing in for the harness.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "worker/result.h"
#include "worker/worker.h"
#include "worker/worker_main.h"

namespace ratchet::worker {
namespace {

using namespace std::chrono_literals;

class FakeCoordinator final : public v1::WorkerService::Service {
 public:
  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* req,
                              v1::RegisterWorkerResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu);
    registrations.push_back(*req);
    resp->set_worker_id(req->worker_id().empty() ? "w-1" : req->worker_id());
    resp->set_heartbeat_seconds(1);
    resp->set_lease_seconds(10);
    return grpc::Status::OK;
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu);
    heartbeats.push_back(*req);
    for (int64_t id : cancel) resp->add_cancelled_job_ids(id);
    resp->set_reregister(reregister_once);
    reregister_once = false;
    return grpc::Status::OK;
  }
  grpc::Status AcquireJob(grpc::ServerContext*, const v1::AcquireJobRequest* req,
                          v1::AcquireJobResponse* resp) override {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!queue.empty()) {
        *resp->mutable_job() = queue.front();
        queue.pop_front();
        return grpc::Status::OK;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(req->wait_ms(), 200)));
    return grpc::Status::OK;
  }
  grpc::Status CompleteJob(grpc::ServerContext*, const v1::CompleteJobRequest* req,
                           v1::CompleteJobResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu);
    ++complete_calls;
    if (fail_completes > 0) {
      --fail_completes;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "brief outage");
    }
    completions.push_back(*req);
    resp->set_accepted(true);
    return grpc::Status::OK;
  }

  std::mutex mu;
  std::deque<v1::Job> queue;
  std::vector<v1::RegisterWorkerRequest> registrations;
  std::vector<v1::HeartbeatRequest> heartbeats;
  std::vector<v1::CompleteJobRequest> completions;
  std::vector<int64_t> cancel;
  bool reregister_once = false;
  int fail_completes = 0;
  int complete_calls = 0;
};

// A port nothing listens on yet, so that the worker can start before the server.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

v1::Job MakeJob(int64_t id, const std::string& mode, double timeout = 30) {
  v1::Job job;
  job.set_id(id);
  job.set_campaign_id(7);
  job.set_candidate_id(100 + id);
  job.set_kind(v1::JOB_EVALUATE);
  job.set_seed(1234);
  job.mutable_problem()->set_definition_json("{\"name\": \"vadd\"}");
  job.mutable_problem()->set_workload_jsonl("{}\n");
  (*job.mutable_solution()->mutable_files())["mode"] = mode;
  (*job.mutable_solution()->mutable_files())["src/kernel.cc"] = "// kernel";
  (*job.mutable_solution()->mutable_knobs())["BLOCK"] = "64";
  job.mutable_harness()->set_warmups(2);
  job.mutable_harness()->set_timeout_seconds(timeout);
  return job;
}

class WorkerLoopTest : public ::testing::Test {
 protected:
  void StartServer(int port) {
    grpc::ServerBuilder b;
    b.AddListeningPort(absl::StrCat("127.0.0.1:", port), grpc::InsecureServerCredentials());
    b.RegisterService(&fake_);
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void StartWorker(int port) {
    WorkerOptions o;
    o.coordinator = absl::StrCat("127.0.0.1:", port);
    o.name = "test-worker";
    char tmpl[] = "/tmp/ratchet-worker-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    scratch_ = tmpl;
    o.scratch_root = scratch_;
    o.harness_path = std::string(RATCHET_WORKER_TESTDATA) + "/fake_harness.sh";
    o.wait_ms = 200;
    o.keep_scratch = keep_scratch_;
    auto sandbox = Sandbox::Create("auto");
    ASSERT_TRUE(sandbox.ok());
    v1::Hardware hw;
    hw.set_cpu_cores(2);
    hw.set_peak_gbps(10);
    hw.set_peak_gflops(50);
    worker_ = std::make_unique<Worker>(o, *std::move(sandbox), hw, nullptr);
    thread_ = std::thread([this] { worker_->Run(); });
  }
  void TearDown() override {
    if (worker_) worker_->Stop();
    if (thread_.joinable()) thread_.join();
    if (server_) server_->Shutdown();
    std::error_code ec;
    if (!scratch_.empty()) std::filesystem::remove_all(scratch_, ec);
  }
  // Waits up to `limit` for `pred` (under the fake's lock).
  template <typename Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds limit = 10s) {
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      {
        std::lock_guard<std::mutex> lock(fake_.mu);
        if (pred()) return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

  FakeCoordinator fake_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Worker> worker_;
  std::thread thread_;
  std::string scratch_;
  bool keep_scratch_ = false;
};

TEST_F(WorkerLoopTest, RunsAJobAndReportsIt) {
  int port = FreePort();
  StartServer(port);
  fake_.queue.push_back(MakeJob(1, "ok"));
  StartWorker(port);
  ASSERT_TRUE(WaitFor([&] { return !fake_.completions.empty(); }));
  std::lock_guard<std::mutex> lock(fake_.mu);
  ASSERT_EQ(fake_.registrations.size(), 1u);
  EXPECT_EQ(fake_.registrations[0].name(), "test-worker");
  EXPECT_FALSE(fake_.registrations[0].sandbox().empty());
  const auto& c = fake_.completions[0];
  EXPECT_EQ(c.worker_id(), "w-1");
  EXPECT_EQ(c.job_id(), 1);
  const auto& e = c.evaluation();
  EXPECT_EQ(e.outcome(), v1::OUTCOME_OK) << e.message();
  EXPECT_DOUBLE_EQ(e.score(), 0.75);
  EXPECT_EQ(e.job_id(), 1);
  EXPECT_EQ(e.campaign_id(), 7);
  EXPECT_EQ(e.candidate_id(), 101);
  EXPECT_EQ(e.sandbox(), fake_.registrations[0].sandbox());
  EXPECT_GT(e.wall_seconds(), 0);
  // The command line the harness got.
  for (const char* want : {"--seed 1234", "--warmups 2", "--knob BLOCK=64", "--peak-gbps 10",
                           "--peak-gflops 50", "--problem ", "--solution ", "--out "})
    EXPECT_NE(e.message().find(want), std::string::npos) << want << " in " << e.message();
}

// A job that carries stored baselines (docs/cluster.md, "Baselines"): the
// worker writes them into the job folder and passes --baseline FILE; the
// harness's "t_b_given" comes back with the baseline's n.
TEST_F(WorkerLoopTest, StoredBaselinesReachTheHarnessAsAFile) {
  int port = FreePort();
  StartServer(port);
  v1::Job job = MakeJob(9, "ok");
  for (int i = 0; i < 2; ++i) {
    v1::Baseline* b = job.add_baselines();
    b->set_workload_index(i);
    b->set_software("fake 1.0");
    b->set_hardware("Test CPU");
    b->set_t_b_ns(1000.0 * (i + 1));
    b->set_t_b_eager_ns(1100.0 * (i + 1));
    b->set_t_b_spread(0.02);
    b->set_measurements(3);
    b->set_frozen(true);
  }
  fake_.queue.push_back(job);
  fake_.queue.push_back(MakeJob(10, "ok"));  // none: the harness times T_b itself
  keep_scratch_ = true;
  StartWorker(port);
  ASSERT_TRUE(WaitFor([&] { return fake_.completions.size() == 2; }));
  std::lock_guard<std::mutex> lock(fake_.mu);
  std::map<int64_t, v1::Evaluation> by_job;
  for (const auto& c : fake_.completions) by_job[c.job_id()] = c.evaluation();
  const v1::Evaluation& given = by_job[9];
  ASSERT_EQ(given.outcome(), v1::OUTCOME_OK) << given.message();
  EXPECT_NE(given.message().find("--baseline "), std::string::npos) << given.message();
  EXPECT_EQ(given.baseline_software(), "fake 1.0");
  ASSERT_EQ(given.workloads_size(), 1);
  EXPECT_TRUE(given.workloads(0).t_b_given());
  EXPECT_EQ(given.workloads(0).t_b_measurements(), 3);
  const v1::Evaluation& measured = by_job[10];
  ASSERT_EQ(measured.outcome(), v1::OUTCOME_OK) << measured.message();
  EXPECT_EQ(measured.message().find("--baseline"), std::string::npos) << measured.message();
  EXPECT_FALSE(measured.workloads(0).t_b_given());
  EXPECT_EQ(measured.workloads(0).t_b_measurements(), 0);
  EXPECT_DOUBLE_EQ(measured.workloads(0).t_b_spread(), 0.01);
  // The file, as the harness read it.
  std::string text;
  for (const auto& e : std::filesystem::directory_iterator(scratch_)) {
    if (e.path().filename().string().rfind("job-9-", 0) != 0) continue;
    std::ifstream in(e.path() / "baseline.json");
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
    EXPECT_NE(given.message().find((e.path() / "baseline.json").string()), std::string::npos);
  }
  EXPECT_EQ(text, BaselineFileJson(job));
  auto doc = nlohmann::json::parse(text, nullptr, false);
  ASSERT_TRUE(doc.is_object()) << text;
  EXPECT_EQ(doc["software"], "fake 1.0");
  ASSERT_EQ(doc["workloads"].size(), 2u);
  EXPECT_EQ(doc["workloads"][1]["index"], 1);
  EXPECT_DOUBLE_EQ(doc["workloads"][1]["t_b_ns"].get<double>(), 2000);
  EXPECT_DOUBLE_EQ(doc["workloads"][1]["t_b_eager_ns"].get<double>(), 2200);
  EXPECT_DOUBLE_EQ(doc["workloads"][0]["t_b_spread"].get<double>(), 0.02);
  EXPECT_EQ(doc["workloads"][0]["measurements"], 3);
}

TEST_F(WorkerLoopTest, ComesUpBeforeTheCoordinatorAndOutcomesMap) {
  int port = FreePort();
  StartWorker(port);  // nothing listens yet
  std::this_thread::sleep_for(1500ms);
  fake_.queue.push_back(MakeJob(2, "segv"));
  fake_.queue.push_back(MakeJob(3, "exit"));
  fake_.queue.push_back(MakeJob(4, "sleep", /*timeout=*/1));
  StartServer(port);
  ASSERT_TRUE(WaitFor([&] { return fake_.completions.size() == 3; }, 20s));
  std::lock_guard<std::mutex> lock(fake_.mu);
  std::map<int64_t, v1::Evaluation> by_job;
  for (const auto& c : fake_.completions) by_job[c.job_id()] = c.evaluation();
  EXPECT_EQ(by_job[2].outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(by_job[2].message().find("SIGSEGV"), std::string::npos) << by_job[2].message();
  EXPECT_NE(by_job[2].message().find("stage: fake segv"), std::string::npos);
  EXPECT_EQ(by_job[3].outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(by_job[3].message().find("exited with status 3 without a result"),
            std::string::npos);
  EXPECT_EQ(by_job[4].outcome(), v1::OUTCOME_TIMEOUT);
  EXPECT_LT(by_job[4].wall_seconds(), 5);
}

TEST_F(WorkerLoopTest, CancelledJobIsKilledAndNotReported) {
  int port = FreePort();
  StartServer(port);
  fake_.queue.push_back(MakeJob(5, "sleep"));
  fake_.queue.push_back(MakeJob(6, "ok"));
  StartWorker(port);
  // The running job shows up in heartbeats (its lease is renewed).
  ASSERT_TRUE(WaitFor([&] {
    return !fake_.heartbeats.empty() && fake_.heartbeats.back().job_ids_size() == 1 &&
           fake_.heartbeats.back().job_ids(0) == 5;
  }));
  { std::lock_guard<std::mutex> lock(fake_.mu); fake_.cancel = {5}; }
  // Job 6 can only run once job 5 is gone (one slot).
  ASSERT_TRUE(WaitFor([&] { return !fake_.completions.empty(); }, 10s));
  std::lock_guard<std::mutex> lock(fake_.mu);
  ASSERT_EQ(fake_.completions.size(), 1u);
  EXPECT_EQ(fake_.completions[0].job_id(), 6);
}

TEST_F(WorkerLoopTest, ReportSurvivesAnOutageAndReregisterKeepsTheId) {
  int port = FreePort();
  StartServer(port);
  fake_.fail_completes = 2;
  fake_.queue.push_back(MakeJob(8, "ok"));
  StartWorker(port);
  ASSERT_TRUE(WaitFor([&] { return !fake_.completions.empty(); }, 15s));
  {
    std::lock_guard<std::mutex> lock(fake_.mu);
    EXPECT_EQ(fake_.complete_calls, 3);
    EXPECT_EQ(fake_.completions[0].job_id(), 8);
    fake_.reregister_once = true;
  }
  ASSERT_TRUE(WaitFor([&] { return fake_.registrations.size() == 2; }, 5s));
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_EQ(fake_.registrations[1].worker_id(), "w-1");
}

// The real entry point in a real process: it comes up, runs a job, and on
// SIGTERM kills the job, removes its scratch folder and exits 0.
TEST_F(WorkerLoopTest, WorkerMainStopsCleanlyOnSigterm) {
  int port = FreePort();
  StartServer(port);
  fake_.queue.push_back(MakeJob(9, "sleep"));
  char tmpl[] = "/tmp/ratchet-worker-main-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  scratch_ = tmpl;
  std::vector<std::string> args = {
      "/proc/self/exe", "--worker-main", "worker",
      absl::StrCat("--coordinator=127.0.0.1:", port), "--name=main-test",
      "--scratch=" + scratch_,
      std::string("--harness=") + RATCHET_WORKER_TESTDATA + "/fake_harness.sh",
      "--peak-gbps=1", "--peak-gflops=1", "--wait-ms=200", "--metrics=127.0.0.1:0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  bool running = WaitFor([&] {
    return !fake_.heartbeats.empty() && fake_.heartbeats.back().job_ids_size() == 1;
  });
  kill(pid, SIGTERM);
  int status = 0;
  auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(running) << "the job never showed up in a heartbeat";
  ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_LT(took, 5);
  EXPECT_TRUE(std::filesystem::is_empty(scratch_)) << "scratch left behind";
  std::lock_guard<std::mutex> lock(fake_.mu);
  EXPECT_TRUE(fake_.completions.empty());
  ASSERT_EQ(fake_.registrations.size(), 1u);
  EXPECT_EQ(fake_.registrations[0].name(), "main-test");
}

// `ratchet worker` in a real process whose bwrap cannot run: the first on
// PATH fails as one does where user namespaces are not allowed. Its stderr
// goes to a file.
namespace fs = std::filesystem;

struct MainRun {
  int status = -1;
  std::string stderr_text;
};

MainRun RunWorkerMainWithoutBwrap(const std::vector<std::string>& flags,
                                  const std::function<void(pid_t)>& while_running = {}) {
  MainRun run;
  run.status = 0x7f;  // "still running" to WIFEXITED and WIFSIGNALED alike
  char tmpl[] = "/tmp/ratchet-worker-nobwrap-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return run;
  const std::string dir = tmpl;
  fs::create_directories(dir + "/bin");
  std::ofstream(dir + "/bin/bwrap")
      << "#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n";
  fs::permissions(dir + "/bin/bwrap", fs::perms::owner_all);
  std::vector<std::string> args = {
      "/proc/self/exe", "--worker-main", "worker", "--scratch=" + dir + "/scratch",
      std::string("--harness=") + RATCHET_WORKER_TESTDATA + "/fake_harness.sh",
      "--peak-gbps=1", "--peak-gflops=1", "--wait-ms=200", "--no-gpu"};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string path_env = "PATH=" + dir + "/bin:/usr/bin:/bin";
  char* envp[] = {path_env.data(), nullptr};
  const std::string err = dir + "/stderr";
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    execve("/proc/self/exe", argv.data(), envp);
    _exit(127);
  }
  if (while_running) while_running(pid);
  // A worker that should have refused to start but runs is killed, and so
  // fails the test rather than hang it.
  for (int i = 0; i < 300 && waitpid(pid, &run.status, WNOHANG) == 0; ++i)
    std::this_thread::sleep_for(50ms);
  if (!WIFEXITED(run.status) && !WIFSIGNALED(run.status)) {
    kill(pid, SIGKILL);
    waitpid(pid, &run.status, 0);
  }
  std::ifstream in(err);
  std::stringstream ss;
  ss << in.rdbuf();
  run.stderr_text = ss.str();
  fs::remove_all(dir);
  return run;
}

// Without bwrap, --sandbox=auto must not quietly run a cluster worker's
// candidates unconfined, where they could read its TLS key.
TEST(WorkerMainSandbox, AutoRefusesAWorkerWithTlsCredentialsWithoutBwrap) {
  const std::string dir = fs::temp_directory_path() / "ratchet-nobwrap-keys";
  fs::create_directories(dir);
  for (const char* f : {"/ca.pem", "/w.pem", "/w.key"}) std::ofstream(dir + f) << "x\n";
  MainRun run = RunWorkerMainWithoutBwrap(
      {"--coordinator=127.0.0.1:1", "--tls-ca=" + dir + "/ca.pem", "--tls-cert=" + dir + "/w.pem",
       "--tls-key=" + dir + "/w.key"});
  fs::remove_all(dir);
  ASSERT_TRUE(WIFEXITED(run.status)) << run.stderr_text;
  EXPECT_EQ(WEXITSTATUS(run.status), 2) << run.stderr_text;
  EXPECT_TRUE(absl::StrContains(run.stderr_text, "with TLS credentials")) << run.stderr_text;
  EXPECT_TRUE(absl::StrContains(run.stderr_text, "--sandbox=rlimits")) << run.stderr_text;
  EXPECT_TRUE(absl::StrContains(run.stderr_text, "bubblewrap")) << run.stderr_text;
}

TEST(WorkerMainSandbox, AutoRefusesACoordinatorOffLoopbackWithoutBwrap) {
  MainRun run = RunWorkerMainWithoutBwrap({"--coordinator=192.0.2.1:50051"});
  ASSERT_TRUE(WIFEXITED(run.status)) << run.stderr_text;
  EXPECT_EQ(WEXITSTATUS(run.status), 2) << run.stderr_text;
  EXPECT_TRUE(absl::StrContains(run.stderr_text, "not on loopback")) << run.stderr_text;
}

// Asked for in so many words, rlimits still starts such a worker, loudly.
TEST(WorkerMainSandbox, ExplicitRlimitsStartsAClusterWorkerWithAWarning) {
  MainRun run = RunWorkerMainWithoutBwrap(
      {"--coordinator=192.0.2.1:50051", "--sandbox=rlimits"},
      [](pid_t pid) {
        std::this_thread::sleep_for(1500ms);
        kill(pid, SIGTERM);
      });
  ASSERT_TRUE(WIFEXITED(run.status)) << run.stderr_text;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.stderr_text;
  EXPECT_TRUE(absl::StrContains(run.stderr_text, "--sandbox=rlimits: jobs run with rlimits"))
      << run.stderr_text;
}

// `ratchet local`'s workers (loopback, no credentials) still start without
// bwrap, and run jobs.
TEST_F(WorkerLoopTest, AutoStillStartsALoopbackWorkerWithoutBwrap) {
  int port = FreePort();
  StartServer(port);
  fake_.queue.push_back(MakeJob(5, "ok"));
  MainRun run = RunWorkerMainWithoutBwrap(
      {absl::StrCat("--coordinator=127.0.0.1:", port), "--name=local-test"},
      [this](pid_t pid) {
        WaitFor([&] { return !fake_.completions.empty(); });
        kill(pid, SIGTERM);
      });
  ASSERT_TRUE(WIFEXITED(run.status)) << run.stderr_text;
  EXPECT_EQ(WEXITSTATUS(run.status), 0) << run.stderr_text;
  EXPECT_TRUE(absl::StrContains(run.stderr_text, "bubblewrap is unavailable")) << run.stderr_text;
  std::lock_guard<std::mutex> lock(fake_.mu);
  ASSERT_EQ(fake_.completions.size(), 1u) << run.stderr_text;
}

// The worker with the real harness (when it is built beside this test) on the
// shared vadd problem and the bad-candidate corpus: every outcome arrives
// through the sandbox intact.
class RealHarnessTest : public ::testing::TestWithParam<std::pair<std::string, v1::Outcome>> {};

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// ratchet-harness beside this test's executable (it may not be built).
std::filesystem::path HarnessBesideThisTest() {
  char self[4096];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return {};
  self[n] = 0;
  return std::filesystem::path(self).parent_path() / "ratchet-harness";
}

std::filesystem::path SharedTestData() {
  return std::filesystem::path(RATCHET_WORKER_TESTDATA) / "../../tests/data";
}

// A job (seed 7) on the shared vadd problem with the solution files in
// `dir`; every candidate meets the screen first (vadd's smaller workload,
// n=1000).
v1::Job VaddJob(int64_t id, const std::filesystem::path& dir) {
  const std::filesystem::path data = SharedTestData();
  v1::Job job;
  job.set_id(id);
  job.set_seed(7);
  job.mutable_problem()->set_definition_json(ReadAll(data / "vadd/definition.json"));
  job.mutable_problem()->set_workload_jsonl(ReadAll(data / "vadd/workload.jsonl"));
  for (const auto& e : std::filesystem::directory_iterator(dir))
    (*job.mutable_solution()->mutable_files())[e.path().filename().string()] = ReadAll(e.path());
  job.mutable_harness()->set_warmups(1);
  job.mutable_harness()->set_repetitions(3);
  job.mutable_harness()->set_correctness_rounds(2);
  job.mutable_harness()->set_timeout_seconds(120);
  job.mutable_harness()->set_screen(v1::SCREEN_ON);
  return job;
}

TEST_P(RealHarnessTest, OutcomeSurvivesTheSandbox) {
  namespace fs = std::filesystem;
  const fs::path harness = HarnessBesideThisTest();
  const fs::path data = SharedTestData();
  if (!fs::exists(harness)) GTEST_SKIP() << "ratchet-harness is not built beside this test";
  const auto& [name, want] = GetParam();
  fs::path dir = name == "good" ? data / "vadd/good" : data / "bad_candidates" / name;
  if (!fs::exists(dir)) GTEST_SKIP() << dir << " is missing";

  v1::Job job = VaddJob(42, dir);
  job.mutable_harness()->set_timeout_seconds(name == "hang" ? 15 : 120);

  WorkerOptions o;
  o.coordinator = "127.0.0.1:1";  // RunJob does not talk to it
  char tmpl[] = "/tmp/ratchet-worker-real-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  o.scratch_root = tmpl;
  o.harness_path = harness.string();
  auto sandbox = Sandbox::Create("auto");
  ASSERT_TRUE(sandbox.ok());
  v1::Hardware hw;
  hw.set_cpu_cores(2);
  hw.set_peak_gbps(10);
  hw.set_peak_gflops(50);
  Worker worker(o, *std::move(sandbox), hw, nullptr);
  bool cancelled = false;
  v1::Evaluation e = worker.RunJob(job, nullptr, &cancelled);
  EXPECT_FALSE(cancelled);
  EXPECT_EQ(e.outcome(), want) << OutcomeLabel(e.outcome()) << ": " << e.message();
  if (want == v1::OUTCOME_OK) {
    EXPECT_GT(e.score(), 0);
    EXPECT_EQ(e.workloads_size(), 2);
  }
  if (want == v1::OUTCOME_WRONG_ANSWER) {
    EXPECT_NE(e.message().find("screen: workload 0 (n=1000)"), std::string::npos) << e.message();
  }
  EXPECT_TRUE(fs::is_empty(o.scratch_root)) << "job folder left behind";
  fs::remove_all(o.scratch_root);
}

INSTANTIATE_TEST_SUITE_P(
    Corpus, RealHarnessTest,
    ::testing::Values(std::make_pair(std::string("good"), v1::OUTCOME_OK),
                      std::make_pair(std::string("compile_error"), v1::OUTCOME_COMPILE_ERROR),
                      std::make_pair(std::string("crash"), v1::OUTCOME_CRASH),
                      std::make_pair(std::string("exit"), v1::OUTCOME_CRASH),
                      std::make_pair(std::string("hang"), v1::OUTCOME_TIMEOUT),
                      std::make_pair(std::string("out_of_bounds"), v1::OUTCOME_OUT_OF_BOUNDS),
                      std::make_pair(std::string("wrong"), v1::OUTCOME_WRONG_ANSWER)),
    [](const auto& info) { return info.param.first; });

// A campaign's evaluations of one seed (Job.shared_inputs) with a stored
// T_b: the first makes the rounds with an oracle-only run in a folder of the
// cache, and every one of them takes them (rounds_given), with the same
// outcome as measuring them itself. A verification's pair of replays (one
// fresh seed, the independent timing on) does the same with an entry of its
// own, which goes first when the cache is full.
TEST(RealHarness, SharedInputsTakeTheRoundsOfOneOracleRun) {
  namespace fs = std::filesystem;
  const fs::path harness = HarnessBesideThisTest();
  const fs::path data = SharedTestData();
  if (!fs::exists(harness)) GTEST_SKIP() << "ratchet-harness is not built beside this test";
  auto job_of = [&](int64_t id, const std::string& solution) {
    v1::Job job = VaddJob(id, data / solution);
    job.set_kind(v1::JOB_EVALUATE);
    return job;
  };
  WorkerOptions o;
  o.coordinator = "127.0.0.1:1";  // RunJob does not talk to it
  o.rounds_cache_entries = 2;
  char tmpl[] = "/tmp/ratchet-worker-rounds-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  o.scratch_root = std::string(tmpl) + "/jobs";
  o.rounds_cache_dir = std::string(tmpl) + "/rounds-cache";
  o.harness_path = harness.string();
  auto sandbox = Sandbox::Create("auto");
  ASSERT_TRUE(sandbox.ok());
  v1::Hardware hw;
  hw.set_cpu_cores(2);
  hw.set_peak_gbps(10);
  hw.set_peak_gflops(50);
  Worker worker(o, *std::move(sandbox), hw, nullptr);
  bool cancelled = false;
  // T_b measured in the job: no rounds given (its oracle times T_b anyway).
  v1::Job first = job_of(1, "vadd/good");
  first.set_shared_inputs(true);
  const v1::Evaluation measured = worker.RunJob(first, nullptr, &cancelled);
  ASSERT_EQ(measured.outcome(), v1::OUTCOME_OK) << measured.message();
  EXPECT_FALSE(measured.rounds_given());
  auto with_baseline = [&](v1::Job job) {
    for (const v1::WorkloadResult& w : measured.workloads()) {
      v1::Baseline* b = job.add_baselines();
      b->set_workload_index(w.index());
      b->set_software(measured.baseline_software());
      b->set_t_b_ns(w.t_b_ns());
      b->set_measurements(3);
      b->set_frozen(true);
    }
    return job;
  };
  // The cache's files as the first job left them: jobs get links to the
  // round data, and nothing a job does changes what the next one gets.
  auto cache_files = [&] {
    std::map<std::string, std::string> files;
    for (const auto& e : fs::recursive_directory_iterator(o.rounds_cache_dir)) {
      if (!e.is_regular_file() || e.path().filename() == "complete") continue;
      std::ifstream in(e.path(), std::ios::binary);
      files[e.path().string()] = std::string(std::istreambuf_iterator<char>(in), {});
      if (e.path().extension() == ".bin") {
        EXPECT_EQ(fs::status(e.path()).permissions() & fs::perms::owner_write, fs::perms::none)
            << e.path();
        EXPECT_EQ(fs::hard_link_count(e.path()), 1u) << e.path() << ": a job's link left";
      }
    }
    return files;
  };
  std::map<std::string, std::string> after_first;
  for (const auto& [id, solution, want] :
       {std::tuple<int64_t, std::string, v1::Outcome>{2, "vadd/good", v1::OUTCOME_OK},
        {3, "vadd/good", v1::OUTCOME_OK},
        {4, "bad_candidates/wrong", v1::OUTCOME_WRONG_ANSWER},
        // Overwrites every round file it can reach; what comes after is as
        // if it had not run.
        {6, "bad_candidates/poison_rounds", v1::OUTCOME_OK},
        {7, "vadd/good", v1::OUTCOME_OK},
        {8, "bad_candidates/wrong", v1::OUTCOME_WRONG_ANSWER}}) {
    v1::Job job = with_baseline(job_of(id, solution));
    job.set_shared_inputs(true);
    const v1::Evaluation e = worker.RunJob(job, nullptr, &cancelled);
    EXPECT_EQ(e.outcome(), want) << id << ": " << e.message();
    EXPECT_TRUE(e.rounds_given()) << id;
    if (id == 2) after_first = cache_files();
  }
  EXPECT_GT(after_first.size(), 2u);
  EXPECT_EQ(cache_files(), after_first);
  // One entry, made once.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(o.rounds_cache_dir)) {
    ++entries;
    EXPECT_TRUE(fs::exists(e.path() / "complete")) << e.path();
  }
  EXPECT_EQ(entries, 1);
  const std::string campaign_entry = fs::directory_iterator(o.rounds_cache_dir)->path().string();
  // A pair of replays on seed 99, the candidate's first: it poisons every
  // round file it can reach, and the incumbent's replay is as if it had not.
  auto replay_of = [&](int64_t id, const std::string& solution, uint64_t seed) {
    v1::Job replay = with_baseline(job_of(id, solution));
    replay.set_kind(v1::JOB_REPLAY);
    replay.set_independent_timing(true);
    replay.set_seed(seed);
    return worker.RunJob(replay, nullptr, &cancelled);
  };
  const v1::Evaluation poisoner = replay_of(10, "bad_candidates/poison_rounds", 99);
  ASSERT_EQ(poisoner.outcome(), v1::OUTCOME_OK) << poisoner.message();
  EXPECT_TRUE(poisoner.rounds_given());
  const std::map<std::string, std::string> with_pair = cache_files();
  const v1::Evaluation incumbent = replay_of(11, "vadd/good", 99);
  ASSERT_EQ(incumbent.outcome(), v1::OUTCOME_OK) << incumbent.message();
  EXPECT_TRUE(incumbent.rounds_given());
  EXPECT_GT(incumbent.workloads_size(), 0);
  EXPECT_EQ(cache_files(), with_pair);
  auto entries_now = [&] {
    std::set<std::string> names;
    for (const auto& e : fs::directory_iterator(o.rounds_cache_dir)) names.insert(e.path().string());
    return names;
  };
  ASSERT_EQ(entries_now().size(), 2u);
  ASSERT_EQ(entries_now().count(campaign_entry), 1u);
  // The next pair's seed: the cache holds two, and the last pair's entry
  // goes, not the campaign's.
  const v1::Evaluation next = replay_of(12, "vadd/good", 100);
  ASSERT_EQ(next.outcome(), v1::OUTCOME_OK) << next.message();
  EXPECT_TRUE(next.rounds_given());
  std::set<std::string> after = entries_now();
  EXPECT_EQ(after.size(), 2u);
  EXPECT_EQ(after.count(campaign_entry), 1u);
  for (const auto& [path, text] : with_pair)
    if (!absl::StartsWith(path, campaign_entry)) EXPECT_FALSE(fs::exists(path)) << path;
  EXPECT_TRUE(fs::is_empty(o.scratch_root)) << "job folder left behind";
  fs::remove_all(tmpl);
}

// Under bwrap the harness is the sandbox's PID 1 (SandboxSpec::as_pid_1):
// no bwrap init stays inside whose /proc/1/environ holds the job's secrets
// (RATCHET_RESULT_NONCE, RATCHET_INDEPENDENT_TIMING) and whose stdout (the
// worker's pipe, where the independent timing's marks arrive) the candidate
// could open through /proc/1/fd/1. A planted candidate (worker/testdata/
// proc_probe) looks for both from inside a real job, a replay with the
// independent timing on, and notes what it reached in proc_probe.txt.
TEST(RealHarness, CandidateReachesNoSecretAndNoStdout) {
  namespace fs = std::filesystem;
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  ASSERT_GT(n, 0);
  self[n] = 0;
  fs::path harness = fs::path(self).parent_path() / "ratchet-harness";
  fs::path data = fs::path(RATCHET_WORKER_TESTDATA) / "../../tests/data";
  fs::path probe = fs::path(RATCHET_WORKER_TESTDATA) / "proc_probe";
  if (!fs::exists(harness)) GTEST_SKIP() << "ratchet-harness is not built beside this test";
  std::string warning;
  auto sandbox = Sandbox::Create("auto", &warning);
  ASSERT_TRUE(sandbox.ok());
  if (sandbox->mode() != Sandbox::Mode::kBwrap) GTEST_SKIP() << "bwrap cannot run: " << warning;

  v1::Job job;
  job.set_id(43);
  job.set_seed(7);
  job.set_kind(v1::JOB_REPLAY);
  job.set_independent_timing(true);
  job.mutable_problem()->set_definition_json(ReadAll(data / "vadd/definition.json"));
  job.mutable_problem()->set_workload_jsonl(ReadAll(data / "vadd/workload.jsonl"));
  for (const char* f : {"kernel.cc", "solution.json"})
    (*job.mutable_solution()->mutable_files())[f] = ReadAll(probe / f);
  job.mutable_harness()->set_warmups(1);
  job.mutable_harness()->set_repetitions(3);
  job.mutable_harness()->set_correctness_rounds(2);
  job.mutable_harness()->set_timeout_seconds(120);

  WorkerOptions o;
  o.coordinator = "127.0.0.1:1";  // RunJob does not talk to it
  char tmpl[] = "/tmp/ratchet-worker-probe-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  o.scratch_root = tmpl;
  o.harness_path = harness.string();
  o.keep_scratch = true;  // the probe's notes are read from the job's folder
  v1::Hardware hw;
  hw.set_cpu_cores(2);
  hw.set_peak_gbps(10);
  hw.set_peak_gflops(50);
  Worker worker(o, *std::move(sandbox), hw, nullptr);
  bool cancelled = false;
  v1::Evaluation e = worker.RunJob(job, nullptr, &cancelled);
  EXPECT_FALSE(cancelled);
  EXPECT_EQ(e.outcome(), v1::OUTCOME_OK) << OutcomeLabel(e.outcome()) << ": " << e.message();
  EXPECT_EQ(e.sandbox(), "bwrap");
  // The harness's own marks still reach the worker.
  for (const auto& w : e.workloads()) {
    EXPECT_GT(w.independent_calls(), 0) << "workload " << w.index();
    for (const auto& flag : w.flags()) EXPECT_NE(flag, "independent-timing-failed");
  }

  std::string notes;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(o.scratch_root, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->path().filename() == "proc_probe.txt")
      absl::StrAppend(&notes, "== ", it->path().string(), "\n", ReadAll(it->path()));
  }
  EXPECT_NE(notes.find("probed pid"), std::string::npos) << "the probe never ran:\n" << notes;
  EXPECT_EQ(notes.find("LEAK"), std::string::npos) << notes;
  fs::remove_all(o.scratch_root);
}

}  // namespace
}  // namespace ratchet::worker

// `--worker-main ARGS...` runs WorkerMain in this process, for the test above.
int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--worker-main")
    return ratchet::worker::WorkerMain(argc - 2, argv + 2);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
