// The authenticated cluster (docs/security.md), attacked the way issue 12's
// report did: a real `ratchet coordinator` serving TLS on loopback, real
// certificates and tokens made by `ratchet pki` and `ratchet token`, and
// clients that are anonymous, hold the wrong role, or hold a real identity
// and try to act as another.
#include <chrono>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "common/auth.h"
#include "tests/support/process.h"

namespace ratchet {
namespace {

using testing::Process;
using testing::ReadFile;
using testing::RunCommand;

const std::string kRatchet = RATCHET_BIN;
const std::string kSource = RATCHET_SOURCE_DIR;

class Security : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("ratchet-security");
    pki_ = dir_ + "/pki";
    Ok({kRatchet, "pki", "init", pki_});
    Ok({kRatchet, "pki", "issue", pki_, "worker:w1"});
    Ok({kRatchet, "pki", "issue", pki_, "verifier:v1"});
    Ok({kRatchet, "pki", "issue", pki_, "verifier:v2"});
    // Another CA's certificate with a name the cluster knows.
    Ok({kRatchet, "pki", "init", dir_ + "/rogue"});
    Ok({kRatchet, "pki", "issue", dir_ + "/rogue", "worker:w1"});
    tokens_ = dir_ + "/tokens";
    alice_ = Token("submit", "alice");
    bob_ = Token("submit", "bob");
    carol_ = Token("read", "carol");
    admin_ = Token("admin", "root");
  }

  void TearDown() override {
    if (coordinator_ != nullptr) coordinator_->Stop(SIGTERM);
  }

  std::string Ok(const std::vector<std::string>& argv) {
    const testing::CommandResult r = RunCommand(argv);
    EXPECT_EQ(r.exit_code, 0) << argv[1] << " " << argv[2] << ": " << r.err;
    return r.out;
  }

  std::string Token(const std::string& role, const std::string& name) {
    return std::string(absl::StripAsciiWhitespace(
        Ok({kRatchet, "token", "add", "--tokens=" + tokens_, "--role=" + role, "--name=" + name})));
  }

  void StartCoordinator(const std::vector<std::string>& extra = {}) {
    const std::string port_file = dir_ + "/port";
    std::vector<std::string> argv = {kRatchet, "coordinator", "--listen=127.0.0.1:0",
                                     "--db=" + dir_ + "/ratchet.db", "--port-file=" + port_file,
                                     "--tls-cert=" + pki_ + "/coordinator.pem",
                                     "--tls-key=" + pki_ + "/coordinator.key",
                                     "--tls-ca=" + pki_ + "/ca.pem", "--tokens=" + tokens_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    coordinator_ = std::make_unique<Process>(argv, dir_ + "/coordinator.log");
    ASSERT_TRUE(testing::WaitForFile(port_file, 60'000)) << ReadFile(dir_ + "/coordinator.log");
    address_ = absl::StrCat("localhost:", absl::StripAsciiWhitespace(ReadFile(port_file)));
  }

  auth::ClientSecurity AsClient(const std::string& token) const {
    auth::ClientSecurity s;
    s.ca_file = pki_ + "/ca.pem";
    s.token = token;
    return s;
  }
  auth::ClientSecurity AsService(const std::string& dir, const std::string& name) const {
    auth::ClientSecurity s;
    s.ca_file = pki_ + "/ca.pem";
    s.cert_file = dir + "/" + name + ".pem";
    s.key_file = dir + "/" + name + ".key";
    return s;
  }
  std::shared_ptr<grpc::Channel> Dial(const auth::ClientSecurity& s) {
    auto ch = auth::Dial(address_, s);
    EXPECT_TRUE(ch.ok()) << ch.status();
    return ch.ok() ? *ch : nullptr;
  }
  std::unique_ptr<v1::CoordinatorService::Stub> Client(const std::string& token) {
    return v1::CoordinatorService::NewStub(Dial(AsClient(token)));
  }

  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    return ctx;
  }

  static v1::CampaignSpec SleepSpec(const std::string& name) {
    v1::CampaignSpec spec;
    spec.set_name(name);
    spec.set_task(v1::TASK_SLEEP);
    spec.set_sleep_ms(10);
    spec.mutable_budget()->set_max_evaluations(3);
    return spec;
  }

  grpc::Status Submit(v1::CoordinatorService::Stub* stub, const v1::CampaignSpec& spec,
                      v1::Campaign* out) {
    v1::SubmitCampaignRequest req;
    *req.mutable_spec() = spec;
    return stub->SubmitCampaign(Ctx().get(), req, out);
  }

  std::string dir_, pki_, tokens_, address_;
  std::string alice_, bob_, carol_, admin_;
  std::unique_ptr<Process> coordinator_;
};

TEST_F(Security, NoCredentialsOffLoopbackWithoutSayingInsecure) {
  const testing::CommandResult r =
      RunCommand({kRatchet, "coordinator", "--listen=0.0.0.0:0", "--db=" + dir_ + "/a.db"},
                 30'000);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(r.err, "refusing to serve 0.0.0.0:0 without TLS")) << r.err;
  // Tokens over plaintext are refused too: they would travel in the clear.
  const testing::CommandResult t = RunCommand(
      {kRatchet, "coordinator", "--listen=127.0.0.1:0", "--db=" + dir_ + "/b.db",
       "--tokens=" + tokens_},
      30'000);
  EXPECT_EQ(t.exit_code, 1);
  EXPECT_TRUE(absl::StrContains(t.err, "need TLS")) << t.err;
  // Said in so many words, it serves.
  const std::string port_file = dir_ + "/insecure-port";
  Process open({kRatchet, "coordinator", "--listen=0.0.0.0:0", "--insecure",
                "--db=" + dir_ + "/c.db", "--port-file=" + port_file},
               dir_ + "/insecure.log");
  EXPECT_TRUE(testing::WaitForFile(port_file, 60'000)) << ReadFile(dir_ + "/insecure.log");
  EXPECT_TRUE(absl::StrContains(ReadFile(dir_ + "/insecure.log"), "open to every caller"));
}

TEST_F(Security, ClientsNeedATokenAndTheRole) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator({"--max-campaigns-per-client=2",
                                            "--max-streams-per-client=2"}));
  v1::Campaign c;
  v1::ListCampaignsResponse list;
  // Anonymous over TLS, and anything over plaintext, get nothing.
  auto anonymous = Client("");
  EXPECT_EQ(Submit(anonymous.get(), SleepSpec("x"), &c).error_code(), grpc::UNAUTHENTICATED);
  EXPECT_EQ(anonymous->ListCampaigns(Ctx().get(), {}, &list).error_code(),
            grpc::UNAUTHENTICATED);
  auto plaintext = v1::CoordinatorService::NewStub(
      grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  EXPECT_FALSE(plaintext->ListCampaigns(Ctx().get(), {}, &list).ok());
  auto forged = Client("rt_not-a-token-of-this-cluster");
  EXPECT_EQ(forged->ListCampaigns(Ctx().get(), {}, &list).error_code(), grpc::UNAUTHENTICATED);

  // read may read, not submit.
  auto carol = Client(carol_);
  EXPECT_EQ(Submit(carol.get(), SleepSpec("x"), &c).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_TRUE(carol->ListCampaigns(Ctx().get(), {}, &list).ok());

  // The owner is who submitted, whatever the spec says.
  auto alice = Client(alice_);
  v1::CampaignSpec spec = SleepSpec("alice's");
  spec.set_owner("bob");
  ASSERT_TRUE(Submit(alice.get(), spec, &c).ok());
  EXPECT_EQ(c.spec().owner(), "alice");
  const int64_t alices = c.id();

  // bob may not pause, resume or cancel alice's campaign; alice and admins may.
  auto bob = Client(bob_);
  v1::CancelCampaignRequest cancel;
  cancel.set_campaign_id(alices);
  v1::PauseCampaignRequest pause;
  pause.set_campaign_id(alices);
  EXPECT_EQ(bob->CancelCampaign(Ctx().get(), cancel, &c).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_EQ(bob->PauseCampaign(Ctx().get(), pause, &c).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_EQ(carol->CancelCampaign(Ctx().get(), cancel, &c).error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_TRUE(alice->PauseCampaign(Ctx().get(), pause, &c).ok());
  auto admin = Client(admin_);
  v1::ResumeCampaignRequest resume;
  resume.set_campaign_id(alices);
  EXPECT_TRUE(admin->ResumeCampaign(Ctx().get(), resume, &c).ok());

  // A client token is no worker or verifier.
  auto as_worker = v1::WorkerService::NewStub(Dial(AsClient(admin_)));
  v1::RegisterWorkerRequest reg;
  reg.set_name("fake");
  v1::RegisterWorkerResponse reg_resp;
  EXPECT_EQ(as_worker->RegisterWorker(Ctx().get(), reg, &reg_resp).error_code(),
            grpc::PERMISSION_DENIED);
  auto as_verifier = v1::VerifierService::NewStub(Dial(AsClient(admin_)));
  v1::ReportVerdictRequest verdict;
  verdict.mutable_verification()->set_id(1);
  verdict.mutable_verification()->set_outcome(v1::VERDICT_ACCEPTED);
  verdict.mutable_verification()->add_candidate_scores(1e300);
  v1::ReportVerdictResponse verdict_resp;
  EXPECT_EQ(as_verifier->ReportVerdict(Ctx().get(), verdict, &verdict_resp).error_code(),
            grpc::PERMISSION_DENIED);

  // Limits: campaigns and watch streams per client.
  ASSERT_TRUE(Submit(alice.get(), SleepSpec("second"), &c).ok());
  grpc::Status third = Submit(alice.get(), SleepSpec("third"), &c);
  EXPECT_EQ(third.error_code(), grpc::RESOURCE_EXHAUSTED) << third.error_message();
  EXPECT_TRUE(Submit(bob.get(), SleepSpec("bob's"), &c).ok());  // per client
  v1::WatchCampaignRequest watch;
  watch.set_campaign_id(alices);
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::CampaignEvent>>> streams;
  for (int i = 0; i < 3; ++i) {
    contexts.push_back(Ctx());
    streams.push_back(carol->WatchCampaign(contexts.back().get(), watch));
  }
  v1::CampaignEvent event;
  EXPECT_TRUE(streams[0]->Read(&event));
  EXPECT_TRUE(streams[1]->Read(&event));
  EXPECT_FALSE(streams[2]->Read(&event));
  EXPECT_EQ(streams[2]->Finish().error_code(), grpc::RESOURCE_EXHAUSTED);
  for (int i = 0; i < 2; ++i) contexts[static_cast<size_t>(i)]->TryCancel();

  // A listing carries no problems or solutions (large specs cannot push it
  // past the reply limit for everyone).
  ASSERT_TRUE(carol->ListCampaigns(Ctx().get(), {}, &list).ok());
  ASSERT_EQ(list.campaigns_size(), 3);
  for (const auto& listed : list.campaigns()) EXPECT_FALSE(listed.spec().has_baseline());

  // A request past the message limit (16 MiB by default) is refused unread.
  v1::CampaignSpec huge = SleepSpec("huge");
  huge.set_name(std::string(17 << 20, 'x'));
  EXPECT_EQ(Submit(admin.get(), huge, &c).error_code(), grpc::RESOURCE_EXHAUSTED);
}

TEST_F(Security, ServicesActOnlyAsThemselves) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  auto w1 = v1::WorkerService::NewStub(Dial(AsService(pki_, "w1")));
  v1::RegisterWorkerRequest reg;
  reg.set_name("w1");
  reg.set_worker_id("someone-else");
  v1::RegisterWorkerResponse reg_resp;
  ASSERT_TRUE(w1->RegisterWorker(Ctx().get(), reg, &reg_resp).ok());
  EXPECT_EQ(reg_resp.worker_id(), "w1");  // the certificate's name, not the request's
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w2");
  v1::HeartbeatResponse hb_resp;
  EXPECT_EQ(w1->Heartbeat(Ctx().get(), hb, &hb_resp).error_code(), grpc::PERMISSION_DENIED);
  hb.set_worker_id("w1");
  EXPECT_TRUE(w1->Heartbeat(Ctx().get(), hb, &hb_resp).ok());
  v1::CompleteJobRequest complete;
  complete.set_worker_id("w2");
  complete.set_job_id(1);
  v1::CompleteJobResponse complete_resp;
  EXPECT_EQ(w1->CompleteJob(Ctx().get(), complete, &complete_resp).error_code(),
            grpc::PERMISSION_DENIED);

  // The same name under another CA: the handshake fails.
  auto rogue = v1::WorkerService::NewStub(Dial(AsService(dir_ + "/rogue", "w1")));
  EXPECT_FALSE(rogue->Heartbeat(Ctx().get(), hb, &hb_resp).ok());

  // A worker is no verifier, a verifier no worker or client.
  auto w1_as_verifier = v1::VerifierService::NewStub(Dial(AsService(pki_, "w1")));
  v1::ReportVerdictRequest verdict;
  verdict.set_verifier_id("w1");
  verdict.mutable_verification()->set_outcome(v1::VERDICT_ACCEPTED);
  v1::ReportVerdictResponse verdict_resp;
  EXPECT_EQ(w1_as_verifier->ReportVerdict(Ctx().get(), verdict, &verdict_resp).error_code(),
            grpc::PERMISSION_DENIED);
  auto v1_as_worker = v1::WorkerService::NewStub(Dial(AsService(pki_, "v1")));
  v1::AcquireJobRequest acquire;
  acquire.set_worker_id("v1");
  v1::AcquireJobResponse acquire_resp;
  EXPECT_EQ(v1_as_worker->AcquireJob(Ctx().get(), acquire, &acquire_resp).error_code(),
            grpc::PERMISSION_DENIED);
  auto v1_as_client = v1::CoordinatorService::NewStub(Dial(AsService(pki_, "v1")));
  v1::Campaign c;
  EXPECT_EQ(Submit(v1_as_client.get(), SleepSpec("x"), &c).error_code(),
            grpc::PERMISSION_DENIED);
}

// A real claim on a TLS cluster: a worker with its certificate runs a CPU
// campaign and the claim's replays, which the coordinator queues itself; this
// test plays the verifier, which gets the claim with its finished replays.
// Scores that are not the replays' are refused, as is a report from a
// verifier that does not hold the claim.
TEST_F(Security, VerdictsRestOnTheReplaysHandedOut) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  Process worker({kRatchet, "worker", "--coordinator=" + address_, "--no-gpu",
                  "--scratch=" + dir_ + "/scratch", "--tls-ca=" + pki_ + "/ca.pem",
                  "--tls-cert=" + pki_ + "/w1.pem", "--tls-key=" + pki_ + "/w1.key"},
                 dir_ + "/worker.log");
  // Submitted through the CLI with a token from the environment, as a user would.
  const std::string spec_path = dir_ + "/spec.yaml";
  std::ofstream(spec_path) << "name: secure\nproblem: " << kSource << "/tasks/cpu/rmsnorm\n"
                           << "baseline: " << kSource << "/tasks/cpu/rmsnorm/baseline\n"
                           << "harness: {warmups: 1, repetitions: 5, correctness_rounds: 1, "
                              "timeout_seconds: 60}\ndevice: cpu\nthreads: 1\n"
                           << "budget: {max_evaluations: 12}\n"
                           << "verification: {replays: 1, min_gain: 0}\n";
  setenv("RATCHET_TOKEN", alice_.c_str(), 1);
  const testing::CommandResult submit =
      RunCommand({kRatchet, "submit", spec_path, "--coordinator=" + address_,
                  "--tls-ca=" + pki_ + "/ca.pem"});
  unsetenv("RATCHET_TOKEN");
  ASSERT_EQ(submit.exit_code, 0) << submit.err;

  auto v1 = v1::VerifierService::NewStub(Dial(AsService(pki_, "v1")));
  auto v2 = v1::VerifierService::NewStub(Dial(AsService(pki_, "v2")));
  v1::AcquireVerificationRequest acquire;
  acquire.set_verifier_id("v1");
  acquire.set_wait_ms(5000);
  v1::Verification claim;
  v1::ReplayBundle got;
  ASSERT_TRUE(testing::PollUntil(
      [&] {
        v1::AcquireVerificationResponse r;
        if (!v1->AcquireVerification(Ctx().get(), acquire, &r).ok()) return false;
        if (!r.has_verification()) return false;
        claim = r.verification();
        got = r.replays();
        return true;
      },
      600'000))
      << "no claim in 10 minutes; worker log:\n"
      << ReadFile(dir_ + "/worker.log") << "\ncoordinator log:\n"
      << ReadFile(dir_ + "/coordinator.log");
  // Handed out with both replays ended, their evaluations in the bundle.
  ASSERT_EQ(got.jobs_size(), 2);
  for (const auto& j : got.jobs())
    EXPECT_TRUE(j.state() == v1::JOB_DONE || j.state() == v1::JOB_FAILED) << j.state();
  double candidate = -1, incumbent = -1;
  for (const auto& e : got.evaluations()) {
    for (const auto& j : got.jobs())
      if (j.id() == e.job_id())
        (j.candidate_id() == claim.candidate_id() ? candidate : incumbent) = e.score();
  }
  ASSERT_GE(candidate, 0);
  ASSERT_GE(incumbent, 0);

  // Another verifier cannot ask for more replays of a claim it does not hold.
  {
    v1::ReportVerdictRequest more;
    more.set_verifier_id("v2");
    more.mutable_verification()->set_id(claim.id());
    more.mutable_verification()->set_outcome(v1::VERDICT_MORE_REPLAYS);
    more.set_replays(2);
    v1::ReportVerdictResponse resp;
    EXPECT_EQ(v2->ReportVerdict(Ctx().get(), more, &resp).error_code(),
              grpc::PERMISSION_DENIED);
  }

  auto verdict = [&](const std::string& verifier, std::vector<double> cand,
                     std::vector<double> inc) {
    v1::ReportVerdictRequest req;
    req.set_verifier_id(verifier);
    v1::Verification* v = req.mutable_verification();
    v->set_id(claim.id());
    v->set_outcome(v1::VERDICT_ACCEPTED);
    for (double x : cand) v->add_candidate_scores(x);
    for (double x : inc) v->add_incumbent_scores(x);
    v1::ReportVerdictResponse resp;
    return (verifier == "v1" ? v1 : v2)->ReportVerdict(Ctx().get(), req, &resp);
  };
  // The report's attack: ACCEPTED with an invented score.
  grpc::Status s = verdict("v1", {1e300}, {incumbent});
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
  // One real replay counted twice.
  s = verdict("v1", {candidate, candidate}, {incumbent});
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
  // An acceptance without the incumbent's side.
  s = verdict("v1", {candidate}, {});
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
  // Another verifier, the real scores.
  s = verdict("v2", {candidate}, {incumbent});
  EXPECT_EQ(s.error_code(), grpc::PERMISSION_DENIED) << s.error_message();
  // The holder, the replays' own scores: decided.
  s = verdict("v1", {candidate}, {incumbent});
  EXPECT_TRUE(s.ok()) << s.error_message();
  worker.Stop(SIGTERM);
}

}  // namespace
}  // namespace ratchet
