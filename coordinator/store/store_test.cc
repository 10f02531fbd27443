// Conformance suite for Store backends, plus SQLite-specific tests.
//
// The suite is written against the Store interface only and is parameterised
// over a Backend (how to open a store at a location), so another backend
// (PostgreSQL) runs the same tests by adding one INSTANTIATE_TEST_SUITE_P.

#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "coordinator/store/status_test_macros.h"
#include "coordinator/store/store.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/support/postgres_server.h"

namespace ratchet::store {
namespace {

using ::google::protobuf::util::MessageDifferencer;

// A fresh directory, removed with everything in it at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ratchet_store_XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    if (p == nullptr) {
      ADD_FAILURE() << "mkdtemp failed";
      return;
    }
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// How the suite gets a store.
struct Backend {
  std::string name;
  // Opens the store kept at `location` (a file path in a fresh directory).
  std::function<absl::StatusOr<std::unique_ptr<Store>>(const std::string& location)> open;
  // Whether opening `location` again finds what was written before.
  bool persistent;
  // Why the backend cannot run here ("" when it can): the test is skipped.
  std::function<std::string()> unavailable = [] { return std::string(); };
};

// Keeps gtest from printing a Backend as raw bytes.
void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

class StoreTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (std::string why = GetParam().unavailable(); !why.empty()) GTEST_SKIP() << why;
    location_ = dir_.path() + "/store.db";
    Open();
  }

  void Open() {
    absl::StatusOr<std::unique_ptr<Store>> s = GetParam().open(location_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }

  // Destroys the store and opens it again at the same location.
  void Reopen() {
    store_.reset();
    Open();
  }

  int64_t NewCampaign(v1::CampaignState state = v1::CAMPAIGN_RUNNING,
                      const std::string& name = "c") {
    v1::Campaign c;
    c.set_id(999);  // ignored
    c.mutable_spec()->set_name(name);
    c.set_state(state);
    absl::StatusOr<int64_t> id = store_->CreateCampaign(c);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }

  int64_t NewCandidate(int64_t campaign_id, const std::string& hash) {
    v1::Candidate c;
    c.set_campaign_id(campaign_id);
    c.set_content_hash(hash);
    (*c.mutable_solution()->mutable_files())["kernel.cu"] = "// " + hash;
    absl::StatusOr<int64_t> id = store_->CreateCandidate(c);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }

  int64_t NewJob(int64_t campaign_id, int64_t candidate_id,
                 v1::JobKind kind = v1::JOB_EVALUATE, const std::string& avoid = "",
                 int64_t verification_id = 0) {
    v1::Job j;
    j.set_campaign_id(campaign_id);
    j.set_candidate_id(candidate_id);
    j.set_kind(kind);
    j.set_state(v1::JOB_QUEUED);
    j.set_avoid_worker_id(avoid);
    j.set_verification_id(verification_id);
    j.set_seed(42);
    absl::StatusOr<int64_t> id = store_->CreateJob(j);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }

  // Acquires a job for `worker` and returns its id, or 0 when there is none.
  int64_t Acquire(const std::string& worker, int64_t now_ms = 1000, int64_t lease_ms = 100,
                  bool allow_avoided = false) {
    absl::StatusOr<std::optional<v1::Job>> j =
        store_->AcquireJob(worker, now_ms, lease_ms, allow_avoided);
    EXPECT_TRUE(j.ok()) << j.status();
    if (!j.ok() || !j->has_value()) return 0;
    return (*j)->id();
  }

  v1::Evaluation Eval(double score) {
    v1::Evaluation e;
    e.set_outcome(v1::OUTCOME_OK);
    e.set_score(score);
    e.add_workloads()->set_axes("M=256");
    return e;
  }

  TempDir dir_;
  std::string location_;
  std::unique_ptr<Store> store_;
};

// ---------------------------------------------------------------------------
// Campaigns.

TEST_P(StoreTest, CampaignIdsAreAssignedAndRoundTrip) {
  v1::Campaign c;
  c.set_id(77);
  c.mutable_spec()->set_name("gemm");
  c.mutable_spec()->mutable_problem()->set_definition_json("{}");
  c.set_state(v1::CAMPAIGN_RUNNING);
  c.set_baseline_score(-1);
  (*c.mutable_outcomes())["ok"] = 3;
  ASSERT_OK_AND_ASSIGN(int64_t a, store_->CreateCampaign(c));
  ASSERT_OK_AND_ASSIGN(int64_t b, store_->CreateCampaign(c));
  EXPECT_GT(a, 0);
  EXPECT_GT(b, a);

  ASSERT_OK_AND_ASSIGN(v1::Campaign got, store_->GetCampaign(a));
  EXPECT_EQ(got.id(), a);
  c.set_id(a);
  EXPECT_TRUE(MessageDifferencer::Equals(got, c)) << got.DebugString();
}

TEST_P(StoreTest, CampaignUpdateListAndNotFound) {
  int64_t a = NewCampaign(v1::CAMPAIGN_RUNNING, "a");
  int64_t b = NewCampaign(v1::CAMPAIGN_RUNNING, "b");

  ASSERT_OK_AND_ASSIGN(v1::Campaign c, store_->GetCampaign(a));
  c.set_state(v1::CAMPAIGN_FINISHED);
  c.set_message("budget reached");
  ASSERT_OK(store_->UpdateCampaign(c));
  ASSERT_OK_AND_ASSIGN(v1::Campaign got, store_->GetCampaign(a));
  EXPECT_EQ(got.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(got.message(), "budget reached");

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> all, store_->ListCampaigns());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id(), a);
  EXPECT_EQ(all[1].id(), b);
  EXPECT_EQ(all[1].spec().name(), "b");

  EXPECT_EQ(store_->GetCampaign(b + 100).status().code(), absl::StatusCode::kNotFound);
  c.set_id(b + 100);
  EXPECT_EQ(store_->UpdateCampaign(c).code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(all, store_->ListCampaigns());
  EXPECT_EQ(all.size(), 2u);  // the failed update created nothing
}

TEST_P(StoreTest, SummariesAndOwnerUsageLeaveTheSpecsFilesOut) {
  // Two of alice's campaigns with a megabyte problem and baseline each, and
  // one of bob's.
  auto create = [&](const std::string& owner, v1::CampaignState state) {
    v1::Campaign c;
    c.mutable_spec()->set_name(owner + "'s");
    c.mutable_spec()->set_owner(owner);
    c.mutable_spec()->mutable_problem()->set_name("matmul");
    c.mutable_spec()->mutable_problem()->set_workload_jsonl(std::string(1 << 20, 'w'));
    (*c.mutable_spec()->mutable_baseline()->mutable_files())["kernel.cu"] =
        std::string(1 << 20, 'k');
    c.set_state(state);
    absl::StatusOr<int64_t> id = store_->CreateCampaign(c);
    EXPECT_TRUE(id.ok()) << id.status();
    c.set_id(id.value_or(0));
    return c;
  };
  v1::Campaign a1 = create("alice", v1::CAMPAIGN_RUNNING);
  v1::Campaign a2 = create("alice", v1::CAMPAIGN_PAUSED);
  create("bob", v1::CAMPAIGN_RUNNING);
  const int64_t spec_bytes = static_cast<int64_t>(a1.spec().ByteSizeLong());
  ASSERT_GT(spec_bytes, 2 << 20);

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> listed, store_->ListCampaignSummaries());
  ASSERT_EQ(listed.size(), 3u);
  EXPECT_EQ(listed[0].id(), a1.id());
  EXPECT_EQ(listed[1].state(), v1::CAMPAIGN_PAUSED);
  for (const v1::Campaign& c : listed) {
    EXPECT_EQ(c.spec().problem().name(), "matmul");
    EXPECT_TRUE(c.spec().problem().workload_jsonl().empty());
    EXPECT_FALSE(c.spec().has_baseline());
    EXPECT_LT(c.ByteSizeLong(), 1000u);
  }

  // Two of alice's jobs open, one done, one of bob's.
  int64_t cand = NewCandidate(a1.id(), "h");
  NewJob(a1.id(), cand);
  NewJob(a2.id(), cand);
  int64_t done = NewJob(a1.id(), cand);
  ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(done));
  j.set_state(v1::JOB_DONE);
  ASSERT_OK(store_->UpdateJob(j));
  NewJob(listed[2].id(), cand);
  ASSERT_OK_AND_ASSIGN(Store::OwnerUsage alice, store_->GetOwnerUsage("alice"));
  EXPECT_EQ(alice.active_campaigns, 2);
  EXPECT_EQ(alice.spec_bytes, 2 * spec_bytes);
  EXPECT_EQ(alice.open_jobs, 2);
  ASSERT_OK_AND_ASSIGN(Store::OwnerUsage nobody, store_->GetOwnerUsage("carol"));
  EXPECT_EQ(nobody.active_campaigns, 0);
  EXPECT_EQ(nobody.spec_bytes, 0);
  EXPECT_EQ(nobody.open_jobs, 0);

  // A finished campaign holds nothing against its owner; the columns follow
  // every update.
  a2.set_state(v1::CAMPAIGN_FINISHED);
  ASSERT_OK(store_->UpdateCampaign(a2));
  ASSERT_OK_AND_ASSIGN(alice, store_->GetOwnerUsage("alice"));
  EXPECT_EQ(alice.active_campaigns, 1);
  EXPECT_EQ(alice.spec_bytes, spec_bytes);
  EXPECT_EQ(alice.open_jobs, 1);
  ASSERT_OK_AND_ASSIGN(listed, store_->ListCampaignSummaries());
  EXPECT_EQ(listed[1].state(), v1::CAMPAIGN_FINISHED);
}

// ---------------------------------------------------------------------------
// Research threads.

TEST_P(StoreTest, ThreadsListByIndexAndUpdate) {
  int64_t c = NewCampaign();
  int64_t other = NewCampaign();
  std::vector<int64_t> ids;
  for (int index : {2, 0, 1}) {
    v1::ResearchThread t;
    t.set_campaign_id(c);
    t.set_index(index);
    ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateThread(t));
    ids.push_back(id);
  }
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ResearchThread> threads, store_->ListThreads(c));
  ASSERT_EQ(threads.size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(threads[i].index(), i);
  EXPECT_EQ(threads[0].id(), ids[1]);
  EXPECT_EQ(threads[2].id(), ids[0]);

  v1::ResearchThread t = threads[0];
  t.set_incumbent_candidate_id(5);
  t.set_incumbent_score(0.7);
  t.set_evaluations(3);
  ASSERT_OK(store_->UpdateThread(t));
  ASSERT_OK_AND_ASSIGN(threads, store_->ListThreads(c));
  EXPECT_TRUE(MessageDifferencer::Equals(threads[0], t)) << threads[0].DebugString();

  ASSERT_OK_AND_ASSIGN(threads, store_->ListThreads(other));
  EXPECT_TRUE(threads.empty());

  t.set_id(ids[0] + 100);
  EXPECT_EQ(store_->UpdateThread(t).code(), absl::StatusCode::kNotFound);
}

// ---------------------------------------------------------------------------
// Candidates.

TEST_P(StoreTest, CandidateRoundTripAndNotFound) {
  int64_t c = NewCampaign();
  v1::Candidate cand;
  cand.set_id(5);  // ignored
  cand.set_campaign_id(c);
  cand.set_thread_id(3);
  cand.set_parent_id(1);
  (*cand.mutable_solution()->mutable_files())["k.cu"] = std::string("a\0b", 3);
  (*cand.mutable_solution()->mutable_knobs())["tile"] = "64";
  cand.set_description("bigger tiles");
  cand.set_content_hash("h1");
  cand.set_status(v1::CANDIDATE_PROPOSED);
  cand.set_score(-1);
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateCandidate(cand));
  ASSERT_OK_AND_ASSIGN(v1::Candidate got, store_->GetCandidate(id));
  cand.set_id(id);
  EXPECT_TRUE(MessageDifferencer::Equals(got, cand)) << got.DebugString();

  got.set_status(v1::CANDIDATE_EVALUATED);
  got.set_score(0.8);
  ASSERT_OK(store_->UpdateCandidate(got));
  ASSERT_OK_AND_ASSIGN(v1::Candidate again, store_->GetCandidate(id));
  EXPECT_EQ(again.status(), v1::CANDIDATE_EVALUATED);
  EXPECT_DOUBLE_EQ(again.score(), 0.8);

  EXPECT_EQ(store_->GetCandidate(id + 100).status().code(), absl::StatusCode::kNotFound);
  got.set_id(id + 100);
  EXPECT_EQ(store_->UpdateCandidate(got).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, CandidateHashIsUniquePerCampaign) {
  int64_t c = NewCampaign();
  int64_t d = NewCampaign();
  int64_t first = NewCandidate(c, "same");

  v1::Candidate dup;
  dup.set_campaign_id(c);
  dup.set_content_hash("same");
  dup.set_description("a different description");
  absl::StatusOr<int64_t> r = store_->CreateCandidate(dup);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists) << r.status();

  // The same hash in another campaign is a different candidate.
  int64_t elsewhere = NewCandidate(d, "same");
  EXPECT_NE(elsewhere, first);

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Candidate> list, store_->ListCandidates(c));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id(), first);
  EXPECT_EQ(list[0].description(), "");
}

TEST_P(StoreTest, FindCandidateByHashAndList) {
  int64_t c = NewCampaign();
  int64_t d = NewCampaign();
  int64_t a = NewCandidate(c, "ha");
  int64_t b = NewCandidate(c, "hb");
  NewCandidate(d, "hc");

  ASSERT_OK_AND_ASSIGN(std::optional<v1::Candidate> found, store_->FindCandidateByHash(c, "hb"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id(), b);
  EXPECT_EQ(found->content_hash(), "hb");

  ASSERT_OK_AND_ASSIGN(found, store_->FindCandidateByHash(c, "hc"));  // other campaign
  EXPECT_FALSE(found.has_value());
  ASSERT_OK_AND_ASSIGN(found, store_->FindCandidateByHash(c, "nope"));
  EXPECT_FALSE(found.has_value());

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Candidate> list, store_->ListCandidates(c));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), a);
  EXPECT_EQ(list[1].id(), b);
}

// ---------------------------------------------------------------------------
// Jobs.

TEST_P(StoreTest, JobIsStoredWithoutPayload) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  v1::Job j;
  j.set_id(1234);
  j.set_campaign_id(c);
  j.set_candidate_id(cand);
  j.set_kind(v1::JOB_EVALUATE);
  j.set_state(v1::JOB_QUEUED);
  j.set_seed(99);
  j.set_created_unix_ms(5);
  j.mutable_problem()->set_name("gemm");
  (*j.mutable_solution()->mutable_files())["k.cu"] = "x";
  j.mutable_harness()->set_warmups(10);
  j.set_device(v1::DEVICE_CUDA);
  ASSERT_OK_AND_ASSIGN(int64_t id, store_->CreateJob(j));
  ASSERT_OK_AND_ASSIGN(v1::Job got, store_->GetJob(id));
  EXPECT_EQ(got.id(), id);
  EXPECT_FALSE(got.has_problem());
  EXPECT_FALSE(got.has_solution());
  EXPECT_FALSE(got.has_harness());
  EXPECT_EQ(got.device(), v1::DEVICE_UNSPECIFIED);
  EXPECT_EQ(got.seed(), 99u);
  EXPECT_EQ(got.created_unix_ms(), 5);
  EXPECT_EQ(got.state(), v1::JOB_QUEUED);

  // Updates strip the payload too.
  got.mutable_problem()->set_name("gemm");
  got.set_seed(100);
  ASSERT_OK(store_->UpdateJob(got));
  ASSERT_OK_AND_ASSIGN(v1::Job again, store_->GetJob(id));
  EXPECT_FALSE(again.has_problem());
  EXPECT_EQ(again.seed(), 100u);
}

TEST_P(StoreTest, JobListsAndNotFound) {
  int64_t c = NewCampaign();
  int64_t d = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t a = NewJob(c, cand);
  int64_t r1 = NewJob(c, cand, v1::JOB_REPLAY, "", 7);
  NewJob(d, cand);
  int64_t r2 = NewJob(c, cand, v1::JOB_REPLAY, "", 7);

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Job> jobs, store_->ListJobs(c));
  ASSERT_EQ(jobs.size(), 3u);
  EXPECT_EQ(jobs[0].id(), a);
  EXPECT_EQ(jobs[1].id(), r1);
  EXPECT_EQ(jobs[2].id(), r2);

  ASSERT_OK_AND_ASSIGN(jobs, store_->ListJobsForVerification(7));
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id(), r1);
  EXPECT_EQ(jobs[1].id(), r2);
  ASSERT_OK_AND_ASSIGN(jobs, store_->ListJobsForVerification(8));
  EXPECT_TRUE(jobs.empty());

  EXPECT_EQ(store_->GetJob(r2 + 100).status().code(), absl::StatusCode::kNotFound);
  v1::Job ghost;
  ghost.set_id(r2 + 100);
  EXPECT_EQ(store_->UpdateJob(ghost).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, AcquireLeasesAndCountsAttempts) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t id = NewJob(c, cand);

  ASSERT_OK_AND_ASSIGN(std::optional<v1::Job> job, store_->AcquireJob("w1", 1000, 250, false));
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->id(), id);
  EXPECT_EQ(job->state(), v1::JOB_LEASED);
  EXPECT_EQ(job->worker_id(), "w1");
  EXPECT_EQ(job->lease_deadline_unix_ms(), 1250);
  EXPECT_EQ(job->attempts(), 1);

  ASSERT_OK_AND_ASSIGN(v1::Job stored, store_->GetJob(id));
  EXPECT_TRUE(MessageDifferencer::Equals(stored, *job)) << stored.DebugString();

  // Nothing else is queued.
  ASSERT_OK_AND_ASSIGN(job, store_->AcquireJob("w2", 1000, 250, true));
  EXPECT_FALSE(job.has_value());
}

TEST_P(StoreTest, AcquireTakesReplaysFirstThenOldest) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t e1 = NewJob(c, cand, v1::JOB_EVALUATE);
  int64_t e2 = NewJob(c, cand, v1::JOB_EVALUATE);
  int64_t r1 = NewJob(c, cand, v1::JOB_REPLAY);
  int64_t e3 = NewJob(c, cand, v1::JOB_EVALUATE);
  int64_t r2 = NewJob(c, cand, v1::JOB_REPLAY);

  std::vector<int64_t> order;
  for (int i = 0; i < 6; ++i) order.push_back(Acquire("w"));
  EXPECT_EQ(order, (std::vector<int64_t>{r1, r2, e1, e2, e3, 0}));
}

TEST_P(StoreTest, AcquireOnlyFromRunningCampaigns) {
  int64_t finished = NewCampaign(v1::CAMPAIGN_FINISHED);
  int64_t cancelled = NewCampaign(v1::CAMPAIGN_CANCELLED);
  int64_t running = NewCampaign(v1::CAMPAIGN_RUNNING);
  int64_t cand = NewCandidate(running, "h");
  NewJob(finished, cand, v1::JOB_REPLAY);
  NewJob(cancelled, cand);
  int64_t want = NewJob(running, cand);

  EXPECT_EQ(Acquire("w"), want);
  EXPECT_EQ(Acquire("w"), 0);

  // A campaign that starts running (state updated) makes its jobs available.
  ASSERT_OK_AND_ASSIGN(v1::Campaign c, store_->GetCampaign(cancelled));
  c.set_state(v1::CAMPAIGN_RUNNING);
  ASSERT_OK(store_->UpdateCampaign(c));
  EXPECT_NE(Acquire("w"), 0);
  // And one that stops running withholds them again.
  NewJob(running, cand);
  ASSERT_OK_AND_ASSIGN(c, store_->GetCampaign(running));
  c.set_state(v1::CAMPAIGN_FINISHED);
  ASSERT_OK(store_->UpdateCampaign(c));
  EXPECT_EQ(Acquire("w"), 0);
}

TEST_P(StoreTest, AcquireSkipsAvoidedWorkerUnlessAllowed) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t avoid_a = NewJob(c, cand, v1::JOB_REPLAY, "a");
  int64_t plain = NewJob(c, cand, v1::JOB_EVALUATE);

  // "a" skips the replay it should avoid and gets the evaluation instead.
  EXPECT_EQ(Acquire("a"), plain);
  EXPECT_EQ(Acquire("a"), 0);
  // Allowed, it takes the replay after all (no other worker exists).
  EXPECT_EQ(Acquire("a", 1000, 100, /*allow_avoided=*/true), avoid_a);

  int64_t avoid_b = NewJob(c, cand, v1::JOB_REPLAY, "b");
  EXPECT_EQ(Acquire("b"), 0);
  EXPECT_EQ(Acquire("c"), avoid_b);
}

TEST_P(StoreTest, AcquireFromOneCampaignKeepsItsOrderAndLeavesOthers) {
  int64_t a = NewCampaign();
  int64_t b = NewCampaign();
  int64_t stopped = NewCampaign(v1::CAMPAIGN_FINISHED);
  int64_t cand_a = NewCandidate(a, "a");
  int64_t cand_b = NewCandidate(b, "b");
  int64_t a1 = NewJob(a, cand_a, v1::JOB_EVALUATE);
  int64_t b1 = NewJob(b, cand_b, v1::JOB_EVALUATE);
  int64_t a_replay_avoid_w = NewJob(a, cand_a, v1::JOB_REPLAY, "w");
  int64_t a2 = NewJob(a, cand_a, v1::JOB_EVALUATE);
  int64_t b_replay = NewJob(b, cand_b, v1::JOB_REPLAY);
  NewJob(stopped, NewCandidate(stopped, "s"), v1::JOB_EVALUATE);

  auto from = [&](int64_t campaign, const std::string& worker, bool allow_avoided = false) {
    absl::StatusOr<std::optional<v1::Job>> j =
        store_->AcquireJob(worker, 1000, 100, allow_avoided, campaign);
    EXPECT_TRUE(j.ok()) << j.status();
    if (!j.ok() || !j->has_value()) return int64_t{0};
    EXPECT_EQ((*j)->campaign_id(), campaign);
    EXPECT_EQ((*j)->state(), v1::JOB_LEASED);
    return (*j)->id();
  };
  // Campaign b: its replay first, then its evaluation; a's jobs untouched.
  EXPECT_EQ(from(b, "w"), b_replay);
  EXPECT_EQ(from(b, "w"), b1);
  EXPECT_EQ(from(b, "w"), 0);
  // Campaign a: the replay that avoids "w" is skipped for "w", not for "x".
  EXPECT_EQ(from(a, "w"), a1);
  EXPECT_EQ(from(a, "x"), a_replay_avoid_w);
  EXPECT_EQ(from(a, "w"), a2);
  EXPECT_EQ(from(a, "w"), 0);
  // A campaign that is not running hands out nothing.
  EXPECT_EQ(from(stopped, "w"), 0);
}

TEST_P(StoreTest, AcquireFromOneCampaignAmongManyQueuedJobs) {
  // The per-campaign probe finds the one job of a small campaign behind a
  // long queue of another (and does so through an index: see the plans in
  // the migrations).
  int64_t big = NewCampaign();
  int64_t small = NewCampaign();
  int64_t cand_big = NewCandidate(big, "big");
  ASSERT_OK(store_->Transaction([&]() -> absl::Status {
    for (int i = 0; i < 2000; ++i) NewJob(big, cand_big);
    return absl::OkStatus();
  }));
  int64_t only = NewJob(small, NewCandidate(small, "small"));
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Job> job,
                       store_->AcquireJob("w", 1000, 100, false, small));
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->id(), only);
  ASSERT_OK_AND_ASSIGN(job, store_->AcquireJob("w", 1000, 100, false, small));
  EXPECT_FALSE(job.has_value());
  ASSERT_OK_AND_ASSIGN(job, store_->AcquireJob("w", 1000, 100, false, big));
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->campaign_id(), big);
}

TEST_P(StoreTest, CountJobsByCampaignStateAndKind) {
  int64_t a = NewCampaign();
  int64_t b = NewCampaign();
  int64_t cand = NewCandidate(a, "h");
  NewJob(a, cand, v1::JOB_EVALUATE);
  NewJob(a, cand, v1::JOB_EVALUATE);
  NewJob(a, cand, v1::JOB_REPLAY);
  NewJob(b, cand, v1::JOB_EVALUATE);
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Job> leased,
                       store_->AcquireJob("w", 1000, 100, false, a));  // the replay
  ASSERT_TRUE(leased.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<Store::JobCount> counts, store_->CountJobs());
  std::map<std::tuple<int64_t, int, int>, int64_t> got;
  for (const auto& n : counts) got[{n.campaign_id, n.state, n.kind}] = n.count;
  std::map<std::tuple<int64_t, int, int>, int64_t> want = {
      {{a, v1::JOB_QUEUED, v1::JOB_EVALUATE}, 2},
      {{a, v1::JOB_LEASED, v1::JOB_REPLAY}, 1},
      {{b, v1::JOB_QUEUED, v1::JOB_EVALUATE}, 1}};
  EXPECT_EQ(got, want);
}

TEST_P(StoreTest, RenewLeasesMovesDeadlinesAndReportsLost) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t mine = NewJob(c, cand);
  int64_t theirs = NewJob(c, cand);
  int64_t queued = NewJob(c, cand);
  ASSERT_EQ(Acquire("me", 1000, 100), mine);
  ASSERT_EQ(Acquire("them", 1000, 100), theirs);

  std::vector<int64_t> lost = {-1};  // appended to, not replaced
  ASSERT_OK(store_->RenewLeases("me", {mine, theirs, queued, 9999}, 5000, &lost));
  EXPECT_EQ(lost, (std::vector<int64_t>{-1, theirs, queued, 9999}));

  ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(mine));
  EXPECT_EQ(j.lease_deadline_unix_ms(), 5000);
  EXPECT_EQ(j.state(), v1::JOB_LEASED);
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob(theirs));
  EXPECT_EQ(j.lease_deadline_unix_ms(), 1100);
  EXPECT_EQ(j.worker_id(), "them");

  // The renewed lease survives an expiry sweep that takes the other one.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Job> expired, store_->ExpireLeases(2000, 3));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].id(), theirs);

  // After expiry, "them" has lost its lease.
  lost.clear();
  ASSERT_OK(store_->RenewLeases("them", {theirs}, 6000, &lost));
  EXPECT_EQ(lost, (std::vector<int64_t>{theirs}));
}

TEST_P(StoreTest, HeartbeatsCannotHoldALeasePastTheJobsWallLimit) {
  // No harness timeout set: 600 s, so the wall limit is 1000 ms after the
  // lease + 2 x 600 s + 120 s.
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t id = NewJob(c, cand);
  ASSERT_EQ(Acquire("me", 1000, 100), id);
  const int64_t limit = 1000 + 1000 * (2 * 600 + 120);
  std::vector<int64_t> lost;
  ASSERT_OK(store_->RenewLeases("me", {id}, limit - 5000, &lost));
  EXPECT_TRUE(lost.empty());
  ASSERT_OK(store_->RenewLeases("me", {id}, limit + 30000, &lost));
  EXPECT_EQ(lost, std::vector<int64_t>{id});  // the worker is told to stop
  ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(id));
  EXPECT_EQ(j.lease_deadline_unix_ms(), limit);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Job> expired, store_->ExpireLeases(limit + 1, 3));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].id(), id);
}

TEST_P(StoreTest, JobsSharingAGpuMayHoldTheirLeaseLonger) {
  // A worker running 4 jobs a GPU gives each 4 timeouts of wall time
  // (compile and run, then up to 3 others' turns): its heartbeats keep the
  // lease past the one-job limit, up to 2 x 600 s + 3 x 600 s + 120 s.
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t id = NewJob(c, cand);
  ASSERT_EQ(Acquire("me", 1000, 100), id);
  const int64_t one_job_limit = 1000 + 1000 * (2 * 600 + 120);
  const int64_t four_jobs_limit = 1000 + 1000 * (5 * 600 + 120);
  std::vector<int64_t> lost;
  ASSERT_OK(
      store_->RenewLeases("me", {id}, one_job_limit + 600'000, &lost, LeaseLimits{4, {}}));
  EXPECT_TRUE(lost.empty());
  ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(id));
  EXPECT_EQ(j.lease_deadline_unix_ms(), one_job_limit + 600'000);
  ASSERT_OK(
      store_->RenewLeases("me", {id}, four_jobs_limit + 30'000, &lost, LeaseLimits{4, {}}));
  EXPECT_EQ(lost, std::vector<int64_t>{id});
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob(id));
  EXPECT_EQ(j.lease_deadline_unix_ms(), four_jobs_limit);

  // A worker that claims 1000 jobs a GPU is believed up to 8.
  int64_t other = NewJob(c, cand);
  ASSERT_EQ(Acquire("liar", 1000, 100), other);
  lost.clear();
  ASSERT_OK(
      store_->RenewLeases("liar", {other}, int64_t{1} << 50, &lost, LeaseLimits{1000, {}}));
  EXPECT_EQ(lost, std::vector<int64_t>{other});
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob(other));
  EXPECT_EQ(j.lease_deadline_unix_ms(), 1000 + 1000 * (9 * 600 + 120));

  // The campaign's own harness timeout, when the caller knows it (the job
  // record keeps none): one hour, alone on its GPU.
  int64_t hour = NewJob(c, cand);
  ASSERT_EQ(Acquire("slow", 1000, 100), hour);
  lost.clear();
  ASSERT_OK(store_->RenewLeases("slow", {hour}, int64_t{1} << 50, &lost,
                                LeaseLimits{1, {{c, 3600.0}}}));
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob(hour));
  EXPECT_EQ(j.lease_deadline_unix_ms(), 1000 + 1000 * (2 * 3600 + 120));
}

TEST_P(StoreTest, ExpireLeasesRequeuesThenFailsAtAttemptCap) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t id = NewJob(c, cand);
  int64_t later = NewJob(c, cand);

  ASSERT_EQ(Acquire("w1", 1000, 100), id);
  ASSERT_EQ(Acquire("w2", 1000, 500), later);

  // Deadline not yet passed: nothing changes.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Job> changed, store_->ExpireLeases(1100, 2));
  EXPECT_TRUE(changed.empty());

  ASSERT_OK_AND_ASSIGN(changed, store_->ExpireLeases(1101, 2));
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].id(), id);
  EXPECT_EQ(changed[0].state(), v1::JOB_QUEUED);
  EXPECT_EQ(changed[0].worker_id(), "");
  EXPECT_EQ(changed[0].attempts(), 1);
  ASSERT_OK_AND_ASSIGN(v1::Job stored, store_->GetJob(id));
  EXPECT_EQ(stored.state(), v1::JOB_QUEUED);
  EXPECT_EQ(stored.worker_id(), "");

  // Second attempt, lapses again: the cap (2) is reached, so FAILED.
  ASSERT_EQ(Acquire("w3", 2000, 100), id);
  ASSERT_OK_AND_ASSIGN(stored, store_->GetJob(id));
  EXPECT_EQ(stored.attempts(), 2);
  ASSERT_OK_AND_ASSIGN(changed, store_->ExpireLeases(3000, 2));
  ASSERT_EQ(changed.size(), 2u);
  EXPECT_EQ(changed[0].id(), id);
  EXPECT_EQ(changed[0].state(), v1::JOB_FAILED);
  EXPECT_EQ(changed[1].id(), later);
  EXPECT_EQ(changed[1].state(), v1::JOB_QUEUED);  // only one attempt so far
  ASSERT_OK_AND_ASSIGN(stored, store_->GetJob(id));
  EXPECT_EQ(stored.state(), v1::JOB_FAILED);

  // A failed job is never handed out again.
  EXPECT_EQ(Acquire("w4", 4000, 100), later);
  EXPECT_EQ(Acquire("w4", 4000, 100), 0);
}

// ---------------------------------------------------------------------------
// Completing jobs.

TEST_P(StoreTest, CompleteByLeaseHolderStoresEvaluation) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t id = NewJob(c, cand);
  ASSERT_EQ(Acquire("w"), id);

  v1::Evaluation e = Eval(0.75);
  e.set_id(555);  // ignored
  e.set_campaign_id(c);
  e.set_candidate_id(cand);
  e.set_worker_id("w");
  e.set_kind(v1::JOB_EVALUATE);
  ASSERT_OK_AND_ASSIGN(int64_t eid, store_->CompleteJob(id, "w", e));
  EXPECT_GT(eid, 0);

  ASSERT_OK_AND_ASSIGN(v1::Job job, store_->GetJob(id));
  EXPECT_EQ(job.state(), v1::JOB_DONE);

  ASSERT_OK_AND_ASSIGN(std::optional<v1::Evaluation> got, store_->GetEvaluationForJob(id));
  ASSERT_TRUE(got.has_value());
  e.set_id(eid);
  e.set_job_id(id);
  EXPECT_TRUE(MessageDifferencer::Equals(*got, e)) << got->DebugString();
}

TEST_P(StoreTest, CompleteTwiceIsAlreadyExistsAndChangesNothing) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t id = NewJob(c, cand);
  ASSERT_EQ(Acquire("w"), id);
  v1::Evaluation e = Eval(0.5);
  e.set_campaign_id(c);
  e.set_candidate_id(cand);
  ASSERT_OK_AND_ASSIGN(int64_t eid, store_->CompleteJob(id, "w", e));

  absl::StatusOr<int64_t> again = store_->CompleteJob(id, "w", Eval(0.9));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists) << again.status();

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Evaluation> evals, store_->ListEvaluations(c));
  ASSERT_EQ(evals.size(), 1u);
  EXPECT_EQ(evals[0].id(), eid);
  EXPECT_DOUBLE_EQ(evals[0].score(), 0.5);
  ASSERT_OK_AND_ASSIGN(v1::Job job, store_->GetJob(id));
  EXPECT_EQ(job.state(), v1::JOB_DONE);
}

TEST_P(StoreTest, CompleteByOtherWorkerIsFailedPrecondition) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t id = NewJob(c, cand);
  ASSERT_EQ(Acquire("owner"), id);

  absl::StatusOr<int64_t> r = store_->CompleteJob(id, "intruder", Eval(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();

  ASSERT_OK_AND_ASSIGN(v1::Job job, store_->GetJob(id));
  EXPECT_EQ(job.state(), v1::JOB_LEASED);
  EXPECT_EQ(job.worker_id(), "owner");
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Evaluation> got, store_->GetEvaluationForJob(id));
  EXPECT_FALSE(got.has_value());
}

TEST_P(StoreTest, CompleteAfterLeaseExpiryIsFailedPrecondition) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t id = NewJob(c, cand);
  ASSERT_EQ(Acquire("slow", 1000, 100), id);
  ASSERT_OK(store_->ExpireLeases(5000, 3).status());

  absl::StatusOr<int64_t> r = store_->CompleteJob(id, "slow", Eval(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();

  // Requeued and leased to someone else: still not the slow worker's.
  ASSERT_EQ(Acquire("fast", 5000, 100), id);
  r = store_->CompleteJob(id, "slow", Eval(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  ASSERT_OK(store_->CompleteJob(id, "fast", Eval(1)).status());

  // A job that was never leased cannot be completed either.
  int64_t queued = NewJob(c, cand);
  r = store_->CompleteJob(queued, "slow", Eval(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();

  // Nor a failed one.
  int64_t failing = NewJob(c, cand);
  ASSERT_EQ(Acquire("w", 6000, 100), queued);
  ASSERT_EQ(Acquire("w", 6000, 100), failing);
  ASSERT_OK(store_->ExpireLeases(7000, 1).status());
  r = store_->CompleteJob(failing, "w", Eval(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Evaluation> evals, store_->ListEvaluations(c));
  EXPECT_EQ(evals.size(), 1u);
}

TEST_P(StoreTest, CompleteUnknownJobFails) {
  absl::StatusOr<int64_t> r = store_->CompleteJob(12345, "w", Eval(1));
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_P(StoreTest, FailOpenJobsFailsQueuedAndLeasedOnly) {
  int64_t c = NewCampaign();
  int64_t d = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  int64_t done = NewJob(c, cand);
  int64_t leased = NewJob(c, cand);
  int64_t queued = NewJob(c, cand);
  int64_t other = NewJob(d, cand);
  ASSERT_EQ(Acquire("w"), done);
  ASSERT_OK(store_->CompleteJob(done, "w", Eval(1)).status());
  ASSERT_EQ(Acquire("w"), leased);

  ASSERT_OK(store_->FailOpenJobs(c));
  ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(done));
  EXPECT_EQ(j.state(), v1::JOB_DONE);
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob(leased));
  EXPECT_EQ(j.state(), v1::JOB_FAILED);
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob(queued));
  EXPECT_EQ(j.state(), v1::JOB_FAILED);
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob(other));
  EXPECT_EQ(j.state(), v1::JOB_QUEUED);

  // The worker that held the leased job can no longer complete it.
  absl::StatusOr<int64_t> r = store_->CompleteJob(leased, "w", Eval(1));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
}

// ---------------------------------------------------------------------------
// Evaluations.

TEST_P(StoreTest, EvaluationListsAndProcessing) {
  int64_t c = NewCampaign();
  int64_t d = NewCampaign();
  int64_t a = NewCandidate(c, "a");
  int64_t b = NewCandidate(c, "b");
  int64_t x = NewCandidate(d, "x");
  std::vector<int64_t> evals;
  for (auto [campaign, cand] : std::vector<std::pair<int64_t, int64_t>>{{c, a}, {c, b}, {d, x},
                                                                         {c, a}}) {
    int64_t job = NewJob(campaign, cand);
    ASSERT_EQ(Acquire("w"), job);
    v1::Evaluation e = Eval(0.1);
    e.set_campaign_id(campaign);
    e.set_candidate_id(cand);
    ASSERT_OK_AND_ASSIGN(int64_t id, store_->CompleteJob(job, "w", e));
    evals.push_back(id);
  }

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Evaluation> list, store_->ListEvaluations(c));
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].id(), evals[0]);
  EXPECT_EQ(list[1].id(), evals[1]);
  EXPECT_EQ(list[2].id(), evals[3]);

  ASSERT_OK_AND_ASSIGN(list, store_->ListEvaluationsForCandidate(a));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), evals[0]);
  EXPECT_EQ(list[1].id(), evals[3]);

  ASSERT_OK_AND_ASSIGN(list, store_->ListUnprocessedEvaluations());
  ASSERT_EQ(list.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(list[i].id(), evals[i]);

  ASSERT_OK(store_->MarkEvaluationProcessed(evals[1]));
  ASSERT_OK(store_->MarkEvaluationProcessed(evals[2]));
  ASSERT_OK(store_->MarkEvaluationProcessed(evals[2]));  // idempotent
  ASSERT_OK_AND_ASSIGN(list, store_->ListUnprocessedEvaluations());
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), evals[0]);
  EXPECT_EQ(list[1].id(), evals[3]);

  // Processed evaluations are still listed everywhere else.
  ASSERT_OK_AND_ASSIGN(list, store_->ListEvaluations(d));
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].id(), evals[2]);

  EXPECT_EQ(store_->MarkEvaluationProcessed(evals[3] + 100).code(),
            absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, NoEvaluationForUnfinishedJob) {
  int64_t c = NewCampaign();
  int64_t job = NewJob(c, NewCandidate(c, "h"));
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Evaluation> e, store_->GetEvaluationForJob(job));
  EXPECT_FALSE(e.has_value());
  ASSERT_OK_AND_ASSIGN(e, store_->GetEvaluationForJob(job + 100));
  EXPECT_FALSE(e.has_value());
}

// ---------------------------------------------------------------------------
// Verifications.

v1::Verification Pending(int64_t campaign, int64_t candidate) {
  v1::Verification v;
  v.set_campaign_id(campaign);
  v.set_candidate_id(candidate);
  v.set_outcome(v1::VERDICT_PENDING);
  v.set_claimed_score(0.9);
  v.mutable_policy()->set_replays(3);
  return v;
}

TEST_P(StoreTest, VerificationRoundTripListsAndNotFound) {
  int64_t c = NewCampaign();
  int64_t d = NewCampaign();
  int64_t a = NewCandidate(c, "a");
  int64_t b = NewCandidate(c, "b");
  v1::Verification v = Pending(c, a);
  v.set_id(99);  // ignored
  v.add_candidate_scores(0.5);
  ASSERT_OK_AND_ASSIGN(int64_t v1id, store_->CreateVerification(v));
  ASSERT_OK_AND_ASSIGN(int64_t v2id, store_->CreateVerification(Pending(c, b)));
  ASSERT_OK_AND_ASSIGN(int64_t v3id, store_->CreateVerification(Pending(d, a)));

  ASSERT_OK_AND_ASSIGN(v1::Verification got, store_->GetVerification(v1id));
  v.set_id(v1id);
  EXPECT_TRUE(MessageDifferencer::Equals(got, v)) << got.DebugString();

  got.set_outcome(v1::VERDICT_REJECTED);
  got.set_reason("noise");
  got.set_decided_unix_ms(77);
  ASSERT_OK(store_->UpdateVerification(got));
  ASSERT_OK_AND_ASSIGN(v1::Verification again, store_->GetVerification(v1id));
  EXPECT_TRUE(MessageDifferencer::Equals(again, got)) << again.DebugString();

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Verification> list, store_->ListVerifications(c));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), v1id);
  EXPECT_EQ(list[1].id(), v2id);
  ASSERT_OK_AND_ASSIGN(list, store_->ListVerificationsForCandidate(a));
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].id(), v1id);
  EXPECT_EQ(list[1].id(), v3id);

  EXPECT_EQ(store_->GetVerification(v3id + 100).status().code(), absl::StatusCode::kNotFound);
  got.set_id(v3id + 100);
  EXPECT_EQ(store_->UpdateVerification(got).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, AcquireVerificationLeasesAndLapses) {
  int64_t stopped = NewCampaign(v1::CAMPAIGN_CANCELLED);
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "a");
  ASSERT_OK(store_->CreateVerification(Pending(stopped, cand)).status());
  v1::Verification decided = Pending(c, cand);
  decided.set_outcome(v1::VERDICT_ACCEPTED);
  ASSERT_OK(store_->CreateVerification(decided).status());
  ASSERT_OK_AND_ASSIGN(int64_t first, store_->CreateVerification(Pending(c, cand)));
  ASSERT_OK_AND_ASSIGN(int64_t second, store_->CreateVerification(Pending(c, cand)));

  ASSERT_OK_AND_ASSIGN(std::optional<v1::Verification> v,
                       store_->AcquireVerification("v1", 1000, 500));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->id(), first);
  EXPECT_EQ(v->verifier_id(), "v1");
  EXPECT_EQ(v->lease_deadline_unix_ms(), 1500);
  ASSERT_OK_AND_ASSIGN(v1::Verification stored, store_->GetVerification(first));
  EXPECT_EQ(stored.verifier_id(), "v1");
  EXPECT_EQ(stored.lease_deadline_unix_ms(), 1500);

  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v2", 1000, 500));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->id(), second);
  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v3", 1400, 500));
  EXPECT_FALSE(v.has_value());  // both leased, none lapsed

  // The first lease lapses: another verifier gets it, with a new deadline.
  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v3", 1501, 500));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->id(), first);
  EXPECT_EQ(v->verifier_id(), "v3");
  EXPECT_EQ(v->lease_deadline_unix_ms(), 2001);

  // Decided verifications are not handed out even when their lease lapsed.
  ASSERT_OK_AND_ASSIGN(stored, store_->GetVerification(second));
  stored.set_outcome(v1::VERDICT_ACCEPTED);
  ASSERT_OK(store_->UpdateVerification(stored));
  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v4", 1600, 500));
  EXPECT_FALSE(v.has_value());
  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v4", 9000, 500));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->id(), first);
}

// A claim waits while any of its replay jobs is queued or leased, and is
// handed out once all of them ended (done or failed); the waiting is the
// jobs' state, so it survives reopening the store.
TEST_P(StoreTest, AcquireVerificationWaitsUntilEveryReplayEnded) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "a");
  int64_t inc = NewCandidate(c, "b");
  ASSERT_OK_AND_ASSIGN(int64_t waiting, store_->CreateVerification(Pending(c, cand)));
  const int64_t done = NewJob(c, cand, v1::JOB_REPLAY, "", waiting);
  const int64_t failed = NewJob(c, inc, v1::JOB_REPLAY, "", waiting);
  const int64_t leased = NewJob(c, cand, v1::JOB_REPLAY, "", waiting);
  // Another claim's open replay and an evaluation job do not hold this one.
  ASSERT_OK_AND_ASSIGN(int64_t other, store_->CreateVerification(Pending(c, inc)));
  NewJob(c, inc, v1::JOB_REPLAY, "", other);
  NewJob(c, cand);

  auto set_state = [&](int64_t id, v1::JobState state) {
    ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(id));
    j.set_state(state);
    ASSERT_OK(store_->UpdateJob(j));
  };
  ASSERT_NO_FATAL_FAILURE(set_state(done, v1::JOB_DONE));
  ASSERT_NO_FATAL_FAILURE(set_state(failed, v1::JOB_FAILED));
  ASSERT_NO_FATAL_FAILURE(set_state(leased, v1::JOB_LEASED));
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Verification> v,
                       store_->AcquireVerification("v1", 1000, 500));
  EXPECT_FALSE(v.has_value()) << v->id();

  if (GetParam().persistent) ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v1", 1000, 500));
  EXPECT_FALSE(v.has_value());
  ASSERT_NO_FATAL_FAILURE(set_state(leased, v1::JOB_QUEUED));  // a lapsed lease requeued it
  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v1", 1000, 500));
  EXPECT_FALSE(v.has_value());
  ASSERT_NO_FATAL_FAILURE(set_state(leased, v1::JOB_DONE));
  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v1", 1000, 500));
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->id(), waiting);
  EXPECT_EQ(v->verifier_id(), "v1");
  ASSERT_OK_AND_ASSIGN(v, store_->AcquireVerification("v2", 1000, 500));
  EXPECT_FALSE(v.has_value());  // the other claim still waits
}

// ---------------------------------------------------------------------------
// Workers.

TEST_P(StoreTest, WorkersUpsertGetList) {
  v1::WorkerInfo w;
  w.set_id("w-b");
  w.set_name("node7");
  w.mutable_hardware()->add_gpus("H100");
  w.set_connected(true);
  ASSERT_OK(store_->UpsertWorker(w));
  v1::WorkerInfo other;
  other.set_id("w-a");
  other.set_name("node1");
  ASSERT_OK(store_->UpsertWorker(other));

  ASSERT_OK_AND_ASSIGN(std::optional<v1::WorkerInfo> got, store_->GetWorker("w-b"));
  ASSERT_TRUE(got.has_value());
  EXPECT_TRUE(MessageDifferencer::Equals(*got, w)) << got->DebugString();

  w.set_connected(false);
  w.set_jobs_done(4);
  ASSERT_OK(store_->UpsertWorker(w));
  ASSERT_OK_AND_ASSIGN(got, store_->GetWorker("w-b"));
  ASSERT_TRUE(got.has_value());
  EXPECT_FALSE(got->connected());
  EXPECT_EQ(got->jobs_done(), 4);

  ASSERT_OK_AND_ASSIGN(got, store_->GetWorker("nobody"));
  EXPECT_FALSE(got.has_value());

  ASSERT_OK_AND_ASSIGN(std::vector<v1::WorkerInfo> all, store_->ListWorkers());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id(), "w-a");
  EXPECT_EQ(all[1].id(), "w-b");
}

// ---------------------------------------------------------------------------
// Transactions.

TEST_P(StoreTest, TransactionCommits) {
  int64_t c = 0;
  ASSERT_OK(store_->Transaction([&]() -> absl::Status {
    absl::StatusOr<int64_t> id = store_->CreateCampaign(v1::Campaign());
    if (!id.ok()) return id.status();
    c = *id;
    // Reads inside the transaction see its own writes.
    absl::StatusOr<v1::Campaign> got = store_->GetCampaign(c);
    if (!got.ok()) return got.status();
    return store_->CreateCandidate(v1::Candidate()).status();
  }));
  EXPECT_OK(store_->GetCampaign(c).status());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Candidate> cands, store_->ListCandidates(0));
  EXPECT_EQ(cands.size(), 1u);
}

TEST_P(StoreTest, TransactionRollsBackOnError) {
  int64_t kept = NewCampaign();
  int64_t c = 0;
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    absl::StatusOr<int64_t> id = store_->CreateCampaign(v1::Campaign());
    if (!id.ok()) return id.status();
    c = *id;
    v1::Campaign changed;
    changed.set_id(kept);
    changed.set_message("changed");
    if (absl::Status u = store_->UpdateCampaign(changed); !u.ok()) return u;
    return absl::AbortedError("body gave up");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(s.message(), "body gave up");
  ASSERT_NE(c, 0);
  EXPECT_EQ(store_->GetCampaign(c).status().code(), absl::StatusCode::kNotFound);
  ASSERT_OK_AND_ASSIGN(v1::Campaign k, store_->GetCampaign(kept));
  EXPECT_EQ(k.message(), "");

  // The store works normally afterwards.
  EXPECT_NE(NewCampaign(), 0);
}

TEST_P(StoreTest, TransactionRollsBackFailedStoreCall) {
  int64_t c = NewCampaign();
  NewCandidate(c, "dup");
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    if (absl::Status st = store_->CreateCampaign(v1::Campaign()).status(); !st.ok()) return st;
    v1::Candidate dup;
    dup.set_campaign_id(c);
    dup.set_content_hash("dup");
    return store_->CreateCandidate(dup).status();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> all, store_->ListCampaigns());
  EXPECT_EQ(all.size(), 1u);
}

// A body may handle a failed call (here: a duplicate candidate) and go on; what
// it wrote before and after still commits. (PostgreSQL needs a savepoint per
// call for this, as a failed statement aborts the whole transaction there.)
TEST_P(StoreTest, TransactionBodyMayRecoverFromAFailedCall) {
  int64_t c = NewCampaign();
  int64_t existing = NewCandidate(c, "dup");
  int64_t created = 0;
  ASSERT_OK(store_->Transaction([&]() -> absl::Status {
    v1::Candidate dup;
    dup.set_campaign_id(c);
    dup.set_content_hash("dup");
    absl::StatusOr<int64_t> r = store_->CreateCandidate(dup);
    if (!absl::IsAlreadyExists(r.status())) return absl::InternalError("expected a duplicate");
    absl::StatusOr<int64_t> job = store_->CreateJob([&] {
      v1::Job j;
      j.set_campaign_id(c);
      j.set_candidate_id(existing);
      j.set_state(v1::JOB_QUEUED);
      return j;
    }());
    if (!job.ok()) return job.status();
    created = *job;
    return absl::OkStatus();
  }));
  ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(created));
  EXPECT_EQ(j.candidate_id(), existing);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Candidate> list, store_->ListCandidates(c));
  EXPECT_EQ(list.size(), 1u);
}

TEST_P(StoreTest, NestedTransactionsJoinTheOuterOne) {
  // Commit: both levels' writes are there.
  ASSERT_OK(store_->Transaction([&]() -> absl::Status {
    if (absl::Status s = store_->CreateCampaign(v1::Campaign()).status(); !s.ok()) return s;
    return store_->Transaction(
        [&]() -> absl::Status { return store_->CreateCampaign(v1::Campaign()).status(); });
  }));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> all, store_->ListCampaigns());
  EXPECT_EQ(all.size(), 2u);

  // The outer body fails after the inner one succeeded: nothing is kept.
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    absl::Status inner = store_->Transaction(
        [&]() -> absl::Status { return store_->CreateCampaign(v1::Campaign()).status(); });
    if (!inner.ok()) return inner;
    return absl::CancelledError("outer fails");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  ASSERT_OK_AND_ASSIGN(all, store_->ListCampaigns());
  EXPECT_EQ(all.size(), 2u);

  // The inner body fails and the outer passes the failure on: nothing is kept.
  s = store_->Transaction([&]() -> absl::Status {
    if (absl::Status st = store_->CreateCampaign(v1::Campaign()).status(); !st.ok()) return st;
    return store_->Transaction([&]() -> absl::Status {
      if (absl::Status st = store_->CreateCampaign(v1::Campaign()).status(); !st.ok()) return st;
      return absl::InternalError("inner fails");
    });
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  ASSERT_OK_AND_ASSIGN(all, store_->ListCampaigns());
  EXPECT_EQ(all.size(), 2u);
}

TEST_P(StoreTest, OtherThreadsWaitForTheTransaction) {
  absl::Notification inside;
  std::atomic<bool> body_done{false};
  size_t seen = 99;
  bool saw_body_done = false;
  std::thread other([&] {
    inside.WaitForNotification();
    absl::StatusOr<std::vector<v1::Campaign>> all = store_->ListCampaigns();
    saw_body_done = body_done.load();
    if (all.ok()) seen = all->size();
  });
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    if (absl::Status st = store_->CreateCampaign(v1::Campaign()).status(); !st.ok()) return st;
    inside.Notify();
    // Give the other thread every chance to run into the transaction.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    body_done = true;
    return absl::AbortedError("roll back");
  });
  other.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  // The other thread waited for the rollback, so it saw neither the
  // uncommitted campaign nor a half-finished transaction.
  EXPECT_TRUE(saw_body_done);
  EXPECT_EQ(seen, 0u);
}

// ---------------------------------------------------------------------------
// Concurrency.

TEST_P(StoreTest, ConcurrentAcquireNeverHandsOneJobToTwoWorkers) {
  int64_t c = NewCampaign();
  int64_t cand = NewCandidate(c, "h");
  constexpr int kJobs = 200;
  constexpr int kWorkers = 8;
  for (int i = 0; i < kJobs; ++i) NewJob(c, cand, i % 5 == 0 ? v1::JOB_REPLAY : v1::JOB_EVALUATE);

  absl::Mutex mu;
  std::vector<std::pair<int64_t, std::string>> taken;  // guarded by mu
  std::atomic<int> errors{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      const std::string id = absl::StrCat("worker-", w);
      while (true) {
        absl::StatusOr<std::optional<v1::Job>> job = store_->AcquireJob(id, 1000, 60000, false);
        if (!job.ok()) {
          ++errors;
          return;
        }
        if (!job->has_value()) return;
        absl::MutexLock l(&mu);
        taken.emplace_back((*job)->id(), id);
      }
    });
  }
  for (std::thread& t : workers) t.join();
  EXPECT_EQ(errors.load(), 0);

  ASSERT_EQ(taken.size(), static_cast<size_t>(kJobs));
  std::set<int64_t> unique;
  for (const auto& [job, worker] : taken) unique.insert(job);
  EXPECT_EQ(unique.size(), static_cast<size_t>(kJobs));

  // Each job's stored holder is the worker that got it, with one attempt.
  for (const auto& [job, worker] : taken) {
    ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(job));
    EXPECT_EQ(j.worker_id(), worker);
    EXPECT_EQ(j.attempts(), 1);
  }
}

// ---------------------------------------------------------------------------
// Durability.

TEST_P(StoreTest, NoiseFloorsAreKeyedByProblemWorkloadAndHardware) {
  auto floor = [](const std::string& problem, const std::string& workload,
                  const std::string& hardware, double sd) {
    v1::NoiseFloor f;
    f.set_problem(problem);
    f.set_workload(workload);
    f.set_hardware(hardware);
    f.set_relative_sd(sd);
    f.set_degrees_of_freedom(4);
    return f;
  };
  ASSERT_OK(store_->UpsertNoiseFloor(floor("gemm", "score", "cpu-b", 0.02)));
  ASSERT_OK(store_->UpsertNoiseFloor(floor("gemm", "score", "cpu-a", 0.03)));
  ASSERT_OK(store_->UpsertNoiseFloor(floor("gemm", "M=64", "cpu-a", 0.04)));
  ASSERT_OK(store_->UpsertNoiseFloor(floor("vadd", "score", "cpu-a", 0.05)));
  // The same key again replaces the record.
  ASSERT_OK(store_->UpsertNoiseFloor(floor("gemm", "score", "cpu-a", 0.01)));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::NoiseFloor> gemm, store_->ListNoiseFloors("gemm"));
  ASSERT_EQ(gemm.size(), 3u);
  EXPECT_EQ(gemm[0].workload(), "M=64");
  EXPECT_EQ(gemm[1].hardware(), "cpu-a");
  EXPECT_DOUBLE_EQ(gemm[1].relative_sd(), 0.01);
  EXPECT_EQ(gemm[2].hardware(), "cpu-b");
  ASSERT_OK_AND_ASSIGN(std::vector<v1::NoiseFloor> none, store_->ListNoiseFloors("nothing"));
  EXPECT_TRUE(none.empty());
}

TEST_P(StoreTest, BaselinesAreKeyedByProblemWorkloadHardwareAndSoftware) {
  auto baseline = [](const std::string& problem, const std::string& workload,
                     const std::string& hardware, const std::string& software, double t_b,
                     int n) {
    v1::Baseline b;
    b.set_problem_key(problem);
    b.set_workload_key(workload);
    b.set_hardware(hardware);
    b.set_software(software);
    b.set_problem("rmsnorm");
    b.set_t_b_ns(t_b);
    b.set_t_b_spread(0.05);
    b.set_t_b_eager_ns(t_b);
    b.set_t_b_compile_ns(t_b * 2);
    b.set_t_ref_kernel_ns(t_b / 2);
    b.set_measurements(n);
    b.set_frozen(n >= 3);
    b.set_first_unix_ms(1000);
    b.set_updated_unix_ms(2000);
    for (int i = 0; i < n; ++i) {
      v1::BaselineSample* sample = b.add_samples();
      sample->set_t_b_ns(t_b + i);
      sample->set_evaluation_id(10 + i);
      sample->set_worker_id("w");
    }
    return b;
  };
  ASSERT_OK(store_->UpsertBaseline(baseline("p1", "wl-b", "cpu-a", "torch 2", 100, 1)));
  ASSERT_OK(store_->UpsertBaseline(baseline("p1", "wl-a", "cpu-a", "torch 2", 200, 3)));
  ASSERT_OK(store_->UpsertBaseline(baseline("p1", "wl-a", "cpu-a", "torch 1", 300, 3)));
  ASSERT_OK(store_->UpsertBaseline(baseline("p1", "wl-a", "cpu-b", "torch 2", 400, 3)));
  ASSERT_OK(store_->UpsertBaseline(baseline("p2", "wl-a", "cpu-a", "torch 2", 500, 3)));
  // The same key again replaces the record (a measurement added).
  ASSERT_OK(store_->UpsertBaseline(baseline("p1", "wl-b", "cpu-a", "torch 2", 110, 2)));

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Baseline> on_a, store_->ListBaselines("p1", "cpu-a"));
  ASSERT_EQ(on_a.size(), 3u);
  // By workload key, then software.
  EXPECT_EQ(on_a[0].workload_key(), "wl-a");
  EXPECT_EQ(on_a[0].software(), "torch 1");
  EXPECT_DOUBLE_EQ(on_a[0].t_b_ns(), 300);
  EXPECT_EQ(on_a[1].software(), "torch 2");
  EXPECT_DOUBLE_EQ(on_a[1].t_b_ns(), 200);
  EXPECT_TRUE(on_a[1].frozen());
  EXPECT_EQ(on_a[2].workload_key(), "wl-b");
  EXPECT_DOUBLE_EQ(on_a[2].t_b_ns(), 110);
  EXPECT_EQ(on_a[2].measurements(), 2);
  EXPECT_FALSE(on_a[2].frozen());
  ASSERT_EQ(on_a[2].samples_size(), 2);
  EXPECT_EQ(on_a[2].samples(1).evaluation_id(), 11);
  // Every field round-trips.
  EXPECT_DOUBLE_EQ(on_a[1].t_b_spread(), 0.05);
  EXPECT_DOUBLE_EQ(on_a[1].t_b_compile_ns(), 400);
  EXPECT_DOUBLE_EQ(on_a[1].t_ref_kernel_ns(), 100);
  EXPECT_EQ(on_a[1].updated_unix_ms(), 2000);
  EXPECT_EQ(on_a[1].problem(), "rmsnorm");

  // Any hardware: by hardware first.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Baseline> all, store_->ListBaselines("p1", ""));
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].hardware(), "cpu-a");
  EXPECT_EQ(all[3].hardware(), "cpu-b");
  EXPECT_DOUBLE_EQ(all[3].t_b_ns(), 400);

  ASSERT_OK_AND_ASSIGN(std::vector<v1::Baseline> none, store_->ListBaselines("p1", "gpu"));
  EXPECT_TRUE(none.empty());
  ASSERT_OK_AND_ASSIGN(none, store_->ListBaselines("p3", ""));
  EXPECT_TRUE(none.empty());

  // Read and written back in one transaction, as the coordinator does.
  ASSERT_OK(store_->Transaction([&]() -> absl::Status {
    auto got = store_->ListBaselines("p2", "cpu-a");
    if (!got.ok()) return got.status();
    if (got->size() != 1) return absl::InternalError("expected one baseline");
    v1::Baseline b = (*got)[0];
    b.set_t_b_ns(510);
    return store_->UpsertBaseline(b);
  }));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Baseline> p2, store_->ListBaselines("p2", "cpu-a"));
  ASSERT_EQ(p2.size(), 1u);
  EXPECT_DOUBLE_EQ(p2[0].t_b_ns(), 510);
  // A rolled-back transaction leaves nothing.
  EXPECT_FALSE(store_->Transaction([&]() -> absl::Status {
    if (auto s = store_->UpsertBaseline(baseline("p4", "wl", "cpu-a", "torch 2", 1, 1)); !s.ok())
      return s;
    return absl::AbortedError("changed my mind");
  }).ok());
  ASSERT_OK_AND_ASSIGN(none, store_->ListBaselines("p4", ""));
  EXPECT_TRUE(none.empty());
}

TEST_P(StoreTest, LessonsAreListedByOpTypeAndOptionallyCampaign) {
  auto lesson = [](int64_t campaign, const std::string& op_type, const std::string& to,
                   double effect) {
    v1::Lesson l;
    l.set_campaign_id(campaign);
    l.set_op_type(op_type);
    l.set_problem(op_type + "-4096");
    l.set_hardware("cpu");
    l.set_knob("VEC");
    l.set_from_value("1");
    l.set_to_value(to);
    l.set_effect(effect);
    l.set_outcome("ok");
    l.set_verdict("accepted");
    l.set_id(999);  // ignored: the store assigns ids
    return l;
  };
  ASSERT_OK_AND_ASSIGN(int64_t a, store_->AddLesson(lesson(1, "rmsnorm", "8", 1.5)));
  ASSERT_OK_AND_ASSIGN(int64_t b, store_->AddLesson(lesson(2, "rmsnorm", "16", -1)));
  ASSERT_OK_AND_ASSIGN(int64_t c, store_->AddLesson(lesson(1, "gemm", "4", 0.1)));
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Lesson> shared, store_->ListLessons("rmsnorm", 0));
  ASSERT_EQ(shared.size(), 2u);
  EXPECT_EQ(shared[0].id(), a);
  EXPECT_EQ(shared[0].to_value(), "8");
  EXPECT_DOUBLE_EQ(shared[0].effect(), 1.5);
  EXPECT_EQ(shared[0].verdict(), "accepted");
  EXPECT_EQ(shared[1].id(), b);
  EXPECT_EQ(shared[1].campaign_id(), 2);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Lesson> own, store_->ListLessons("rmsnorm", 2));
  ASSERT_EQ(own.size(), 1u);
  EXPECT_EQ(own[0].id(), b);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Lesson> none, store_->ListLessons("softmax", 0));
  EXPECT_TRUE(none.empty());
  // Written inside a rolled-back transaction: gone.
  EXPECT_FALSE(store_->Transaction([&]() -> absl::Status {
                       if (auto id = store_->AddLesson(lesson(3, "gemm", "8", 0)); !id.ok())
                         return id.status();
                       return absl::AbortedError("roll back");
                     }).ok());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Lesson> gemm, store_->ListLessons("gemm", 0));
  EXPECT_EQ(gemm.size(), 1u);
}

// ---------------------------------------------------------------------------
// Events.

std::vector<std::string> EventTexts(const std::vector<Store::Event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.text);
  return out;
}

TEST_P(StoreTest, EventsAreListedInOrderAndPagedPerCampaign) {
  int64_t seqs[5];
  ASSERT_OK_AND_ASSIGN(seqs[0], store_->AppendEvent(1, 1000, "a1"));
  ASSERT_OK_AND_ASSIGN(seqs[1], store_->AppendEvent(2, 1001, "b1"));
  ASSERT_OK_AND_ASSIGN(seqs[2], store_->AppendEvent(1, 1002, "a2"));
  ASSERT_OK_AND_ASSIGN(seqs[3], store_->AppendEvent(1, 1003, "a3"));
  ASSERT_OK_AND_ASSIGN(seqs[4], store_->AppendEvent(2, 1004, "b2"));
  for (int i = 1; i < 5; ++i) EXPECT_LT(seqs[i - 1], seqs[i]);

  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> a, store_->ListEvents(1, 0, 100));
  EXPECT_EQ(EventTexts(a), (std::vector<std::string>{"a1", "a2", "a3"}));
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].seq, seqs[0]);
  EXPECT_EQ(a[0].unix_ms, 1000);
  EXPECT_EQ(a[2].seq, seqs[3]);
  EXPECT_EQ(a[2].unix_ms, 1003);

  // Paging: after the last seq seen, `limit` at a time.
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> first, store_->ListEvents(1, 0, 2));
  EXPECT_EQ(EventTexts(first), (std::vector<std::string>{"a1", "a2"}));
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> rest,
                       store_->ListEvents(1, first.back().seq, 2));
  EXPECT_EQ(EventTexts(rest), (std::vector<std::string>{"a3"}));
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> none, store_->ListEvents(1, rest.back().seq, 2));
  EXPECT_TRUE(none.empty());

  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> b, store_->ListEvents(2, seqs[1], 100));
  EXPECT_EQ(EventTexts(b), (std::vector<std::string>{"b2"}));
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> zero, store_->ListEvents(1, 0, 0));
  EXPECT_TRUE(zero.empty());
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> unknown, store_->ListEvents(77, 0, 100));
  EXPECT_TRUE(unknown.empty());

  // Appended in one transaction, as EventLog writes a batch.
  ASSERT_OK(store_->Transaction([&]() -> absl::Status {
    for (const char* text : {"a4", "a5"})
      if (auto seq = store_->AppendEvent(1, 2000, text); !seq.ok()) return seq.status();
    return absl::OkStatus();
  }));
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> batch, store_->ListEvents(1, seqs[3], 100));
  EXPECT_EQ(EventTexts(batch), (std::vector<std::string>{"a4", "a5"}));
}

TEST_P(StoreTest, EventTextIsCappedAtACharacterBoundaryAndKeptUtf8) {
  const size_t cap = Store::kMaxEventTextBytes;
  const std::string long_text(3 * cap, 'x');
  // A two-byte character across the cap is left out whole.
  const std::string straddling = std::string(cap - 1, 'y') + "\xC3\xA9" + "tail";
  const std::string exact(cap, 'z');
  ASSERT_OK(store_->AppendEvent(1, 1, long_text).status());
  ASSERT_OK(store_->AppendEvent(1, 2, straddling).status());
  ASSERT_OK(store_->AppendEvent(1, 3, exact).status());
  ASSERT_OK(store_->AppendEvent(1, 4, std::string("bad \xFF byte and a \0 NUL", 22)).status());
  ASSERT_OK(store_->AppendEvent(1, 5, "").status());
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> events, store_->ListEvents(1, 0, 100));
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events[0].text, long_text.substr(0, cap));
  EXPECT_EQ(events[1].text, std::string(cap - 1, 'y'));
  EXPECT_EQ(events[2].text, exact);
  EXPECT_EQ(events[3].text, "bad \xEF\xBF\xBD byte and a   NUL");
  EXPECT_EQ(events[4].text, "");
}

TEST_P(StoreTest, EventsSurviveCloseAndReopen) {
  if (!GetParam().persistent) GTEST_SKIP() << "not persistent";
  const int64_t campaign = NewCampaign();
  ASSERT_OK_AND_ASSIGN(int64_t first, store_->AppendEvent(campaign, 10, "submitted"));
  ASSERT_OK_AND_ASSIGN(int64_t second, store_->AppendEvent(campaign, 20, "finished"));
  ASSERT_NO_FATAL_FAILURE(Reopen());
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> events, store_->ListEvents(campaign, 0, 100));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seq, first);
  EXPECT_EQ(events[0].unix_ms, 10);
  EXPECT_EQ(events[0].text, "submitted");
  EXPECT_EQ(events[1].seq, second);
  EXPECT_EQ(events[1].text, "finished");
  // Seqs keep growing across a reopen.
  ASSERT_OK_AND_ASSIGN(int64_t third, store_->AppendEvent(campaign, 30, "again"));
  EXPECT_GT(third, second);
}

TEST_P(StoreTest, OnlyTheNewestEventsOfACampaignAreKept) {
  // Trims run at a campaign's appends 1, 1 + interval, 1 + 2 * interval...:
  // the last of these appends leaves exactly the newest cap.
  const int cap = Store::kMaxEventsPerCampaign;
  const int total = cap + Store::kEventTrimInterval + 1;
  ASSERT_OK(store_->AppendEvent(2, 1, "other campaign").status());
  int64_t first_kept = 0;
  for (int start = 0; start < total; start += 1000) {
    ASSERT_OK(store_->Transaction([&]() -> absl::Status {
      for (int i = start; i < std::min(total, start + 1000); ++i) {
        auto seq = store_->AppendEvent(1, i, absl::StrCat("e", i));
        if (!seq.ok()) return seq.status();
        if (i == total - cap) first_kept = *seq;
      }
      return absl::OkStatus();
    }));
  }
  std::vector<Store::Event> kept;
  for (int64_t after = 0;;) {
    ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> page, store_->ListEvents(1, after, 5000));
    if (page.empty()) break;
    after = page.back().seq;
    kept.insert(kept.end(), page.begin(), page.end());
  }
  ASSERT_EQ(kept.size(), static_cast<size_t>(cap));
  EXPECT_EQ(kept.front().seq, first_kept);
  EXPECT_EQ(kept.front().text, absl::StrCat("e", total - cap));
  EXPECT_EQ(kept.back().text, absl::StrCat("e", total - 1));
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> other, store_->ListEvents(2, 0, 10));
  EXPECT_EQ(EventTexts(other), (std::vector<std::string>{"other campaign"}));
}

TEST_P(StoreTest, DataSurvivesCloseAndReopen) {
  if (!GetParam().persistent) GTEST_SKIP() << "backend is not persistent";
  int64_t c = NewCampaign(v1::CAMPAIGN_RUNNING, "durable");
  int64_t cand = NewCandidate(c, "h");
  int64_t done = NewJob(c, cand);
  int64_t leased = NewJob(c, cand);
  ASSERT_EQ(Acquire("w", 1000, 500), done);
  ASSERT_OK_AND_ASSIGN(int64_t eval, store_->CompleteJob(done, "w", Eval(0.6)));
  ASSERT_EQ(Acquire("w", 1000, 500), leased);
  ASSERT_OK_AND_ASSIGN(int64_t ver, store_->CreateVerification(Pending(c, cand)));
  v1::WorkerInfo w;
  w.set_id("w");
  ASSERT_OK(store_->UpsertWorker(w));
  v1::Baseline b;
  b.set_problem_key("p");
  b.set_workload_key("wl");
  b.set_hardware("hw");
  b.set_software("sw");
  b.set_t_b_ns(1234);
  ASSERT_OK(store_->UpsertBaseline(b));
  ASSERT_OK(store_->Transaction([&]() -> absl::Status {
    v1::ResearchThread t;
    t.set_campaign_id(c);
    return store_->CreateThread(t).status();
  }));

  Reopen();

  ASSERT_OK_AND_ASSIGN(v1::Campaign got, store_->GetCampaign(c));
  EXPECT_EQ(got.spec().name(), "durable");
  ASSERT_OK_AND_ASSIGN(std::optional<v1::Candidate> found, store_->FindCandidateByHash(c, "h"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id(), cand);
  ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(done));
  EXPECT_EQ(j.state(), v1::JOB_DONE);
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob(leased));
  EXPECT_EQ(j.state(), v1::JOB_LEASED);
  EXPECT_EQ(j.lease_deadline_unix_ms(), 1500);
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Evaluation> unprocessed,
                       store_->ListUnprocessedEvaluations());
  ASSERT_EQ(unprocessed.size(), 1u);
  EXPECT_EQ(unprocessed[0].id(), eval);
  EXPECT_OK(store_->GetVerification(ver).status());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Baseline> baselines, store_->ListBaselines("p", "hw"));
  ASSERT_EQ(baselines.size(), 1u);
  EXPECT_DOUBLE_EQ(baselines[0].t_b_ns(), 1234);
  ASSERT_OK_AND_ASSIGN(std::optional<v1::WorkerInfo> worker, store_->GetWorker("w"));
  EXPECT_TRUE(worker.has_value());
  ASSERT_OK_AND_ASSIGN(std::vector<v1::ResearchThread> threads, store_->ListThreads(c));
  EXPECT_EQ(threads.size(), 1u);

  // Leases still work after the restart, and ids continue past the old ones.
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Job> expired, store_->ExpireLeases(2000, 5));
  ASSERT_EQ(expired.size(), 1u);
  EXPECT_EQ(expired[0].id(), leased);
  EXPECT_GT(NewCampaign(), c);
  EXPECT_GT(NewJob(c, cand), leased);
}

TEST_P(StoreTest, AcknowledgedWritesSurviveKill9) {
  if (!GetParam().persistent) GTEST_SKIP() << "backend is not persistent";
  store_.reset();
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child writes, reports the ids it was given, and waits to be killed:
    // nothing is flushed or closed on the way out.
    close(ready[0]);
    absl::StatusOr<std::unique_ptr<Store>> s = GetParam().open(location_);
    if (!s.ok()) _exit(2);
    v1::Campaign c;
    c.set_state(v1::CAMPAIGN_RUNNING);
    absl::StatusOr<int64_t> cid = (*s)->CreateCampaign(c);
    if (!cid.ok()) _exit(3);
    v1::Job j;
    j.set_campaign_id(*cid);
    j.set_state(v1::JOB_QUEUED);
    if (!(*s)->CreateJob(j).ok()) _exit(4);
    absl::StatusOr<std::optional<v1::Job>> leased = (*s)->AcquireJob("w", 10, 10, false);
    if (!leased.ok() || !leased->has_value()) _exit(5);
    int64_t ids[2] = {*cid, (*leased)->id()};
    if (write(ready[1], ids, sizeof(ids)) != sizeof(ids)) _exit(6);
    while (true) pause();
  }
  close(ready[1]);
  int64_t ids[2] = {0, 0};
  ssize_t n = read(ready[0], ids, sizeof(ids));
  close(ready[0]);
  kill(child, SIGKILL);
  int wstatus = 0;
  waitpid(child, &wstatus, 0);
  ASSERT_EQ(n, static_cast<ssize_t>(sizeof(ids))) << "child exited with " << wstatus;

  Open();
  ASSERT_OK_AND_ASSIGN(v1::Campaign c, store_->GetCampaign(ids[0]));
  EXPECT_EQ(c.state(), v1::CAMPAIGN_RUNNING);
  ASSERT_OK_AND_ASSIGN(v1::Job j, store_->GetJob(ids[1]));
  EXPECT_EQ(j.state(), v1::JOB_LEASED);
  EXPECT_EQ(j.worker_id(), "w");
  EXPECT_EQ(j.attempts(), 1);
}

// ---------------------------------------------------------------------------
// Backends.

INSTANTIATE_TEST_SUITE_P(
    Sqlite, StoreTest,
    ::testing::Values(
        Backend{"SqliteFile", [](const std::string& path) { return OpenSqliteStore(path); },
                true},
        Backend{"SqliteMemory", [](const std::string&) { return OpenSqliteStore(":memory:"); },
                false}),
    [](const ::testing::TestParamInfo<Backend>& info) { return info.param.name; });

// PostgreSQL: one real server per test process, started on first use, and a
// fresh database per store location (so per test; reopening a location, also
// from a forked child, finds the same database).
using ::ratchet::testing::PostgresServer;

struct SharedPostgres {
  absl::Mutex mu;
  std::unique_ptr<PostgresServer> server;
  std::string error;
  std::map<std::string, std::string> databases;  // location -> database
};

SharedPostgres& Shared() {
  static auto* shared = new SharedPostgres();
  // Stopped and removed at exit (not in a forked child, which is killed).
  static struct Cleanup {
    ~Cleanup() { shared->server.reset(); }
  } cleanup;
  return *shared;
}

std::string PostgresUnavailable() {
  std::string why;
  if (!PostgresServer::Available(&why)) return why;
  SharedPostgres& pg = Shared();
  absl::MutexLock l(&pg.mu);
  if (pg.server == nullptr && pg.error.empty()) {
    absl::StatusOr<std::unique_ptr<PostgresServer>> server =
        PostgresServer::Start();
    if (server.ok()) {
      pg.server = std::move(*server);
    } else {
      pg.error = server.status().ToString();
    }
  }
  // Installed but failing to start is a failure, not a reason to skip.
  EXPECT_EQ(pg.error, "") << "starting PostgreSQL";
  return pg.error.empty() ? "" : "PostgreSQL did not start";
}

absl::StatusOr<std::unique_ptr<Store>> OpenPostgresAt(const std::string& location) {
  SharedPostgres& pg = Shared();
  std::string url;
  {
    absl::MutexLock l(&pg.mu);
    if (pg.server == nullptr) return absl::FailedPreconditionError("no PostgreSQL server");
    auto it = pg.databases.find(location);
    if (it == pg.databases.end()) {
      std::string name = absl::StrCat("t_", pg.databases.size() + 1);
      if (absl::Status s = pg.server->CreateDatabase(name); !s.ok()) return s;
      it = pg.databases.emplace(location, name).first;
    }
    url = pg.server->Url(it->second);
  }
  PostgresOptions options;
  options.reconnect_timeout_ms = 5000;
  return OpenPostgresStore(url, options);
}

INSTANTIATE_TEST_SUITE_P(
    Postgres, StoreTest,
    ::testing::Values(Backend{"Postgres", OpenPostgresAt, true, PostgresUnavailable}),
    [](const ::testing::TestParamInfo<Backend>& info) { return info.param.name; });

// ---------------------------------------------------------------------------
// SQLite specifics: schema versioning, journal mode, several connections.

// Runs one query on a raw connection to `path` and returns the first column
// of the first row as text.
std::string RawQuery(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string out = "<error>";
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK) {
      int rc = sqlite3_step(stmt);
      if (rc == SQLITE_ROW) {
        const unsigned char* t = sqlite3_column_text(stmt, 0);
        out = t ? reinterpret_cast<const char*>(t) : "<null>";
      } else if (rc == SQLITE_DONE) {
        out = "<none>";
      }
    }
    sqlite3_finalize(stmt);
  }
  sqlite3_close(db);
  return out;
}

TEST(SqliteStoreTest, SchemaVersionIsRecordedAndKeptAcrossReopen) {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
    ASSERT_OK(store->CreateCampaign(v1::Campaign()).status());
  }
  EXPECT_EQ(RawQuery(path, "SELECT version FROM schema_version"), "8");
  EXPECT_EQ(RawQuery(path, "SELECT COUNT(*) FROM schema_version"), "1");
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
    ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> all, store->ListCampaigns());
    EXPECT_EQ(all.size(), 1u);
  }
  // Reopening migrates nothing twice.
  EXPECT_EQ(RawQuery(path, "SELECT version FROM schema_version"), "8");
  EXPECT_EQ(RawQuery(path, "SELECT COUNT(*) FROM schema_version"), "1");
}

// Several processes may open one file at once (the coordinator starting
// while `ratchet local` or a test reads the store): each migration step runs
// once, whoever comes first, and every opener gets a working store. Eight
// connections race on a fresh file and on one of schema version 7.
TEST(SqliteStoreTest, OpenersRacingOnOneFileMigrateItOnce) {
  TempDir dir;
  for (int round = 0; round < 10; ++round) {
    const std::string path = absl::StrCat(dir.path(), "/race", round, ".db");
    if (round % 2 == 1) {
      {
        ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
      }
      RawQuery(path, "DROP INDEX campaigns_by_owner");
      RawQuery(path, "ALTER TABLE campaigns DROP COLUMN owner");
      RawQuery(path, "ALTER TABLE campaigns DROP COLUMN spec_bytes");
      RawQuery(path, "ALTER TABLE campaigns DROP COLUMN summary");
      RawQuery(path, "UPDATE schema_version SET version = 7");
    }
    std::vector<absl::Status> opened(8);
    std::vector<std::thread> openers;
    for (size_t i = 0; i < opened.size(); ++i)
      openers.emplace_back([&, i] { opened[i] = OpenSqliteStore(path).status(); });
    for (std::thread& t : openers) t.join();
    for (const absl::Status& s : opened) EXPECT_TRUE(s.ok()) << "round " << round << ": " << s;
    EXPECT_EQ(RawQuery(path, "SELECT version FROM schema_version"), "8");
    EXPECT_EQ(RawQuery(path, "SELECT COUNT(*) FROM schema_version"), "1");
  }
}

// A file made before events were stored (schema version 5) gains the table
// when opened, and its campaigns are still there.
TEST(SqliteStoreTest, AnOlderFileGainsTheEventsTableOnOpen) {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  int64_t campaign = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
    v1::Campaign c;
    c.mutable_spec()->set_name("before events");
    ASSERT_OK_AND_ASSIGN(campaign, store->CreateCampaign(c));
  }
  RawQuery(path, "DROP TABLE events");
  // Nor had it the columns of version 8.
  RawQuery(path, "DROP INDEX campaigns_by_owner");
  RawQuery(path, "ALTER TABLE campaigns DROP COLUMN owner");
  RawQuery(path, "ALTER TABLE campaigns DROP COLUMN spec_bytes");
  RawQuery(path, "ALTER TABLE campaigns DROP COLUMN summary");
  RawQuery(path, "UPDATE schema_version SET version = 5");
  ASSERT_EQ(RawQuery(path, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'events'"), "0");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
  EXPECT_EQ(RawQuery(path, "SELECT version FROM schema_version"), "8");
  ASSERT_OK_AND_ASSIGN(v1::Campaign c, store->GetCampaign(campaign));
  EXPECT_EQ(c.spec().name(), "before events");
  ASSERT_OK(store->AppendEvent(campaign, 1, "first event").status());
  ASSERT_OK_AND_ASSIGN(std::vector<Store::Event> events, store->ListEvents(campaign, 0, 10));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].text, "first event");
}

// A file of schema version 7 (campaigns without owner, size and summary
// columns) gets them filled when opened, so its clients' campaigns count
// against their limits and list without their specs' files.
TEST(SqliteStoreTest, AnOlderFileGetsItsCampaignColumnsFilledOnOpen) {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  v1::Campaign c;
  c.mutable_spec()->set_name("before owners");
  c.mutable_spec()->set_owner("alice");
  c.mutable_spec()->mutable_problem()->set_workload_jsonl(std::string(100'000, 'w'));
  c.set_state(v1::CAMPAIGN_RUNNING);
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
    ASSERT_OK(store->CreateCampaign(c).status());
  }
  RawQuery(path, "DROP INDEX campaigns_by_owner");
  RawQuery(path, "ALTER TABLE campaigns DROP COLUMN owner");
  RawQuery(path, "ALTER TABLE campaigns DROP COLUMN spec_bytes");
  RawQuery(path, "ALTER TABLE campaigns DROP COLUMN summary");
  RawQuery(path, "UPDATE schema_version SET version = 7");
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
  EXPECT_EQ(RawQuery(path, "SELECT version FROM schema_version"), "8");
  ASSERT_OK_AND_ASSIGN(Store::OwnerUsage alice, store->GetOwnerUsage("alice"));
  EXPECT_EQ(alice.active_campaigns, 1);
  EXPECT_EQ(alice.spec_bytes, static_cast<int64_t>(c.spec().ByteSizeLong()));
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> listed, store->ListCampaignSummaries());
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].spec().name(), "before owners");
  EXPECT_TRUE(listed[0].spec().problem().workload_jsonl().empty());
}

// Protobuf's wire format, for records written by hand as an older version
// wrote them (field numbers below 16, values below 128 bytes).
std::string WireBytes(int number, const std::string& bytes) {
  return std::string{static_cast<char>(number << 3 | 2), static_cast<char>(bytes.size())} + bytes;
}
std::string WireVarint(int number, int64_t value) {
  return std::string{static_cast<char>(number << 3), static_cast<char>(value)};
}

// Before task, proposer, device, harness.screen and a candidate's status
// were enums, those field numbers held words. Such records read back with
// the enums set and the words gone (spec::UpgradeLegacyFields).
TEST(SqliteStoreTest, RecordsOfAnOlderVersionReadWithTheirEnums) {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  int64_t campaign = 0, candidate = 0;
  {
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
    ASSERT_OK_AND_ASSIGN(campaign, store->CreateCampaign(v1::Campaign()));
    v1::Candidate c;
    c.set_campaign_id(campaign);
    ASSERT_OK_AND_ASSIGN(candidate, store->CreateCandidate(c));
  }
  // CampaignSpec: name 1, task 2, proposer 6, harness 10 (warmups 1,
  // screen 5), device 11; Campaign: spec 2, state 3; Candidate:
  // campaign_id 2, status 8.
  const std::string old_spec =
      WireBytes(1, "old") + WireBytes(2, "sleep") + WireBytes(6, "grid") +
      WireBytes(10, WireVarint(1, 3) + WireBytes(5, "off")) + WireBytes(11, "cuda");
  const std::string old_campaign = WireBytes(2, old_spec) + WireVarint(3, v1::CAMPAIGN_RUNNING);
  const std::string old_candidate = WireVarint(2, campaign) + WireBytes(8, "accepted");
  ASSERT_EQ(RawQuery(path, absl::StrCat("UPDATE campaigns SET data = X'",
                                        absl::BytesToHexString(old_campaign),
                                        "' WHERE id = ", campaign)),
            "<none>");
  ASSERT_EQ(RawQuery(path, absl::StrCat("UPDATE candidates SET data = X'",
                                        absl::BytesToHexString(old_candidate),
                                        "' WHERE id = ", candidate)),
            "<none>");

  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
  v1::CampaignSpec want;
  want.set_name("old");
  want.set_task(v1::TASK_SLEEP);
  want.set_proposer(v1::PROPOSER_GRID);
  want.set_device(v1::DEVICE_CUDA);
  want.mutable_harness()->set_warmups(3);
  want.mutable_harness()->set_screen(v1::SCREEN_OFF);
  ASSERT_OK_AND_ASSIGN(v1::Campaign got, store->GetCampaign(campaign));
  EXPECT_EQ(got.state(), v1::CAMPAIGN_RUNNING);
  EXPECT_TRUE(MessageDifferencer::Equals(got.spec(), want)) << got.spec().DebugString();
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Campaign> all, store->ListCampaigns());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(MessageDifferencer::Equals(all[0].spec(), want)) << all[0].spec().DebugString();

  v1::Candidate want_candidate;
  want_candidate.set_id(candidate);
  want_candidate.set_campaign_id(campaign);
  want_candidate.set_status(v1::CANDIDATE_ACCEPTED);
  ASSERT_OK_AND_ASSIGN(v1::Candidate got_candidate, store->GetCandidate(candidate));
  EXPECT_TRUE(MessageDifferencer::Equals(got_candidate, want_candidate))
      << got_candidate.DebugString();
  ASSERT_OK_AND_ASSIGN(std::vector<v1::Candidate> listed, store->ListCandidates(campaign));
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].status(), v1::CANDIDATE_ACCEPTED);

  // Written back, the record is of this version: the words stay gone.
  ASSERT_OK(store->UpdateCandidate(got_candidate));
  ASSERT_OK_AND_ASSIGN(v1::Candidate again, store->GetCandidate(candidate));
  EXPECT_TRUE(MessageDifferencer::Equals(again, want_candidate)) << again.DebugString();
}

TEST(SqliteStoreTest, UsesWalJournal) {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> store, OpenSqliteStore(path));
  EXPECT_EQ(RawQuery(path, "PRAGMA journal_mode"), "wal");
}

TEST(SqliteStoreTest, RefusesASchemaNewerThanItKnows) {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  { ASSERT_OK(OpenSqliteStore(path).status()); }
  RawQuery(path, "UPDATE schema_version SET version = 99");
  ASSERT_EQ(RawQuery(path, "SELECT version FROM schema_version"), "99");
  absl::StatusOr<std::unique_ptr<Store>> s = OpenSqliteStore(path);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << s.status();
  EXPECT_NE(s.status().message().find("99"), std::string::npos) << s.status();
}

TEST(SqliteStoreTest, OpenFailureSaysWhy) {
  absl::StatusOr<std::unique_ptr<Store>> s = OpenSqliteStore("/nonexistent-dir/x/y.db");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("/nonexistent-dir/x/y.db"), std::string::npos)
      << s.status();
}

TEST(SqliteStoreTest, TwoConnectionsNeverHandOutOneJobTwice) {
  TempDir dir;
  const std::string path = dir.path() + "/s.db";
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> a, OpenSqliteStore(path));
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<Store> b, OpenSqliteStore(path));
  v1::Campaign c;
  c.set_state(v1::CAMPAIGN_RUNNING);
  ASSERT_OK_AND_ASSIGN(int64_t cid, a->CreateCampaign(c));
  constexpr int kJobs = 60;
  for (int i = 0; i < kJobs; ++i) {
    v1::Job j;
    j.set_campaign_id(cid);
    j.set_state(v1::JOB_QUEUED);
    j.set_kind(v1::JOB_EVALUATE);
    ASSERT_OK(a->CreateJob(j).status());
  }
  std::vector<int64_t> got_a, got_b;
  std::atomic<int> errors{0};
  auto drain = [&](Store* s, const std::string& worker, std::vector<int64_t>* out) {
    while (true) {
      absl::StatusOr<std::optional<v1::Job>> j = s->AcquireJob(worker, 0, 1000, false);
      if (!j.ok()) {
        ++errors;
        ADD_FAILURE() << j.status();
        return;
      }
      if (!j->has_value()) return;
      out->push_back((*j)->id());
    }
  };
  std::thread ta(drain, a.get(), "a", &got_a);
  std::thread tb(drain, b.get(), "b", &got_b);
  ta.join();
  tb.join();
  EXPECT_EQ(errors.load(), 0);
  std::set<int64_t> all(got_a.begin(), got_a.end());
  all.insert(got_b.begin(), got_b.end());
  EXPECT_EQ(all.size(), static_cast<size_t>(kJobs));
  EXPECT_EQ(got_a.size() + got_b.size(), static_cast<size_t>(kJobs));
}

}  // namespace
}  // namespace ratchet::store
