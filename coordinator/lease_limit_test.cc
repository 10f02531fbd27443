// A job's lease and the jobs sharing its worker's GPU: the coordinator,
// driven by a FakeClock, renews a lease as long as the worker itself lets the
// job run (common/job_wall.h), and no longer.
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/job_wall.h"
#include "coordinator/coordinator.h"
#include "coordinator/store/store.h"
#include "gtest/gtest.h"
#include "prometheus/registry.h"

namespace ratchet::coordinator {
namespace {

constexpr int64_t kTimeout = 600;

class LeaseLimitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::OpenSqliteStore(":memory:");
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    CoordinatorOptions options;
    options.clock = &clock_;
    options.lease_ms = 30'000;
    coordinator_ = std::make_unique<Coordinator>(store_.get(), options,
                                                 std::make_shared<prometheus::Registry>());
  }

  std::string Register(const std::string& name, int jobs_per_gpu) {
    v1::RegisterWorkerRequest request;
    request.set_name(name);
    request.mutable_hardware()->set_cpu_cores(2);
    request.mutable_hardware()->set_jobs_per_gpu(jobs_per_gpu);
    auto response = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->worker_id() : "";
  }

  // Heartbeats every 20 s from the lease until the coordinator says to stop
  // the job; the seconds from the lease when it did (0: it never did within
  // `give_up_s`).
  int64_t SecondsHeld(const std::string& worker, int64_t job_id, int64_t give_up_s) {
    const int64_t leased_at = clock_.NowUnixMs();
    while (clock_.NowUnixMs() - leased_at < give_up_s * 1000) {
      clock_.Advance(20'000);
      v1::HeartbeatRequest heartbeat;
      heartbeat.set_worker_id(worker);
      heartbeat.add_job_ids(job_id);
      auto response = coordinator_->Heartbeat(heartbeat);
      EXPECT_TRUE(response.ok()) << response.status();
      if (!response.ok() || response->cancelled_job_ids_size() > 0)
        return (clock_.NowUnixMs() - leased_at) / 1000;
      EXPECT_TRUE(coordinator_->RunOnce().ok());
    }
    return 0;
  }

  int64_t LeaseOne(const std::string& worker, double timeout_seconds = kTimeout) {
    v1::CampaignSpec spec;
    spec.set_name("sleep");
    spec.set_task(v1::TASK_SLEEP);
    spec.set_sleep_ms(1);
    spec.mutable_budget()->set_max_evaluations(1);
    spec.mutable_harness()->set_timeout_seconds(timeout_seconds);
    auto campaign = coordinator_->SubmitCampaign(spec);
    EXPECT_TRUE(campaign.ok()) << campaign.status();
    auto job = coordinator_->AcquireJob(worker, 0);
    EXPECT_TRUE(job.ok() && job->has_value());
    return job.ok() && job->has_value() ? (**job).id() : 0;
  }

  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Coordinator> coordinator_;
};


TEST_F(LeaseLimitTest, AWorkerAloneOnItsGpuHoldsAJobTwoTimeoutsAndTwoMinutes) {
  const std::string w = Register("alone", 1);
  const int64_t held = SecondsHeld(w, LeaseOne(w), 10 * kTimeout);
  EXPECT_GT(held, 2 * kTimeout + 120 - 30);
  EXPECT_LE(held, 2 * kTimeout + 120);
}

TEST_F(LeaseLimitTest, JobsSharingAGpuKeepTheirLeaseWhileTheWorkerLetsThemWait) {
  // Four jobs a GPU: the worker lets a job run its timeout and wait three
  // others' (worker.cc), 4 x 600 s; the lease lasts past that.
  const std::string w = Register("shared", 4);
  const int64_t held = SecondsHeld(w, LeaseOne(w), 10 * kTimeout);
  EXPECT_GT(held, 4 * kTimeout);
  // Told to stop at the heartbeat whose renewal would pass the limit.
  EXPECT_GT(held * 1000, JobWallLimitMs(kTimeout, 4) - 30'000);
  EXPECT_LE(held * 1000, JobWallLimitMs(kTimeout, 4));
}

TEST_F(LeaseLimitTest, TheCampaignsOwnTimeoutSetsTheLimit) {
  // An hour's timeout (the job record keeps none: the coordinator knows it
  // from the campaign it handed the job out for), shared by two jobs.
  const std::string w = Register("slow", 2);
  const int64_t held = SecondsHeld(w, LeaseOne(w, 3600), 10 * 3600);
  EXPECT_GT(held * 1000, JobWallLimitMs(3600, 2) - 30'000);
  EXPECT_LE(held * 1000, JobWallLimitMs(3600, 2));
}

TEST_F(LeaseLimitTest, AWorkerClaimingManyJobsAGpuIsBelievedUpToTheMaximum) {
  const std::string w = Register("liar", 1000);
  const int64_t held = SecondsHeld(w, LeaseOne(w), 100 * kTimeout);
  EXPECT_GT(held * 1000, JobWallLimitMs(kTimeout, kMaxJobsPerGpu) - 30'000);
  EXPECT_LE(held * 1000, JobWallLimitMs(kTimeout, kMaxJobsPerGpu));
}

}  // namespace
}  // namespace ratchet::coordinator
