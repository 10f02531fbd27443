// Stored baselines (docs/cluster.md, "Baselines"): the keys and the freeze
// rule as functions, then the coordinator over a real SQLite store: after
// kBaselineMeasurements evaluations with a measured T_b the next leased job
// carries the frozen baselines, and replays never add to them.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator.h"
#include "coordinator/store/store.h"
#include "coordinator/stored_baselines.h"
#include "gtest/gtest.h"
#include "common/noise_floor.h"

namespace ratchet::coordinator {
namespace {

using namespace std::chrono_literals;

v1::WorkloadResult Measured(int index, double t_b, double eager = 0, bool given = false) {
  v1::WorkloadResult w;
  w.set_index(index);
  w.set_axes(absl::StrCat("N=", index));
  w.set_t_b_ns(t_b);
  w.set_t_b_eager_ns(eager);
  w.set_t_b_spread(0.01);
  w.set_t_b_given(given);
  return w;
}

TEST(StoredBaselines, KeysHashDefinitionAndEachWorkloadLine) {
  v1::Problem p;
  p.set_definition_json("{\"name\": \"rmsnorm\"}");
  p.set_workload_jsonl("{\"axes\": {\"N\": 1}}\n\n  {\"axes\": {\"N\": 2}}  \n");
  EXPECT_EQ(BaselineProblemKey(p), Fnv1a64Hex(p.definition_json()));
  EXPECT_EQ(BaselineProblemKey(p).size(), 16u);
  std::vector<std::string> keys = BaselineWorkloadKeys(p);
  ASSERT_EQ(keys.size(), 2u);  // blank lines are not workloads, as in the harness
  EXPECT_EQ(keys[1], Fnv1a64Hex("{\"axes\": {\"N\": 2}}"));
  // A workload keeps its key when another line is added before it.
  v1::Problem q = p;
  q.set_workload_jsonl("{\"axes\": {\"N\": 0}}\n" + p.workload_jsonl());
  EXPECT_EQ(BaselineWorkloadKeys(q)[2], keys[1]);
  EXPECT_EQ(BaselineProblemKey(q), BaselineProblemKey(p));
  // Another definition is another problem.
  q.set_definition_json("{\"name\": \"rmsnorm\", \"description\": \"x\"}");
  EXPECT_NE(BaselineProblemKey(q), BaselineProblemKey(p));
}

TEST(StoredBaselines, MedianOfTheFirstMeasurementsThenFrozen) {
  v1::Baseline b;
  EXPECT_TRUE(AddBaselineMeasurement(Measured(1, 1100, 1100), 11, "w1", 1000, &b));
  EXPECT_FALSE(b.frozen());
  EXPECT_EQ(b.measurements(), 1);
  EXPECT_DOUBLE_EQ(b.t_b_ns(), 1100);
  EXPECT_DOUBLE_EQ(b.t_b_spread(), 0);
  // A T_b the harness was given, or none, is no measurement.
  EXPECT_FALSE(AddBaselineMeasurement(Measured(1, 5000, 0, /*given=*/true), 12, "w1", 1500, &b));
  EXPECT_FALSE(AddBaselineMeasurement(Measured(1, 0), 12, "w1", 1500, &b));
  EXPECT_TRUE(AddBaselineMeasurement(Measured(1, 900, 900), 13, "w2", 2000, &b));
  EXPECT_DOUBLE_EQ(b.t_b_ns(), 1000);  // median of two
  EXPECT_FALSE(b.frozen());
  EXPECT_TRUE(AddBaselineMeasurement(Measured(1, 1000), 14, "w1", 3000, &b));
  EXPECT_TRUE(b.frozen());
  EXPECT_EQ(b.measurements(), kBaselineMeasurements);
  EXPECT_DOUBLE_EQ(b.t_b_ns(), 1000);
  EXPECT_DOUBLE_EQ(b.t_b_spread(), 0.2);  // (1100 - 900) / 1000
  EXPECT_DOUBLE_EQ(b.t_b_eager_ns(), 1000);  // median of the two that know it
  EXPECT_EQ(b.first_unix_ms(), 1000);
  EXPECT_EQ(b.updated_unix_ms(), 3000);
  EXPECT_EQ(b.workload_index(), 1);
  EXPECT_EQ(b.axes(), "N=1");
  ASSERT_EQ(b.samples_size(), 3);
  EXPECT_EQ(b.samples(1).evaluation_id(), 13);
  EXPECT_EQ(b.samples(1).worker_id(), "w2");
  // Frozen: nothing changes it any more.
  EXPECT_FALSE(AddBaselineMeasurement(Measured(1, 100000), 15, "w1", 4000, &b));
  EXPECT_DOUBLE_EQ(b.t_b_ns(), 1000);
  EXPECT_EQ(b.samples_size(), 3);
}

TEST(StoredBaselines, AnOutlierWaitsForThreeThatAgreeAndIsLeftOut) {
  v1::Baseline b;
  // A busy machine times the reference at ten times its worth once: the
  // three are not steady, and the next that agrees with two of them freezes
  // the record on those three alone.
  for (double t : {1000.0, 10000.0, 1100.0})
    EXPECT_TRUE(AddBaselineMeasurement(Measured(0, t, t), 1, "w1", 1000, &b));
  EXPECT_FALSE(b.frozen()) << "spread " << b.t_b_spread();
  EXPECT_DOUBLE_EQ(b.t_b_ns(), 1100);  // the median of all, while it waits
  EXPECT_TRUE(AddBaselineMeasurement(Measured(0, 1050, 1050), 1, "w1", 1000, &b));
  EXPECT_TRUE(b.frozen());
  EXPECT_EQ(b.measurements(), 4);
  EXPECT_EQ(b.samples_size(), 4);  // the outlier stays on record
  EXPECT_DOUBLE_EQ(b.t_b_ns(), 1050);
  EXPECT_DOUBLE_EQ(b.t_b_eager_ns(), 1050);
  EXPECT_NEAR(b.t_b_spread(), 100.0 / 1050, 1e-12);  // of the three it stands on
}

TEST(StoredBaselines, OfTwoSteadyRunsTheFastestCounts) {
  v1::Baseline b;
  for (double t : {1000.0, 1450.0, 1100.0, 1550.0})
    EXPECT_TRUE(AddBaselineMeasurement(Measured(0, t), 1, "w1", 1000, &b));
  EXPECT_FALSE(b.frozen()) << "spread " << b.t_b_spread();
  // 1250 makes two steady runs at once: 1000, 1100, 1250 (spread 22.7%) and
  // 1250, 1450, 1550 (20.7%). A busy host only slows the reference.
  EXPECT_TRUE(AddBaselineMeasurement(Measured(0, 1250), 1, "w1", 1000, &b));
  EXPECT_TRUE(b.frozen());
  EXPECT_DOUBLE_EQ(b.t_b_ns(), 1100);
  EXPECT_NEAR(b.t_b_spread(), 250.0 / 1100, 1e-12);
}

TEST(StoredBaselines, NoThreeAgreeingWaitForTheMostThenTheMedianOfAll) {
  v1::Baseline b;
  // Every measurement at least 30% from every other: no steady run forms.
  double t = 1000;
  for (int i = 0; i < kBaselineMaxMeasurements - 1; ++i, t *= 1.3) {
    EXPECT_TRUE(AddBaselineMeasurement(Measured(0, t), 1, "w1", 1000, &b));
    EXPECT_FALSE(b.frozen()) << i;
  }
  EXPECT_TRUE(AddBaselineMeasurement(Measured(0, t), 1, "w1", 1000, &b));
  EXPECT_TRUE(b.frozen());
  EXPECT_EQ(b.measurements(), kBaselineMaxMeasurements);
  EXPECT_NEAR(b.t_b_ns(), 1000 * std::pow(1.3, 4), 1e-6);  // the median of all nine
  EXPECT_FALSE(AddBaselineMeasurement(Measured(0, 1000), 1, "w1", 1000, &b));
}

TEST(StoredBaselines, PickNeedsEveryWorkloadFrozenWithOneSoftware) {
  auto frozen = [](const std::string& key, const std::string& software, double t_b,
                   int64_t at) {
    v1::Baseline b;
    b.set_workload_key(key);
    b.set_software(software);
    b.set_t_b_ns(t_b);
    b.set_frozen(true);
    b.set_measurements(3);
    b.set_updated_unix_ms(at);
    b.add_samples()->set_t_b_ns(t_b);
    return b;
  };
  std::vector<v1::Baseline> stored = {frozen("a", "torch 1", 10, 100),
                                      frozen("b", "torch 1", 20, 200),
                                      frozen("a", "torch 2", 11, 300)};
  // torch 2 lacks workload b: torch 1's set, in workload order, without samples.
  std::vector<v1::Baseline> got = PickBaselines(stored, {"b", "a"}, "torch 2");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].workload_key(), "b");
  EXPECT_EQ(got[0].workload_index(), 0);
  EXPECT_EQ(got[1].workload_index(), 1);
  EXPECT_EQ(got[1].software(), "torch 1");
  EXPECT_EQ(got[1].samples_size(), 0);
  // Once torch 2 has them all, a worker on torch 2 gets torch 2's; a worker
  // whose software is not known yet gets the set completed last.
  stored.push_back(frozen("b", "torch 2", 21, 400));
  EXPECT_EQ(PickBaselines(stored, {"a", "b"}, "torch 2")[0].software(), "torch 2");
  EXPECT_EQ(PickBaselines(stored, {"a", "b"}, "torch 1")[0].software(), "torch 1");
  EXPECT_EQ(PickBaselines(stored, {"a", "b"}, "")[0].software(), "torch 2");
  // Not frozen, or a workload nobody measured: nothing.
  stored[1].set_frozen(false);
  stored[3].set_frozen(false);
  EXPECT_TRUE(PickBaselines(stored, {"a", "b"}, "torch 1").empty());
  EXPECT_TRUE(PickBaselines(stored, {"a", "c"}, "").empty());
  EXPECT_TRUE(PickBaselines(stored, {}, "").empty());
}

// ---------------------------------------------------------------------------
// The coordinator.

constexpr char kSoftware[] = "torch 2.11.0+cpu / cpu";

class CoordinatorBaselines : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ratchet-baselines-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    auto s = store::OpenSqliteStore(dir_ + "/store.db");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
    CoordinatorOptions options;
    options.tick_ms = 20;
    coordinator_ = std::make_unique<Coordinator>(store_.get(), options,
                                                 std::make_shared<prometheus::Registry>());
    coordinator_->Start();
  }
  void TearDown() override {
    coordinator_->Stop();
    coordinator_.reset();
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  std::string Register(const std::string& name, const std::string& cpu_model) {
    v1::RegisterWorkerRequest req;
    req.set_name(name);
    req.mutable_hardware()->set_cpu_model(cpu_model);
    req.mutable_hardware()->set_cpu_cores(2);
    auto r = coordinator_->RegisterWorker(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->worker_id() : "";
  }

  v1::Job Acquire(const std::string& worker) {
    auto job = coordinator_->AcquireJob(worker, 10'000);
    EXPECT_TRUE(job.ok()) << job.status();
    EXPECT_TRUE(job.ok() && job->has_value()) << "no job for " << worker;
    return job.ok() && job->has_value() ? **job : v1::Job();
  }

  // Reports an ok evaluation with T_b per workload as the harness measured
  // it (or was given it), and waits until the coordinator has applied it.
  void Complete(const v1::Job& job, double score, std::vector<double> t_b, bool given = false) {
    v1::CompleteJobRequest req;
    req.set_worker_id(job.worker_id());
    req.set_job_id(job.id());
    v1::Evaluation* e = req.mutable_evaluation();
    e->set_outcome(v1::OUTCOME_OK);
    e->set_score(score);
    e->set_baseline_software(kSoftware);
    for (size_t i = 0; i < t_b.size(); ++i) {
      v1::WorkloadResult* w = e->add_workloads();
      w->set_index(static_cast<int>(i));
      w->set_axes(absl::StrCat("N=", i));
      w->set_correct(true);
      w->set_score(score);
      w->set_t_b_ns(t_b[i]);
      w->set_t_b_eager_ns(t_b[i]);
      w->set_t_b_spread(0.02);
      w->set_t_b_given(given);
    }
    auto ack = coordinator_->CompleteJob(req);
    ASSERT_TRUE(ack.ok()) << ack.status();
    ASSERT_TRUE(ack->accepted()) << ack->message();
    auto end = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < end) {
      auto open = store_->ListUnprocessedEvaluations();
      ASSERT_TRUE(open.ok());
      if (open->empty()) return;
      std::this_thread::sleep_for(10ms);
    }
    FAIL() << "the evaluation of job " << job.id() << " was not applied";
  }

  std::vector<v1::Baseline> Stored(const std::string& hardware) {
    auto got = store_->ListBaselines(BaselineProblemKey(problem_), hardware);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : std::vector<v1::Baseline>();
  }

  int64_t Submit() {
    problem_.set_name("toy");
    problem_.set_definition_json("{\"name\": \"toy\", \"op_type\": \"toy\"}");
    problem_.set_workload_jsonl("{\"axes\": {\"N\": 64}}\n{\"axes\": {\"N\": 4096}}\n");
    v1::CampaignSpec spec;
    spec.set_name("baselines");
    *spec.mutable_problem() = problem_;
    (*spec.mutable_baseline()->mutable_files())["solution.json"] =
        "{\"name\": \"toy\", \"sources\": [\"kernel.cc\"], \"knobs\": "
        "{\"K\": {\"choices\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], \"default\": 1}}}";
    (*spec.mutable_baseline()->mutable_files())["kernel.cc"] = "// toy\n";
    spec.set_proposer(v1::PROPOSER_GRID);
    spec.set_threads(1);
    spec.set_in_flight_per_thread(1);
    spec.mutable_budget()->set_max_evaluations(50);
    spec.mutable_verification()->set_replays(1);
    spec.set_device(v1::DEVICE_CPU);
    auto c = coordinator_->SubmitCampaign(spec);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->id() : 0;
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Coordinator> coordinator_;
  v1::Problem problem_;
};

TEST_F(CoordinatorBaselines, FrozenAfterThreeEvaluationsHandedOutAndNeverMovedByReplays) {
  const std::string worker = Register("w1", "Test CPU A");
  v1::Hardware hw;
  hw.set_cpu_model("Test CPU A");
  const std::string hardware = HardwareKey(hw, /*cuda=*/false);
  ASSERT_GT(Submit(), 0);

  // 1. The campaign's baseline candidate: nothing stored yet.
  v1::Job job = Acquire(worker);
  EXPECT_EQ(job.baselines_size(), 0);
  ASSERT_NO_FATAL_FAILURE(Complete(job, 0.5, {1000, 2000}));
  std::vector<v1::Baseline> stored = Stored(hardware);
  ASSERT_EQ(stored.size(), 2u);
  for (const auto& b : stored) {
    EXPECT_EQ(b.measurements(), 1);
    EXPECT_FALSE(b.frozen());
    EXPECT_EQ(b.software(), kSoftware);
    EXPECT_EQ(b.problem(), "toy");
  }

  // 2. A candidate that claims an improvement: measurement 2, a verification.
  job = Acquire(worker);
  EXPECT_EQ(job.kind(), v1::JOB_EVALUATE);
  EXPECT_EQ(job.baselines_size(), 0);  // not frozen yet
  ASSERT_NO_FATAL_FAILURE(Complete(job, 0.9, {1100, 2200}));
  // The claim's replays, queued by the coordinator with the claim.

  // 3. The replays (candidate and incumbent) measure wildly different T_b
  // and add nothing.
  for (int i = 0; i < 2; ++i) {
    job = Acquire(worker);
    ASSERT_EQ(job.kind(), v1::JOB_REPLAY);
    ASSERT_NO_FATAL_FAILURE(Complete(job, 0.7, {50'000, 90'000}));
  }
  stored = Stored(hardware);
  ASSERT_EQ(stored.size(), 2u);
  for (const auto& b : stored) EXPECT_EQ(b.measurements(), 2) << b.axes();

  // 4. The third evaluation freezes them: medians of 1000/1100/900 and
  // 2000/2200/2100.
  job = Acquire(worker);
  ASSERT_EQ(job.kind(), v1::JOB_EVALUATE);
  EXPECT_EQ(job.baselines_size(), 0);
  ASSERT_NO_FATAL_FAILURE(Complete(job, 0.4, {900, 2100}));
  stored = Stored(hardware);
  ASSERT_EQ(stored.size(), 2u);
  for (const auto& b : stored) {
    EXPECT_TRUE(b.frozen());
    EXPECT_EQ(b.measurements(), 3);
  }

  // 5. The next job carries them, in workload order.
  job = Acquire(worker);
  ASSERT_EQ(job.baselines_size(), 2);
  EXPECT_EQ(job.baselines(0).workload_index(), 0);
  EXPECT_DOUBLE_EQ(job.baselines(0).t_b_ns(), 1000);
  EXPECT_DOUBLE_EQ(job.baselines(0).t_b_spread(), 0.2);
  EXPECT_EQ(job.baselines(1).workload_index(), 1);
  EXPECT_DOUBLE_EQ(job.baselines(1).t_b_ns(), 2100);
  EXPECT_EQ(job.baselines(1).measurements(), 3);
  EXPECT_EQ(job.baselines(1).software(), kSoftware);
  EXPECT_EQ(job.baselines(1).hardware(), hardware);
  EXPECT_EQ(job.baselines(1).samples_size(), 0);  // the job carries no samples
  // The harness used them; and a measured T_b after the freeze changes nothing.
  ASSERT_NO_FATAL_FAILURE(Complete(job, 0.45, {1000, 2100}, /*given=*/true));
  job = Acquire(worker);
  ASSERT_EQ(job.baselines_size(), 2);
  ASSERT_NO_FATAL_FAILURE(Complete(job, 0.45, {7000, 7000}));
  stored = Stored(hardware);
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_DOUBLE_EQ(stored[0].t_b_ns() + stored[1].t_b_ns(), 3100);
  for (const auto& b : stored) EXPECT_EQ(b.samples_size(), 3);

  // 6. Other hardware has its own key: a worker on another CPU model gets
  // none and measures its own.
  const std::string other = Register("w2", "Test CPU B");
  job = Acquire(other);
  EXPECT_EQ(job.baselines_size(), 0);
  ASSERT_NO_FATAL_FAILURE(Complete(job, 0.45, {3000, 6000}));
  v1::Hardware hw_b;
  hw_b.set_cpu_model("Test CPU B");
  stored = Stored(HardwareKey(hw_b, false));
  ASSERT_EQ(stored.size(), 2u);
  EXPECT_EQ(stored[0].measurements(), 1);
}

}  // namespace
}  // namespace ratchet::coordinator
