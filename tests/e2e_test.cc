// End to end: coordinator, verifier and two workers as separate processes of
// the real `ratchet` binary, over loopback gRPC, running real campaigns whose
// candidates are compiled, sandboxed and timed by the real harness.
#include <fstream>
#include <map>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "coordinator/store/store.h"
#include "gtest/gtest.h"
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

class EndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::PythonWithTorch())
      GTEST_SKIP() << "no /usr/bin/python3 with torch for the oracle";
    dir_ = testing::MakeTempDir("ratchet-e2e");
    ASSERT_FALSE(dir_.empty());
    // Workers calibrate and may use a GPU; every service serves /metrics.
    testing::Cluster::Options options;
    options.metrics = true;
    options.worker_flags = {};
    cluster_ = std::make_unique<testing::Cluster>(kRatchet, dir_, options);
    ASSERT_NO_FATAL_FAILURE(cluster_->Start(2));
  }
  void TearDown() override {
    if (cluster_) cluster_->StopAll();
    if (HasFailure() && cluster_) std::cerr << cluster_->Logs();
  }
  std::string dir_;
  std::unique_ptr<testing::Cluster> cluster_;
};

TEST_F(EndToEnd, TinyCampaignRunsToCompletionAndIsStored) {
  const std::string spec = dir_ + "/tiny.yaml";
  WriteFile(spec, absl::StrCat(R"(name: tiny-rmsnorm
task: kernel
problem: )", kSource, R"(/tasks/cpu/rmsnorm
baseline: )", kSource, R"(/tasks/cpu/rmsnorm/baseline
threads: 2
proposer: evolve
seed: 3
budget: {max_evaluations: 7, max_wall_seconds: 400}
verification: {replays: 2, min_gain: 0.0}
harness: {warmups: 1, repetitions: 5, correctness_rounds: 1, timeout_seconds: 60}
)"));
  int64_t id = cluster_->Submit(spec);
  ASSERT_GT(id, 0);
  v1::Campaign campaign = cluster_->WaitUntilDone(id, 420);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED) << campaign.message();
  EXPECT_EQ(campaign.evaluations(), 7);
  EXPECT_GT(campaign.baseline_score(), 0.0);
  EXPECT_GE(campaign.best_score(), campaign.baseline_score() * 0.999);
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
  EXPECT_NE(cluster_->Metrics("w1").find("ratchet_worker_jobs_total{outcome=\"ok\"}"),
            std::string::npos);
  EXPECT_NE(cluster_->Metrics("verifier").find("# TYPE ratchet_verifier_verdicts_total"),
            std::string::npos);

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
  if (stored->best_verified()) {
    auto best = (*store)->GetCandidate(stored->best_candidate_id());
    ASSERT_TRUE(best.ok());
    EXPECT_EQ(best->status(), "accepted");
  }
}

TEST_F(EndToEnd, BadCandidatesEndAsTheirOwnOutcomesAndTheCampaignGoesOn) {
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
harness: {warmups: 1, repetitions: 3, correctness_rounds: 1, timeout_seconds: 12}
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

TEST_F(EndToEnd, SpecNamingAMissingProblemIsRefusedClearly) {
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

}  // namespace
}  // namespace ratchet
