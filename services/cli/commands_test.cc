// Client commands against a fake CoordinatorService over real loopback gRPC.
#include "services/cli/commands.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/cli/security_commands.h"

namespace ratchet::cli {
namespace {

namespace v1 = ratchet::v1;

v1::Campaign SampleCampaign(v1::CampaignState state) {
  v1::Campaign c;
  c.set_id(7);
  c.mutable_spec()->set_name("demo");
  c.mutable_spec()->set_task(v1::TASK_KERNEL);
  c.mutable_spec()->set_device(v1::DEVICE_CUDA);
  c.mutable_spec()->set_proposer(v1::PROPOSER_GRID);
  c.mutable_spec()->mutable_problem()->set_name("gemm");
  c.mutable_spec()->mutable_budget()->set_max_evaluations(30);
  c.set_state(state);
  c.set_baseline_candidate_id(1);
  c.set_baseline_score(0.5);
  c.set_best_candidate_id(4);
  c.set_best_score(0.625);
  c.set_best_verified(true);
  c.set_evaluations(12);
  c.set_jobs_queued(3);
  c.set_jobs_running(2);
  return c;
}

class FakeCoordinator final : public v1::CoordinatorService::Service {
 public:
  grpc::Status SubmitCampaign(grpc::ServerContext*, const v1::SubmitCampaignRequest* req,
                              v1::Campaign* out) override {
    submitted = req->spec();
    *out = SampleCampaign(v1::CAMPAIGN_RUNNING);
    return grpc::Status::OK;
  }
  grpc::Status GetCampaign(grpc::ServerContext*, const v1::GetCampaignRequest* req,
                           v1::Campaign* out) override {
    if (req->campaign_id() != 7) return grpc::Status(grpc::NOT_FOUND, "no campaign 99");
    *out = SampleCampaign(v1::CAMPAIGN_FINISHED);
    return grpc::Status::OK;
  }
  grpc::Status ListCampaigns(grpc::ServerContext*, const v1::ListCampaignsRequest*,
                             v1::ListCampaignsResponse* out) override {
    *out->add_campaigns() = SampleCampaign(v1::CAMPAIGN_RUNNING);
    return grpc::Status::OK;
  }
  grpc::Status WatchCampaign(grpc::ServerContext*, const v1::WatchCampaignRequest*,
                             grpc::ServerWriter<v1::CampaignEvent>* writer) override {
    v1::CampaignEvent e;
    e.set_text("candidate 4 accepted");
    *e.mutable_campaign() = SampleCampaign(v1::CAMPAIGN_RUNNING);
    writer->Write(e);
    e.set_text("campaign finished");
    *e.mutable_campaign() = SampleCampaign(watch_final);
    writer->Write(e);
    return grpc::Status::OK;
  }
  grpc::Status GetCandidate(grpc::ServerContext*, const v1::GetCandidateRequest* req,
                            v1::CandidateDetail* out) override {
    auto* c = out->mutable_candidate();
    c->set_id(req->candidate_id());
    c->set_thread_id(2);
    c->set_parent_id(1);
    c->set_description("BLOCK 32->64");
    c->set_status(v1::CANDIDATE_ACCEPTED);
    c->set_score(0.625);
    (*c->mutable_solution()->mutable_knobs())["BLOCK"] = "64";
    (*c->mutable_solution()->mutable_files())["kernel.cc"] = "int x;\nint y;\n";
    auto* e = out->add_evaluations();
    e->set_id(11);
    e->set_outcome(v1::OUTCOME_OK);
    e->set_kind(v1::JOB_EVALUATE);
    e->set_score(0.625);
    auto* w = e->add_workloads();
    w->set_axes("M=256");
    w->set_correct(true);
    w->set_t_k_ns(1500);
    w->set_t_b_ns(2000);
    w->set_t_b_given(true);
    w->set_t_b_measurements(3);
    w->set_t_b_spread(0.05);
    w->set_score(0.625);
    w->add_flags("timing-disagreement");
    w->set_t_k_independent_ns(4200);
    w->set_independent_calls(512);
    auto* h = out->add_verifications();
    h->set_id(6);
    h->set_outcome(v1::VERDICT_REJECTED_HACK);
    h->set_reason("timing-disagreement");
    h->set_detail("the in-process timer was not to be trusted");
    h->mutable_policy()->set_timing_tolerance(0.5);
    auto* ev = h->mutable_evidence();
    ev->add_tiers("guards");
    ev->add_tiers("independent-timing");
    ev->set_replays_requested(6);
    ev->add_replay_workers("w-2");
    ev->set_failed_check("timing-disagreement");
    ev->add_screening_flags("memory-protection: mprotect (kernel.cc:99)");
    auto* t = ev->add_timings();
    t->set_job_id(77);
    t->set_axes("M=256");
    t->set_t_k_ns(1500);
    t->set_t_outside_ns(12000);
    t->set_calls(512);
    auto* n = out->add_verifications();
    n->set_id(7);
    n->set_outcome(v1::VERDICT_REJECTED_NOISE);
    n->set_reason("noise");
    auto* nev = n->mutable_evidence();
    nev->set_candidate_median(0.52);
    nev->set_incumbent_median(0.51);
    nev->set_relative_gain(0.0196);
    nev->set_required_gain(0.05);
    nev->set_welch_t(0.7);
    nev->set_welch_df(3.2);
    nev->set_p_value(0.27);
    nev->set_effect_size(0.4);
    nev->set_noise_floor(0.0356);
    nev->set_noise_floor_df(9);
    nev->set_noise_floor_key("gemm | Xeon");
    auto* v = out->add_verifications();
    v->set_id(5);
    v->set_outcome(v1::VERDICT_REJECTED);
    v->set_reason("noise");
    v->set_detail("gain 0.4% below min 2%");
    v->add_candidate_scores(0.61);
    return grpc::Status::OK;
  }
  grpc::Status ListWorkers(grpc::ServerContext*, const v1::ListWorkersRequest*,
                           v1::ListWorkersResponse* out) override {
    auto* w = out->add_workers();
    w->set_id("w-1");
    w->set_name("local-worker-1");
    w->mutable_hardware()->set_cpu_model("AMD EPYC");
    w->mutable_hardware()->set_cpu_cores(16);
    w->mutable_hardware()->set_peak_gbps(42.5);
    w->mutable_hardware()->set_peak_gflops(310);
    w->set_sandbox("bwrap");
    w->set_connected(true);
    w->add_job_ids(3);
    w->set_jobs_done(9);
    auto* g = out->add_workers();
    g->set_id("w-2");
    g->set_name("gpu-node");
    auto* hw = g->mutable_hardware();
    hw->set_cpu_model("Intel Xeon");
    hw->add_gpus("NVIDIA H200");
    hw->add_gpus("NVIDIA H200");  // listed by the driver, not probed
    auto* gi = hw->add_gpu_info();
    gi->set_index(0);
    gi->set_model("NVIDIA H200");
    gi->set_sku("H200");
    gi->set_compute_capability("9.0");
    gi->set_sm_count(132);
    gi->set_memory_bytes(int64_t{140} << 30);
    gi->set_table_dram_gbps(4800);
    gi->set_table_bf16_tflops(989.4);
    gi->set_measured_copy_gbps(4012.4);
    gi->set_measured_gemm_bf16_tflops(731.2);
    hw->set_nccl_ranks(8);
    hw->set_nccl_allreduce_busbw_gbps(380.4);
    return grpc::Status::OK;
  }

  v1::CampaignSpec submitted;
  v1::CampaignState watch_final = v1::CAMPAIGN_FINISHED;
};

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override { server_->Shutdown(); }

  int Run(std::vector<std::string> args, bool with_address = true) {
    if (with_address) args.push_back("--coordinator=" + address_);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    out_.str("");
    err_.str("");
    return RunClientCommand(static_cast<int>(argv.size()), argv.data(), out_, err_);
  }

  FakeCoordinator fake_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::ostringstream out_, err_;
};

TEST_F(CommandsTest, UnreachableCoordinatorIsOneClearLine) {
  // A port that nothing listens on any more.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  const int port = ntohs(addr.sin_port);
  const std::string dead = "127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(Run({"workers", "--coordinator=" + dead}, false), kExitFailure);
  std::string e = err_.str();
  EXPECT_EQ(e.rfind("ratchet: cannot reach coordinator at " + dead + ": ", 0), 0u) << e;
  EXPECT_EQ(std::count(e.begin(), e.end(), '\n'), 1) << e;
}

TEST_F(CommandsTest, NotFoundNamesTheCode) {
  EXPECT_EQ(Run({"status", "99"}), kExitFailure);
  EXPECT_NE(err_.str().find("NOT_FOUND: no campaign 99"), std::string::npos) << err_.str();
}

TEST_F(CommandsTest, UsageErrors) {
  EXPECT_EQ(Run({"watch"}), kExitUsage);
  EXPECT_NE(err_.str().find("expected one campaign id"), std::string::npos);
  EXPECT_NE(err_.str().find("usage: ratchet"), std::string::npos);
  EXPECT_EQ(Run({"show", "abc"}), kExitUsage);
  EXPECT_EQ(Run({"status", "--bogus=1"}), kExitUsage);
  EXPECT_NE(err_.str().find("unknown flag --bogus"), std::string::npos);
  EXPECT_EQ(Run({"submit"}), kExitUsage);
}

TEST_F(CommandsTest, SubmitReportsSpecErrors) {
  EXPECT_EQ(Run({"submit", "/nonexistent/spec.yaml"}), kExitFailure);
  EXPECT_NE(err_.str().find("/nonexistent/spec.yaml: no such spec file"), std::string::npos);
}

TEST_F(CommandsTest, StatusOneAndAll) {
  ASSERT_EQ(Run({"status", "7"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("campaign 7  demo"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("0.6250 (candidate 4, verified)"), std::string::npos) << out_.str();
  // The enums in their words, as the spec writes them.
  EXPECT_NE(out_.str().find("task         kernel on gemm (cuda), proposer grid"),
            std::string::npos)
      << out_.str();
  ASSERT_EQ(Run({"status"}), kExitOk);
  EXPECT_NE(out_.str().find("ID  NAME"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("12/30"), std::string::npos) << out_.str();
}

TEST_F(CommandsTest, JsonIsTheProto) {
  ASSERT_EQ(Run({"status", "7", "--json"}), kExitOk);
  nlohmann::json j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["id"], "7");  // int64 is a string in proto JSON
  EXPECT_EQ(j["state"], "CAMPAIGN_FINISHED");
  EXPECT_EQ(j["best_verified"], true);
  EXPECT_EQ(j["spec"]["task"], "TASK_KERNEL");
  EXPECT_EQ(j["spec"]["device"], "DEVICE_CUDA");
  EXPECT_EQ(j["spec"]["proposer"], "PROPOSER_GRID");
  // The empty strings kept for older records are left out.
  EXPECT_FALSE(j["spec"].contains("legacy_task")) << j["spec"].dump();
  EXPECT_EQ(out_.str().find("legacy_"), std::string::npos) << out_.str();
  ASSERT_EQ(Run({"show", "4", "--json"}), kExitOk);
  j = nlohmann::json::parse(out_.str());
  EXPECT_EQ(j["candidate"]["status"], "CANDIDATE_ACCEPTED");
  EXPECT_FALSE(j["candidate"].contains("legacy_status")) << j["candidate"].dump();
}

TEST_F(CommandsTest, WatchStreamsUntilTheEnd) {
  EXPECT_EQ(Run({"watch", "7"}), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("candidate 4 accepted"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("campaign 7 finished"), std::string::npos) << out_.str();
  fake_.watch_final = v1::CAMPAIGN_CANCELLED;
  EXPECT_EQ(Run({"watch", "7"}), kExitFailure);
  EXPECT_EQ(Run({"watch", "7", "--json"}), kExitFailure);
  const std::string lines = out_.str();
  EXPECT_EQ(std::count(lines.begin(), lines.end(), '\n'), 2) << lines;  // JSON lines
}

TEST_F(CommandsTest, ShowHasEverything) {
  ASSERT_EQ(Run({"show", "4", "--files"}), kExitOk) << err_.str();
  const std::string o = out_.str();
  for (const char* want : {"candidate 4", "what changed BLOCK 32->64", "knobs        BLOCK=64",
                           "status       accepted, score 0.6250",
                           "kernel.cc  (14 bytes, 2 lines)", "--- kernel.cc\nint x;",
                           "#11 evaluate", "ok, score 0.6250", "M=256", "1.50us",
                           "T_B_FROM", "stored n=3 spread 5.0%",
                           "#5 rejected (noise)", "| gain 0.4% below min 2%", "0.6100",
                           "workload 0 flags: timing-disagreement",
                           "workload 0 timed from outside: 4.20us per call over 512",
                           "#6 rejected-hack (timing-disagreement)",
                           "tiers    guards, independent-timing; 6 replays a side requested, "
                           "candidate replayed on w-2",
                           "failed   timing-disagreement",
                           "screened memory-protection: mprotect (kernel.cc:99)",
                           "independent timing (tolerance x1.50)", "12.00us", "x8.00",
                           "#7 rejected-noise (noise)",
                           "medians  candidate 0.5200 vs incumbent 0.5100, gain +2.0% "
                           "(required 5.0%)",
                           "welch    t=0.70 df=3.2 p=0.27 (needs < 0.05), effect size d=0.40",
                           "noise    floor 3.56% (9 df, gemm | Xeon) x 2 sigmas"}) {
    EXPECT_NE(o.find(want), std::string::npos) << "missing '" << want << "' in\n" << o;
  }
}

TEST_F(CommandsTest, WorkersTable) {
  ASSERT_EQ(Run({"workers"}), kExitOk);
  const std::string o = out_.str();
  for (const char* want : {"local-worker-1", "AMD EPYC", "16", "42.5", "310.0", "bwrap", "yes",
                           "1 running, 9 done", "Intel Xeon + 2x NVIDIA H200", "NCCL_BUSBW",
                           "380 GB/s (8 GPUs)"}) {
    EXPECT_NE(o.find(want), std::string::npos) << "missing '" << want << "' in\n" << o;
  }
  // Per GPU: model, SKU, measured copy and GEMM next to the table's values.
  for (const char* want : {"GPUs (measured", "H200", "9.0", "132", "140",
                           "4012 / 4800 (84%)", "731 / 989 (74%)", "not calibrated"}) {
    EXPECT_NE(o.find(want), std::string::npos) << "missing '" << want << "' in\n" << o;
  }
  // A CPU-only cluster has no GPU section.
  v1::ListWorkersResponse cpu_only;
  cpu_only.add_workers()->set_id("w-9");
  EXPECT_EQ(FormatWorkers(cpu_only).find("GPUs"), std::string::npos);
}

TEST_F(CommandsTest, UsageIsPerCommand) {
  ASSERT_EQ(Run({"watch", "--help"}), kExitOk);
  EXPECT_NE(out_.str().find("usage: ratchet watch <campaign-id>"), std::string::npos)
      << out_.str();
  EXPECT_EQ(out_.str().find("Services:"), std::string::npos) << out_.str();  // not the whole list
  EXPECT_EQ(Run({"leaderboard"}), kExitUsage);
  EXPECT_NE(err_.str().find("usage: ratchet leaderboard <campaign-id> [--limit=20]"),
            std::string::npos)
      << err_.str();
  EXPECT_EQ(err_.str().find("Services:"), std::string::npos) << err_.str();
}

TEST(SecurityCommandsTest, JsonSaysWhatWasMade) {
  char tmpl[] = "/tmp/ratchet-cli-pki-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto run = [](std::vector<std::string> args, std::ostringstream* out) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    std::ostringstream err;
    return RunSecurityCommand(static_cast<int>(argv.size()), argv.data(), *out, err);
  };
  std::ostringstream init, issue, token;
  ASSERT_EQ(run({"pki", "init", dir + "/pki", "--json"}, &init), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(init.str())["certificate"], dir + "/pki/coordinator.pem");
  ASSERT_EQ(run({"pki", "issue", dir + "/pki", "worker:w1", "--json"}, &issue), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(issue.str())["principal"], "worker:w1");
  ASSERT_EQ(run({"token", "add", "--tokens=" + dir + "/tokens", "--role=read", "--name=ana",
                 "--json"},
                &token),
            kExitOk);
  const auto t = nlohmann::json::parse(token.str());
  EXPECT_EQ(t["role"], "read");
  EXPECT_GE(t["token"].get<std::string>().size(), 32u);
  std::system(("rm -rf " + dir).c_str());
}

TEST(FormatTest, TableCellsAreOneLine) {
  v1::Campaign c;
  c.set_id(3);
  c.mutable_spec()->set_name("evil\nname\x1b[2J");
  const std::string table = FormatCampaignTable({c}, 0);
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2) << table;
  EXPECT_NE(table.find("evil\\nname\\x1b[2J"), std::string::npos) << table;
}

TEST(FormatTest, ThreadsAreNumberedAsStatusNumbersThem) {
  v1::Leaderboard board;
  auto* e = board.add_entries();
  e->mutable_candidate()->set_id(9);
  e->mutable_candidate()->set_thread_id(41);
  e->mutable_candidate()->set_parent_id(5);
  e->mutable_candidate()->set_status(v1::CANDIDATE_VERIFYING);
  const std::string table = FormatLeaderboard(board, {{41, 2}});
  EXPECT_NE(table.find("  2  "), std::string::npos) << table;
  EXPECT_NE(table.find(" verifying "), std::string::npos) << table;
  EXPECT_EQ(table.find("41"), std::string::npos) << table;
  EXPECT_NE(FormatLeaderboard(board).find("id 41"), std::string::npos);
}

TEST(FormatTest, TableAlignsColumns) {
  EXPECT_EQ(FormatTable({"A", "BBB"}, {{"xx", "y"}, {"z", "w"}}),
            "A   BBB\n"
            "xx  y\n"
            "z   w\n");
}

TEST(FormatTest, StatusLine) {
  std::string s = StatusLine(SampleCampaign(v1::CAMPAIGN_RUNNING), 12.34);
  EXPECT_EQ(s,
            "[  12.3s] running  evals 12/30  queued 3 running 2  baseline 0.5000  "
            "best 0.6250 #4 verified");
}

TEST(FormatTest, StatusLineWhenBaselineIsBest) {
  v1::Campaign c = SampleCampaign(v1::CAMPAIGN_RUNNING);
  c.set_best_candidate_id(1);
  EXPECT_NE(StatusLine(c, 1).find("best = baseline"), std::string::npos);
}

TEST(FormatTest, CoordinatorAddressPrecedence) {
  std::vector<std::string> args = {"--coordinator=h:1"};
  std::vector<char*> argv = {args[0].data()};
  auto flags = Flags::Parse(1, argv.data());
  ASSERT_TRUE(flags.ok());
  EXPECT_EQ(CoordinatorAddress(*flags), "h:1");
  auto none = Flags::Parse(0, nullptr);
  ::setenv("RATCHET_COORDINATOR", "env:2", 1);
  EXPECT_EQ(CoordinatorAddress(*none), "env:2");
  ::unsetenv("RATCHET_COORDINATOR");
  EXPECT_EQ(CoordinatorAddress(*none), "127.0.0.1:50051");
}

}  // namespace
}  // namespace ratchet::cli
