// The research loop in process: a Coordinator over a real (in-memory) SQLite
// store and a FakeClock, with no thread started. The test plays the worker
// (leases jobs and reports the scores it chooses) and the verifier (acquires
// a claim with its finished replays, asks for more or reports a verdict), all
// through the coordinator's public methods, and runs the loop one tick at a
// time with RunOnce(). Time moves only when the test moves the clock, so
// nothing here depends on how fast the host is.
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "coordinator/coordinator.h"
#include "coordinator/experience.h"
#include "coordinator/services.h"
#include "coordinator/store/store.h"
#include "grpcpp/grpcpp.h"
#include "spec/defaults.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ratchet::coordinator {
namespace {

constexpr char kVerifier[] = "verifier-1";
constexpr char kOtherVerifier[] = "verifier-2";

class ResearchLoopTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Open(":memory:")); }

  // A coordinator over the SQLite store at `location` (the one before it,
  // if any, stopped first): a restart, when it is a file.
  void Open(const std::string& location) {
    coordinator_.reset();
    store_.reset();
    auto store = store::OpenSqliteStore(location);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    CoordinatorOptions options;
    options.clock = &clock_;
    options.lease_ms = 30'000;
    options.heartbeat_ms = 3'000;
    options.max_attempts = 3;
    coordinator_ = std::make_unique<Coordinator>(store_.get(), options,
                                                 std::make_shared<prometheus::Registry>());
  }

  // A toy kernel campaign: one thread, one candidate in flight, the grid
  // proposer over one knob, one replay a side.
  int64_t Submit(int max_evaluations, double max_wall_seconds = 0) {
    return Submit(Spec(max_evaluations, max_wall_seconds));
  }

  int64_t Submit(const v1::CampaignSpec& spec) {
    auto campaign = coordinator_->SubmitCampaign(spec);
    EXPECT_TRUE(campaign.ok()) << campaign.status();
    return campaign.ok() ? campaign->id() : 0;
  }

  // The spec Submit sends, for a test to change before it does.
  static v1::CampaignSpec Spec(int max_evaluations, double max_wall_seconds = 0) {
    v1::CampaignSpec spec;
    spec.set_name("loop");
    spec.mutable_problem()->set_name("toy");
    spec.mutable_problem()->set_definition_json("{\"name\": \"toy\", \"op_type\": \"toy\"}");
    spec.mutable_problem()->set_workload_jsonl("{\"axes\": {\"N\": 64}}\n");
    (*spec.mutable_baseline()->mutable_files())["solution.json"] =
        "{\"name\": \"toy\", \"sources\": [\"kernel.cc\"], \"knobs\": "
        "{\"K\": {\"choices\": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], \"default\": 1}}}";
    (*spec.mutable_baseline()->mutable_files())["kernel.cc"] = "// toy\n";
    spec.set_proposer(v1::PROPOSER_GRID);
    spec.set_threads(1);
    spec.set_in_flight_per_thread(1);
    spec.mutable_budget()->set_max_evaluations(max_evaluations);
    spec.mutable_budget()->set_max_wall_seconds(max_wall_seconds);
    spec.mutable_verification()->set_replays(1);
    spec.set_device(v1::DEVICE_CPU);
    return spec;
  }

  std::string Register(const std::string& name) {
    v1::RegisterWorkerRequest request;
    request.set_name(name);
    request.mutable_hardware()->set_cpu_model("Test CPU");
    request.mutable_hardware()->set_cpu_cores(2);
    auto response = coordinator_->RegisterWorker(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->worker_id() : "";
  }

  // The job the worker is handed now, if any (no waiting).
  std::optional<v1::Job> Lease(const std::string& worker) {
    auto job = coordinator_->AcquireJob(worker, 0);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : std::nullopt;
  }

  // `wall_seconds` is what the job spent of the GPU-seconds budget.
  v1::CompleteJobResponse Report(const v1::Job& job, double score,
                                 v1::Outcome outcome = v1::OUTCOME_OK, double wall_seconds = 1) {
    v1::CompleteJobRequest request;
    request.set_worker_id(job.worker_id());
    request.set_job_id(job.id());
    request.mutable_evaluation()->set_outcome(outcome);
    request.mutable_evaluation()->set_score(score);
    request.mutable_evaluation()->set_wall_seconds(wall_seconds);
    auto response = coordinator_->CompleteJob(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::CompleteJobResponse();
  }

  // Leases the next job and reports `score` for it; false when none was queued.
  bool Work(const std::string& worker, double score) {
    std::optional<v1::Job> job = Lease(worker);
    if (!job.has_value()) return false;
    EXPECT_TRUE(Report(*job, score).accepted());
    return true;
  }

  void Tick() {
    absl::Status s = coordinator_->RunOnce();
    ASSERT_TRUE(s.ok()) << s;
  }

  v1::Campaign Campaign(int64_t id) {
    auto campaign = coordinator_->GetCampaign(id);
    EXPECT_TRUE(campaign.ok()) << campaign.status();
    return campaign.ok() ? *campaign : v1::Campaign();
  }

  v1::Job Job(int64_t id) {
    auto job = store_->GetJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : v1::Job();
  }

  // The campaign's events so far, as one text.
  std::string Events(int64_t campaign_id) {
    int64_t cursor = 0;
    std::vector<std::string> texts;
    for (const auto& e : coordinator_->WaitForEvents(campaign_id, &cursor, 0))
      texts.push_back(e.text);
    return absl::StrJoin(texts, "\n");
  }

  // What AcquireVerification hands `verifier` now (no waiting): a claim
  // whose replays have all ended, with its bundle; no verification if none.
  v1::AcquireVerificationResponse AcquireClaim(const std::string& verifier) {
    auto got = coordinator_->AcquireVerification(verifier, 0);
    EXPECT_TRUE(got.ok()) << got.status();
    return got.ok() ? *got : v1::AcquireVerificationResponse();
  }

  // The verifier's report that claim `id` needs `replays` a side in total.
  absl::StatusOr<v1::ReportVerdictResponse> AskMore(const std::string& verifier, int64_t id,
                                                    int replays) {
    v1::ReportVerdictRequest request;
    request.set_verifier_id(verifier);
    request.mutable_verification()->set_id(id);
    request.mutable_verification()->set_outcome(v1::VERDICT_MORE_REPLAYS);
    request.set_replays(replays);
    return coordinator_->ReportVerdict(request);
  }

  // An acceptance of claim `id` on these replay scores.
  absl::StatusOr<v1::ReportVerdictResponse> Accept(const std::string& verifier, int64_t id,
                                                   const std::vector<double>& candidate,
                                                   const std::vector<double>& incumbent) {
    v1::ReportVerdictRequest request;
    request.set_verifier_id(verifier);
    v1::Verification* v = request.mutable_verification();
    v->set_id(id);
    v->set_outcome(v1::VERDICT_ACCEPTED);
    v->set_detail("faster beyond noise");
    for (double x : candidate) v->add_candidate_scores(x);
    for (double x : incumbent) v->add_incumbent_scores(x);
    return coordinator_->ReportVerdict(request);
  }

  // Leases `n` jobs on `worker`, each a replay, and reports them: the
  // claim's candidate scoring `claimed`, the incumbent `incumbent`.
  void RunReplays(const std::string& worker, int64_t candidate_id, double claimed,
                  double incumbent, int n) {
    for (int i = 0; i < n; ++i) {
      std::optional<v1::Job> job = Lease(worker);
      ASSERT_TRUE(job.has_value()) << "replay " << i;
      ASSERT_EQ(job->kind(), v1::JOB_REPLAY) << "replay " << i;
      EXPECT_TRUE(
          Report(*job, job->candidate_id() == candidate_id ? claimed : incumbent).accepted());
    }
  }

  // A campaign whose first proposal (on w1) claimed 0.6 against a 0.5
  // baseline; returns the claim, whose one replay a side is queued.
  v1::Verification Claim(const std::string& w1, int64_t* campaign_id) {
    *campaign_id = StartCampaign(w1, 0.5, 20);
    std::optional<v1::Job> job = Lease(w1);
    EXPECT_TRUE(job.has_value());
    if (!job.has_value()) return v1::Verification();
    EXPECT_TRUE(Report(*job, 0.6).accepted());
    Tick();
    auto claims = store_->ListVerificationsForCandidate(job->candidate_id());
    EXPECT_TRUE(claims.ok() && claims->size() == 1u);
    return claims.ok() && claims->size() == 1u ? claims->front() : v1::Verification();
  }

  // Submits, evaluates the baseline at `baseline_score` and runs the tick
  // that applies it (and queues the first proposal).
  int64_t StartCampaign(const std::string& worker, double baseline_score, int max_evaluations,
                        double max_wall_seconds = 0) {
    return StartCampaign(worker, baseline_score, Spec(max_evaluations, max_wall_seconds));
  }

  int64_t StartCampaign(const std::string& worker, double baseline_score,
                        const v1::CampaignSpec& spec) {
    const int64_t id = Submit(spec);
    std::optional<v1::Job> baseline = Lease(worker);
    EXPECT_TRUE(baseline.has_value());
    if (!baseline.has_value()) return id;
    EXPECT_EQ(baseline->candidate_id(), Campaign(id).baseline_candidate_id());
    EXPECT_TRUE(Report(*baseline, baseline_score).accepted());
    Tick();
    EXPECT_DOUBLE_EQ(Campaign(id).baseline_score(), baseline_score);
    return id;
  }

  FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Coordinator> coordinator_;
};

TEST_F(ResearchLoopTest, AClaimIsReplayedJudgedOnItsBundleAndAnAcceptanceMovesTheIncumbent) {
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  const int64_t id = StartCampaign(w1, 0.5, 20);
  const v1::Campaign started = Campaign(id);
  ASSERT_EQ(started.threads_size(), 1);
  EXPECT_EQ(started.threads(0).incumbent_candidate_id(), started.baseline_candidate_id());

  // The proposal queued by that tick, reported better than the incumbent.
  std::optional<v1::Job> job = Lease(w1);
  ASSERT_TRUE(job.has_value());
  EXPECT_NE(job->candidate_id(), started.baseline_candidate_id());
  EXPECT_EQ(job->kind(), v1::JOB_EVALUATE);
  ASSERT_TRUE(Report(*job, 0.6).accepted());
  Tick();
  const int64_t claimed = job->candidate_id();
  auto candidate = coordinator_->GetCandidate(claimed);
  ASSERT_TRUE(candidate.ok()) << candidate.status();
  EXPECT_EQ(candidate->candidate().status(), v1::CANDIDATE_VERIFYING);
  EXPECT_TRUE(absl::StrContains(Events(id), "-> verifying (claim")) << Events(id);
  // Not yet verified: the incumbent stays.
  EXPECT_EQ(Campaign(id).threads(0).incumbent_candidate_id(), started.baseline_candidate_id());

  // The coordinator queued the claim's replays itself, one a side; until
  // they have ended no verifier gets the claim.
  auto claims = store_->ListVerificationsForCandidate(claimed);
  ASSERT_TRUE(claims.ok());
  ASSERT_EQ(claims->size(), 1u);
  const int64_t claim_id = claims->front().id();
  auto replays = store_->ListJobsForVerification(claim_id);
  ASSERT_TRUE(replays.ok());
  ASSERT_EQ(replays->size(), 2u);
  EXPECT_EQ((*replays)[0].candidate_id(), claimed);
  EXPECT_EQ((*replays)[1].candidate_id(), started.baseline_candidate_id());
  EXPECT_FALSE(AcquireClaim(kVerifier).has_verification());

  // Replays go first, and the claim's away from the worker that made it.
  std::optional<v1::Job> replay_a = Lease(w2);
  ASSERT_TRUE(replay_a.has_value());
  EXPECT_EQ(replay_a->kind(), v1::JOB_REPLAY);
  ASSERT_TRUE(Report(*replay_a, replay_a->candidate_id() == claimed ? 0.62 : 0.5).accepted());
  EXPECT_FALSE(AcquireClaim(kVerifier).has_verification());  // one still queued
  std::optional<v1::Job> replay_b = Lease(w2);
  ASSERT_TRUE(replay_b.has_value());
  EXPECT_EQ(replay_b->kind(), v1::JOB_REPLAY);
  EXPECT_FALSE(AcquireClaim(kVerifier).has_verification());  // one still leased
  ASSERT_TRUE(Report(*replay_b, replay_b->candidate_id() == claimed ? 0.62 : 0.5).accepted());
  Tick();

  // Every replay ended: the claim comes with its whole bundle.
  v1::AcquireVerificationResponse bundle = AcquireClaim(kVerifier);
  ASSERT_TRUE(bundle.has_verification());
  const v1::Verification v = bundle.verification();
  EXPECT_EQ(v.id(), claim_id);
  EXPECT_EQ(v.candidate_id(), claimed);
  EXPECT_EQ(v.incumbent_candidate_id(), started.baseline_candidate_id());
  EXPECT_DOUBLE_EQ(v.claimed_score(), 0.6);
  EXPECT_EQ(v.verifier_id(), kVerifier);
  EXPECT_EQ(v.lease_deadline_unix_ms(),
            clock_.NowUnixMs() + CoordinatorOptions().verification_lease_ms);
  EXPECT_EQ(bundle.replays().jobs_size(), 2);
  EXPECT_EQ(bundle.replays().evaluations_size(), 2);
  for (const auto& j : bundle.replays().jobs()) {
    EXPECT_EQ(j.state(), v1::JOB_DONE);
    EXPECT_FALSE(j.has_problem());  // the bundle carries results, not files
  }
  EXPECT_EQ(bundle.replays().worker_hardware().count(w2), 1u);
  EXPECT_FALSE(AcquireClaim(kOtherVerifier).has_verification());  // leased

  // Promising, not yet significant: the verifier wants two a side. Only the
  // holder may ask, and only for more than there is, within the cap.
  EXPECT_EQ(AskMore(kOtherVerifier, v.id(), 2).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(AskMore(kVerifier, v.id(), 1).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(AskMore(kVerifier, v.id(), 21).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto more = AskMore(kVerifier, v.id(), 2);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_TRUE(more->accepted());
  EXPECT_TRUE(absl::StrContains(Events(id), "raises the replays of #" + std::to_string(claimed) +
                                                " and incumbent #" +
                                                std::to_string(started.baseline_candidate_id()) +
                                                " to 2x each"))
      << Events(id);
  replays = store_->ListJobsForVerification(claim_id);
  ASSERT_TRUE(replays.ok());
  ASSERT_EQ(replays->size(), 4u);
  // The added pair: candidate and incumbent on a seed of their own.
  EXPECT_EQ((*replays)[2].seed(), (*replays)[3].seed());
  EXPECT_NE((*replays)[2].candidate_id(), (*replays)[3].candidate_id());
  EXPECT_NE((*replays)[2].seed(), (*replays)[0].seed());
  // Back to waiting: nobody holds it, so nobody decides it on the old bundle.
  EXPECT_EQ(Accept(kVerifier, v.id(), {0.62}, {0.5}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(AcquireClaim(kVerifier).has_verification());
  ASSERT_NO_FATAL_FAILURE(RunReplays(w2, claimed, 0.64, 0.5, 2));
  Tick();

  // Any verifier takes it now, with all four replays.
  bundle = AcquireClaim(kOtherVerifier);
  ASSERT_TRUE(bundle.has_verification());
  EXPECT_EQ(bundle.verification().id(), claim_id);
  EXPECT_EQ(bundle.replays().jobs_size(), 4);
  EXPECT_EQ(bundle.replays().evaluations_size(), 4);

  // A score no replay had is refused, as is a verdict from a verifier that
  // does not hold the claim.
  EXPECT_EQ(Accept(kOtherVerifier, v.id(), {0.62, 0.7}, {0.5, 0.5}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Accept(kVerifier, v.id(), {0.62, 0.64}, {0.5, 0.5}).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto response = Accept(kOtherVerifier, v.id(), {0.62, 0.64}, {0.5, 0.5});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->accepted());

  // The incumbent moved to the replays' median, not the claim.
  const v1::Campaign after = Campaign(id);
  EXPECT_EQ(after.threads(0).incumbent_candidate_id(), claimed);
  EXPECT_DOUBLE_EQ(after.threads(0).incumbent_score(), 0.63);
  EXPECT_EQ(after.best_candidate_id(), claimed);
  EXPECT_DOUBLE_EQ(after.best_score(), 0.63);
  EXPECT_TRUE(after.best_verified());
  candidate = coordinator_->GetCandidate(claimed);
  ASSERT_TRUE(candidate.ok());
  EXPECT_EQ(candidate->candidate().status(), v1::CANDIDATE_ACCEPTED);
  EXPECT_TRUE(absl::StrContains(Events(id), "ACCEPTED, verified score 0.6300")) << Events(id);
  // A second verdict on the same claim changes nothing.
  response = Accept(kOtherVerifier, v.id(), {0.62, 0.64}, {0.5, 0.5});
  ASSERT_TRUE(response.ok());
  EXPECT_FALSE(response->accepted());
  EXPECT_FALSE(AcquireClaim(kVerifier).has_verification());
}

// A kernel campaign's evaluations share its input seed (a worker then makes
// the oracle's rounds once); replays get fresh seeds, one per pair of
// candidate and incumbent, and another campaign has its own.
TEST_F(ResearchLoopTest, EvaluationsShareTheCampaignsSeedAndReplaysDoNot) {
  const std::string w1 = Register("w1");
  const int64_t id = Submit(20);
  std::optional<v1::Job> baseline = Lease(w1);
  ASSERT_TRUE(baseline.has_value());
  EXPECT_TRUE(baseline->shared_inputs());
  ASSERT_TRUE(Report(*baseline, 0.5).accepted());
  Tick();
  std::optional<v1::Job> proposal = Lease(w1);
  ASSERT_TRUE(proposal.has_value());
  EXPECT_EQ(proposal->kind(), v1::JOB_EVALUATE);
  EXPECT_TRUE(proposal->shared_inputs());
  EXPECT_EQ(proposal->seed(), baseline->seed());
  ASSERT_TRUE(Report(*proposal, 0.6).accepted());  // a claim: replays follow
  Tick();
  auto claims = store_->ListVerificationsForCandidate(proposal->candidate_id());
  ASSERT_TRUE(claims.ok());
  ASSERT_EQ(claims->size(), 1u);
  auto replays = store_->ListJobsForVerification(claims->front().id());
  ASSERT_TRUE(replays.ok());
  ASSERT_EQ(replays->size(), 2u);
  for (const v1::Job& r : *replays) {
    EXPECT_FALSE(r.shared_inputs());
    EXPECT_NE(r.seed(), baseline->seed());
    EXPECT_NE(r.seed(), 0u);
  }
  // One pair: the candidate's replay and the incumbent's, on one seed.
  EXPECT_NE((*replays)[0].candidate_id(), (*replays)[1].candidate_id());
  EXPECT_EQ((*replays)[0].seed(), (*replays)[1].seed());
  const int64_t other = Submit(20);
  ASSERT_NE(other, id);
  std::optional<v1::Job> next;
  for (int i = 0; i < 20 && !(next.has_value() && next->campaign_id() == other); ++i) {
    Tick();
    next = Lease(w1);
    if (next.has_value() && next->campaign_id() != other)
      ASSERT_TRUE(Report(*next, 0.5).accepted());
  }
  ASSERT_TRUE(next.has_value() && next->campaign_id() == other);
  EXPECT_TRUE(next->shared_inputs());
  EXPECT_NE(next->seed(), baseline->seed());
}

TEST_F(ResearchLoopTest, AVerifierThatVanishesLeavesTheClaimToAnother) {
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  int64_t id = 0;
  const v1::Verification claim = Claim(w1, &id);
  ASSERT_NE(claim.id(), 0);
  ASSERT_NO_FATAL_FAILURE(RunReplays(w2, claim.candidate_id(), 0.62, 0.5, 2));
  Tick();
  v1::AcquireVerificationResponse first = AcquireClaim(kVerifier);
  ASSERT_TRUE(first.has_verification());
  const int64_t deadline = first.verification().lease_deadline_unix_ms();

  // verifier-1 goes silent. Its lease holds until the deadline...
  clock_.Set(deadline);
  EXPECT_FALSE(AcquireClaim(kOtherVerifier).has_verification());
  // ...and past it the claim is verifier-2's, with the same bundle.
  clock_.Advance(1);
  EXPECT_EQ(Accept(kVerifier, claim.id(), {0.62}, {0.5}).status().code(),
            absl::StatusCode::kPermissionDenied);  // lapsed, though nobody took it yet
  v1::AcquireVerificationResponse second = AcquireClaim(kOtherVerifier);
  ASSERT_TRUE(second.has_verification());
  EXPECT_EQ(second.verification().id(), claim.id());
  EXPECT_EQ(second.verification().verifier_id(), kOtherVerifier);
  EXPECT_EQ(second.replays().evaluations_size(), 2);
  // verifier-1 comes back too late: only the holder decides.
  EXPECT_EQ(Accept(kVerifier, claim.id(), {0.62}, {0.5}).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(AskMore(kVerifier, claim.id(), 2).status().code(),
            absl::StatusCode::kPermissionDenied);
  auto response = Accept(kOtherVerifier, claim.id(), {0.62}, {0.5});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->accepted());
  EXPECT_EQ(Campaign(id).threads(0).incumbent_candidate_id(), claim.candidate_id());
}

// A claim waiting for its replays is state of the store alone: a coordinator
// started again on the same file has it wait on the same replays, and hands
// it out once they end.
TEST_F(ResearchLoopTest, AClaimWaitingForReplaysSurvivesARestart) {
  std::string dir = ::testing::TempDir() + "/research_loop_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/ratchet.db";
  ASSERT_NO_FATAL_FAILURE(Open(path));
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  int64_t id = 0;
  const v1::Verification claim = Claim(w1, &id);
  ASSERT_NE(claim.id(), 0);
  // One replay runs before the restart, the other is still queued.
  std::optional<v1::Job> replay = Lease(w2);
  ASSERT_TRUE(replay.has_value());
  ASSERT_TRUE(Report(*replay, replay->candidate_id() == claim.candidate_id() ? 0.62 : 0.5)
                  .accepted());

  ASSERT_NO_FATAL_FAILURE(Open(path));
  Tick();
  EXPECT_FALSE(AcquireClaim(kVerifier).has_verification());
  const std::string w3 = Register("w3");
  ASSERT_NO_FATAL_FAILURE(RunReplays(w3, claim.candidate_id(), 0.62, 0.5, 1));
  Tick();
  v1::AcquireVerificationResponse bundle = AcquireClaim(kVerifier);
  ASSERT_TRUE(bundle.has_verification());
  EXPECT_EQ(bundle.verification().id(), claim.id());
  EXPECT_EQ(bundle.replays().evaluations_size(), 2);
  auto response = Accept(kVerifier, claim.id(), {0.62}, {0.5});
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_TRUE(response->accepted());

  coordinator_.reset();
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Events are written to the store as they happen: after a restart on the
// same file, a client pages through the finished campaign's whole history
// with ListEvents over gRPC, as the coordinator before it emitted it.
TEST_F(ResearchLoopTest, ACampaignsEventsOutliveARestartAndAreListedOverGrpc) {
  std::string dir = ::testing::TempDir() + "/research_loop_XXXXXX";
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/ratchet.db";
  ASSERT_NO_FATAL_FAILURE(Open(path));
  const std::string w1 = Register("w1");
  const int64_t id = StartCampaign(w1, 0.5, /*max_evaluations=*/3);
  while (Campaign(id).state() == v1::CAMPAIGN_RUNNING) {
    ASSERT_TRUE(Work(w1, 0.4));
    Tick();
  }
  int64_t cursor = 0;
  const std::vector<CampaignEventRecord> emitted = coordinator_->WaitForEvents(id, &cursor, 0);
  ASSERT_GE(emitted.size(), 3u);
  ASSERT_TRUE(absl::StrContains(emitted.back().text, "campaign finished")) << Events(id);

  ASSERT_NO_FATAL_FAILURE(Open(path));
  EXPECT_EQ(Events(id), "") << "memory starts empty after a restart";
  CoordinatorServiceImpl service(coordinator_.get());
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  ASSERT_NE(port, 0);
  auto stub = v1::CoordinatorService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));

  std::vector<v1::StoredEvent> listed;
  v1::ListEventsRequest request;
  request.set_campaign_id(id);
  request.set_limit(2);
  while (true) {
    grpc::ClientContext ctx;
    v1::ListEventsResponse page;
    grpc::Status status = stub->ListEvents(&ctx, request, &page);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_LE(page.events_size(), 2);
    if (page.events_size() == 0) break;
    listed.insert(listed.end(), page.events().begin(), page.events().end());
    request.set_after_seq(page.events(page.events_size() - 1).seq());
  }
  ASSERT_EQ(listed.size(), emitted.size());
  for (size_t i = 0; i < listed.size(); ++i) {
    EXPECT_EQ(listed[i].text(), emitted[i].text) << i;
    EXPECT_EQ(listed[i].unix_ms(), emitted[i].unix_ms) << i;
    if (i > 0) {
      EXPECT_GT(listed[i].seq(), listed[i - 1].seq()) << i;
    }
  }

  // No limit: the server's own cap, here all of them.
  {
    grpc::ClientContext ctx;
    v1::ListEventsRequest all;
    all.set_campaign_id(id);
    v1::ListEventsResponse response;
    ASSERT_TRUE(stub->ListEvents(&ctx, all, &response).ok());
    EXPECT_EQ(static_cast<size_t>(response.events_size()), emitted.size());
  }
  // An unknown campaign is NotFound, not an empty history.
  {
    grpc::ClientContext ctx;
    v1::ListEventsRequest unknown;
    unknown.set_campaign_id(id + 100);
    v1::ListEventsResponse response;
    EXPECT_EQ(stub->ListEvents(&ctx, unknown, &response).error_code(), grpc::NOT_FOUND);
  }

  server->Shutdown();
  server.reset();
  coordinator_.reset();
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// Multi-fidelity training: the baseline runs at every fraction; a candidate
// whose short run is among the best 1/halving of its rung trains again at
// full length, one that is not stops there; claims and replays see only
// full-length runs.
TEST_F(ResearchLoopTest, MultiFidelityPromotesTheBestShortRunsAndStopsTheRest) {
  v1::CampaignSpec spec;
  spec.set_name("mf");
  spec.set_task(v1::TASK_TRAIN_BUDGET);
  (*spec.mutable_baseline()->mutable_files())["train.py"] = "loop\n";
  (*spec.mutable_baseline()->mutable_files())["model.py"] = "gpt\n";
  (*spec.mutable_baseline()->mutable_files())["solution.json"] =
      "{\"knobs\": {\"K\": {\"choices\": [1, 2, 3, 4, 5, 6], \"default\": 1}}}";
  spec.mutable_training()->set_data_dir("/data/books");
  spec.mutable_training()->set_budget_seconds(60);
  spec.mutable_training()->add_fidelities(0.25);
  spec.mutable_training()->add_fidelities(1);
  spec.mutable_training()->set_halving(2);
  spec.set_proposer(v1::PROPOSER_GRID);
  spec.set_threads(1);
  spec.set_in_flight_per_thread(1);
  spec.mutable_budget()->set_max_evaluations(20);
  spec.mutable_verification()->set_replays(1);
  auto campaign = coordinator_->SubmitCampaign(spec);
  ASSERT_TRUE(campaign.ok()) << campaign.status();
  const int64_t id = campaign->id();
  const std::string w = Register("w1");

  // The baseline: its short run, then its full one (queued in that order).
  std::optional<v1::Job> short_base = Lease(w);
  ASSERT_TRUE(short_base.has_value());
  EXPECT_EQ(short_base->fidelity(), 0.25);
  EXPECT_EQ(short_base->task(), v1::TASK_TRAIN_BUDGET);
  EXPECT_EQ(short_base->training().frozen().size(), 3u);  // nothing editable: all frozen
  EXPECT_TRUE(Report(*short_base, 0.40).accepted());
  std::optional<v1::Job> full_base = Lease(w);
  ASSERT_TRUE(full_base.has_value());
  EXPECT_EQ(full_base->fidelity(), 0);
  EXPECT_TRUE(Report(*full_base, 0.50).accepted());
  Tick();
  EXPECT_EQ(Campaign(id).baseline_score(), 0.50);  // the full run's, not the short one's

  // A candidate whose short run beats the baseline's goes on to full length.
  std::optional<v1::Job> first = Lease(w);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->fidelity(), 0.25);
  EXPECT_TRUE(Report(*first, 0.45).accepted());
  Tick();
  std::optional<v1::Job> first_full = Lease(w);
  ASSERT_TRUE(first_full.has_value());
  EXPECT_EQ(first_full->candidate_id(), first->candidate_id());
  EXPECT_EQ(first_full->fidelity(), 0);
  EXPECT_TRUE(store_->ListVerificationsForCandidate(first->candidate_id())->empty());
  EXPECT_TRUE(Report(*first_full, 0.49).accepted());  // no gain at full length: no claim
  Tick();

  // One whose short run is in the worse half of the rung stops there.
  std::optional<v1::Job> second = Lease(w);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->fidelity(), 0.25);
  EXPECT_NE(second->candidate_id(), first->candidate_id());
  EXPECT_TRUE(Report(*second, 0.30).accepted());
  Tick();
  auto stopped = store_->GetCandidate(second->candidate_id());
  ASSERT_TRUE(stopped.ok());
  EXPECT_EQ(stopped->status(), v1::CANDIDATE_STOPPED);
  std::optional<v1::Job> next = Lease(w);
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(next->candidate_id(), second->candidate_id());  // a new candidate's short run
  EXPECT_EQ(next->fidelity(), 0.25);

  const v1::Campaign c = Campaign(id);
  ASSERT_EQ(c.rungs_size(), 1);
  EXPECT_EQ(c.rungs(0).fidelity(), 0.25);
  EXPECT_THAT(c.rungs(0).scores(), ::testing::ElementsAre(0.40, 0.45, 0.30));
  EXPECT_EQ(c.rungs(0).promoted(), 1);
  EXPECT_EQ(c.rungs(0).stopped(), 1);
  EXPECT_EQ(c.evaluations(), 5);  // every run counts, short or full
  EXPECT_THAT(Events(id), ::testing::HasSubstr("-> stopped (not among the best 1/2"));
}

// A training job's progress, sent with the worker's heartbeats, becomes the
// campaign's events: at most one per job per 10 s of the coordinator's clock,
// only for jobs the worker holds, the candidate's numbers bounded.
TEST_F(ResearchLoopTest, TrainingProgressInHeartbeatsBecomesRateLimitedEvents) {
  v1::CampaignSpec spec;
  spec.set_name("progress");
  spec.set_task(v1::TASK_TRAIN_BUDGET);
  (*spec.mutable_baseline()->mutable_files())["train.py"] = "loop\n";
  (*spec.mutable_baseline()->mutable_files())["model.py"] = "gpt\n";
  (*spec.mutable_baseline()->mutable_files())["solution.json"] =
      "{\"knobs\": {\"K\": {\"choices\": [1, 2], \"default\": 1}}}";
  spec.mutable_training()->set_data_dir("/data/books");
  spec.mutable_training()->set_budget_seconds(300);
  spec.set_proposer(v1::PROPOSER_GRID);
  spec.set_threads(1);
  spec.set_in_flight_per_thread(1);
  spec.mutable_budget()->set_max_evaluations(5);
  auto campaign = coordinator_->SubmitCampaign(spec);
  ASSERT_TRUE(campaign.ok()) << campaign.status();
  const int64_t id = campaign->id();
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  std::optional<v1::Job> job = Lease(w1);
  ASSERT_TRUE(job.has_value());
  const std::string who = absl::StrCat("job ", job->id(), " (#", job->candidate_id(),
                                       " [baseline]) training: ");

  auto progress = [](int64_t job_id, int64_t step, double loss, double rate, double seconds) {
    v1::JobProgress p;
    p.set_job_id(job_id);
    p.set_step(step);
    p.set_loss(loss);
    p.set_tokens_per_s(rate);
    p.set_seconds(seconds);
    return p;
  };
  auto beat = [&](const std::string& worker, const std::vector<v1::JobProgress>& progress,
                  bool holds = true) {
    v1::HeartbeatRequest request;
    request.set_worker_id(worker);
    if (holds) request.add_job_ids(job->id());
    for (const auto& p : progress) *request.add_progress() = p;
    auto response = coordinator_->Heartbeat(request);
    ASSERT_TRUE(response.ok()) << response.status();
  };
  auto progress_events = [&]() {
    int64_t cursor = 0;
    std::vector<std::string> texts;
    for (const auto& e : coordinator_->WaitForEvents(id, &cursor, 0))
      if (absl::StrContains(e.text, ") training: ")) texts.push_back(e.text);
    return texts;
  };

  // A heartbeat every 3 s for a minute, each with new progress: an event at
  // 0, 12, 24, 36, 48 and 60 s, each with the latest figures heard.
  for (int t = 0; t <= 60; t += 3) {
    ASSERT_NO_FATAL_FAILURE(beat(w1, {progress(job->id(), 10 * t, 5.0 - t / 100.0, 1830.4,
                                               t + 1.2)}));
    clock_.Advance(3'000);
  }
  std::vector<std::string> events = progress_events();
  ASSERT_EQ(events.size(), 6u) << absl::StrJoin(events, "\n");
  EXPECT_EQ(events[0], who + "step 0, loss 5, 1830 tokens/s, 1 s");
  EXPECT_EQ(events[1], who + "step 120, loss 4.88, 1830 tokens/s, 13 s");
  EXPECT_EQ(events[5], who + "step 600, loss 4.4, 1830 tokens/s, 61 s");

  // Not ten seconds since the last event (at 60 s; now 63 s): nothing.
  ASSERT_NO_FATAL_FAILURE(beat(w1, {progress(job->id(), 630, 4.3, 1830, 64)}));
  EXPECT_EQ(progress_events().size(), 6u);

  // Progress of jobs the worker does not hold is ignored: another job, the
  // job without its id in the heartbeat, the job from a worker that does
  // not hold its lease.
  clock_.Advance(20'000);
  ASSERT_NO_FATAL_FAILURE(beat(w1, {progress(job->id() + 100, 1, 1, 1, 1)}));
  ASSERT_NO_FATAL_FAILURE(beat(w1, {progress(job->id(), 1, 1, 1, 1)}, /*holds=*/false));
  ASSERT_NO_FATAL_FAILURE(beat(w2, {progress(job->id(), 1, 1, 1, 1)}));
  EXPECT_EQ(progress_events().size(), 6u);

  // The candidate's numbers, bounded: NaN, infinite and negative ones are
  // "n/a", huge ones capped; one line of numbers only, whatever they were.
  ASSERT_NO_FATAL_FAILURE(beat(w1, {progress(job->id(), -5, std::nan(""), 1e300, -1)}));
  clock_.Advance(10'000);
  ASSERT_NO_FATAL_FAILURE(
      beat(w1, {progress(job->id(), int64_t{1} << 62, 1e300, -3, HUGE_VAL)}));
  clock_.Advance(10'000);
  ASSERT_NO_FATAL_FAILURE(
      beat(w1, {progress(job->id(), 7, -HUGE_VAL, std::nan(""), 1e300)}));
  events = progress_events();
  ASSERT_EQ(events.size(), 9u) << absl::StrJoin(events, "\n");
  EXPECT_EQ(events[6], who + "step n/a, loss n/a, 1000000000000000 tokens/s, n/a s");
  EXPECT_EQ(events[7], who + "step 9007199254740992, loss 1e+09, n/a tokens/s, n/a s");
  EXPECT_EQ(events[8], who + "step 7, loss n/a, n/a tokens/s, 1000000000 s");
  for (const std::string& e : events) {
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
    EXPECT_LT(e.size(), 200u) << e;
  }
}

TEST_F(ResearchLoopTest, EvaluationBudgetEndsTheCampaignWithAReport) {
  const std::string w1 = Register("w1");
  const int64_t id = StartCampaign(w1, 0.5, /*max_evaluations=*/4);
  // Three candidates, each worse than the baseline (no claims), one a tick.
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);
    ASSERT_TRUE(Work(w1, 0.4)) << "no proposal queued in round " << i;
    Tick();
  }
  const v1::Campaign done = Campaign(id);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(done.message(), "evaluation budget reached (4)");
  EXPECT_EQ(done.evaluations(), 4);
  EXPECT_EQ(done.finished_unix_ms(), clock_.NowUnixMs());
  EXPECT_FALSE(Lease(w1).has_value());  // nothing more was proposed
  EXPECT_TRUE(absl::StrContains(Events(id),
                                "campaign finished: evaluation budget reached (4); best 0.5000"))
      << Events(id);
}

TEST_F(ResearchLoopTest, WallClockBudgetEndsTheCampaignWhenTheClockPassesIt) {
  const std::string w1 = Register("w1");
  const int64_t id = StartCampaign(w1, 0.5, /*max_evaluations=*/1000, /*max_wall_seconds=*/60);
  clock_.Advance(59'000);
  Tick();
  ASSERT_TRUE(Work(w1, 0.4));
  Tick();  // applied, and the next proposal queued: the budget is not spent
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);

  clock_.Advance(2'000);  // 61 s
  Tick();
  // Spent: nothing new is proposed, but the job in flight is waited for.
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);
  ASSERT_TRUE(Work(w1, 0.4));
  Tick();
  const v1::Campaign done = Campaign(id);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(done.message(), "wall-clock budget reached");
  EXPECT_EQ(done.evaluations(), 3);
  EXPECT_FALSE(Lease(w1).has_value());
}

TEST_F(ResearchLoopTest, PastTheGracePeriodOpenJobsAndClaimsAreAbandoned) {
  const std::string w1 = Register("w1");
  const int64_t id = StartCampaign(w1, 0.5, /*max_evaluations=*/1000, /*max_wall_seconds=*/60);
  ASSERT_TRUE(Work(w1, 0.6));  // a claim nobody verifies
  Tick();                      // and a proposal nobody evaluates
  auto verifications = store_->ListVerifications(id);
  ASSERT_TRUE(verifications.ok());
  ASSERT_EQ(verifications->size(), 1u);

  clock_.Advance(104'000);  // past 60 s, within 1.25 x 60 s + 30 s
  Tick();
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);
  clock_.Advance(2'000);
  Tick();
  const v1::Campaign done = Campaign(id);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(done.message(), "wall-clock budget reached");
  auto v = store_->GetVerification(verifications->front().id());
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->outcome(), v1::VERDICT_REJECTED_FLAKY);
  EXPECT_EQ(v->reason(), "budget-ended");
  EXPECT_EQ(v->decided_unix_ms(), clock_.NowUnixMs());
  EXPECT_TRUE(absl::StrContains(Events(id), "wall-clock budget overrun")) << Events(id);
  EXPECT_EQ(Campaign(id).jobs_queued(), 0);
}

TEST_F(ResearchLoopTest, LeaseLapsesOnlyAfterTheClockPassesItsDeadlineAndTheJobIsRequeued) {
  const std::string w1 = Register("w1");
  const int64_t id = Submit(10);
  std::optional<v1::Job> job = Lease(w1);
  ASSERT_TRUE(job.has_value());
  const int64_t leased_at = clock_.NowUnixMs();

  // A heartbeat at 20 s renews the lease to 50 s.
  clock_.Advance(20'000);
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(w1);
  heartbeat.add_job_ids(job->id());
  auto renewed = coordinator_->Heartbeat(heartbeat);
  ASSERT_TRUE(renewed.ok()) << renewed.status();
  EXPECT_EQ(renewed->cancelled_job_ids_size(), 0);
  clock_.Set(leased_at + 50'000);  // at the deadline, not past it
  Tick();
  EXPECT_EQ(Job(job->id()).state(), v1::JOB_LEASED);

  // A worker that registered now, while w1 still holds the job.
  const std::string w2 = Register("w2");
  EXPECT_FALSE(Lease(w2).has_value());
  clock_.Advance(1);
  Tick();
  const v1::Job requeued = Job(job->id());
  EXPECT_EQ(requeued.state(), v1::JOB_QUEUED);
  EXPECT_EQ(requeued.attempts(), 1);
  EXPECT_TRUE(absl::StrContains(Events(id), "lease lapsed; requeued")) << Events(id);

  std::optional<v1::Job> again = Lease(w2);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->id(), job->id());
  EXPECT_FALSE(Report(*job, 0.5).accepted());  // w1's lease is gone
  EXPECT_TRUE(Report(*again, 0.5).accepted());
  Tick();
  EXPECT_DOUBLE_EQ(Campaign(id).baseline_score(), 0.5);

  // w1 last heard from 30 s ago or more: no longer connected.
  auto workers = coordinator_->ListWorkers();
  ASSERT_TRUE(workers.ok());
  for (const auto& w : *workers) EXPECT_EQ(w.connected(), w.id() == w2) << w.id();
}

TEST_F(ResearchLoopTest, TheBaselinesJobFailingAfterMaxAttemptsFailsTheCampaign) {
  const std::string w1 = Register("w1");
  const int64_t id = Submit(10);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    ASSERT_TRUE(Lease(w1).has_value()) << "attempt " << attempt;
    clock_.Advance(30'001);
    Tick();
  }
  const v1::Campaign failed = Campaign(id);
  EXPECT_EQ(failed.state(), v1::CAMPAIGN_FAILED);
  EXPECT_EQ(failed.message(), "the baseline's job failed: its leases lapsed repeatedly");
  EXPECT_EQ(failed.outcomes().at("lease_lapsed"), 1);
}

TEST_F(ResearchLoopTest, PausedTimeDoesNotCountAgainstTheWallClockBudget) {
  const std::string w1 = Register("w1");
  const int64_t id = StartCampaign(w1, 0.5, /*max_evaluations=*/1000, /*max_wall_seconds=*/100);
  clock_.Advance(10'000);
  auto paused = coordinator_->PauseCampaign(id);
  ASSERT_TRUE(paused.ok()) << paused.status();
  EXPECT_EQ(paused->state(), v1::CAMPAIGN_PAUSED);
  EXPECT_FALSE(Lease(w1).has_value());  // a paused campaign leases nothing

  clock_.Advance(1'000'000);
  Tick();
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_PAUSED);
  auto resumed = coordinator_->ResumeCampaign(id);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_DOUBLE_EQ(resumed->paused_seconds(), 1000);

  // 10 s of research so far, though 1010 s have passed.
  Tick();
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);
  clock_.Advance(89'000);  // 99 s
  Tick();
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);
  ASSERT_TRUE(Work(w1, 0.4));
  Tick();
  clock_.Advance(2'000);  // 101 s: spent; the proposal in flight drains
  Tick();
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);
  ASSERT_TRUE(Work(w1, 0.4));
  Tick();
  const v1::Campaign done = Campaign(id);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(done.message(), "wall-clock budget reached");
}

// The bundle is everything the verifier reads: the replays' results, and the
// sources of the claim and its incumbent that it screens (so it needs no
// read access of its own), with the claim's policy as the spec means it.
TEST_F(ResearchLoopTest, TheBundleCarriesTheSourcesOfTheClaimAndItsIncumbent) {
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  int64_t id = 0;
  const v1::Verification claim = Claim(w1, &id);
  ASSERT_NE(claim.id(), 0);
  ASSERT_NO_FATAL_FAILURE(RunReplays(w2, claim.candidate_id(), 0.62, 0.5, 2));
  Tick();
  const v1::AcquireVerificationResponse got = AcquireClaim(kVerifier);
  ASSERT_TRUE(got.has_verification());
  ASSERT_EQ(got.verification().id(), claim.id());

  auto candidate = store_->GetCandidate(claim.candidate_id());
  ASSERT_TRUE(candidate.ok()) << candidate.status();
  auto incumbent = store_->GetCandidate(claim.incumbent_candidate_id());
  ASSERT_TRUE(incumbent.ok()) << incumbent.status();
  ASSERT_EQ(incumbent->id(), Campaign(id).baseline_candidate_id());
  const v1::ReplayBundle& bundle = got.replays();
  using Map = std::map<std::string, std::string>;
  auto files = [](const v1::Solution& s) { return Map(s.files().begin(), s.files().end()); };
  auto knobs = [](const v1::Solution& s) { return Map(s.knobs().begin(), s.knobs().end()); };
  EXPECT_EQ(files(bundle.candidate_solution()), files(candidate->solution()));
  EXPECT_EQ(knobs(bundle.candidate_solution()), knobs(candidate->solution()));
  EXPECT_EQ(files(bundle.incumbent_solution()), files(incumbent->solution()));
  EXPECT_EQ(knobs(bundle.incumbent_solution()), knobs(incumbent->solution()));
  EXPECT_EQ(bundle.candidate_solution().files().at("kernel.cc"), "// toy\n");
  EXPECT_EQ(bundle.incumbent_solution().files().count("solution.json"), 1u);
  // The grid moved the knob: the two sides differ where the verdict looks.
  EXPECT_EQ(bundle.incumbent_solution().knobs().at("K"), "1");
  EXPECT_NE(bundle.candidate_solution().knobs().at("K"), "1");

  // Defaults applied once, at submit: the claim's policy has them.
  const v1::VerificationPolicy& policy = got.verification().policy();
  EXPECT_EQ(policy.replays(), 1);
  EXPECT_DOUBLE_EQ(policy.significance(), spec::kDefaultSignificance);
  EXPECT_DOUBLE_EQ(policy.noise_sigmas(), spec::kDefaultNoiseSigmas);
  EXPECT_DOUBLE_EQ(policy.timing_tolerance(), spec::kDefaultTimingTolerance);
  EXPECT_EQ(policy.max_replays(), spec::kDefaultMaxReplays);
  EXPECT_EQ(policy.tiers_size(), static_cast<int>(std::size(spec::kTiers)));
}

// Every job's wall seconds count against max_gpu_seconds (the baseline's
// too), and the campaign ends at the first tick that finds them spent: a
// budget of 10 s, a 1 s baseline and 3 s evaluations make exactly three.
TEST_F(ResearchLoopTest, GpuSecondsBudgetEndsTheCampaignAfterExactlyTheEvaluationsItPays) {
  const std::string w1 = Register("w1");
  v1::CampaignSpec spec = Spec(/*max_evaluations=*/1000);
  spec.mutable_budget()->set_max_gpu_seconds(10);
  const int64_t id = StartCampaign(w1, 0.5, spec);  // the baseline reports 1 s
  EXPECT_DOUBLE_EQ(Campaign(id).gpu_seconds(), 1);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING) << "evaluation " << i;
    std::optional<v1::Job> job = Lease(w1);
    ASSERT_TRUE(job.has_value()) << "no proposal queued in round " << i;
    EXPECT_EQ(job->kind(), v1::JOB_EVALUATE);
    // Worse than the baseline: no claim, so no replays.
    ASSERT_TRUE(Report(*job, 0.4, v1::OUTCOME_OK, /*wall_seconds=*/3).accepted());
    Tick();
    EXPECT_DOUBLE_EQ(Campaign(id).gpu_seconds(), 1 + 3 * (i + 1));
  }
  const v1::Campaign done = Campaign(id);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(done.message(), "GPU-seconds budget reached (10.0 s of 10.0 s)");
  EXPECT_EQ(done.evaluations(), 4);  // the baseline and three candidates
  EXPECT_EQ(done.finished_unix_ms(), clock_.NowUnixMs());
  EXPECT_FALSE(Lease(w1).has_value());  // nothing more was proposed
  EXPECT_TRUE(absl::StrContains(Events(id), "campaign finished: GPU-seconds budget reached"))
      << Events(id);
}

// A job in flight when the budget runs out is still waited for, and its
// seconds count; a replay's seconds count too (verification uses the same
// machines).
TEST_F(ResearchLoopTest, GpuSecondsBudgetCountsReplaysAndWaitsForTheJobInFlight) {
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  v1::CampaignSpec spec = Spec(/*max_evaluations=*/1000);
  spec.mutable_budget()->set_max_gpu_seconds(6);
  const int64_t id = StartCampaign(w1, 0.5, spec);  // 1 s
  // A claim (2 s), whose next proposal is queued at once.
  std::optional<v1::Job> job = Lease(w1);
  ASSERT_TRUE(job.has_value());
  const int64_t claimed = job->candidate_id();
  ASSERT_TRUE(Report(*job, 0.6, v1::OUTCOME_OK, 2).accepted());
  Tick();
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);
  // Its two replays, 1.5 s each: 6 s, the budget spent.
  for (int i = 0; i < 2; ++i) {
    std::optional<v1::Job> replay = Lease(w2);
    ASSERT_TRUE(replay.has_value());
    ASSERT_EQ(replay->kind(), v1::JOB_REPLAY);
    ASSERT_TRUE(Report(*replay, replay->candidate_id() == claimed ? 0.62 : 0.5,
                       v1::OUTCOME_OK, 1.5)
                    .accepted());
  }
  Tick();
  EXPECT_DOUBLE_EQ(Campaign(id).gpu_seconds(), 6);
  // Spent, but the evaluation queued before and the claim are still open.
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);
  std::optional<v1::Job> last = Lease(w1);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->kind(), v1::JOB_EVALUATE);
  ASSERT_TRUE(Report(*last, 0.4, v1::OUTCOME_OK, 4).accepted());
  Tick();
  EXPECT_FALSE(Lease(w1).has_value());  // no proposal past the budget
  EXPECT_EQ(Campaign(id).state(), v1::CAMPAIGN_RUNNING);  // the claim waits for its verdict
  const v1::AcquireVerificationResponse got = AcquireClaim(kVerifier);
  ASSERT_TRUE(got.has_verification());
  auto verdict = Accept(kVerifier, got.verification().id(), {0.62}, {0.5});
  ASSERT_TRUE(verdict.ok()) << verdict.status();
  Tick();
  const v1::Campaign done = Campaign(id);
  EXPECT_EQ(done.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(done.message(), "GPU-seconds budget reached (10.0 s of 6.0 s)");
  EXPECT_EQ(done.evaluations(), 3);
  EXPECT_DOUBLE_EQ(done.best_score(), 0.62);
}

// Lessons: one per knob a candidate changes against its parent, filed under
// the problem's op type; a campaign reads only its own unless its spec says
// `experience: shared`, which reads every campaign's of that op type.
TEST_F(ResearchLoopTest, LessonsAreWrittenPerKnobChangeAndReadAcrossCampaignsOnlyWhenShared) {
  const std::string w1 = Register("w1");
  const int64_t first = StartCampaign(w1, 0.5, /*max_evaluations=*/3);
  std::vector<int64_t> candidates;
  for (double score : {0.4, 0.25}) {
    std::optional<v1::Job> job = Lease(w1);
    ASSERT_TRUE(job.has_value());
    candidates.push_back(job->candidate_id());
    ASSERT_TRUE(Report(*job, score).accepted());
    Tick();
  }
  ASSERT_EQ(Campaign(first).state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(Campaign(first).lessons(), 2);
  auto written = store_->ListLessons("toy", first);
  ASSERT_TRUE(written.ok()) << written.status();
  ASSERT_EQ(written->size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const v1::Lesson& l = (*written)[i];
    auto candidate = store_->GetCandidate(candidates[i]);
    ASSERT_TRUE(candidate.ok());
    EXPECT_EQ(l.campaign_id(), first);
    EXPECT_EQ(l.candidate_id(), candidates[i]);
    EXPECT_EQ(l.op_type(), "toy");
    EXPECT_EQ(l.hardware(), "cpu");
    EXPECT_EQ(l.knob(), "K");
    EXPECT_EQ(l.from_value(), "1");  // the grid's parent is the baseline
    EXPECT_EQ(l.to_value(), candidate->solution().knobs().at("K"));
    EXPECT_EQ(l.outcome(), "ok");
    EXPECT_EQ(l.verdict(), "");  // not a claim
    EXPECT_EQ(l.created_unix_ms(), clock_.NowUnixMs());
  }
  EXPECT_NEAR((*written)[0].effect(), 0.4 / 0.5 - 1, 1e-12);
  EXPECT_NEAR((*written)[1].effect(), 0.25 / 0.5 - 1, 1e-12);

  // Another campaign of the op type, each way (the baseline alone, so that
  // no job of one is left for the next one's baseline to queue behind).
  Experience experience(store_.get(), &clock_, nullptr);
  auto start = [&](const v1::CampaignSpec& spec) {
    const int64_t id = Submit(spec);
    Tick();  // the worker's campaigns are looked at again
    std::optional<v1::Job> baseline = Lease(w1);
    EXPECT_TRUE(baseline.has_value());
    if (!baseline.has_value()) return id;
    EXPECT_EQ(baseline->candidate_id(), Campaign(id).baseline_candidate_id());
    EXPECT_TRUE(Report(*baseline, 0.5).accepted());
    Tick();
    return id;
  };
  v1::CampaignSpec own = Spec(/*max_evaluations=*/1);
  own.set_experience("campaign");
  const int64_t second = start(own);
  EXPECT_EQ(Campaign(second).lessons_from_other_campaigns(), 0);
  EXPECT_TRUE(absl::StrContains(Events(second),
                                "experience: this campaign's own lessons only; 2 lessons of op "
                                "type toy from 1 other campaign not read"))
      << Events(second);
  auto read = experience.Read(Campaign(second));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->empty());

  v1::CampaignSpec shared = Spec(/*max_evaluations=*/1);
  shared.set_experience("shared");
  const int64_t third = start(shared);
  EXPECT_EQ(Campaign(third).lessons_from_other_campaigns(), 2);
  EXPECT_TRUE(absl::StrContains(Events(third),
                                "experience: shared, reading 2 lessons of op type toy from 1 "
                                "other campaign"))
      << Events(third);
  read = experience.Read(Campaign(third));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->size(), 2u);
  EXPECT_EQ((*read)[0].campaign_id(), first);
  EXPECT_EQ((*read)[1].campaign_id(), first);
}

// A claim's verdict is a lesson too, with the verified effect.
TEST_F(ResearchLoopTest, AVerdictFilesItsLesson) {
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  int64_t id = 0;
  const v1::Verification claim = Claim(w1, &id);
  ASSERT_NE(claim.id(), 0);
  ASSERT_NO_FATAL_FAILURE(RunReplays(w2, claim.candidate_id(), 0.6, 0.5, 2));
  Tick();
  ASSERT_TRUE(AcquireClaim(kVerifier).has_verification());
  ASSERT_TRUE(Accept(kVerifier, claim.id(), {0.6}, {0.5}).ok());
  auto lessons = store_->ListLessons("toy", id);
  ASSERT_TRUE(lessons.ok()) << lessons.status();
  std::vector<v1::Lesson> verdicts;
  for (const auto& l : *lessons)
    if (l.candidate_id() == claim.candidate_id() && !l.verdict().empty()) verdicts.push_back(l);
  ASSERT_EQ(verdicts.size(), 1u);
  EXPECT_EQ(verdicts[0].verdict(), "accepted");
  EXPECT_NEAR(verdicts[0].effect(), 0.6 / 0.5 - 1, 1e-12);
}

// Islands: with migrate_every 1, a thread whose incumbent moved offers it to
// the next thread (a ring) at its next proposal, which adopts it because it
// beats its own.
TEST_F(ResearchLoopTest, MigrationOffersAnAcceptedIncumbentToTheNextThread) {
  const std::string w1 = Register("w1");
  const std::string w2 = Register("w2");
  v1::CampaignSpec spec = Spec(/*max_evaluations=*/20);
  spec.set_threads(2);
  spec.set_migrate_every(1);
  const int64_t id = StartCampaign(w1, 0.5, spec);
  auto threads = store_->ListThreads(id);
  ASSERT_TRUE(threads.ok());
  ASSERT_EQ(threads->size(), 2u);
  auto thread = [&](int index) {
    auto all = store_->ListThreads(id);
    EXPECT_TRUE(all.ok());
    for (const auto& t : *all)
      if (t.index() == index) return t;
    return v1::ResearchThread();
  };
  EXPECT_EQ(Campaign(id).migrations(), 0);  // equal incumbents: nothing to offer

  // Both threads' first proposals; t0's claims 0.6, t1's is worse.
  int64_t claimed = 0;
  for (int i = 0; i < 2; ++i) {
    std::optional<v1::Job> job = Lease(w1);
    ASSERT_TRUE(job.has_value());
    auto candidate = store_->GetCandidate(job->candidate_id());
    ASSERT_TRUE(candidate.ok());
    const bool t0 = candidate->thread_id() == thread(0).id();
    if (t0) claimed = job->candidate_id();
    ASSERT_TRUE(Report(*job, t0 ? 0.6 : 0.4).accepted());
  }
  ASSERT_NE(claimed, 0);
  Tick();
  EXPECT_EQ(Campaign(id).migrations(), 0);  // t0's incumbent has not moved yet
  ASSERT_NO_FATAL_FAILURE(RunReplays(w2, claimed, 0.6, 0.5, 2));
  Tick();
  const v1::AcquireVerificationResponse got = AcquireClaim(kVerifier);
  ASSERT_TRUE(got.has_verification());
  ASSERT_TRUE(Accept(kVerifier, got.verification().id(), {0.6}, {0.5}).ok());
  EXPECT_EQ(thread(0).incumbent_candidate_id(), claimed);
  EXPECT_EQ(thread(1).incumbent_candidate_id(), Campaign(id).baseline_candidate_id());
  // t0's next proposal offers the accepted incumbent to t1. Worse
  // candidates meanwhile, so that nothing else moves an incumbent.
  for (int round = 0; round < 4 && Campaign(id).migrations() == 0; ++round) {
    while (std::optional<v1::Job> next = Lease(w1)) {
      ASSERT_EQ(next->kind(), v1::JOB_EVALUATE);
      ASSERT_TRUE(Report(*next, 0.4).accepted());
    }
    Tick();
  }
  EXPECT_EQ(thread(0).incumbent_candidate_id(), claimed);
  EXPECT_EQ(thread(1).incumbent_candidate_id(), claimed);
  EXPECT_DOUBLE_EQ(thread(1).incumbent_score(), 0.6);
  EXPECT_EQ(Campaign(id).migrations(), 1);
  EXPECT_TRUE(absl::StrContains(Events(id), absl::StrCat("migration: t1 adopts t0's incumbent #",
                                                         claimed, " (0.6000 over #",
                                                         Campaign(id).baseline_candidate_id(),
                                                         " 0.5000)")))
      << Events(id);
}

}  // namespace
}  // namespace ratchet::coordinator
