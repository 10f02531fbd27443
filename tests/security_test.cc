// The authenticated cluster (docs/security.md), attacked the way issue 12's
// report did: a real `ratchet coordinator` serving TLS on loopback, real
// certificates and tokens made by `ratchet pki` and `ratchet token`, and
// clients that are anonymous, hold the wrong role, or hold a real identity
// and try to act as another.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
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
  // The server may take the three in any order: one of them is refused.
  v1::CampaignEvent event;
  int watching = 0;
  for (size_t i = 0; i < streams.size(); ++i) {
    if (streams[i]->Read(&event)) {
      ++watching;
      continue;
    }
    EXPECT_EQ(streams[i]->Finish().error_code(), grpc::RESOURCE_EXHAUSTED);
  }
  EXPECT_EQ(watching, 2);
  for (auto& context : contexts) context->TryCancel();

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

// Every client RPC that changes or reads a campaign, and the worker RPCs,
// refuse a caller without a token or certificate; a read token cannot change
// a campaign.
TEST_F(Security, AnonymousCallersAndReadTokensChangeNothing) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator());
  auto alice = Client(alice_);
  v1::Campaign c;
  ASSERT_TRUE(Submit(alice.get(), SleepSpec("alice's"), &c).ok());
  const int64_t id = c.id();
  v1::PauseCampaignRequest pause;
  pause.set_campaign_id(id);
  v1::ResumeCampaignRequest resume;
  resume.set_campaign_id(id);
  v1::CancelCampaignRequest cancel;
  cancel.set_campaign_id(id);
  v1::GetCampaignRequest get;
  get.set_campaign_id(id);
  v1::GetCandidateRequest candidate;
  candidate.set_candidate_id(c.baseline_candidate_id());
  v1::CandidateDetail detail;

  auto anonymous = Client("");
  EXPECT_EQ(anonymous->PauseCampaign(Ctx().get(), pause, &c).error_code(),
            grpc::UNAUTHENTICATED);
  EXPECT_EQ(anonymous->ResumeCampaign(Ctx().get(), resume, &c).error_code(),
            grpc::UNAUTHENTICATED);
  EXPECT_EQ(anonymous->CancelCampaign(Ctx().get(), cancel, &c).error_code(),
            grpc::UNAUTHENTICATED);
  EXPECT_EQ(anonymous->GetCampaign(Ctx().get(), get, &c).error_code(), grpc::UNAUTHENTICATED);
  EXPECT_EQ(anonymous->GetCandidate(Ctx().get(), candidate, &detail).error_code(),
            grpc::UNAUTHENTICATED);

  // The worker service over TLS without a certificate.
  auto anonymous_worker = v1::WorkerService::NewStub(Dial(AsClient("")));
  v1::CompleteJobRequest complete;
  complete.set_worker_id("w1");
  complete.set_job_id(1);
  complete.mutable_evaluation()->set_score(0.999);
  v1::CompleteJobResponse complete_resp;
  EXPECT_EQ(anonymous_worker->CompleteJob(Ctx().get(), complete, &complete_resp).error_code(),
            grpc::UNAUTHENTICATED);
  v1::HeartbeatRequest hb;
  hb.set_worker_id("w1");
  hb.add_job_ids(1);
  v1::HeartbeatResponse hb_resp;
  EXPECT_EQ(anonymous_worker->Heartbeat(Ctx().get(), hb, &hb_resp).error_code(),
            grpc::UNAUTHENTICATED);

  // A read token may look, not change.
  auto carol = Client(carol_);
  EXPECT_EQ(carol->PauseCampaign(Ctx().get(), pause, &c).error_code(), grpc::PERMISSION_DENIED);
  EXPECT_EQ(carol->ResumeCampaign(Ctx().get(), resume, &c).error_code(),
            grpc::PERMISSION_DENIED);
  EXPECT_EQ(carol->CancelCampaign(Ctx().get(), cancel, &c).error_code(),
            grpc::PERMISSION_DENIED);
  ASSERT_TRUE(carol->GetCampaign(Ctx().get(), get, &c).ok());
  EXPECT_EQ(c.state(), v1::CAMPAIGN_RUNNING);  // nothing above changed it
  EXPECT_TRUE(carol->GetCandidate(Ctx().get(), candidate, &detail).ok());
}

// Concurrent submits of one client cannot each pass the campaign quota on
// the same count: exactly the quota is accepted.
TEST_F(Security, ConcurrentSubmitsGetExactlyTheCampaignQuota) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator({"--max-campaigns-per-client=3"}));
  constexpr int kSubmits = 12;
  std::vector<grpc::StatusCode> codes(kSubmits, grpc::UNKNOWN);
  std::vector<std::unique_ptr<v1::CoordinatorService::Stub>> stubs;
  for (int i = 0; i < kSubmits; ++i) stubs.push_back(Client(alice_));
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kSubmits; ++i) {
    threads.emplace_back([&, i] {
      ++ready;
      while (ready.load() < kSubmits) std::this_thread::yield();
      v1::Campaign c;
      codes[static_cast<size_t>(i)] =
          Submit(stubs[static_cast<size_t>(i)].get(), SleepSpec(absl::StrCat("s", i)), &c)
              .error_code();
    });
  }
  for (auto& t : threads) t.join();
  int accepted = 0, exhausted = 0;
  for (grpc::StatusCode code : codes) {
    accepted += code == grpc::OK;
    exhausted += code == grpc::RESOURCE_EXHAUSTED;
  }
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ(exhausted, kSubmits - 3);
  v1::ListCampaignsResponse list;
  ASSERT_TRUE(Client(carol_)->ListCampaigns(Ctx().get(), {}, &list).ok());
  EXPECT_EQ(list.campaigns_size(), 3);
}

// One request once queued up to 100000 jobs: a client's campaigns hold at
// most --max-queued-jobs-per-client queued or running, a submit's counted at
// once.
TEST_F(Security, QueuedJobsPerClientAreLimited) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator({"--max-queued-jobs-per-client=100"}));
  auto alice = Client(alice_);
  auto sleeps = [](const std::string& name, int jobs) {
    v1::CampaignSpec spec = SleepSpec(name);
    spec.mutable_budget()->set_max_evaluations(jobs);
    return spec;
  };
  v1::Campaign c;
  ASSERT_TRUE(Submit(alice.get(), sleeps("60", 60), &c).ok());
  EXPECT_EQ(c.jobs_queued(), 60);
  grpc::Status over = Submit(alice.get(), sleeps("41", 41), &c);
  EXPECT_EQ(over.error_code(), grpc::RESOURCE_EXHAUSTED) << over.error_message();
  EXPECT_TRUE(absl::StrContains(over.error_message(), "at most 100")) << over.error_message();
  EXPECT_TRUE(absl::StrContains(over.error_message(), "--max-queued-jobs-per-client"))
      << over.error_message();
  EXPECT_TRUE(Submit(alice.get(), sleeps("40", 40), &c).ok());  // exactly the limit
  EXPECT_TRUE(Submit(Client(bob_).get(), sleeps("bob's", 100), &c).ok());  // per client
  // A research campaign counts the jobs it keeps queued: its baseline's and
  // in_flight_per_thread for each thread.
  const std::string spec_path = dir_ + "/research.yaml";
  std::ofstream(spec_path) << "name: research\nproblem: " << kSource << "/tasks/cpu/rmsnorm\n"
                           << "baseline: " << kSource << "/tasks/cpu/rmsnorm/baseline\n"
                           << "device: cpu\nthreads: 2\nin_flight_per_thread: 10\n";
  setenv("RATCHET_TOKEN", bob_.c_str(), 1);
  const testing::CommandResult research = RunCommand(
      {kRatchet, "submit", spec_path, "--coordinator=" + address_, "--tls-ca=" + pki_ + "/ca.pem"});
  unsetenv("RATCHET_TOKEN");
  EXPECT_NE(research.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(research.err, "would queue 21 jobs")) << research.err;

  // Cancelled campaigns hold no jobs against their owner.
  v1::ListCampaignsResponse list;
  ASSERT_TRUE(alice->ListCampaigns(Ctx().get(), {}, &list).ok());
  for (const auto& listed : list.campaigns()) {
    if (listed.spec().owner() != "alice") continue;
    v1::CancelCampaignRequest cancel;
    cancel.set_campaign_id(listed.id());
    ASSERT_TRUE(alice->CancelCampaign(Ctx().get(), cancel, &c).ok());
  }
  EXPECT_TRUE(Submit(alice.get(), sleeps("again", 100), &c).ok());
}

// A sleep spec carrying `bytes` of problem and baseline, as a large kernel
// campaign's would.
v1::CampaignSpec LargeSpec(const std::string& name, size_t workload_bytes,
                           size_t solution_bytes) {
  v1::CampaignSpec spec;
  spec.set_name(name);
  spec.set_task(v1::TASK_SLEEP);
  spec.set_sleep_ms(10);
  spec.mutable_budget()->set_max_evaluations(1);
  spec.mutable_problem()->set_name("big");
  spec.mutable_problem()->set_workload_jsonl(std::string(workload_bytes, 'w'));
  (*spec.mutable_baseline()->mutable_files())["kernel.cu"] = std::string(solution_bytes, 's');
  return spec;
}

TEST_F(Security, SpecBytesPerClientAreLimited) {
  ASSERT_NO_FATAL_FAILURE(StartCoordinator({"--max-spec-bytes-per-client=3000000"}));
  auto alice = Client(alice_);
  v1::Campaign first, c;
  ASSERT_TRUE(Submit(alice.get(), LargeSpec("1", 800'000, 400'000), &first).ok());
  ASSERT_TRUE(Submit(alice.get(), LargeSpec("2", 800'000, 400'000), &c).ok());
  grpc::Status over = Submit(alice.get(), LargeSpec("3", 800'000, 400'000), &c);
  EXPECT_EQ(over.error_code(), grpc::RESOURCE_EXHAUSTED) << over.error_message();
  EXPECT_TRUE(absl::StrContains(over.error_message(), "--max-spec-bytes-per-client"))
      << over.error_message();
  EXPECT_TRUE(Submit(Client(bob_).get(), LargeSpec("bob's", 800'000, 400'000), &c).ok());
  v1::CancelCampaignRequest cancel;
  cancel.set_campaign_id(first.id());
  ASSERT_TRUE(alice->CancelCampaign(Ctx().get(), cancel, &c).ok());
  EXPECT_TRUE(Submit(alice.get(), LargeSpec("3", 800'000, 400'000), &c).ok());
}

// The coordinator's memory with large specs stored, and while clients list
// them: prints VmRSS and VmHWM (no assertion on them, which depend on the
// host). Issue 12's figures: 20 specs of ~13.5 MB took it from 24 MB to
// 1.0 GB; four concurrent `ratchet status` calls to 1.6 GB.
std::string MemoryOf(pid_t pid) {
  std::string out;
  std::istringstream status(ReadFile(absl::StrCat("/proc/", pid, "/status")));
  for (std::string line; std::getline(status, line);)
    if (absl::StartsWith(line, "VmRSS") || absl::StartsWith(line, "VmHWM"))
      out += absl::StrCat(" ", absl::StrReplaceAll(line, {{"\t", ""}, {"  ", ""}}));
  return out;
}

TEST_F(Security, MemoryWithLargeSpecs) {
  const int n = std::getenv("RATCHET_LARGE_SPECS") != nullptr
                    ? std::atoi(std::getenv("RATCHET_LARGE_SPECS"))
                    : 20;
  // The byte cap off: this measures what listings and quota checks cost.
  ASSERT_NO_FATAL_FAILURE(StartCoordinator({"--max-campaigns-per-client=0",
                                            "--max-spec-bytes-per-client=0"}));
  const pid_t pid = coordinator_->pid();
  std::printf("coordinator memory at start:%s\n", MemoryOf(pid).c_str());
  grpc::ChannelArguments args;  // a submit's reply carries its spec back
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = auth::Dial(address_, AsClient(admin_), args);
  ASSERT_TRUE(channel.ok()) << channel.status();
  auto admin = v1::CoordinatorService::NewStub(*channel);
  for (int i = 0; i < n; ++i) {
    v1::Campaign c;
    grpc::Status s = Submit(admin.get(), LargeSpec(absl::StrCat("large-", i), 8 << 20, 6 << 20), &c);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  std::printf("after %d submits of ~14 MB:%s\n", n, MemoryOf(pid).c_str());
  std::vector<std::thread> readers;
  std::atomic<int> listed{0};
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&] {
      v1::ListCampaignsResponse list;
      if (Client(carol_)->ListCampaigns(Ctx().get(), {}, &list).ok())
        listed += list.campaigns_size();
    });
  }
  for (auto& t : readers) t.join();
  EXPECT_EQ(listed.load(), 4 * n);
  std::printf("after 4 concurrent listings:%s\n", MemoryOf(pid).c_str());
  // One more submit: its quota check reads counts, not campaigns.
  v1::Campaign c;
  ASSERT_TRUE(Submit(admin.get(), SleepSpec("small"), &c).ok());
  std::printf("after one more submit:%s\n", MemoryOf(pid).c_str());
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
