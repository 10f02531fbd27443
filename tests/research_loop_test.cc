// The research loop's control and search, on a real cluster: coordinator,
// verifier and workers as processes of the `ratchet` binary over loopback
// gRPC, every candidate of the built-in CPU RMSNorm compiled and timed by the
// real harness.
//
//   pause/resume: a paused campaign leases nothing and proposes nothing, stays
//     paused across a coordinator restart, and resumes to its budget;
//   GPU-seconds: a campaign whose job time reaches the budget ends with that
//     reason and a report;
//   islands: evolve with migration, scheduled merges and parents from the
//     thread's archive; then diff and export of the best candidate, the
//     export reproduced by its run.sh;
//   cascade: a wrong candidate never reaches the timing stage.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "tests/support/process.h"

namespace ratchet {
namespace {

using testing::Process;
using testing::RunCommand;

const std::string kRatchet = RATCHET_BIN;
const std::string kSource = RATCHET_SOURCE_DIR;

std::string Spec(const std::string& name, const std::string& extra) {
  return absl::StrCat("name: ", name, "\nproblem: ", kSource, "/tasks/cpu/rmsnorm\nbaseline: ",
                      kSource, "/tasks/cpu/rmsnorm/baseline\n",
                      "harness: {warmups: 1, repetitions: 5, correctness_rounds: 1, "
                      "timeout_seconds: 60}\ndevice: cpu\n",
                      extra);
}

class ResearchLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (RunCommand({"/usr/bin/python3", "-c", "import torch"}, 60'000).exit_code != 0)
      GTEST_SKIP() << "no /usr/bin/python3 with torch for the oracle";
    dir_ = testing::MakeTempDir("ratchet-research");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    StopServices();
    if (HasFailure())
      for (const char* f : {"coordinator.log", "verifier.log", "w1.log", "w2.log"})
        std::cerr << "---- " << f << "\n" << testing::ReadFile(dir_ + "/" + f);
  }

  void StartCoordinator(const std::string& listen) {
    const std::string port_file = dir_ + "/port";
    ::unlink(port_file.c_str());
    coordinator_ = std::make_unique<Process>(
        std::vector<std::string>{kRatchet, "coordinator", "--listen=" + listen,
                                 "--port-file=" + port_file, "--db=" + dir_ + "/ratchet.db",
                                 "--lease-seconds=10", "--heartbeat-seconds=1"},
        dir_ + "/coordinator.log");
    ASSERT_TRUE(testing::WaitForFile(port_file, 20'000));
    address_ = absl::StrCat("127.0.0.1:",
                            absl::StripAsciiWhitespace(testing::ReadFile(port_file)));
    stub_ = v1::CoordinatorService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  void StartCluster(int workers) {
    ASSERT_NO_FATAL_FAILURE(StartCoordinator("127.0.0.1:0"));
    verifier_ = std::make_unique<Process>(
        std::vector<std::string>{kRatchet, "verifier", "--coordinator=" + address_},
        dir_ + "/verifier.log");
    for (int i = 1; i <= workers; ++i) {
      const std::string scratch = absl::StrCat(dir_, "/scratch", i);
      mkdir(scratch.c_str(), 0755);
      workers_.push_back(std::make_unique<Process>(
          std::vector<std::string>{kRatchet, "worker", "--coordinator=" + address_,
                                   absl::StrCat("--name=w", i), "--scratch=" + scratch,
                                   "--no-gpu"},
          absl::StrCat(dir_, "/w", i, ".log")));
    }
  }

  void StopServices() {
    for (auto& w : workers_) w->Stop(SIGTERM);
    if (verifier_) verifier_->Stop(SIGTERM);
    if (coordinator_) coordinator_->Stop(SIGTERM);
  }

  int64_t Submit(const std::string& name, const std::string& yaml) {
    const std::string path = absl::StrCat(dir_, "/", name, ".yaml");
    std::ofstream(path) << yaml;
    auto r = RunCommand({kRatchet, "submit", path, "--coordinator=" + address_});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    int64_t id = 0;
    EXPECT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(r.out), &id)) << r.out;
    return id;
  }

  v1::Campaign Get(int64_t id) {
    v1::Campaign c;
    grpc::ClientContext ctx;
    v1::GetCampaignRequest req;
    req.set_campaign_id(id);
    EXPECT_TRUE(stub_->GetCampaign(&ctx, req, &c).ok());
    return c;
  }

  template <typename Pred>
  v1::Campaign WaitFor(int64_t id, int timeout_s, Pred pred, const char* what) {
    v1::Campaign c;
    for (int i = 0; i < timeout_s * 5; ++i) {
      c = Get(id);
      if (pred(c)) return c;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ADD_FAILURE() << "campaign " << id << ": not " << what << " after " << timeout_s << " s";
    return c;
  }

  v1::Campaign WaitUntilDone(int64_t id, int timeout_s) {
    return WaitFor(
        id, timeout_s,
        [](const v1::Campaign& c) {
          return c.state() != v1::CAMPAIGN_RUNNING && c.state() != v1::CAMPAIGN_PAUSED;
        },
        "done");
  }

  testing::CommandResult Cli(std::vector<std::string> args) {
    args.insert(args.begin(), kRatchet);
    args.push_back("--coordinator=" + address_);
    return RunCommand(args);
  }

  std::string dir_, address_;
  std::unique_ptr<Process> coordinator_, verifier_;
  std::vector<std::unique_ptr<Process>> workers_;
  std::unique_ptr<v1::CoordinatorService::Stub> stub_;
};

TEST_F(ResearchLoop, PauseStopsLeasingSurvivesRestartAndResumes) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  const int64_t id = Submit("pause", Spec("pause", R"(threads: 2
proposer: evolve
seed: 3
budget: {max_evaluations: 8, max_wall_seconds: 400}
verification: {replays: 1, min_gain: 100}
)"));
  WaitFor(id, 120, [](const v1::Campaign& c) { return c.evaluations() >= 2; }, "evaluating");
  auto paused = Cli({"pause", std::to_string(id)});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(paused.out, absl::StrCat("campaign ", id, ": paused\n"));
  // Running jobs finish and are applied; then nothing more is leased.
  v1::Campaign drained = WaitFor(
      id, 120, [](const v1::Campaign& c) { return c.jobs_running() == 0; }, "drained");
  EXPECT_EQ(drained.state(), v1::CAMPAIGN_PAUSED);
  const int evaluations = drained.evaluations();
  EXPECT_LT(evaluations, 8);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  v1::Campaign still = Get(id);
  EXPECT_EQ(still.evaluations(), evaluations);
  EXPECT_EQ(still.jobs_running(), 0);
  // A second pause is refused; so is resuming a running campaign later.
  EXPECT_NE(Cli({"pause", std::to_string(id)}).exit_code, 0);

  // The pause is stored: a restarted coordinator keeps it.
  const std::string listen = address_;
  coordinator_->Stop(SIGTERM);
  ASSERT_NO_FATAL_FAILURE(StartCoordinator(listen));
  std::this_thread::sleep_for(std::chrono::seconds(3));
  v1::Campaign after_restart = Get(id);
  EXPECT_EQ(after_restart.state(), v1::CAMPAIGN_PAUSED);
  EXPECT_EQ(after_restart.evaluations(), evaluations);
  EXPECT_EQ(after_restart.jobs_running(), 0);

  auto resumed = Cli({"resume", std::to_string(id)});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(resumed.out, absl::StrCat("campaign ", id, ": running\n"));
  EXPECT_NE(Cli({"resume", std::to_string(id)}).exit_code, 0);
  v1::Campaign done = WaitUntilDone(id, 300);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED) << done.message();
  EXPECT_EQ(done.evaluations(), 8);
  EXPECT_GT(done.paused_seconds(), 5.0);
  EXPECT_GT(done.gpu_seconds(), 0.0);

  auto report = Cli({"report", std::to_string(id)});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find("evaluations  8 of 8"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("job time"), std::string::npos) << report.out;
}

TEST_F(ResearchLoop, GpuSecondsBudgetEndsTheCampaignWithAReport) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  const int64_t id = Submit("gpus", Spec("gpus", R"(threads: 1
proposer: random
seed: 4
budget: {max_evaluations: 200, max_wall_seconds: 400, max_gpu_seconds: 4}
verification: {replays: 2, min_gain: 100}
)"));
  v1::Campaign done = WaitUntilDone(id, 300);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_NE(done.message().find("GPU-seconds budget reached"), std::string::npos)
      << done.message();
  EXPECT_GE(done.gpu_seconds(), 4.0);
  EXPECT_LT(done.evaluations(), 200);
  EXPECT_GE(done.evaluations(), 2);
  auto report = Cli({"report", std::to_string(id), "--json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  auto j = nlohmann::json::parse(report.out);
  EXPECT_EQ(j["state"], "finished");
  EXPECT_GE(j["job_seconds"].get<double>(), 4.0);
}

TEST_F(ResearchLoop, IslandsMigrateMergeAndTheBestExportsAndReproduces) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(2));
  // The matmul baseline leaves a >10x gap, so claims are real and accepted
  // early; merges need two different incumbents, migrations a better one.
  const std::string spec = absl::StrCat(
      "name: islands\nproblem: ", kSource, "/tasks/cpu/matmul\nbaseline: ", kSource,
      "/tasks/cpu/matmul/baseline\n", R"(threads: 3
proposer: evolve
seed: 11
in_flight_per_thread: 1
migrate_every: 2
merge_every: 2
tournament_size: 3
budget: {max_evaluations: 16, max_wall_seconds: 500}
verification: {replays: 2, min_gain: 0.05, significance: 0.2, tiers: [guards, replay]}
harness: {warmups: 1, repetitions: 5, correctness_rounds: 1, timeout_seconds: 60}
device: cpu
)");
  const int64_t id = Submit("islands", spec);
  v1::Campaign done = WaitUntilDone(id, 560);
  ASSERT_EQ(done.state(), v1::CAMPAIGN_FINISHED) << done.message();
  EXPECT_GT(done.lessons(), 0);

  std::map<int64_t, v1::Candidate> candidates;
  for (int64_t cid = done.baseline_candidate_id();; ++cid) {
    v1::CandidateDetail d;
    grpc::ClientContext ctx;
    v1::GetCandidateRequest req;
    req.set_candidate_id(cid);
    if (!stub_->GetCandidate(&ctx, req, &d).ok() || d.candidate().campaign_id() != id) break;
    candidates[cid] = d.candidate();
    if (d.candidate().description().find("merge with #") != std::string::npos)
      EXPECT_FALSE(d.evaluations().empty()) << cid;  // evaluated like any other
  }
  int merge_candidates = 0, archive_parents = 0, accepted = 0;
  for (const auto& [cid, c] : candidates) {
    if (c.description().find("merge with #") != std::string::npos) ++merge_candidates;
    if (c.status() == "accepted") ++accepted;
    // A parent that never was an incumbent came from the thread's archive.
    auto parent = candidates.find(c.parent_id());
    if (parent != candidates.end() && parent->second.status() != "accepted" &&
        parent->second.status() != "baseline")
      ++archive_parents;
  }
  ASSERT_GT(accepted, 0) << "no claim was accepted on the matmul baseline";
  EXPECT_EQ(merge_candidates, done.merges());
  EXPECT_GT(done.merges(), 0);
  EXPECT_GT(archive_parents, 0);
  // Every thread's incumbent is the baseline, its own accepted candidate, or
  // an accepted one of another thread, adopted by a migration.
  bool adopted = false;
  for (const auto& t : done.threads()) {
    const v1::Candidate& inc = candidates[t.incumbent_candidate_id()];
    if (inc.id() == done.baseline_candidate_id()) continue;
    EXPECT_EQ(inc.status(), "accepted") << inc.id();
    if (inc.thread_id() != t.id()) adopted = true;
  }
  if (adopted) EXPECT_GT(done.migrations(), 0);

  // diff against the baseline: the knobs that changed, no file differs.
  const int64_t best = done.best_candidate_id();
  ASSERT_NE(best, done.baseline_candidate_id());
  auto diff = Cli({"diff", std::to_string(best), "--against=baseline"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_EQ(diff.out.rfind(absl::StrCat("knobs #", done.baseline_candidate_id(), " -> #", best), 0),
            0u)
      << diff.out;
  EXPECT_EQ(diff.out.find("kernel.cc"), std::string::npos) << diff.out;
  auto to_parent = Cli({"diff", std::to_string(best)});
  EXPECT_EQ(to_parent.exit_code, 0) << to_parent.err;

  // export, then reproduce with the folder's run.sh alone.
  const std::string out = dir_ + "/export";
  auto exported = Cli({"export", std::to_string(best), out});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  StopServices();  // the measurement runs alone
  auto bench = RunCommand({"/usr/bin/env", "RATCHET=" + kRatchet, out + "/run.sh", "--json"},
                          300'000);
  ASSERT_EQ(bench.exit_code, 0) << bench.err << bench.out;
  auto j = nlohmann::json::parse(bench.out.substr(bench.out.find('{')));
  EXPECT_EQ(j["outcome"], "ok") << bench.out;
  // The same candidate measured again: far above the baseline, within a
  // factor of two of its verified score on this shared machine.
  EXPECT_GT(j["score"].get<double>(), done.best_score() / 2) << bench.out;
  EXPECT_GT(j["score"].get<double>(), 2 * done.baseline_score()) << bench.out;
}

// Cascade: compile, then correctness, then timing. A candidate that is wrong
// stops at correctness: no workload is timed.
TEST(Cascade, AWrongCandidateNeverReachesTiming) {
  if (RunCommand({"/usr/bin/python3", "-c", "import torch"}, 60'000).exit_code != 0)
    GTEST_SKIP() << "no /usr/bin/python3 with torch for the oracle";
  auto run = [](const std::string& solution) {
    auto r = RunCommand({kRatchet, "bench", kSource + "/tests/data/vadd", solution, "--json",
                         "--repetitions", "50"},
                        180'000);
    auto j = nlohmann::json::parse(r.out.substr(std::min(r.out.find('{'), r.out.size())),
                                   nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out << r.err;
    return j;
  };
  auto good = run(kSource + "/tests/data/vadd/good");
  ASSERT_EQ(good["outcome"], "ok");
  for (const auto& w : good["workloads"]) EXPECT_GT(w["t_k_ns"].get<double>(), 0);

  auto wrong = run(kSource + "/tests/data/bad_candidates/wrong");
  EXPECT_EQ(wrong["outcome"], "wrong_answer");
  for (const auto& w : wrong["workloads"]) {
    EXPECT_EQ(w["t_k_ns"].get<double>(), 0) << w;
    EXPECT_EQ(w.value("repetitions", 0), 0) << w;
  }
  auto broken = run(kSource + "/tests/data/bad_candidates/compile_error");
  EXPECT_EQ(broken["outcome"], "compile_error");
  EXPECT_TRUE(broken["workloads"].empty()) << broken;
}

}  // namespace
}  // namespace ratchet
