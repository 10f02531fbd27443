// The research loop's control and search, on a real cluster: coordinator,
// verifier and workers as processes of the `ratchet` binary over loopback
// gRPC, every candidate of the built-in CPU RMSNorm compiled and timed by the
// real harness.
//
//   pause/resume: a paused campaign leases nothing and proposes nothing, stays
//     paused across a coordinator restart, and resumes to its budget;
//   GPU-seconds: a campaign whose job time reaches the budget ends with that
//     reason and a report, at the first evaluation that reached it;
//   islands: evolve with migration, scheduled merges and parents from the
//     thread's archive; then diff and export of the best candidate, the
//     export reproduced by its run.sh;
//   cascade: a wrong candidate never reaches the timing stage;
//   experience: lessons of one campaign reach a later campaign of the same op
//     type (other shapes) and an llm campaign's prompt with `experience:
//     shared`, and no campaign with the default `experience: campaign`.
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "coordinator/store/store.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "tests/support/cluster.h"
#include "tests/support/process.h"
#include "tests/support/scripted_openai_server.h"

namespace ratchet {
namespace {

using testing::RunCommand;

const std::string kRatchet = RATCHET_BIN;
const std::string kSource = RATCHET_SOURCE_DIR;

// A campaign on `problem` (a folder) from the built-in RMSNorm baseline.
std::string SpecFor(const std::string& name, const std::string& problem,
                    const std::string& extra) {
  return absl::StrCat("name: ", name, "\nproblem: ", problem, "\nbaseline: ", kSource,
                      "/tasks/cpu/rmsnorm/baseline\n",
                      "harness: {warmups: 1, repetitions: 5, correctness_rounds: 1, "
                      "timeout_seconds: 60}\ndevice: cpu\n",
                      extra);
}

std::string Spec(const std::string& name, const std::string& extra) {
  return SpecFor(name, kSource + "/tasks/cpu/rmsnorm", extra);
}

class ResearchLoop : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::PythonWithTorch())
      GTEST_SKIP() << "no /usr/bin/python3 with torch for the oracle";
    dir_ = testing::MakeTempDir("ratchet-research");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (cluster_) cluster_->StopAll();
    if (HasFailure() && cluster_) std::cerr << cluster_->Logs();
  }

  void StartCluster(int workers, testing::Cluster::Options options = {}) {
    cluster_ = std::make_unique<testing::Cluster>(kRatchet, dir_, options);
    ASSERT_NO_FATAL_FAILURE(cluster_->Start(workers));
  }

  int64_t Submit(const std::string& name, const std::string& yaml) {
    const std::string path = absl::StrCat(dir_, "/", name, ".yaml");
    std::ofstream(path) << yaml;
    return cluster_->Submit(path);
  }

  // Submits and waits for the end; a test failure unless it finished.
  v1::Campaign RunCampaign(const std::string& name, const std::string& yaml) {
    v1::Campaign done = cluster_->WaitUntilDone(Submit(name, yaml), 240);
    EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED) << name << ": " << done.message();
    return done;
  }

  // The coordinator's events for campaign `id` that start with `prefix`.
  std::vector<std::string> Events(int64_t id, const std::string& prefix) {
    std::ifstream log(cluster_->LogPath("coordinator"));
    const std::string tag = absl::StrCat("[campaign ", id, "] ", prefix);
    std::vector<std::string> found;
    for (std::string line; std::getline(log, line);)
      if (absl::StartsWith(line, tag)) found.push_back(line.substr(tag.size() - prefix.size()));
    return found;
  }

  std::string dir_;
  std::unique_ptr<testing::Cluster> cluster_;
};

TEST_F(ResearchLoop, PauseStopsLeasingSurvivesRestartAndResumes) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  const int64_t id = Submit("pause", Spec("pause", R"(threads: 2
proposer: evolve
seed: 3
budget: {max_evaluations: 8, max_wall_seconds: 400}
verification: {replays: 1, min_gain: 10}
)"));
  cluster_->WaitFor(id, 120, [](const v1::Campaign& c) { return c.evaluations() >= 2; }, "evaluating");
  auto paused = cluster_->Cli({"pause", std::to_string(id)});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  EXPECT_EQ(paused.out, absl::StrCat("campaign ", id, ": paused\n"));
  // Running jobs finish and are applied; then nothing more is leased.
  v1::Campaign drained = cluster_->WaitFor(
      id, 120, [](const v1::Campaign& c) { return c.jobs_running() == 0; }, "drained");
  EXPECT_EQ(drained.state(), v1::CAMPAIGN_PAUSED);
  const int evaluations = drained.evaluations();
  EXPECT_LT(evaluations, 8);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  v1::Campaign still = cluster_->GetCampaign(id);
  EXPECT_EQ(still.evaluations(), evaluations);
  EXPECT_EQ(still.jobs_running(), 0);
  // A second pause is refused; so is resuming a running campaign later.
  EXPECT_NE(cluster_->Cli({"pause", std::to_string(id)}).exit_code, 0);

  // The pause is stored: a restarted coordinator keeps it.
  cluster_->coordinator()->Stop(SIGTERM);
  ASSERT_NO_FATAL_FAILURE(cluster_->StartCoordinator());  // on the same port
  std::this_thread::sleep_for(std::chrono::seconds(3));
  v1::Campaign after_restart = cluster_->GetCampaign(id);
  EXPECT_EQ(after_restart.state(), v1::CAMPAIGN_PAUSED);
  EXPECT_EQ(after_restart.evaluations(), evaluations);
  EXPECT_EQ(after_restart.jobs_running(), 0);

  auto resumed = cluster_->Cli({"resume", std::to_string(id)});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(resumed.out, absl::StrCat("campaign ", id, ": running\n"));
  EXPECT_NE(cluster_->Cli({"resume", std::to_string(id)}).exit_code, 0);
  v1::Campaign done = cluster_->WaitUntilDone(id, 300);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED) << done.message();
  EXPECT_EQ(done.evaluations(), 8);
  EXPECT_GT(done.paused_seconds(), 5.0);
  EXPECT_GT(done.gpu_seconds(), 0.0);

  auto report = cluster_->Cli({"report", std::to_string(id)});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find("evaluations  8 of 8"), std::string::npos) << report.out;
  EXPECT_NE(report.out.find("job time"), std::string::npos) << report.out;
  auto no_file = cluster_->Cli({"report", std::to_string(id), "--plot="});
  EXPECT_EQ(no_file.exit_code, 2);
  EXPECT_NE(no_file.err.find("--plot takes a file name"), std::string::npos) << no_file.err;
}

TEST_F(ResearchLoop, GpuSecondsBudgetEndsTheCampaignWithAReport) {
  ASSERT_NO_FATAL_FAILURE(StartCluster(1));
  constexpr double kBudget = 15;
  // One thread with one job in flight: each evaluation is proposed after the
  // last one's time was counted, so the rule (no proposal once the job time
  // reaches the budget) says exactly where the campaign stops.
  const int64_t id = Submit("gpus", Spec("gpus", R"(threads: 1
in_flight_per_thread: 1
proposer: random
seed: 4
budget: {max_evaluations: 200, max_wall_seconds: 400, max_gpu_seconds: 15}
verification: {replays: 2, min_gain: 10}
)"));
  v1::Campaign done = cluster_->WaitUntilDone(id, 300);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_NE(done.message().find("GPU-seconds budget reached"), std::string::npos)
      << done.message();
  EXPECT_GE(done.gpu_seconds(), kBudget);
  EXPECT_GE(done.evaluations(), 1);
  EXPECT_LT(done.evaluations(), 200);
  auto report = cluster_->Cli({"report", std::to_string(id), "--json"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  auto j = nlohmann::json::parse(report.out);
  EXPECT_EQ(j["state"], "finished");
  EXPECT_GE(j["job_seconds"].get<double>(), kBudget);
  EXPECT_NEAR(j["job_seconds"].get<double>(), done.gpu_seconds(), 1e-6);

  // What the rule guarantees, whatever the host's speed (a job takes ~3 s on
  // an idle 2-core machine and can take over 15 s on a loaded one, so how
  // many fit is not for the test to say): the job time is the sum of every
  // job's wall seconds (replays too), the campaign went on while the research
  // evaluations before the last one were under the budget, and it stopped
  // proposing once they reached it. Together: it stopped at the first
  // evaluation that reached the budget, and none earlier.
  cluster_->StopAll();
  auto store = store::OpenSqliteStore(cluster_->db());
  ASSERT_TRUE(store.ok()) << store.status();
  auto evaluations = (*store)->ListEvaluations(id);
  ASSERT_TRUE(evaluations.ok()) << evaluations.status();
  double all_jobs = 0, research_before_last = 0, last = 0;
  int research = 0;
  for (const auto& e : *evaluations) {  // in the order they were reported
    all_jobs += e.wall_seconds();
    if (e.kind() != v1::JOB_EVALUATE) continue;
    ++research;
    research_before_last += last;
    last = e.wall_seconds();
  }
  EXPECT_EQ(research, done.evaluations());
  EXPECT_NEAR(all_jobs, done.gpu_seconds(), 1e-6);
  EXPECT_LT(research_before_last, kBudget)
      << "an evaluation was proposed after the job time reached the budget";
  std::cout << research << " evaluations, job time " << done.gpu_seconds() << " s of "
            << kBudget << " s\n";
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
  v1::Campaign done = cluster_->WaitUntilDone(id, 560);
  ASSERT_EQ(done.state(), v1::CAMPAIGN_FINISHED) << done.message();
  EXPECT_GT(done.lessons(), 0);

  std::map<int64_t, v1::Candidate> candidates;
  for (int64_t cid = done.baseline_candidate_id();; ++cid) {
    v1::CandidateDetail d;
    grpc::ClientContext ctx;
    v1::GetCandidateRequest req;
    req.set_candidate_id(cid);
    if (!cluster_->stub()->GetCandidate(&ctx, req, &d).ok() || d.candidate().campaign_id() != id) break;
    candidates[cid] = d.candidate();
    if (d.candidate().description().find("merge with #") != std::string::npos)
      EXPECT_FALSE(d.evaluations().empty()) << cid;  // evaluated like any other
  }
  int merge_candidates = 0, archive_parents = 0, accepted = 0;
  for (const auto& [cid, c] : candidates) {
    if (c.description().find("merge with #") != std::string::npos) ++merge_candidates;
    if (c.status() == v1::CANDIDATE_ACCEPTED) ++accepted;
    // A parent that never was an incumbent came from the thread's archive.
    auto parent = candidates.find(c.parent_id());
    if (parent != candidates.end() && parent->second.status() != v1::CANDIDATE_ACCEPTED &&
        parent->second.status() != v1::CANDIDATE_BASELINE)
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
    EXPECT_EQ(inc.status(), v1::CANDIDATE_ACCEPTED) << inc.id();
    if (inc.thread_id() != t.id()) adopted = true;
  }
  if (adopted) EXPECT_GT(done.migrations(), 0);

  // diff against the baseline: the knobs that changed, no file differs.
  const int64_t best = done.best_candidate_id();
  ASSERT_NE(best, done.baseline_candidate_id());
  auto diff = cluster_->Cli({"diff", std::to_string(best), "--against=baseline"});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_EQ(diff.out.rfind(absl::StrCat("knobs #", done.baseline_candidate_id(), " -> #", best), 0),
            0u)
      << diff.out;
  EXPECT_EQ(diff.out.find("kernel.cc"), std::string::npos) << diff.out;
  auto to_parent = cluster_->Cli({"diff", std::to_string(best)});
  EXPECT_EQ(to_parent.exit_code, 0) << to_parent.err;

  // export the best and the baseline, then reproduce each with its folder's
  // run.sh alone.
  const std::string out = dir_ + "/export", baseline_out = dir_ + "/export-baseline";
  auto exported = cluster_->Cli({"export", std::to_string(best), out});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  exported = cluster_->Cli({"export", std::to_string(done.baseline_candidate_id()), baseline_out});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  cluster_->StopAll();  // the measurements run alone
  auto reproduce = [](const std::string& folder) {
    auto bench = RunCommand({"/usr/bin/env", "RATCHET=" + kRatchet, folder + "/run.sh", "--json"},
                            300'000);
    EXPECT_EQ(bench.exit_code, 0) << bench.err << bench.out;
    const size_t brace = bench.out.find('{');
    return nlohmann::json::parse(brace == std::string::npos ? "{}" : bench.out.substr(brace),
                                 nullptr, /*allow_exceptions=*/false);
  };
  const nlohmann::json j = reproduce(out), base = reproduce(baseline_out);
  ASSERT_TRUE(j.is_object() && base.is_object());
  EXPECT_EQ(j["outcome"], "ok") << j.dump();
  EXPECT_EQ(base["outcome"], "ok") << base.dump();
  // The best, measured again beside the baseline measured again: still the
  // faster. Both figures are of now, on the same machine, so the check holds
  // whatever else loads it (the design gap is >10x); the campaign's own
  // figures are printed, not compared, as they were measured under other load.
  const double best_now = j.value("score", 0.0), baseline_now = base.value("score", 0.0);
  EXPECT_GT(best_now, baseline_now) << j.dump() << base.dump();
  std::cout << "reproduced: best " << best_now << " vs baseline " << baseline_now
            << " (in the campaign: " << done.best_score() << " vs " << done.baseline_score()
            << ")\n";
}

// Experience across campaigns. Claims are off (min_gain 100), so every
// evaluation writes its lessons at once. Whether campaign 2's first proposals
// lean toward campaign 1's best move is not checked here: proposals are
// seeded, but the effects they are weighted by are measured times, so which
// move is best differs from run to run.
TEST_F(ResearchLoop, SharedExperienceReachesAnotherShapeOfTheOpTypeAndTheLlmPrompt) {
  // Campaign 4's model: an endpoint of the coordinator's operator
  // (docs/llm.md), so it is up before the coordinator starts.
  testing::ScriptedOpenAiServer model({}, [](const testing::RecordedRequest&) {
    return testing::ScriptedResponse::Answer(
        "IDEA: four floats at a time\n<<<<<<< KNOBS\nVEC=4\n>>>>>>> END\n");
  });
  std::string error;
  ASSERT_TRUE(model.Start(&error)) << error;
  const std::string endpoints = dir_ + "/endpoints.yaml";
  std::ofstream(endpoints) << "endpoints:\n  scripted: {base_url: '" << model.base_url()
                           << "'}\n";
  testing::Cluster::Options options;
  options.coordinator_flags.push_back("--llm-endpoints=" + endpoints);
  ASSERT_NO_FATAL_FAILURE(StartCluster(1, options));
  const std::string evolve = R"(threads: 1
proposer: evolve
verification: {replays: 1, min_gain: 10}
)";
  // What the event says for `experience: campaign`.
  auto own_only = [](int lessons, int campaigns) {
    return std::vector<std::string>{absl::StrCat(
        "experience: this campaign's own lessons only; ", lessons,
        " lessons of op type rmsnorm from ", campaigns,
        " other campaigns not read (`experience: shared` reads them)")};
  };
  // Campaign 1: the built-in RMSNorm writes lessons.
  const v1::Campaign c1 = RunCampaign("first", Spec("first", evolve + R"(seed: 21
budget: {max_evaluations: 7, max_wall_seconds: 300}
)"));
  ASSERT_GT(c1.lessons(), 0);
  EXPECT_EQ(Events(c1.id(), "experience: "), own_only(0, 0));

  // Campaign 2: the same op type with other shapes (RMSNorm's definition
  // under another name, with its own workloads), sharing experience.
  const std::string tall = dir_ + "/rmsnorm_tall";
  ASSERT_EQ(::mkdir(tall.c_str(), 0755), 0);
  // Ordered: inputs are passed in the order the definition lists them.
  nlohmann::ordered_json definition = nlohmann::ordered_json::parse(
      std::ifstream(kSource + "/tasks/cpu/rmsnorm/definition.json"));
  definition["name"] = "rmsnorm_f32_cpu_tall";
  std::ofstream(tall + "/definition.json") << definition.dump(2);
  std::ofstream workloads(tall + "/workload.jsonl");
  for (const auto& [rows, hidden] : {std::pair{512, 256}, std::pair{1024, 512}}) {
    const nlohmann::json random = {{"type", "random"}};
    workloads << nlohmann::json{{"uuid", absl::StrCat("tall-", rows)},
                                {"axes", {{"batch_size", rows}, {"hidden_size", hidden}}},
                                {"inputs",
                                 {{"hidden_states", random},
                                  {"weight", random},
                                  {"eps", {{"type", "scalar"}, {"value", 1e-6}}}}}}
                     .dump()
              << "\n";
  }
  workloads.close();
  const v1::Campaign c2 = RunCampaign("second", SpecFor("second", tall, evolve + R"(seed: 22
experience: shared
budget: {max_evaluations: 3, max_wall_seconds: 300}
)"));
  EXPECT_EQ(c2.lessons_from_other_campaigns(), c1.lessons());
  EXPECT_EQ(Events(c2.id(), "experience: "),
            std::vector<std::string>{absl::StrCat("experience: shared, reading ", c1.lessons(),
                                                  " lessons of op type rmsnorm from 1 other "
                                                  "campaign")});
  auto report = cluster_->Cli({"report", std::to_string(c2.id())});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  EXPECT_NE(report.out.find(absl::StrCat("experience   ", c2.lessons(), " lessons written; read ",
                                         c1.lessons(), " of other campaigns (shared)")),
            std::string::npos)
      << report.out;

  // Campaign 3: the default reads only its own lessons.
  const v1::Campaign c3 = RunCampaign("third", Spec("third", evolve + R"(seed: 23
budget: {max_evaluations: 3, max_wall_seconds: 300}
)"));
  EXPECT_EQ(c3.lessons_from_other_campaigns(), 0);
  EXPECT_EQ(Events(c3.id(), "experience: "), own_only(c1.lessons() + c2.lessons(), 2));

  // Campaign 4: an llm campaign sharing experience sees the other
  // campaigns' lessons in its prompt.
  const v1::Campaign c4 = RunCampaign("fourth", Spec("fourth", absl::StrCat(R"(threads: 1
proposer: llm
seed: 24
experience: shared
budget: {max_evaluations: 2, max_wall_seconds: 300}
verification: {replays: 1, min_gain: 10}
llm:
  endpoint: scripted
  models: [{name: scripted}]
  timeout_seconds: 30
  max_concurrency: 1
)")));
  const int others = c1.lessons() + c2.lessons() + c3.lessons();
  EXPECT_EQ(c4.lessons_from_other_campaigns(), others);
  auto requests = model.requests();
  ASSERT_EQ(requests.size(), 1u);
  const std::string prompt =
      nlohmann::json::parse(requests[0].body)["messages"][1]["content"].get<std::string>();
  const size_t at = prompt.find("## Experience: earlier lessons about this operation");
  ASSERT_NE(at, std::string::npos) << prompt;
  const std::string section = prompt.substr(at, prompt.find("\n## ", at + 1) - at);
  std::vector<std::string> items;
  for (absl::string_view line : absl::StrSplit(section, '\n'))
    if (absl::StartsWith(line, "- ")) items.emplace_back(line);
  // Within the limit (12 kinds of change and a line for the rest); every
  // lesson is another campaign's, named by its problem and hardware.
  EXPECT_GE(items.size(), 1u);
  EXPECT_LE(items.size(), 13u) << section;
  EXPECT_NE(section.find("rmsnorm_f32_cpu on cpu"), std::string::npos) << section;
  EXPECT_EQ(section.find("this campaign"), std::string::npos) << section;

  // The store: lessons filed under the op type, each campaign's with its
  // problem and hardware; campaign 2 read exactly campaign 1's.
  cluster_->StopAll();
  auto store = store::OpenSqliteStore(cluster_->db());
  ASSERT_TRUE(store.ok()) << store.status();
  auto of_first = (*store)->ListLessons("rmsnorm", c1.id());
  ASSERT_TRUE(of_first.ok()) << of_first.status();
  EXPECT_EQ(static_cast<int>(of_first->size()), c1.lessons());
  for (const auto& l : *of_first) {
    EXPECT_EQ(l.problem(), "rmsnorm_f32_cpu");
    EXPECT_EQ(l.hardware(), "cpu");
  }
  auto of_second = (*store)->ListLessons("rmsnorm", c2.id());
  ASSERT_TRUE(of_second.ok()) << of_second.status();
  EXPECT_EQ(static_cast<int>(of_second->size()), c2.lessons());
  for (const auto& l : *of_second) EXPECT_EQ(l.problem(), "rmsnorm_f32_cpu_tall");
  auto all = (*store)->ListLessons("rmsnorm", 0);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(static_cast<int>(all->size()), others + c4.lessons());
}

// Cascade: compile, then correctness, then timing. A candidate that is wrong
// stops at correctness: no workload is timed.
TEST(Cascade, AWrongCandidateNeverReachesTiming) {
  if (!testing::PythonWithTorch())
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
  // Timed or not by the rounds the harness timed: a timed call's T_k is the
  // harness's clock less the calibrated round trip, and can come out 0 for a
  // microsecond kernel on a loaded host.
  auto good = run(kSource + "/tests/data/vadd/good");
  ASSERT_EQ(good["outcome"], "ok");
  for (const auto& w : good["workloads"]) {
    EXPECT_GT(w.value("timed_rounds", 0), 0) << w;
    EXPECT_GE(w["t_k_ns"].get<double>(), 0) << w;
  }

  auto wrong = run(kSource + "/tests/data/bad_candidates/wrong");
  EXPECT_EQ(wrong["outcome"], "wrong_answer");
  for (const auto& w : wrong["workloads"]) {
    EXPECT_EQ(w["t_k_ns"].get<double>(), 0) << w;
    EXPECT_EQ(w.value("timed_rounds", 0), 0) << w;
    EXPECT_EQ(w.value("repetitions", 0), 0) << w;
  }
  auto broken = run(kSource + "/tests/data/bad_candidates/compile_error");
  EXPECT_EQ(broken["outcome"], "compile_error");
  EXPECT_TRUE(broken["workloads"].empty()) << broken;
}

}  // namespace
}  // namespace ratchet
