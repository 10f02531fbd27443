// End to end: coordinator, verifier and two workers as separate processes of
// the real `ratchet` binary, over loopback gRPC, running real campaigns whose
// candidates are compiled, sandboxed and timed by the real harness.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "coordinator/store/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/cluster.h"
#include "tests/support/process.h"

namespace ratchet {
namespace {

using testing::CommandResult;
using testing::RunCommand;

const std::string kRatchet = RATCHET_BIN;
const std::string kSource = RATCHET_SOURCE_DIR;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A short evolve campaign on cpu/rmsnorm for `ratchet local`: cheap runs,
// claims that need a large gain.
std::string LocalRmsnormSpec(const std::string& name, int evaluations) {
  return absl::StrCat("name: ", name, R"(
task: kernel
problem: )", kSource, R"(/tasks/cpu/rmsnorm
baseline: )", kSource, R"(/tasks/cpu/rmsnorm/baseline
threads: 1
proposer: evolve
seed: 4
budget: {max_evaluations: )", evaluations, R"(}
verification: {replays: 2, min_gain: 0.5, max_replays: 2}
harness: {warmups: 1, repetitions: 3, correctness_rounds: 1, timeout_seconds: 60}
)");
}

// Campaign 1 as `ratchet local`'s store in `data` holds it now (empty when
// there is none yet).
v1::Campaign StoredCampaign(const std::string& data) {
  auto store = store::OpenSqliteStore(data + "/ratchet.db");
  if (!store.ok()) return v1::Campaign();
  auto c = (*store)->GetCampaign(1);
  return c.ok() ? *c : v1::Campaign();
}

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::PythonWithTorch())
      GTEST_SKIP() << "no /usr/bin/python3 with torch for the oracle";
    dir_ = testing::MakeTempDir("ratchet-e2e");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (cluster_) cluster_->StopAll();
    if (HasFailure() && cluster_) std::cerr << cluster_->Logs();
  }
  // Coordinator, verifier and two workers. Workers may use a GPU; every
  // service serves /metrics. The workers' CPU peaks are the test's
  // (`peak_flags`), not measured: measured peaks move with the host's load,
  // and each worker measures its own, so the roofline, and with it which
  // candidate scores above which, would depend on the host. (Calibration is
  // still exercised by the research-loop and llm cluster tests.)
  void StartCluster(std::vector<std::string> peak_flags) {
    testing::Cluster::Options options;
    options.metrics = true;
    options.worker_flags = std::move(peak_flags);
    cluster_ = std::make_unique<testing::Cluster>(kRatchet, dir_, options);
    ASSERT_NO_FATAL_FAILURE(cluster_->Start(2));
  }
  std::string dir_;
  std::unique_ptr<testing::Cluster> cluster_;
};

TEST_F(EndToEnd, TinyCampaignRunsToCompletionAndIsStored) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(testing::UnreachablePeakFlags()));
  const std::string spec = dir_ + "/tiny.yaml";
  WriteFile(spec, absl::StrCat(R"(name: tiny-rmsnorm
task: kernel
problem: )", kSource, R"(/tasks/cpu/rmsnorm
baseline: )", kSource, R"(/tasks/cpu/rmsnorm/baseline
threads: 2
proposer: evolve
seed: 3
budget: {max_evaluations: 7, max_wall_seconds: 400}
verification: {replays: 2, min_gain: 0.0, max_replays: 4}
harness: {warmups: 1, repetitions: 5, correctness_rounds: 1, timeout_seconds: 60}
)"));
  // min_gain 0 makes claims of noise; max_replays bounds what each may cost
  // (2, then 4 replays a side), so that the seven evaluations fit the wall
  // budget on a slow host too.
  int64_t id = cluster_->Submit(spec);
  ASSERT_GT(id, 0);
  v1::Campaign campaign = cluster_->WaitUntilDone(id, 420);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED) << campaign.message();
  EXPECT_EQ(campaign.evaluations(), 7);
  EXPECT_GT(campaign.baseline_score(), 0.0);
  EXPECT_EQ(campaign.jobs_queued() + campaign.jobs_running(), 0);
  EXPECT_TRUE(cluster_->AllRunning());

  // Prometheus metrics of every service reflect the campaign.
  const std::string metrics = cluster_->Metrics("coordinator");
  for (const char* needle :
       {"ratchet_jobs{", "ratchet_evaluations_total{kind=\"evaluate\",outcome=\"ok\"} ",
        "ratchet_campaign_best_score{", "ratchet_workers_connected 2"})
    EXPECT_NE(metrics.find(needle), std::string::npos) << needle << " not in:\n" << metrics;
  EXPECT_NE(metrics.find("ratchet_verdicts_total") == std::string::npos &&
                campaign.verdicts_size() > 0,
            true);
  // Every page is served. A counter shows once it has counted something
  // (prometheus leaves a family without series off the page): the workers'
  // ok jobs on one of them at least (which worker leases what is up to
  // timing), the verifier's verdicts only if noise made a claim here, which
  // is up to the host (BadCandidates... checks a verdict's counter for
  // certain).
  const std::string w1_metrics = cluster_->Metrics("w1"), w2_metrics = cluster_->Metrics("w2");
  const std::string verifier_metrics = cluster_->Metrics("verifier");
  for (const std::string* page : {&w1_metrics, &w2_metrics, &verifier_metrics})
    EXPECT_NE(page->find("exposer_scrapes_total"), std::string::npos) << *page;
  const std::string ok_jobs = "ratchet_worker_jobs_total{outcome=\"ok\"}";
  EXPECT_TRUE(w1_metrics.find(ok_jobs) != std::string::npos ||
              w2_metrics.find(ok_jobs) != std::string::npos)
      << w1_metrics << w2_metrics;
  if (campaign.verdicts_size() > 0)
    EXPECT_NE(verifier_metrics.find("# TYPE ratchet_verifier_verdicts_total"), std::string::npos)
        << verifier_metrics;

  // The same result must be in the store once the coordinator has stopped.
  cluster_->StopAll();
  auto store = store::OpenSqliteStore(cluster_->db());
  ASSERT_TRUE(store.ok()) << store.status();
  auto stored = (*store)->GetCampaign(id);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(stored->best_candidate_id(), campaign.best_candidate_id());
  auto evaluations = (*store)->ListEvaluations(id);
  ASSERT_TRUE(evaluations.ok());
  int research = 0;
  std::map<int64_t, int> per_job;
  for (const auto& e : *evaluations) {
    research += e.kind() == v1::JOB_EVALUATE;
    per_job[e.job_id()]++;
  }
  EXPECT_EQ(research, 7);
  for (const auto& [job, n] : per_job) EXPECT_EQ(n, 1) << "job " << job << " reported twice";
  auto unprocessed = (*store)->ListUnprocessedEvaluations();
  ASSERT_TRUE(unprocessed.ok());
  EXPECT_TRUE(unprocessed->empty());
  auto jobs = (*store)->ListJobs(id);
  ASSERT_TRUE(jobs.ok());
  for (const auto& j : *jobs)
    EXPECT_TRUE(j.state() == v1::JOB_DONE || j.state() == v1::JOB_FAILED) << j.id();
  // Every verdict is decided and, if accepted, backed by replays on fresh seeds.
  auto verifications = (*store)->ListVerifications(id);
  ASSERT_TRUE(verifications.ok());
  for (const auto& v : *verifications) {
    EXPECT_NE(v.outcome(), v1::VERDICT_PENDING);
    // Sequential replays: as many a side as the last look asked for.
    if (v.outcome() == v1::VERDICT_ACCEPTED)
      EXPECT_EQ(v.candidate_scores_size(), v.evidence().replays_requested());
  }
  // The best is the baseline, or a candidate whose replays beat its
  // incumbent's, interleaved on the same machines; its score is the median of
  // its replays. (Not "at least the baseline's score": that is one run of
  // the baseline, at another moment; on a busy host the replays of both can
  // come out lower than it.)
  if (stored->best_verified()) {
    auto best = (*store)->GetCandidate(stored->best_candidate_id());
    ASSERT_TRUE(best.ok());
    EXPECT_EQ(best->status(), v1::CANDIDATE_ACCEPTED);
    auto median = [](auto scores) {
      std::vector<double> v(scores.begin(), scores.end());
      std::sort(v.begin(), v.end());
      return v.empty() ? -1.0 : (v[(v.size() - 1) / 2] + v[v.size() / 2]) / 2;
    };
    int verdicts_on_best = 0;
    for (const auto& v : *verifications) {
      if (v.candidate_id() != stored->best_candidate_id()) continue;
      ++verdicts_on_best;
      ASSERT_EQ(v.outcome(), v1::VERDICT_ACCEPTED) << v.DebugString();
      EXPECT_DOUBLE_EQ(stored->best_score(), median(v.candidate_scores())) << v.DebugString();
      EXPECT_GE(median(v.candidate_scores()), median(v.incumbent_scores())) << v.DebugString();
      EXPECT_GE(v.evidence().relative_gain(), v.evidence().required_gain()) << v.DebugString();
    }
    EXPECT_EQ(verdicts_on_best, 1);
  } else {
    EXPECT_EQ(stored->best_candidate_id(), stored->baseline_candidate_id());
    EXPECT_EQ(stored->best_score(), stored->baseline_score());
  }
}

// Peaks that put T_sol at `sol_ns` for tests/data/vadd's large workload
// (n = 65536: 2 inputs read and 1 output written, 786432 bytes; 65536 flops),
// and at 1000/65536 of it for the small one (n = 1000).
std::vector<std::string> VaddRooflineFlags(double sol_ns) {
  return {absl::StrCat("--peak-gbps=", 3 * 4 * 65536 / sol_ns),
          absl::StrCat("--peak-gflops=", 65536 / sol_ns)};
}

TEST_F(EndToEnd, BadCandidatesEndAsTheirOwnOutcomesAndTheCampaignGoesOn) {
  // Nothing here rests on the host's speed or on timing luck:
  //  - the workers' roofline puts T_sol at 50 ms for n = 65536 (0.8 ms for
  //    n = 1000): above the hack, which times in microseconds (milliseconds
  //    at worst on a loaded host, its wake-up included), below the honest
  //    baseline, which waits 200 ms a call on any host. On that workload the
  //    hack scores 1 and the baseline 0 or close to it (0 while T_b is under
  //    T_sol), whatever each run measured T_b to be, so the hack looks best
  //    and is claimed. (With measured peaks a loaded host could put T_sol
  //    above the baseline's time: the baseline scored 1.0 and no claim could
  //    follow.)
  //  - the overrun lands in the canaries wherever the output is placed;
  //  - the timeout is many times what an honest job takes on a loaded 2-core
  //    machine (under 5 s; the incumbent's replay, with its outside timing,
  //    under 10 s), so it ends only the hang.
  ASSERT_NO_FATAL_FAILURE(StartCluster(VaddRooflineFlags(50e6)));
  const std::string spec = dir_ + "/mixed.yaml";
  WriteFile(spec, absl::StrCat(R"(name: misbehaving
task: kernel
problem: )", kSource, R"(/tests/data/vadd
baseline: )", kSource, R"(/tests/data/vadd/mixed
threads: 1
in_flight_per_thread: 2
proposer: evolve
seed: 1
budget: {max_evaluations: 20, max_wall_seconds: 400}
verification: {replays: 1, min_gain: 0.0}
harness: {warmups: 1, repetitions: 3, correctness_rounds: 1, timeout_seconds: 60}
)"));
  int64_t id = cluster_->Submit(spec);
  ASSERT_GT(id, 0);
  v1::Campaign campaign = cluster_->WaitUntilDone(id, 420);
  // Seven variants in all: the baseline, five misbehaviours and a reward
  // hack, each tried once.
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED) << campaign.message();
  EXPECT_NE(campaign.message().find("exhausted"), std::string::npos) << campaign.message();
  EXPECT_EQ(campaign.evaluations(), 7);
  std::map<std::string, int> outcomes(campaign.outcomes().begin(), campaign.outcomes().end());
  EXPECT_EQ(outcomes["ok"], 2);  // the baseline and the hack, which looks best
  EXPECT_EQ(outcomes["compile_error"], 1);
  EXPECT_EQ(outcomes["crash"], 1);
  EXPECT_EQ(outcomes["timeout"], 1);
  EXPECT_EQ(outcomes["out_of_bounds"], 1);
  EXPECT_EQ(outcomes["wrong_answer"], 1);
  EXPECT_TRUE(cluster_->AllRunning()) << "a bad candidate took a service down";

  // Each failure carries a specific message for its candidate.
  auto store_check = [&](const std::string& outcome, const std::string& needle) {
    auto s = store::OpenSqliteStore(cluster_->db());
    ASSERT_TRUE(s.ok());
    auto evaluations = (*s)->ListEvaluations(id);
    ASSERT_TRUE(evaluations.ok());
    bool found = false;
    for (const auto& e : *evaluations) {
      std::string name = v1::Outcome_Name(e.outcome());
      if (absl::AsciiStrToLower(name).find(outcome) == std::string::npos) continue;
      found = true;
      EXPECT_NE(absl::AsciiStrToLower(e.message()).find(needle), std::string::npos)
          << outcome << ": " << e.message();
    }
    EXPECT_TRUE(found) << outcome;
  };
  store_check("compile_error", "error");
  store_check("crash", "sigsegv");
  store_check("timeout", "");
  store_check("out_of_bounds", "");

  // The hack was claimed and rejected as one, with its check named: in the
  // campaign's tally, in both services' metrics, and in `ratchet show`.
  std::map<std::string, int> verdicts;
  for (const auto& v : campaign.verdicts()) verdicts[v.outcome() + "/" + v.reason()] += v.count();
  EXPECT_EQ(verdicts["rejected-hack/timing-disagreement"], 1) << campaign.DebugString();
  EXPECT_EQ(verdicts["accepted/"], 0) << campaign.DebugString();
  const std::string hack_counter =
      "ratchet_verdicts_total{outcome=\"rejected-hack\",reason=\"timing-disagreement\"} 1";
  const std::string coordinator_metrics = cluster_->Metrics("coordinator");
  EXPECT_NE(coordinator_metrics.find(hack_counter), std::string::npos) << coordinator_metrics;
  const std::string verifier_metrics = cluster_->Metrics("verifier");
  EXPECT_NE(verifier_metrics.find("ratchet_verifier_" + hack_counter.substr(8)),
            std::string::npos)
      << verifier_metrics;
  EXPECT_EQ(coordinator_metrics.find("ratchet_verdicts_total{outcome=\"accepted\""),
            std::string::npos)
      << coordinator_metrics;
  {
    auto s = store::OpenSqliteStore(cluster_->db());
    ASSERT_TRUE(s.ok());
    auto verifications = (*s)->ListVerifications(id);
    ASSERT_TRUE(verifications.ok());
    ASSERT_EQ(verifications->size(), 1u);
    const v1::Verification& v = verifications->front();
    // Claimed because it scored above the baseline, as the roofline makes
    // certain.
    EXPECT_GT(v.claimed_score(), v.incumbent_score()) << v.DebugString();
    EXPECT_EQ(v.evidence().failed_check(), "timing-disagreement");
    CommandResult show = RunCommand({kRatchet, "show", absl::StrCat(v.candidate_id()),
                                     "--coordinator=" + cluster_->address()});
    EXPECT_EQ(show.exit_code, 0) << show.err;
    // The back-to-back calls repeat the inputs: the hack does no work there,
    // and the outside clock reads it far faster than the harness did.
    for (const char* want : {"rejected-hack (timing-disagreement)",
                             "failed   timing-disagreement",
                             "tiers    guards, replay, adversarial, independent-timing"})
      EXPECT_NE(show.out.find(want), std::string::npos) << want << " not in:\n" << show.out;
  }

  // The services still serve a new campaign after all that.
  EXPECT_EQ(cluster_->ConnectedWorkers(), 2);
}

// `ratchet local` killed mid-campaign (its services follow it down), then
// `--resume` in the same folder: the same campaign goes on from its store
// to the end, and no second campaign is submitted.
TEST_F(EndToEnd, LocalResumesTheCampaignAKilledRunLeft) {
  const std::string spec = dir_ + "/resume.yaml";
  WriteFile(spec, LocalRmsnormSpec("local-resume", 5));
  const std::string data = dir_ + "/local";
  auto evaluations = [&] { return StoredCampaign(data).evaluations(); };
  {
    testing::Process first({kRatchet, "local", spec, "--workers=1", "--data-dir=" + data},
                           dir_ + "/first.log");
    ASSERT_TRUE(testing::PollUntil([&] { return evaluations() >= 2; }, 300'000))
        << testing::ReadFile(dir_ + "/first.log");
    first.Stop(SIGKILL);
  }
  // Its coordinator, verifier and worker end with it (SIGTERM on its death).
  auto services_left = [&] {
    const std::string needle = data + "/";
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      const std::string cmdline = testing::ReadFile(e.path().string() + "/cmdline");
      if (cmdline.find(needle) != std::string::npos) return true;
    }
    return false;
  };
  ASSERT_TRUE(testing::PollUntil([&] { return !services_left(); }, 60'000));
  const int64_t before = evaluations();
  ASSERT_GE(before, 2);
  ASSERT_LT(before, 5) << "the campaign ended before the kill; nothing to resume";
  const CommandResult r = RunCommand(
      {kRatchet, "local", spec, "--workers=1", "--data-dir=" + data, "--resume", "--json"},
      400'000);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("resuming campaign 1 (local-resume"), std::string::npos) << r.err;
  auto store = store::OpenSqliteStore(data + "/ratchet.db");
  ASSERT_TRUE(store.ok());
  auto all = (*store)->ListCampaigns();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].state(), v1::CAMPAIGN_FINISHED) << (*all)[0].message();
  EXPECT_EQ((*all)[0].evaluations(), 5);
  // --resume without a folder to resume is a usage error.
  const CommandResult bad = RunCommand({kRatchet, "local", spec, "--resume"});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
  EXPECT_NE(bad.err.find("--resume needs --data-dir"), std::string::npos) << bad.err;
}

// `ratchet local` interrupted by SIGTERM (Ctrl-C, a timeout) pauses its
// campaign before its services stop, so the time until `--resume` is not
// research time; `--resume` takes the paused campaign up again.
TEST_F(EndToEnd, LocalInterruptedPausesAndResumeGoesOn) {
  const std::string spec = dir_ + "/pause.yaml";
  WriteFile(spec, LocalRmsnormSpec("local-pause", 4));
  const std::string data = dir_ + "/local-pause";
  auto campaign = [&] { return StoredCampaign(data); };
  {
    testing::Process first({kRatchet, "local", spec, "--workers=1", "--data-dir=" + data},
                           dir_ + "/pause-first.log");
    ASSERT_TRUE(testing::PollUntil([&] { return campaign().evaluations() >= 1; }, 300'000))
        << testing::ReadFile(dir_ + "/pause-first.log");
    const int status = first.Stop(SIGTERM, 60'000);
    EXPECT_TRUE(WIFEXITED(status)) << status;
  }
  const v1::Campaign paused = campaign();
  ASSERT_LT(paused.evaluations(), 4) << "the campaign ended before the signal; nothing to pause";
  EXPECT_EQ(paused.state(), v1::CAMPAIGN_PAUSED) << testing::ReadFile(dir_ + "/pause-first.log");
  EXPECT_NE(testing::ReadFile(dir_ + "/pause-first.log").find("paused campaign 1 (local-pause)"),
            std::string::npos);
  const CommandResult r = RunCommand(
      {kRatchet, "local", spec, "--workers=1", "--data-dir=" + data, "--resume", "--json"},
      400'000);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const v1::Campaign done = campaign();
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED) << done.message();
  EXPECT_EQ(done.evaluations(), 4);
  EXPECT_GT(done.paused_seconds(), 0);
}

// `ratchet local --drain-after` (a campaign run in time slices, as on a
// machine lent for minutes at a time): after that long the campaign is
// paused, the jobs already running finish and the run stops. Nothing is left
// leased to a worker that is gone, so `--resume` finishes the campaign
// without waiting out a lease and without running any job twice.
TEST_F(EndToEnd, LocalDrainsItsRunningJobsAndResumeLosesNone) {
  const std::string spec = dir_ + "/drain.yaml";
  WriteFile(spec, LocalRmsnormSpec("local-drain", 4));
  const std::string data = dir_ + "/local-drain";
  const CommandResult first = RunCommand({kRatchet, "local", spec, "--workers=1",
                                          "--data-dir=" + data, "--drain-after=2", "--json"},
                                         400'000);
  EXPECT_EQ(first.exit_code, 1) << first.err;  // paused, not finished
  EXPECT_NE(first.err.find("draining after 2 s"), std::string::npos) << first.err;
  EXPECT_NE(first.err.find("drained: no job running"), std::string::npos) << first.err;
  const v1::Campaign paused = StoredCampaign(data);
  EXPECT_EQ(paused.state(), v1::CAMPAIGN_PAUSED);
  ASSERT_LT(paused.evaluations(), 4) << "the campaign ended before the drain; nothing to resume";
  auto jobs_now = [&] {
    auto store = store::OpenSqliteStore(data + "/ratchet.db");
    EXPECT_TRUE(store.ok()) << store.status();
    auto jobs = store.ok() ? (*store)->ListJobs(1) : absl::StatusOr<std::vector<v1::Job>>();
    return jobs.ok() ? *jobs : std::vector<v1::Job>();
  };
  for (const v1::Job& job : jobs_now())
    EXPECT_NE(job.state(), v1::JOB_LEASED) << "left leased: " << job.DebugString();

  const CommandResult r = RunCommand(
      {kRatchet, "local", spec, "--workers=1", "--data-dir=" + data, "--resume", "--json"},
      400'000);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_EQ(r.err.find("lease lapsed"), std::string::npos) << r.err;
  const v1::Campaign done = StoredCampaign(data);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED) << done.message();
  EXPECT_EQ(done.evaluations(), 4);
  for (const v1::Job& job : jobs_now())
    EXPECT_EQ(job.attempts(), 1) << "leased twice: " << job.DebugString();

  // Bad values are usage errors that name the flag.
  for (const char* bad : {"--drain-after=0", "--drain-after=soon"}) {
    const CommandResult u =
        RunCommand({kRatchet, "local", spec, "--data-dir=" + data, bad});
    EXPECT_EQ(u.exit_code, 2) << bad << ": " << u.err;
    EXPECT_NE(u.err.find("--drain-after"), std::string::npos) << u.err;
  }
  const CommandResult no_dir = RunCommand({kRatchet, "local", spec, "--drain-after=5"});
  EXPECT_EQ(no_dir.exit_code, 2) << no_dir.err;
  EXPECT_NE(no_dir.err.find("--drain-after needs --data-dir"), std::string::npos) << no_dir.err;
}

// `ratchet local` on a spec whose problem is a folder of problems: one
// campaign per problem, side by side on the same services, the suite's table
// at the end; `--resume` afterwards leaves finished campaigns as they are.
TEST_F(EndToEnd, LocalRunsASuiteSideBySide) {
  const std::string spec = dir_ + "/suite.yaml";
  WriteFile(spec, absl::StrCat(R"(name: local-suite
task: kernel
problem: )", kSource, R"(/tasks/cpu
threads: 1
proposer: evolve
seed: 4
budget: {max_evaluations: 3}
verification: {replays: 2, min_gain: 0.5, max_replays: 2}
harness: {warmups: 1, repetitions: 3, correctness_rounds: 1, timeout_seconds: 60}
)"));
  const std::string data = dir_ + "/local-suite";
  const CommandResult r = RunCommand(
      {kRatchet, "local", spec, "--workers=2", "--data-dir=" + data, "--json"}, 600'000);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["problems"].size(), 2u) << r.out;
  ASSERT_EQ(j["campaigns"].size(), 2u) << r.out;
  std::vector<std::string> names;
  for (const auto& c : j["campaigns"]) {
    EXPECT_EQ(c["state"], "finished") << c.dump();
    EXPECT_EQ(c["evaluations"], 3) << c.dump();
    names.push_back(c["name"]);
  }
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("local-suite/matmul", "local-suite/rmsnorm"));
  for (const auto& row : j["problems"]) EXPECT_TRUE(row["baseline_score"].is_number()) << row.dump();
  EXPECT_NE(r.err.find("[local-suite/matmul] "), std::string::npos) << r.err;
  // Resumed: nothing left to run, nothing submitted again.
  const CommandResult again = RunCommand(
      {kRatchet, "local", spec, "--workers=1", "--data-dir=" + data, "--resume"}, 120'000);
  EXPECT_EQ(again.exit_code, 0) << again.out << again.err;
  // Without --json the progress lines go to stdout, before the summaries.
  EXPECT_NE(again.out.find("(local-suite/rmsnorm) already finished, with 3 evaluations"),
            std::string::npos) << again.out;
  EXPECT_NE(again.out.find("mean"), std::string::npos) << again.out;
  auto store = store::OpenSqliteStore(data + "/ratchet.db");
  ASSERT_TRUE(store.ok());
  auto all = (*store)->ListCampaigns();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

TEST_F(EndToEnd, SpecNamingAMissingProblemIsRefusedClearly) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(testing::UnreachablePeakFlags()));
  const std::string spec = dir_ + "/missing.yaml";
  WriteFile(spec, R"(name: nothing-here
task: kernel
problem: no/such/problem
baseline: no/such/problem/baseline
)");
  CommandResult r =
      RunCommand({kRatchet, "submit", spec, "--coordinator=" + cluster_->address()});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no/such/problem"), std::string::npos) << r.err;
  EXPECT_TRUE(cluster_->AllRunning());
  EXPECT_EQ(cluster_->ConnectedWorkers(), 2);
}

TEST(Verifier, RefusesABadConcurrencyClearly) {
  for (const char* bad : {"--concurrency=0", "--concurrency=65", "--concurrency=many"}) {
    CommandResult r = RunCommand({kRatchet, "verifier", "--coordinator=127.0.0.1:1", bad}, 10'000);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--concurrency must be 1..64"), std::string::npos) << bad << ": " << r.err;
  }
}

TEST(Worker, RefusesABadGpuJobsClearly) {
  for (const char* bad : {"--gpu-jobs=0", "--gpu-jobs=9", "--gpu-jobs=two"}) {
    CommandResult r = RunCommand({kRatchet, "worker", "--coordinator=127.0.0.1:1", bad}, 10'000);
    EXPECT_EQ(r.exit_code, 2) << bad;
    EXPECT_NE(r.err.find("--gpu-jobs"), std::string::npos) << bad << ": " << r.err;
  }
  CommandResult r = RunCommand(
      {"/usr/bin/env", "RATCHET_GPU_JOBS=two", kRatchet, "worker", "--coordinator=127.0.0.1:1"},
      10'000);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("$RATCHET_GPU_JOBS must be a number"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ratchet
