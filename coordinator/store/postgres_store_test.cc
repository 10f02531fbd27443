// PostgreSQL backend specifics, against a real server per test: restarts and
// kill -9 of the server, many acquirers across store instances, migrations,
// and how store URLs are opened. (The behaviour every backend shares is in
// store_test.cc's conformance suite.)

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <chrono>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "coordinator/store/status_test_macros.h"
#include "coordinator/store/store.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"

namespace ratchet::store {
namespace {

using ::ratchet::testing::PostgresServer;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (!PostgresServer::Available(&why)) GTEST_SKIP() << why;
    absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_OK(server_->CreateDatabase("ratchet"));
    url_ = server_->Url("ratchet");
  }

  std::unique_ptr<Store> Open(int reconnect_timeout_ms = 30'000, int connections = 8) {
    PostgresOptions options;
    options.reconnect_timeout_ms = reconnect_timeout_ms;
    options.connections = connections;
    absl::StatusOr<std::unique_ptr<Store>> store = OpenPostgresStore(url_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? std::move(*store) : nullptr;
  }

  // A running campaign with `jobs` queued evaluation jobs, created in one
  // transaction (one commit, not one per job).
  static int64_t Seed(Store* store, int jobs) {
    int64_t campaign = 0;
    absl::Status s = store->Transaction([&]() -> absl::Status {
      v1::Campaign c;
      c.set_state(v1::CAMPAIGN_RUNNING);
      absl::StatusOr<int64_t> id = store->CreateCampaign(c);
      if (!id.ok()) return id.status();
      campaign = *id;
      for (int i = 0; i < jobs; ++i) {
        v1::Job j;
        j.set_campaign_id(campaign);
        j.set_kind(v1::JOB_EVALUATE);
        j.set_state(v1::JOB_QUEUED);
        if (absl::Status st = store->CreateJob(j).status(); !st.ok()) return st;
      }
      return absl::OkStatus();
    });
    EXPECT_TRUE(s.ok()) << s;
    return campaign;
  }

  static v1::Evaluation Eval(double score) {
    v1::Evaluation e;
    e.set_outcome(v1::OUTCOME_OK);
    e.set_score(score);
    return e;
  }

  std::unique_ptr<PostgresServer> server_;
  std::string url_;
};

// ---------------------------------------------------------------------------
// Connection loss.

TEST_F(PostgresStoreTest, RecoversByItselfWhenTheServerRestartsBetweenCalls) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  int64_t campaign = Seed(store.get(), 20);
  // Several pooled connections are open when the server goes away.
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&] { EXPECT_TRUE(store->ListJobs(campaign).ok()); });
    }
    for (std::thread& t : threads) t.join();
  }

  ASSERT_OK(server_->Stop());  // what pg_ctl stop -m fast does
  ASSERT_OK(server_->Restart());

  // Every call works first time: reads, writes, transactions, from several
  // threads (each on a connection that the restart closed).
  ASSERT_OK_AND_ASSIGN(v1::Campaign c, store->GetCampaign(campaign));
  EXPECT_EQ(c.state(), v1::CAMPAIGN_RUNNING);
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<std::optional<v1::Job>> job =
          store->AcquireJob(absl::StrCat("w", i), 1000, 60'000, false);
      if (!job.ok() || !job->has_value()) {
        ADD_FAILURE() << (job.ok() ? "no job" : job.status().ToString());
        ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK(store->Transaction([&]() -> absl::Status {
    absl::StatusOr<v1::Campaign> got = store->GetCampaign(campaign);
    if (!got.ok()) return got.status();
    got->set_message("after restart");
    return store->UpdateCampaign(*got);
  }));
  ASSERT_OK_AND_ASSIGN(c, store->GetCampaign(campaign));
  EXPECT_EQ(c.message(), "after restart");
}

TEST_F(PostgresStoreTest, ACallWaitsForTheServerToComeBack) {
  std::unique_ptr<Store> store = Open(/*reconnect_timeout_ms=*/20'000);
  ASSERT_NE(store, nullptr);
  int64_t campaign = Seed(store.get(), 1);
  ASSERT_OK(server_->Stop());

  absl::StatusOr<std::optional<v1::Job>> job;
  int64_t took_ms = 0;
  std::thread caller([&] {
    const int64_t start = NowMs();
    job = store->AcquireJob("w", 1000, 60'000, false);
    took_ms = NowMs() - start;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_OK(server_->Restart());
  caller.join();

  ASSERT_TRUE(job.ok()) << job.status();
  ASSERT_TRUE(job->has_value());
  EXPECT_EQ((*job)->campaign_id(), campaign);
  EXPECT_GE(took_ms, 1000);  // it really waited for the server
}

// kill -9 of the postmaster while workers acquire and complete jobs: every
// call fails with Unavailable within the bounded wait, nothing acknowledged is
// lost, and the same store works again once the server is back.
TEST_F(PostgresStoreTest, Kill9OfTheServerGivesUnavailableThenRecovers) {
  constexpr int kBoundMs = 2000;
  std::unique_ptr<Store> store = Open(kBoundMs);
  ASSERT_NE(store, nullptr);
  int64_t campaign = Seed(store.get(), 2000);

  absl::Mutex mu;
  std::map<int64_t, std::string> acquired;  // acknowledged leases
  std::set<int64_t> completed;              // acknowledged completions
  std::vector<absl::Status> errors;
  std::vector<int64_t> error_at_ms;
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      const std::string id = absl::StrCat("w", w);
      while (!stop) {
        absl::StatusOr<std::optional<v1::Job>> job = store->AcquireJob(id, 1000, 600'000, false);
        absl::Status status = job.status();
        if (job.ok() && job->has_value()) {
          {
            absl::MutexLock l(&mu);
            acquired[(*job)->id()] = id;
          }
          status = store->CompleteJob((*job)->id(), id, Eval(0.5)).status();
          if (status.ok()) {
            absl::MutexLock l(&mu);
            completed.insert((*job)->id());
          }
        }
        if (!status.ok()) {
          absl::MutexLock l(&mu);
          errors.push_back(status);
          error_at_ms.push_back(NowMs());
          return;
        }
      }
    });
  }
  // Let them run for a while, then kill the postmaster mid-run.
  const int64_t wait_until = NowMs() + 20'000;
  while (NowMs() < wait_until) {
    {
      absl::MutexLock l(&mu);
      if (completed.size() >= 40) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const int64_t killed_at = NowMs();
  ASSERT_OK(server_->Kill(SIGKILL));
  for (std::thread& t : workers) t.join();

  ASSERT_EQ(errors.size(), 4u);
  for (size_t i = 0; i < errors.size(); ++i) {
    EXPECT_EQ(errors[i].code(), absl::StatusCode::kUnavailable) << errors[i];
    // The bound plus room for a call in flight and a slow machine.
    EXPECT_LT(error_at_ms[i] - killed_at, kBoundMs + 3000) << errors[i];
  }
  EXPECT_GE(completed.size(), 40u);

  // The server is down: a fresh call gives up after the bound too.
  int64_t start = NowMs();
  absl::StatusOr<v1::Campaign> down = store->GetCampaign(campaign);
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  EXPECT_GE(NowMs() - start, kBoundMs - 100);
  EXPECT_LT(NowMs() - start, kBoundMs + 3000);
  EXPECT_NE(down.status().message().find("cannot connect"), std::string::npos) << down.status();

  // Back up (crash recovery from the WAL): the same store recovers.
  ASSERT_OK(server_->Restart());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Job> jobs, store->ListJobs(campaign));
  ASSERT_EQ(jobs.size(), 2000u);
  std::map<int64_t, v1::Job> by_id;
  for (const v1::Job& j : jobs) by_id[j.id()] = j;
  for (const auto& [id, worker] : acquired) {
    EXPECT_NE(by_id[id].state(), v1::JOB_QUEUED) << "acknowledged lease of job " << id << " lost";
    EXPECT_EQ(by_id[id].worker_id(), worker);
  }
  for (int64_t id : completed) {
    EXPECT_EQ(by_id[id].state(), v1::JOB_DONE) << "acknowledged completion of job " << id;
    ASSERT_OK_AND_ASSIGN(std::optional<v1::Evaluation> e, store->GetEvaluationForJob(id));
    EXPECT_TRUE(e.has_value()) << "evaluation of job " << id << " lost";
  }
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Evaluation> evals, store->ListEvaluations(campaign));
  for (const v1::Evaluation& e : evals) {
    EXPECT_EQ(by_id[e.job_id()].state(), v1::JOB_DONE) << "evaluation without a done job";
  }
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Job> next, store->AcquireJob("w9", 1000, 1000, false));
  EXPECT_TRUE(next.has_value());
}

TEST_F(PostgresStoreTest, LostConnectionFailsTheTransactionWithUnavailable) {
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  int64_t kept = Seed(store.get(), 0);
  int64_t inside = 0;
  absl::Status s = store->Transaction([&]() -> absl::Status {
    absl::StatusOr<int64_t> id = store->CreateCampaign(v1::Campaign());
    if (!id.ok()) return id.status();
    inside = *id;
    // The server restarts under the open transaction.
    if (absl::Status st = server_->Stop(); !st.ok()) return absl::InternalError(st.ToString());
    if (absl::Status st = server_->Restart(); !st.ok()) return absl::InternalError(st.ToString());
    absl::StatusOr<v1::Campaign> got = store->GetCampaign(kept);
    if (!got.ok()) return got.status();
    return store->UpdateCampaign(*got);
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  ASSERT_NE(inside, 0);

  // Nothing of it was committed, and the store goes on.
  EXPECT_EQ(store->GetCampaign(inside).status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> all, store->ListCampaigns());
  EXPECT_EQ(all.size(), 1u);
  ASSERT_OK(store->Transaction(
      [&]() -> absl::Status { return store->CreateCampaign(v1::Campaign()).status(); }));
}

// Workers keep acquiring and completing while the server is stopped and
// started again: they carry on by themselves, and at the end every job is done
// exactly once with every acknowledged completion stored.
TEST_F(PostgresStoreTest, RestartUnderLoadLosesNothingAcknowledged) {
  constexpr int kJobs = 300;
  std::unique_ptr<Store> store = Open(/*reconnect_timeout_ms=*/30'000);
  ASSERT_NE(store, nullptr);
  int64_t campaign = Seed(store.get(), kJobs);

  absl::Mutex mu;
  std::set<int64_t> completed;
  std::vector<absl::Status> errors;
  std::vector<std::thread> workers;
  for (int w = 0; w < 8; ++w) {
    workers.emplace_back([&, w] {
      const std::string id = absl::StrCat("w", w);
      while (true) {
        absl::StatusOr<std::optional<v1::Job>> job = store->AcquireJob(id, 1000, 600'000, false);
        if (job.ok() && !job->has_value()) return;
        absl::Status status = job.status();
        if (job.ok()) status = store->CompleteJob((*job)->id(), id, Eval(0.5)).status();
        absl::MutexLock l(&mu);
        if (status.ok()) {
          completed.insert((*job)->id());
        } else {
          errors.push_back(status);
        }
      }
    });
  }
  const int64_t wait_until = NowMs() + 20'000;
  while (NowMs() < wait_until) {
    {
      absl::MutexLock l(&mu);
      if (completed.size() >= 30) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_OK(server_->Stop());
  ASSERT_OK(server_->Restart());
  for (std::thread& t : workers) t.join();

  // Only a commit whose answer the shutdown cut off may fail, and it says so.
  for (const absl::Status& e : errors) {
    EXPECT_EQ(e.code(), absl::StatusCode::kUnavailable) << e;
    EXPECT_NE(e.message().find("outcome is unknown"), std::string::npos) << e;
  }
  // Such a job may still be leased to a worker that never heard so: requeue
  // and finish it as the coordinator's expiry sweep would.
  ASSERT_OK(store->ExpireLeases(std::numeric_limits<int64_t>::max(), 100).status());
  while (true) {
    ASSERT_OK_AND_ASSIGN(std::optional<v1::Job> job, store->AcquireJob("last", 1000, 1000, false));
    if (!job) break;
    ASSERT_OK(store->CompleteJob(job->id(), "last", Eval(0.5)).status());
  }

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Job> jobs, store->ListJobs(campaign));
  ASSERT_EQ(jobs.size(), static_cast<size_t>(kJobs));
  for (const v1::Job& j : jobs) EXPECT_EQ(j.state(), v1::JOB_DONE) << j.id();
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Evaluation> evals, store->ListEvaluations(campaign));
  EXPECT_EQ(evals.size(), static_cast<size_t>(kJobs));
  std::set<int64_t> evaluated;
  for (const v1::Evaluation& e : evals) evaluated.insert(e.job_id());
  EXPECT_EQ(evaluated.size(), static_cast<size_t>(kJobs));
  for (int64_t id : completed) EXPECT_EQ(evaluated.count(id), 1u) << id;
}

// ---------------------------------------------------------------------------
// Many acquirers.

// 16 threads spread over 4 store instances (as 4 coordinators sharing one
// database would be): no job is handed to two workers, none is left behind,
// and a report delivered twice, by two instances at once, is applied once.
TEST_F(PostgresStoreTest, SixteenConcurrentAcquirersNeverShareAJob) {
  constexpr int kStores = 4;
  constexpr int kThreadsPerStore = 4;
  constexpr int kJobs = 400;
  std::vector<std::unique_ptr<Store>> stores;
  for (int i = 0; i < kStores; ++i) {
    stores.push_back(Open(30'000, kThreadsPerStore));
    ASSERT_NE(stores.back(), nullptr);
  }
  int64_t campaign = Seed(stores[0].get(), kJobs);

  absl::Mutex mu;
  std::vector<std::pair<int64_t, std::string>> taken;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < kStores; ++s) {
    for (int t = 0; t < kThreadsPerStore; ++t) {
      threads.emplace_back([&, s, t] {
        const std::string worker = absl::StrCat("s", s, "-t", t);
        while (true) {
          absl::StatusOr<std::optional<v1::Job>> job =
              stores[s]->AcquireJob(worker, 1000, 600'000, false);
          if (!job.ok()) {
            ADD_FAILURE() << job.status();
            ++errors;
            return;
          }
          if (!job->has_value()) return;
          absl::MutexLock l(&mu);
          taken.emplace_back((*job)->id(), worker);
        }
      });
    }
  }
  for (std::thread& t : threads) t.join();
  threads.clear();
  ASSERT_EQ(errors.load(), 0);
  ASSERT_EQ(taken.size(), static_cast<size_t>(kJobs));
  std::set<int64_t> unique;
  std::set<std::string> workers_used;
  for (const auto& [job, worker] : taken) {
    unique.insert(job);
    workers_used.insert(worker);
  }
  EXPECT_EQ(unique.size(), static_cast<size_t>(kJobs));
  EXPECT_GT(workers_used.size(), 1u);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Job> jobs, stores[0]->ListJobs(campaign));
  std::map<int64_t, v1::Job> by_id;
  for (const v1::Job& j : jobs) by_id[j.id()] = j;
  for (const auto& [job, worker] : taken) {
    EXPECT_EQ(by_id[job].state(), v1::JOB_LEASED);
    EXPECT_EQ(by_id[job].worker_id(), worker);
    EXPECT_EQ(by_id[job].attempts(), 1);
  }

  // Every job is reported twice at the same time through two instances.
  std::atomic<int> ok{0}, duplicate{0}, other{0};
  for (int s = 0; s < 2; ++s) {
    threads.emplace_back([&, s] {
      for (const auto& [job, worker] : taken) {
        absl::StatusOr<int64_t> r = stores[s == 0 ? 1 : 2]->CompleteJob(job, worker, Eval(0.1));
        if (r.ok()) {
          ++ok;
        } else if (absl::IsAlreadyExists(r.status())) {
          ++duplicate;
        } else {
          ADD_FAILURE() << r.status();
          ++other;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), kJobs);
  EXPECT_EQ(duplicate.load(), kJobs);
  EXPECT_EQ(other.load(), 0);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Evaluation> evals, stores[3]->ListEvaluations(campaign));
  EXPECT_EQ(evals.size(), static_cast<size_t>(kJobs));
}

// Read-modify-write transactions of two store instances (two coordinators)
// on one record: the record read inside a transaction is locked, so neither
// overwrites the other's update.
TEST_F(PostgresStoreTest, TransactionsOfTwoInstancesDoNotLoseUpdates) {
  constexpr int kIncrements = 25;
  std::unique_ptr<Store> a = Open();
  std::unique_ptr<Store> b = Open();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  int64_t campaign = Seed(a.get(), 0);
  std::atomic<int> failures{0};
  auto increment = [&](Store* store) {
    for (int i = 0; i < kIncrements; ++i) {
      absl::Status s = store->Transaction([&]() -> absl::Status {
        absl::StatusOr<v1::Campaign> c = store->GetCampaign(campaign);
        if (!c.ok()) return c.status();
        // Widen the window between read and write.
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
        c->set_evaluations(c->evaluations() + 1);
        return store->UpdateCampaign(*c);
      });
      if (!s.ok()) {
        ADD_FAILURE() << s;
        ++failures;
      }
    }
  };
  std::thread ta(increment, a.get());
  std::thread tb(increment, b.get());
  ta.join();
  tb.join();
  EXPECT_EQ(failures.load(), 0);
  ASSERT_OK_AND_ASSIGN(v1::Campaign c, a->GetCampaign(campaign));
  EXPECT_EQ(c.evaluations(), 2 * kIncrements);
}

// ---------------------------------------------------------------------------
// Schema.

TEST_F(PostgresStoreTest, SchemaIsMigratedOnceEvenByConcurrentOpens) {
  std::vector<std::thread> threads;
  std::atomic<int> opened{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<std::unique_ptr<Store>> s = OpenPostgresStore(url_);
      if (s.ok()) {
        ++opened;
      } else {
        ADD_FAILURE() << s.status();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(opened.load(), 4);
  ASSERT_OK_AND_ASSIGN(std::string version,
                       server_->Query("ratchet", "SELECT version FROM schema_version"));
  EXPECT_GE(std::atoi(version.c_str()), 1) << version;
  ASSERT_OK_AND_ASSIGN(std::string rows,
                       server_->Query("ratchet", "SELECT COUNT(*) FROM schema_version"));
  EXPECT_EQ(rows, "1");

  // Data written before a reopen is still there; reopening migrates nothing.
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->CreateCampaign(v1::Campaign()).status());
  }
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> all, store->ListCampaigns());
  EXPECT_EQ(all.size(), 1u);
  ASSERT_OK_AND_ASSIGN(rows, server_->Query("ratchet", "SELECT COUNT(*) FROM schema_version"));
  EXPECT_EQ(rows, "1");
  ASSERT_OK_AND_ASSIGN(std::string again,
                       server_->Query("ratchet", "SELECT version FROM schema_version"));
  EXPECT_EQ(again, version);
}

// A database of schema version 7 (campaigns without owner, size and summary
// columns) gets them filled when opened.
TEST_F(PostgresStoreTest, AnOlderDatabaseGetsItsCampaignColumnsFilledOnOpen) {
  v1::Campaign c;
  c.mutable_spec()->set_name("before owners");
  c.mutable_spec()->set_owner("alice");
  c.mutable_spec()->mutable_problem()->set_workload_jsonl(std::string(100'000, 'w'));
  c.set_state(v1::CAMPAIGN_RUNNING);
  {
    std::unique_ptr<Store> store = Open();
    ASSERT_NE(store, nullptr);
    ASSERT_OK(store->CreateCampaign(c).status());
  }
  for (const char* sql :
       {"DROP INDEX campaigns_by_owner", "ALTER TABLE campaigns DROP COLUMN owner",
        "ALTER TABLE campaigns DROP COLUMN spec_bytes", "ALTER TABLE campaigns DROP COLUMN summary",
        "UPDATE schema_version SET version = 7"})
    ASSERT_TRUE(server_->Query("ratchet", sql).ok()) << sql;
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string version,
                       server_->Query("ratchet", "SELECT version FROM schema_version"));
  EXPECT_EQ(version, "8");
  ASSERT_OK_AND_ASSIGN(Store::OwnerUsage alice, store->GetOwnerUsage("alice"));
  EXPECT_EQ(alice.active_campaigns, 1);
  EXPECT_EQ(alice.spec_bytes, static_cast<int64_t>(c.spec().ByteSizeLong()));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> listed, store->ListCampaignSummaries());
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].spec().name(), "before owners");
  EXPECT_TRUE(listed[0].spec().problem().workload_jsonl().empty());
}

TEST_F(PostgresStoreTest, RefusesASchemaNewerThanItKnows) {
  ASSERT_NE(Open(), nullptr);
  ASSERT_OK(server_->Query("ratchet", "UPDATE schema_version SET version = 99").status());
  absl::StatusOr<std::unique_ptr<Store>> s = OpenPostgresStore(url_);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << s.status();
  EXPECT_NE(s.status().message().find("99"), std::string::npos) << s.status();
}

TEST_F(PostgresStoreTest, SessionsCommitSynchronouslyEvenIfTheServerDefaultIsOff) {
  // A server configured for speed over durability does not make the store's
  // acknowledged writes losable: the store turns synchronous_commit back on.
  ASSERT_OK(server_->Query("postgres",
                           "ALTER DATABASE ratchet SET synchronous_commit = off").status());
  std::unique_ptr<Store> store = Open();
  ASSERT_NE(store, nullptr);
  int64_t campaign = Seed(store.get(), 1);
  // A kill -9 right after the acknowledgement keeps the write.
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Job> job, store->AcquireJob("w", 1, 1000, false));
  ASSERT_TRUE(job.has_value());
  ASSERT_OK(server_->Kill(SIGKILL));
  ASSERT_OK(server_->Restart());
  ASSERT_OK_AND_ASSIGN(v1::Job stored, store->GetJob(job->id()));
  EXPECT_EQ(stored.state(), v1::JOB_LEASED);
  EXPECT_EQ(stored.campaign_id(), campaign);
}

// ---------------------------------------------------------------------------
// Opening by URL.

TEST_F(PostgresStoreTest, OpenStoreDispatchesOnTheUrl) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> pg, OpenStore(url_));
  ASSERT_OK(pg->CreateCampaign(v1::Campaign()).status());
  // "postgres://" is the same as "postgresql://".
  std::string short_form = "postgres" + url_.substr(std::string("postgresql").size());
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> again, OpenStore(short_form));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> all, again->ListCampaigns());
  EXPECT_EQ(all.size(), 1u);

  const std::string sqlite_path = server_->dir() + "/store.db";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> lite, OpenStore("sqlite:" + sqlite_path));
  ASSERT_OK_AND_ASSIGN(all, lite->ListCampaigns());
  EXPECT_TRUE(all.empty());
  ASSERT_OK(lite->CreateCampaign(v1::Campaign()).status());
  lite.reset();
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> plain, OpenStore(sqlite_path));
  ASSERT_OK_AND_ASSIGN(all, plain->ListCampaigns());
  EXPECT_EQ(all.size(), 1u);

  absl::StatusOr<std::unique_ptr<Store>> bad = OpenStore("mysql://localhost/x");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_NE(bad.status().message().find("mysql://"), std::string::npos) << bad.status();
}

TEST_F(PostgresStoreTest, WorksOverLoopbackTcp) {
  PostgresServer::Options options;
  options.tcp = true;
  absl::StatusOr<std::unique_ptr<PostgresServer>> server = PostgresServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_OK((*server)->CreateDatabase("ratchet"));
  const std::string url = (*server)->TcpUrl("ratchet");
  ASSERT_TRUE(absl::StartsWith(url, "postgresql://postgres@127.0.0.1:")) << url;
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenStore(url));
  int64_t campaign = Seed(store.get(), 3);
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Job> job, store->AcquireJob("w", 1, 1000, false));
  ASSERT_TRUE(job.has_value());
  ASSERT_OK(store->CompleteJob(job->id(), "w", Eval(1)).status());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Evaluation> evals, store->ListEvaluations(campaign));
  EXPECT_EQ(evals.size(), 1u);
  // The session is a TCP one.
  ASSERT_OK_AND_ASSIGN(
      std::string tcp_sessions,
      (*server)->Query("postgres",
                       "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = 'ratchet' "
                       "AND client_addr IS NOT NULL AND application_name = 'ratchet'"));
  EXPECT_NE(tcp_sessions, "0");
}

TEST_F(PostgresStoreTest, BadUrlAndUnreachableServerSayWhy) {
  absl::StatusOr<std::unique_ptr<Store>> bad = OpenStore("postgresql:///x?nonsense=1");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << bad.status();
  EXPECT_NE(bad.status().message().find("nonsense"), std::string::npos) << bad.status();

  // Nobody listens in an empty directory; the error names the place and
  // hides the password.
  PostgresOptions options;
  options.reconnect_timeout_ms = 500;
  const int64_t start = NowMs();
  absl::StatusOr<std::unique_ptr<Store>> down = OpenPostgresStore(
      absl::StrCat("postgresql://u:secret@/ratchet?host=", server_->dir(), "/nowhere"), options);
  EXPECT_LT(NowMs() - start, 5000);
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable) << down.status();
  EXPECT_NE(down.status().message().find("cannot connect"), std::string::npos) << down.status();
  EXPECT_NE(down.status().message().find("/nowhere"), std::string::npos) << down.status();
  EXPECT_EQ(down.status().message().find("secret"), std::string::npos) << down.status();
}

TEST(RedactStoreUrlTest, HidesPasswordsOnly) {
  EXPECT_EQ(RedactStoreUrl("postgresql://ratchet:s3cr:et@db.example:5432/ratchet"),
            "postgresql://ratchet:***@db.example:5432/ratchet");
  EXPECT_EQ(RedactStoreUrl("postgresql://db/ratchet?user=r&password=s3cret&sslmode=require"),
            "postgresql://db/ratchet?user=r&password=***&sslmode=require");
  EXPECT_EQ(RedactStoreUrl("host=db password=s3cret dbname=ratchet"),
            "host=db password=*** dbname=ratchet");
  EXPECT_EQ(RedactStoreUrl("postgresql://ratchet@db/ratchet"), "postgresql://ratchet@db/ratchet");
  EXPECT_EQ(RedactStoreUrl("postgresql:///ratchet?host=/tmp/x"),
            "postgresql:///ratchet?host=/tmp/x");
  EXPECT_EQ(RedactStoreUrl("/var/lib/ratchet/ratchet.db"), "/var/lib/ratchet/ratchet.db");
}

}  // namespace
}  // namespace ratchet::store
