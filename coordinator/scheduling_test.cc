// The scheduler (weights, resource matching) and group commit, over a real
// SQLite store in a temporary directory.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "coordinator/coordinator.h"
#include "coordinator/group_commit.h"
#include "coordinator/scheduler.h"
#include "coordinator/store/store.h"
#include "gtest/gtest.h"

namespace ratchet::coordinator {
namespace {

v1::Hardware Cpu() {
  v1::Hardware h;
  h.set_cpu_cores(8);
  return h;
}

v1::Hardware Gpus(const std::string& sku, const std::string& model, int n) {
  v1::Hardware h = Cpu();
  for (int i = 0; i < n; ++i) {
    auto* g = h.add_gpu_info();
    g->set_index(i);
    g->set_sku(sku);
    g->set_model(model);
    h.add_gpus(model);
  }
  return h;
}

SchedulableCampaign Campaign(int64_t id, double weight, v1::Device device,
                             const std::string& gpu_model = "", int gpus = 0) {
  SchedulableCampaign c;
  c.id = id;
  c.weight = weight;
  c.device = device;
  c.gpu_model = gpu_model;
  c.gpus = gpus;
  return c;
}

TEST(SchedulerTest, CpuJobsRunAnywhereCudaJobsNeedMatchingGpus) {
  const v1::Hardware cpu = Cpu();
  const v1::Hardware h100x2 = Gpus("H100-SXM", "NVIDIA H100 80GB HBM3", 2);
  const v1::Hardware a100 = Gpus("A100-SXM4-80GB", "NVIDIA A100-SXM4-80GB", 1);
  EXPECT_TRUE(CanRun(Campaign(1, 1, v1::DEVICE_CPU), cpu));
  EXPECT_TRUE(CanRun(Campaign(1, 1, v1::DEVICE_CPU), h100x2));
  EXPECT_FALSE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA), cpu));
  EXPECT_TRUE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA), a100));
  EXPECT_TRUE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA, "H100"), h100x2));
  EXPECT_TRUE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA, "h100"), h100x2));  // case-insensitive
  EXPECT_FALSE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA, "H100"), a100));
  EXPECT_TRUE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA, "H100", 2), h100x2));
  EXPECT_FALSE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA, "H100", 4), h100x2));
  EXPECT_FALSE(CanRun(Campaign(1, 1, static_cast<v1::Device>(7)), h100x2));
  // A worker that lists only model names.
  v1::Hardware names_only = Cpu();
  names_only.add_gpus("NVIDIA H100 80GB HBM3");
  EXPECT_TRUE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA, "H100"), names_only));
  EXPECT_FALSE(CanRun(Campaign(1, 1, v1::DEVICE_CUDA, "H100", 2), names_only));
}

TEST(SchedulerTest, OrderFollowsLeasedPerWeightAndSkipsWhatCannotRun) {
  std::vector<SchedulableCampaign> campaigns = {
      Campaign(1, 1, v1::DEVICE_CPU), Campaign(2, 3, v1::DEVICE_CPU),
      Campaign(3, 1, v1::DEVICE_CUDA, "H100")};
  // Nothing leased: (0+1)/3 beats (0+1)/1; the cuda campaign is not for a CPU node.
  EXPECT_EQ(CampaignOrder(campaigns, {}, Cpu()), (std::vector<int64_t>{2, 1}));
  // 3 leased of weight 3 is (3+1)/3 > (0+1)/1.
  EXPECT_EQ(CampaignOrder(campaigns, {{2, 3}}, Cpu()), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(CampaignOrder(campaigns, {{1, 1}, {2, 3}}, Gpus("H100-SXM", "H100", 1)),
            (std::vector<int64_t>{3, 2, 1}));
}

TEST(SchedulerTest, EqualLoadsGoToTheCampaignServedLongestAgo) {
  std::vector<SchedulableCampaign> campaigns;
  for (int64_t id = 1; id <= 4; ++id) campaigns.push_back(Campaign(id, 1, v1::DEVICE_CPU));
  EXPECT_EQ(CampaignOrder(campaigns, {}, Cpu()), (std::vector<int64_t>{1, 2, 3, 4}));
  // 1 and 3 were served (3 last); never-served 2 and 4 come first.
  EXPECT_EQ(CampaignOrder(campaigns, {}, Cpu(), {{1, 7}, {3, 9}}),
            (std::vector<int64_t>{2, 4, 1, 3}));
  // The load still comes first.
  EXPECT_EQ(CampaignOrder(campaigns, {{2, 1}, {4, 1}}, Cpu(), {{1, 7}, {3, 9}}),
            (std::vector<int64_t>{1, 3, 2, 4}));
}

// A suite of more campaigns than slots, every queue always full and jobs
// ending one at a time: every campaign is served within one turn of the
// slots. (Ordered by lowest id alone, campaigns 4 to 9 never were.)
TEST(SchedulerTest, MoreCampaignsThanSlotsStarveNone) {
  std::vector<SchedulableCampaign> campaigns;
  for (int64_t id = 1; id <= 9; ++id) campaigns.push_back(Campaign(id, 1, v1::DEVICE_CPU));
  std::map<int64_t, int> leased;
  std::map<int64_t, uint64_t> served;
  uint64_t seq = 0;
  std::vector<int64_t> slots;
  auto lease = [&] {
    const int64_t id = CampaignOrder(campaigns, leased, Cpu(), served).front();
    leased[id] += 1;
    served[id] = ++seq;
    return id;
  };
  for (int i = 0; i < 3; ++i) slots.push_back(lease());
  std::map<int64_t, int> count;
  for (int turn = 0; turn < 9; ++turn) {  // the oldest job ends, its slot is leased again
    leased[slots.front()] -= 1;
    slots.erase(slots.begin());
    const int64_t id = lease();
    slots.push_back(id);
    count[id] += 1;
  }
  for (int64_t id = 1; id <= 9; ++id) EXPECT_EQ(count[id], 1) << "campaign " << id;
}

std::string TempDir() {
  char tmpl[] = "/tmp/ratchet-scheduling-XXXXXX";
  const char* dir = mkdtemp(tmpl);
  EXPECT_NE(dir, nullptr);
  return dir != nullptr ? dir : "/tmp";
}

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir();
    auto s = store::OpenSqliteStore(dir_ + "/store.db");
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  int64_t NewCampaign(v1::Device device) {
    v1::Campaign c;
    c.mutable_spec()->set_device(device);
    c.set_state(v1::CAMPAIGN_RUNNING);
    auto id = store_->CreateCampaign(c);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }
  void Queue(int64_t campaign, int n) {
    ASSERT_TRUE(store_->Transaction([&]() -> absl::Status {
      for (int i = 0; i < n; ++i) {
        v1::Job j;
        j.set_campaign_id(campaign);
        j.set_candidate_id(1);
        j.set_kind(v1::JOB_EVALUATE);
        j.set_state(v1::JOB_QUEUED);
        if (auto id = store_->CreateJob(j); !id.ok()) return id.status();
      }
      return absl::OkStatus();
    }).ok());
  }

  std::string dir_;
  std::unique_ptr<store::Store> store_;
};

// Workers lease from the campaign the scheduler puts first, as the
// coordinator does: with weights 1 and 3 and both queues full, the leased
// jobs split 1:3; a cuda campaign's jobs go only to GPU workers.
TEST_F(StoreFixture, LeasedSharesFollowWeightsAndResources) {
  const int64_t light = NewCampaign(v1::DEVICE_CPU);
  const int64_t heavy = NewCampaign(v1::DEVICE_CPU);
  const int64_t gpu = NewCampaign(v1::DEVICE_CUDA);
  Queue(light, 200);
  Queue(heavy, 200);
  Queue(gpu, 200);
  std::vector<SchedulableCampaign> campaigns = {Campaign(light, 1, v1::DEVICE_CPU),
                                                Campaign(heavy, 3, v1::DEVICE_CPU),
                                                Campaign(gpu, 1, v1::DEVICE_CUDA, "H100")};
  std::map<int64_t, int> leased;
  std::map<std::string, int64_t> holds;  // worker -> campaign of its job
  auto lease = [&](const std::string& worker, const v1::Hardware& hw) {
    for (int64_t id : CampaignOrder(campaigns, leased, hw)) {
      auto job = store_->AcquireJob(worker, 1000, 60'000, false, id);
      EXPECT_TRUE(job.ok()) << job.status();
      if (job.ok() && job->has_value()) {
        leased[id] += 1;
        holds[worker] = id;
        return;
      }
    }
  };
  for (int i = 0; i < 40; ++i) lease(absl::StrCat("cpu", i), Cpu());
  EXPECT_EQ(leased[light], 10);
  EXPECT_EQ(leased[heavy], 30);
  EXPECT_EQ(leased[gpu], 0);
  // Jobs finish and are re-leased: the shares stay.
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 40; i += 3) {
      const std::string w = absl::StrCat("cpu", i);
      leased[holds[w]] -= 1;
      lease(w, Cpu());
    }
  }
  EXPECT_NEAR(leased[light], 10, 1);
  EXPECT_NEAR(leased[heavy], 30, 1);
  // A GPU worker: the cuda campaign, which has nothing leased, comes first.
  lease("h100", Gpus("H100-SXM", "NVIDIA H100 80GB HBM3", 1));
  EXPECT_EQ(holds["h100"], gpu);
  // An A100 worker may not take the H100 campaign's jobs.
  lease("a100", Gpus("A100", "NVIDIA A100", 1));
  EXPECT_NE(holds["a100"], gpu);
}

// The coordinator itself: sleep campaigns of weights 1 and 3 and a cuda
// campaign for H100s, workers registered with their hardware, jobs leased
// through Coordinator::AcquireJob (group commit on).
TEST_F(StoreFixture, CoordinatorLeasesByWeightAndNeverHandsAWorkerWhatItCannotRun) {
  Coordinator coordinator(store_.get(), CoordinatorOptions(),
                          std::make_shared<prometheus::Registry>());
  auto submit = [&](double weight, v1::Device device, const std::string& gpu_model) {
    v1::CampaignSpec spec;
    spec.set_name("sleep");
    spec.set_task(v1::TASK_SLEEP);
    spec.set_sleep_ms(1);
    spec.set_weight(weight);
    spec.set_device(device);
    spec.set_gpu_model(gpu_model);
    spec.mutable_budget()->set_max_evaluations(100);
    auto c = coordinator.SubmitCampaign(spec);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? c->id() : 0;
  };
  const int64_t light = submit(1, v1::DEVICE_CPU, "");
  const int64_t heavy = submit(3, v1::DEVICE_CPU, "");
  const int64_t h100 = submit(1, v1::DEVICE_CUDA, "H100");
  {
    v1::CampaignSpec bad;
    bad.set_task(v1::TASK_SLEEP);
    bad.set_weight(-1);
    EXPECT_EQ(coordinator.SubmitCampaign(bad).status().code(),
              absl::StatusCode::kInvalidArgument);
    bad.set_weight(1);
    bad.set_gpus(2);  // on a cpu campaign
    EXPECT_EQ(coordinator.SubmitCampaign(bad).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
  auto worker = [&](const std::string& name, const v1::Hardware& hw) {
    v1::RegisterWorkerRequest req;
    req.set_name(name);
    *req.mutable_hardware() = hw;
    auto r = coordinator.RegisterWorker(req);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->worker_id() : "";
  };
  std::map<int64_t, int> leased;
  for (int i = 0; i < 20; ++i) {
    auto job = coordinator.AcquireJob(worker(absl::StrCat("cpu", i), Cpu()), 0);
    ASSERT_TRUE(job.ok()) << job.status();
    ASSERT_TRUE(job->has_value());
    EXPECT_EQ((*job)->sleep_ms(), 1);
    leased[(*job)->campaign_id()] += 1;
  }
  EXPECT_EQ(leased[light], 5);
  EXPECT_EQ(leased[heavy], 15);
  EXPECT_EQ(leased[h100], 0);  // CPU workers never get the cuda campaign's jobs
  auto gpu_job = coordinator.AcquireJob(
      worker("h100", Gpus("H100-SXM", "NVIDIA H100 80GB HBM3", 1)), 0);
  ASSERT_TRUE(gpu_job.ok() && gpu_job->has_value());
  EXPECT_EQ((*gpu_job)->campaign_id(), h100);
  EXPECT_EQ((*gpu_job)->device(), v1::DEVICE_CUDA);
  // An A100 worker may only take CPU jobs here.
  for (int i = 0; i < 5; ++i) {
    auto job = coordinator.AcquireJob(worker("a100", Gpus("A100", "NVIDIA A100", 1)), 0);
    ASSERT_TRUE(job.ok() && job->has_value());
    EXPECT_NE((*job)->campaign_id(), h100);
  }
  // A completed job is acknowledged after its commit and frees its share.
  v1::CompleteJobRequest done;
  done.set_worker_id((*gpu_job)->worker_id());
  done.set_job_id((*gpu_job)->id());
  done.mutable_evaluation()->set_outcome(v1::OUTCOME_OK);
  auto ack = coordinator.CompleteJob(done);
  ASSERT_TRUE(ack.ok()) << ack.status();
  EXPECT_TRUE(ack->accepted());
  auto stored = store_->GetJob((*gpu_job)->id());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->state(), v1::JOB_DONE);
}

TEST_F(StoreFixture, GroupCommitBatchesConcurrentCallsAndEveryOneIsDurable) {
  const int64_t c = NewCampaign(v1::DEVICE_CPU);
  const int kThreads = 32, kEach = 20;
  Queue(c, kThreads * kEach);
  GroupCommitOptions options;
  GroupCommit group(store_.get(), options);
  std::atomic<int> acquired{0}, failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string worker = absl::StrCat("w", t);
      for (int i = 0; i < kEach; ++i) {
        std::optional<v1::Job> job;
        absl::Status s = group.Run([&]() -> absl::Status {
          auto got = store_->AcquireJob(worker, 1000, 60'000, false, c);
          if (!got.ok()) return got.status();
          job = *got;
          return absl::OkStatus();
        });
        if (!s.ok() || !job) {
          ++failures;
          continue;
        }
        v1::Evaluation e;
        e.set_outcome(v1::OUTCOME_OK);
        e.set_score(1);
        absl::StatusOr<int64_t> id;
        s = group.Run([&]() -> absl::Status {
          id = store_->CompleteJob(job->id(), worker, e);
          return id.status();
        });
        if (!s.ok()) ++failures;
        ++acquired;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(acquired.load(), kThreads * kEach);
  EXPECT_EQ(group.functions(), 2 * kThreads * kEach);
  // Concurrent callers shared transactions.
  EXPECT_LT(group.batches(), group.functions());
  // A body's expected error (a duplicate report) comes back to its caller.
  auto jobs = store_->ListJobs(c);
  ASSERT_TRUE(jobs.ok());
  absl::StatusOr<int64_t> wrong;
  ASSERT_TRUE(group.Run([&]() -> absl::Status {
    wrong = store_->CompleteJob((*jobs)[0].id(), "nobody", v1::Evaluation());
    return wrong.status();
  }).code() == absl::StatusCode::kAlreadyExists);
  // Everything acknowledged is there after reopening the file.
  store_.reset();
  auto reopened = store::OpenSqliteStore(dir_ + "/store.db");
  ASSERT_TRUE(reopened.ok());
  store_ = std::move(*reopened);
  jobs = store_->ListJobs(c);
  ASSERT_TRUE(jobs.ok());
  int done = 0;
  for (const auto& j : *jobs) done += j.state() == v1::JOB_DONE;
  EXPECT_EQ(done, kThreads * kEach);
  auto evaluations = store_->ListEvaluations(c);
  ASSERT_TRUE(evaluations.ok());
  EXPECT_EQ(static_cast<int>(evaluations->size()), kThreads * kEach);
}

TEST_F(StoreFixture, GroupCommitRunsEachBodyAloneWhenTheBatchFails) {
  GroupCommitOptions options;
  options.window_us = 20'000;  // make the three calls share one batch
  GroupCommit group(store_.get(), options);
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      absl::Status s = group.Run([&]() -> absl::Status {
        if (t == 1) return absl::InternalError("a database error");
        v1::WorkerInfo w;
        w.set_id(absl::StrCat("w", t));
        return store_->UpsertWorker(w);
      });
      if (t == 1) {
        EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
      } else {
        EXPECT_TRUE(s.ok()) << s;
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 2);
  auto workers = store_->ListWorkers();
  ASSERT_TRUE(workers.ok());
  EXPECT_EQ(workers->size(), 2u);
}

}  // namespace
}  // namespace ratchet::coordinator
