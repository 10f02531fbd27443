// Failure tests of a whole cluster (issue 6): the real `ratchet` coordinator,
// verifier and workers as separate processes over real gRPC, on an SQLite file
// and on a real PostgreSQL server, while the test kills workers and the
// coordinator with SIGKILL, restarts PostgreSQL, and cuts a worker's network
// link between network namespaces. After each campaign the store itself is
// read back (after the coordinator has stopped) to show that nothing was lost
// or applied twice.
//
// Jobs are made slow on purpose (the candidate sleeps once per harness
// process), so that "mid-job" is a state the test can wait for by polling the
// store instead of guessing with sleeps.
#include <signal.h>
#include <sys/stat.h>

#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coordinator/store/store.h"
#include "gtest/gtest.h"
#include "tests/support/cluster.h"
#include "tests/support/netns.h"
#include "tests/support/postgres_server.h"
#include "tests/support/process.h"

namespace ratchet {
namespace {

namespace v1 = ::ratchet::v1;
using testing::NowMs;
using testing::PollUntil;

const std::string kRatchet = RATCHET_BIN;
const std::string kSource = RATCHET_SOURCE_DIR;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
}

// A vadd solution with knobs enough for the evolve proposer to make a few
// dozen candidates. The baseline (both knobs at their defaults; no candidate
// can be that again) sleeps `sleep_ms` on the first call of each harness
// process, so that its job is long enough to interrupt while the rest of the
// campaign stays quick.
void WriteSlowSolution(const std::string& dir, int sleep_ms) {
  mkdir(dir.c_str(), 0755);
  WriteFile(dir + "/solution.json", R"({
  "name": "vadd-slow",
  "definition": "vadd_f32",
  "description": "vadd that sleeps once per process, so that a job is long enough to be interrupted",
  "language": "cpp",
  "sources": ["kernel.cc"],
  "knobs": {
    "UNROLL": {"choices": [1, 2, 3, 4, 5, 6, 7, 8], "default": 1},
    "STRIDE_HINT": {"choices": [1, 2, 3, 4, 5, 6, 7, 8], "default": 1}
  }
}
)");
  WriteFile(dir + "/kernel.cc", absl::StrCat(R"(#include <ratchet/kernel_abi.h>
#include <stdint.h>
#include <time.h>
#ifndef UNROLL
#define UNROLL 1
#endif
#ifndef STRIDE_HINT
#define STRIDE_HINT 1
#endif
extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in, ratchet_tensor* out,
                           int32_t n_out) {
  static bool slept = UNROLL != 1 || STRIDE_HINT != 1;
  if (!slept) {
    slept = true;
    struct timespec ts = {)", sleep_ms / 1000, ", ", (sleep_ms % 1000) * 1000000L,
                                             R"(};
    nanosleep(&ts, nullptr);
  }
  if (n_in != 2 || n_out != 1) return 1;
  const int64_t n = in[0].shape[0];
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  float* c = static_cast<float*>(out[0].data);
  int64_t i = 0;
  for (; i + UNROLL <= n; i += UNROLL)
    for (int k = 0; k < UNROLL; ++k) c[i + k] = a[i + k] + b[i + k] + 0.0f * STRIDE_HINT;
  for (; i < n; ++i) c[i] = a[i] + b[i];
  return 0;
}
)"));
}

struct SpecOptions {
  std::string name = "cluster";
  int threads = 2;
  int budget = 5;
  double min_gain = 10.0;  // no claims unless a test wants them
  int seed = 7;
};

std::string Spec(const std::string& baseline_dir, const SpecOptions& o) {
  return absl::StrCat("name: ", o.name, "\ntask: kernel\nproblem: ", kSource,
                      "/tests/data/vadd\nbaseline: ", baseline_dir, "\nthreads: ", o.threads,
                      "\nproposer: evolve\nseed: ", o.seed,
                      "\nbudget: {max_evaluations: ", o.budget,
                      ", max_wall_seconds: 300}\nverification: {replays: 1, min_gain: ", o.min_gain,
                      "}\nharness: {warmups: 1, repetitions: 3, correctness_rounds: 1, "
                      "timeout_seconds: 60}\n");
}

// ---------------------------------------------------------------------------
// Store checks shared by every test.

// What the store must show after a campaign, however it was interrupted:
//  - every job is closed; a DONE job has exactly one evaluation and a job
//    that is not DONE has none (no report applied twice, none lost);
//  - every evaluation was processed into the research state;
//  - the campaign's evaluation count and outcome tally equal the research
//    evaluations recorded (plus jobs failed for lapsed leases), and the
//    threads' counts add up to the same;
//  - no candidate was evaluated twice (content hashes unique, at most one
//    research evaluation each);
//  - every claim is decided, and an accepted one is backed by its replays:
//    each replay score in the verdict is a recorded replay evaluation of the
//    candidate under that verification; accepted candidates are exactly the
//    accepted claims, and a verified best is the best accepted one.
// (Where the replays ran is not checked: just after a coordinator restart it
// has not yet heard from the other workers, and a claim may then be replayed
// on the worker that made it rather than wait.)
void ExpectConsistent(store::Store* s, int64_t campaign_id, int budget) {
  auto campaign = s->GetCampaign(campaign_id);
  ASSERT_TRUE(campaign.ok()) << campaign.status();
  EXPECT_EQ(campaign->state(), v1::CAMPAIGN_FINISHED) << campaign->message();
  EXPECT_EQ(campaign->evaluations(), budget) << campaign->DebugString();

  auto jobs = s->ListJobs(campaign_id);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  auto evaluations = s->ListEvaluations(campaign_id);
  ASSERT_TRUE(evaluations.ok()) << evaluations.status();
  std::map<int64_t, std::vector<const v1::Evaluation*>> by_job;
  for (const auto& e : *evaluations) by_job[e.job_id()].push_back(&e);
  std::map<int64_t, const v1::Job*> job_by_id;
  for (const auto& j : *jobs) {
    job_by_id[j.id()] = &j;
    EXPECT_TRUE(j.state() == v1::JOB_DONE || j.state() == v1::JOB_FAILED)
        << "job " << j.id() << " left " << v1::JobState_Name(j.state());
    const size_t n = by_job.count(j.id()) ? by_job[j.id()].size() : 0;
    EXPECT_EQ(n, j.state() == v1::JOB_DONE ? 1u : 0u)
        << "job " << j.id() << " (" << v1::JobState_Name(j.state()) << ") has " << n
        << " evaluations";
  }
  for (const auto& e : *evaluations)
    EXPECT_TRUE(job_by_id.count(e.job_id())) << "evaluation " << e.id() << " of no job";

  auto unprocessed = s->ListUnprocessedEvaluations();
  ASSERT_TRUE(unprocessed.ok());
  EXPECT_TRUE(unprocessed->empty()) << unprocessed->size() << " evaluations never processed";

  // Research evaluations, once per candidate.
  std::map<int64_t, int> research_by_candidate;
  int research = 0;
  for (const auto& e : *evaluations)
    if (e.kind() == v1::JOB_EVALUATE) {
      ++research;
      ++research_by_candidate[e.candidate_id()];
    }
  for (const auto& [candidate, n] : research_by_candidate)
    EXPECT_EQ(n, 1) << "candidate " << candidate << " evaluated " << n << " times";
  int tallied = 0;
  for (const auto& [outcome, n] : campaign->outcomes()) tallied += n;
  EXPECT_EQ(tallied, campaign->evaluations());
  const int lapsed = campaign->outcomes().count("lease_lapsed")
                         ? campaign->outcomes().at("lease_lapsed")
                         : 0;
  EXPECT_EQ(research + lapsed, campaign->evaluations());

  auto threads = s->ListThreads(campaign_id);
  ASSERT_TRUE(threads.ok());
  int thread_evaluations = 0;
  for (const auto& t : *threads) thread_evaluations += t.evaluations();
  EXPECT_EQ(thread_evaluations, research - 1) << "the baseline is nobody's";

  auto candidates = s->ListCandidates(campaign_id);
  ASSERT_TRUE(candidates.ok());
  std::set<std::string> hashes;
  std::set<int64_t> accepted_candidates;
  for (const auto& c : *candidates) {
    EXPECT_TRUE(hashes.insert(c.content_hash()).second) << "candidate " << c.id() << " twice";
    EXPECT_NE(c.status(), v1::CANDIDATE_VERIFYING)
        << "candidate " << c.id() << " left verifying";
    if (c.status() == v1::CANDIDATE_ACCEPTED) accepted_candidates.insert(c.id());
  }

  auto verifications = s->ListVerifications(campaign_id);
  ASSERT_TRUE(verifications.ok());
  std::set<int64_t> accepted_claims;
  double best_accepted = -1;
  for (const auto& v : *verifications) {
    EXPECT_NE(v.outcome(), v1::VERDICT_PENDING) << "claim " << v.id() << " undecided";
    if (v.outcome() != v1::VERDICT_ACCEPTED) continue;
    accepted_claims.insert(v.candidate_id());
    auto replay_jobs = s->ListJobsForVerification(v.id());
    ASSERT_TRUE(replay_jobs.ok());
    std::multiset<double> replayed;
    for (const auto& j : *replay_jobs) {
      if (j.candidate_id() != v.candidate_id() || j.state() != v1::JOB_DONE) continue;
      auto e = s->GetEvaluationForJob(j.id());
      ASSERT_TRUE(e.ok() && e->has_value()) << "replay job " << j.id();
      if ((*e)->outcome() == v1::OUTCOME_OK) replayed.insert((*e)->score());
    }
    EXPECT_GE(v.candidate_scores_size(), 1) << "claim " << v.id();
    for (double score : v.candidate_scores()) {
      auto it = replayed.find(score);
      EXPECT_NE(it, replayed.end())
          << "claim " << v.id() << ": replay score " << score << " has no replay behind it";
      if (it != replayed.end()) replayed.erase(it);
    }
    auto candidate = s->GetCandidate(v.candidate_id());
    ASSERT_TRUE(candidate.ok());
    best_accepted = std::max(best_accepted, candidate->score());
  }
  EXPECT_EQ(accepted_candidates, accepted_claims);
  if (campaign->best_verified()) {
    EXPECT_TRUE(accepted_candidates.count(campaign->best_candidate_id()));
    EXPECT_DOUBLE_EQ(campaign->best_score(), best_accepted);
  } else {
    EXPECT_TRUE(accepted_claims.empty());
    EXPECT_EQ(campaign->best_candidate_id(), campaign->baseline_candidate_id());
  }
}

// ---------------------------------------------------------------------------
// The fixture: one store per test, SQLite or a fresh PostgreSQL.

class ClusterFailure : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!testing::PythonWithTorch()) GTEST_SKIP() << "no /usr/bin/python3 with torch for the oracle";
    dir_ = testing::MakeTempDir("ratchet-cluster");
    ASSERT_FALSE(dir_.empty());
    chmod(dir_.c_str(), 0755);
    if (GetParam() == "postgres") {
      std::string why;
      if (!testing::PostgresServer::Available(&why)) GTEST_SKIP() << why;
      auto server = testing::PostgresServer::Start();
      ASSERT_TRUE(server.ok()) << server.status();
      postgres_ = *std::move(server);
      ASSERT_TRUE(postgres_->CreateDatabase("ratchet").ok());
      db_ = postgres_->Url("ratchet");
    } else {
      db_ = dir_ + "/ratchet.db";
    }
  }

  void TearDown() override {
    if (cluster_) cluster_->StopAll();
    if (HasFailure() && cluster_) std::cerr << cluster_->Logs();
    cluster_.reset();  // processes first, then the network they ran in
    topology_.reset();
    observer_.reset();
    // Logs stay behind for a failed test (printed above, and in dir_).
    if (!HasFailure() && !dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  // Coordinator, verifier and workers w1..wN on this test's store, each
  // service on a host of its own when the test made topology_. Workers are
  // given their peaks, so that they register at once instead of calibrating.
  void StartCluster(int lease_seconds, int workers) {
    testing::Cluster::Options options;
    options.db = db_;
    options.lease_seconds = lease_seconds;
    options.heartbeat_seconds = 1;
    options.verifier_flags = {"--concurrency=2"};
    options.worker_flags = {"--no-gpu", "--peak-gbps=10", "--peak-gflops=50", "--wait-ms=1000"};
    // $RATCHET_TEST_COORDINATOR_FLAGS reruns a test with, say, --group-commit=0.
    if (const char* extra = std::getenv("RATCHET_TEST_COORDINATOR_FLAGS"))
      for (absl::string_view flag : absl::StrSplit(extra, ' ', absl::SkipEmpty()))
        options.coordinator_flags.emplace_back(flag);
    if (topology_) {
      options.ns = [this](const std::string& host) { return topology_->Namespace(host); };
      options.coordinator_host = topology_->Address("coordinator");
    }
    cluster_ = std::make_unique<testing::Cluster>(kRatchet, dir_, options);
    ASSERT_NO_FATAL_FAILURE(cluster_->Start(workers));
  }

  // A second view of the store, for the test to watch jobs while the
  // coordinator runs and to check the records after it stops.
  store::Store* Observer() {
    if (!observer_) {
      auto s = store::OpenStore(db_);
      EXPECT_TRUE(s.ok()) << s.status();
      if (s.ok()) observer_ = *std::move(s);
    }
    return observer_.get();
  }

  // The first job of the campaign (of `kind`, if not unspecified) that is
  // LEASED; nullopt after timeout_ms.
  std::optional<v1::Job> WaitForLeasedJob(int64_t campaign_id, int timeout_ms,
                                          v1::JobKind kind = v1::JOB_KIND_UNSPECIFIED) {
    std::optional<v1::Job> found;
    PollUntil(
        [&] {
          auto jobs = Observer()->ListJobs(campaign_id);
          if (!jobs.ok()) return false;
          for (const auto& j : *jobs)
            if (j.state() == v1::JOB_LEASED &&
                (kind == v1::JOB_KIND_UNSPECIFIED || j.kind() == kind)) {
              found = j;
              return true;
            }
          return false;
        },
        timeout_ms);
    return found;
  }

  v1::Campaign WaitForCampaign(int64_t campaign_id, int timeout_ms) {
    v1::Campaign campaign;
    bool done = PollUntil(
        [&] {
          auto c = Observer()->GetCampaign(campaign_id);
          if (!c.ok()) return false;
          campaign = *c;
          return campaign.state() != v1::CAMPAIGN_RUNNING;
        },
        timeout_ms);
    EXPECT_TRUE(done) << "campaign " << campaign_id << " did not finish in " << timeout_ms
                      << " ms: " << campaign.DebugString();
    return campaign;
  }

  int64_t SubmitSpec(const SpecOptions& o, int sleep_ms) {
    const std::string solution = dir_ + "/slow";
    WriteSlowSolution(solution, sleep_ms);
    const std::string spec = dir_ + "/" + o.name + ".yaml";
    WriteFile(spec, Spec(solution, o));
    return cluster_->Submit(spec);
  }

  // The worker (by --name) that holds `job`.
  static std::string Holder(const v1::Job& job) {
    return job.worker_id().substr(0, job.worker_id().rfind('-'));
  }

  std::string dir_;
  std::string db_;
  std::unique_ptr<testing::PostgresServer> postgres_;
  std::unique_ptr<testing::Cluster> cluster_;
  std::unique_ptr<store::Store> observer_;
  std::unique_ptr<testing::NetnsTopology> topology_;
};

// kill -9 of a worker in the middle of a job: the lease lapses, the job is
// requeued and done by the other worker, and the campaign ends with every
// evaluation of its budget recorded once.
TEST_P(ClusterFailure, WorkerKilledMidJobIsReplacedAndNothingIsLost) {
  const int kLeaseSeconds = 4;
  ASSERT_NO_FATAL_FAILURE(StartCluster(kLeaseSeconds, /*workers=*/2));

  SpecOptions o;
  o.name = "worker-killed";
  o.budget = 4;
  const int64_t id = SubmitSpec(o, 2000);
  ASSERT_GT(id, 0);
  // The baseline job runs first, alone: kill whoever leased it.
  std::optional<v1::Job> victim = WaitForLeasedJob(id, 60'000);
  ASSERT_TRUE(victim.has_value()) << cluster_->Logs();
  const std::string killed = Holder(*victim);
  const std::string survivor = killed == "w1" ? "w2" : "w1";
  // Mid-job: the worker has started running it.
  ASSERT_TRUE(PollUntil(
      [&] {
        return absl::StrContains(testing::ReadFile(cluster_->LogPath(killed)),
                                 absl::StrCat("job ", victim->id(), " start"));
      },
      30'000));
  cluster_->worker(killed)->Stop(SIGKILL);
  const int64_t killed_at = NowMs();
  ASSERT_TRUE(PollUntil(
      [&] {
        auto j = Observer()->GetJob(victim->id());
        return j.ok() && j->state() == v1::JOB_LEASED && Holder(*j) == survivor;
      },
      60'000))
      << cluster_->Logs();
  std::cout << "job " << victim->id() << " leased again to " << survivor << " "
            << NowMs() - killed_at << " ms after kill -9 of " << killed << " (lease "
            << kLeaseSeconds << " s)\n";

  v1::Campaign campaign = WaitForCampaign(id, 150'000);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED) << campaign.message();
  EXPECT_TRUE(cluster_->ServicesRunning());
  cluster_->StopAll();

  store::Store* s = Observer();
  ASSERT_NE(s, nullptr);
  auto job = s->GetJob(victim->id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_DONE);
  EXPECT_EQ(job->attempts(), 2) << "leased to the killed worker, then to the survivor";
  auto e = s->GetEvaluationForJob(victim->id());
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ(Holder(*job), survivor);
  EXPECT_TRUE(absl::StartsWith((*e)->worker_id(), survivor + "-")) << (*e)->worker_id();
  // Nothing else was leased twice: only the victim's lease lapsed.
  auto jobs = s->ListJobs(id);
  ASSERT_TRUE(jobs.ok());
  for (const auto& j : *jobs)
    if (j.id() != victim->id()) EXPECT_LE(j.attempts(), 1) << "job " << j.id();
  ExpectConsistent(s, id, o.budget);
}

// kill -9 of the coordinator mid-campaign, restarted on the same store and
// port: workers and the verifier reconnect by themselves and the campaign
// completes.
//
// Which claims are accepted depends on timing noise (a claim is a candidate
// that timed faster than its incumbent), and through the incumbents so does
// every later proposal, so two runs with the same seed need not accept the
// same candidates even without a crash. What the test checks instead are the
// invariants that make a lost or duplicated record visible (ExpectConsistent):
// every job done at most once, every evaluation processed and counted once,
// every accepted verdict backed by recorded replays, and the campaign's
// counters equal to the records.
TEST_P(ClusterFailure, CoordinatorKilledAndRestartedResumesTheCampaign) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*lease_seconds=*/4, /*workers=*/2));

  SpecOptions o;
  o.name = "coordinator-killed";
  o.budget = 5;
  o.min_gain = 0.0;  // claims, replays and verdicts too
  const int64_t id = SubmitSpec(o, 0);
  ASSERT_GT(id, 0);
  // Past the baseline, with research jobs in flight.
  ASSERT_TRUE(PollUntil(
      [&] {
        auto c = Observer()->GetCampaign(id);
        return c.ok() && c->evaluations() >= 2;
      },
      90'000))
      << cluster_->Logs();
  ASSERT_TRUE(WaitForLeasedJob(id, 30'000).has_value());
  cluster_->coordinator()->Stop(SIGKILL);
  const int64_t killed_at = NowMs();
  ASSERT_NO_FATAL_FAILURE(cluster_->StartCoordinator());
  std::cout << "coordinator serving again " << NowMs() - killed_at << " ms after kill -9\n";

  v1::Campaign campaign = WaitForCampaign(id, 150'000);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED) << campaign.message();
  // Both workers are back: each registered with (or heartbeated to) the new
  // coordinator and neither process died.
  EXPECT_TRUE(cluster_->worker("w1")->Running());
  EXPECT_TRUE(cluster_->worker("w2")->Running());
  EXPECT_TRUE(cluster_->ServicesRunning());
  cluster_->StopAll();
  ExpectConsistent(Observer(), id, o.budget);
}

// A worker's network link is cut mid-job, with coordinator, verifier and
// three workers each in its own network namespace (separate hosts joined by a
// bridge): the lapsed lease requeues the job, another worker completes it,
// and when the link returns the cut worker's late report is refused. The
// evaluation in the store is the other worker's.
TEST_P(ClusterFailure, WorkerCutOffMidJobHasItsLateReportRefused) {
  std::string why;
  if (!testing::NetnsTopology::Available(&why)) GTEST_SKIP() << why;
  auto topology =
      testing::NetnsTopology::Create({"coordinator", "verifier", "w1", "w2", "w3"});
  ASSERT_TRUE(topology.ok()) << topology.status();
  topology_ = *std::move(topology);
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*lease_seconds=*/3, /*workers=*/3));

  SpecOptions o;
  o.name = "link-cut";
  o.threads = 3;
  o.budget = 4;
  // The baseline's job runs long enough to outlast the lapse of its lease
  // and still be running when it is requeued.
  const int64_t id = SubmitSpec(o, 5000);
  ASSERT_GT(id, 0);
  std::optional<v1::Job> victim = WaitForLeasedJob(id, 60'000);
  ASSERT_TRUE(victim.has_value()) << cluster_->Logs();
  const std::string cut = Holder(*victim);
  const std::string job_line = absl::StrCat("job ", victim->id(), " ");
  ASSERT_TRUE(PollUntil(
      [&] { return absl::StrContains(testing::ReadFile(cluster_->LogPath(cut)), job_line); },
      30'000));
  ASSERT_TRUE(topology_->SetLink(cut, false).ok());
  const int64_t cut_at = NowMs();

  // Another worker completes the requeued job, and the cut worker finishes
  // its own run (its report now waits for the network).
  std::string other;
  ASSERT_TRUE(PollUntil(
      [&] {
        auto e = Observer()->GetEvaluationForJob(victim->id());
        if (!e.ok() || !e->has_value()) return false;
        other = (*e)->worker_id();
        return absl::StrContains(testing::ReadFile(cluster_->LogPath(cut)),
                                 job_line + "finish");
      },
      90'000))
      << cluster_->Logs();
  EXPECT_FALSE(absl::StartsWith(other, cut + "-")) << other;
  ASSERT_TRUE(topology_->SetLink(cut, true).ok());
  const int64_t restored_at = NowMs();
  std::cout << "link of " << cut << " down " << restored_at - cut_at << " ms; job "
            << victim->id() << " completed meanwhile by " << other << "\n";
  // Its report arrives late and is refused.
  EXPECT_TRUE(PollUntil(
      [&] {
        return absl::StrContains(testing::ReadFile(cluster_->LogPath(cut)),
                                 job_line + "report dropped: coordinator did not accept it");
      },
      90'000))
      << testing::ReadFile(cluster_->LogPath(cut));
  std::cout << "late report refused " << NowMs() - restored_at << " ms after the link returned\n";

  v1::Campaign campaign = WaitForCampaign(id, 150'000);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED) << campaign.message();
  EXPECT_TRUE(cluster_->ServicesRunning());
  cluster_->StopAll();
  store::Store* s = Observer();
  auto job = s->GetJob(victim->id());
  ASSERT_TRUE(job.ok());
  EXPECT_EQ(job->state(), v1::JOB_DONE);
  EXPECT_EQ(job->attempts(), 2);
  auto e = s->GetEvaluationForJob(victim->id());
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ((*e)->worker_id(), other) << "the late report replaced the evaluation";
  ExpectConsistent(s, id, o.budget);
}

INSTANTIATE_TEST_SUITE_P(Stores, ClusterFailure, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// PostgreSQL restarted twice under a running campaign, once with a fast
// shutdown and once killed with SIGKILL (recovering from its WAL): the
// coordinator neither crashes nor wedges, workers and the verifier carry on,
// and the campaign completes with nothing lost.
class PostgresRestart : public ClusterFailure {};

TEST_P(PostgresRestart, CampaignSurvivesDatabaseRestartsUnderLoad) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(/*lease_seconds=*/4, /*workers=*/2));

  SpecOptions o;
  o.name = "database-restarts";
  o.budget = 5;
  o.min_gain = 0.0;
  const int64_t id = SubmitSpec(o, 0);
  ASSERT_GT(id, 0);
  auto wait_for_evaluations = [&](int n) {
    return PollUntil(
        [&] {
          auto c = Observer()->GetCampaign(id);
          return c.ok() && c->evaluations() >= n;
        },
        90'000);
  };
  ASSERT_TRUE(wait_for_evaluations(1)) << cluster_->Logs();
  ASSERT_TRUE(WaitForLeasedJob(id, 30'000).has_value());
  int64_t down_at = NowMs();
  ASSERT_TRUE(postgres_->Stop().ok());
  ASSERT_TRUE(postgres_->Restart().ok()) << postgres_->Log();
  std::cout << "PostgreSQL stopped and back in " << NowMs() - down_at << " ms\n";
  ASSERT_TRUE(wait_for_evaluations(3)) << cluster_->Logs();
  ASSERT_TRUE(WaitForLeasedJob(id, 30'000).has_value());
  down_at = NowMs();
  ASSERT_TRUE(postgres_->Kill(SIGKILL).ok());
  ASSERT_TRUE(postgres_->Restart().ok()) << postgres_->Log();
  std::cout << "PostgreSQL killed (SIGKILL) and back in " << NowMs() - down_at << " ms\n";

  v1::Campaign campaign = WaitForCampaign(id, 150'000);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED) << campaign.message();
  EXPECT_TRUE(cluster_->ServicesRunning()) << "a service died with the database";
  EXPECT_TRUE(cluster_->worker("w1")->Running());
  EXPECT_TRUE(cluster_->worker("w2")->Running());
  cluster_->StopAll();
  ExpectConsistent(Observer(), id, o.budget);
}

INSTANTIATE_TEST_SUITE_P(Stores, PostgresRestart, ::testing::Values("postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace ratchet
