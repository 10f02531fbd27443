// A real campaign with `proposer: llm`: coordinator, verifier and a worker as
// processes of the real `ratchet` binary over loopback gRPC, candidates
// compiled and run by the real harness, and the model played by a scripted
// OpenAI-compatible server in this process. Each scripted case must end as
// specified — retries after a 429 and a 500, a malformed answer counted, a
// timeout retried, an edit that does not compile evaluated as compile_error
// and its error shown in the next prompt — and the campaign must run on to
// completion with its tokens and cost accounted. The server is an endpoint
// of the coordinator's operator (--llm-endpoints); specs only name it, and a
// spec that tries to give a URL or a key of its own is refused.
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
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
using testing::ScriptedOpenAiServer;
using testing::ScriptedResponse;

const std::string kRatchet = RATCHET_BIN;
const std::string kSource = RATCHET_SOURCE_DIR;

// The baseline's loop, as in tests/data/vadd/good/kernel.cc.
const char kLoop[] = "  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + b[i];\n";

std::string SearchReplace(const std::string& idea, const std::string& search,
                          const std::string& replace) {
  return absl::StrCat("IDEA: ", idea, "\n<<<<<<< SEARCH kernel.cc\n", search, "=======\n",
                      replace, ">>>>>>> REPLACE\n");
}

const char kWholeFile[] = R"(IDEA: rewrite with restrict pointers
Full file below.
<<<<<<< FILE kernel.cc
#include <ratchet/kernel_abi.h>

#include <stdint.h>

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  if (n_in != 2 || n_out != 1 || in[0].ndim != 1) return 1;
  const int64_t n = in[0].shape[0];
  const float* __restrict a = static_cast<const float*>(in[0].data);
  const float* __restrict b = static_cast<const float*>(in[1].data);
  float* __restrict c = static_cast<float*>(out[0].data);
  for (int64_t i = 0; i < n; ++i) c[i] = b[i] + a[i];
  return 0;
}
>>>>>>> END
)";

class LlmCampaign : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!testing::PythonWithTorch())
      GTEST_SKIP() << "no /usr/bin/python3 with torch for the oracle";
    dir_ = testing::MakeTempDir("ratchet-llm");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    if (cluster_) cluster_->StopAll();
    if (HasFailure() && cluster_) std::cerr << cluster_->Logs();
  }

  // `endpoints`: the operator's file (docs/llm.md), given to the
  // coordinator with --llm-endpoints.
  void StartCluster(const std::string& endpoints) {
    const std::string file = dir_ + "/endpoints.yaml";
    std::ofstream(file) << endpoints;
    testing::Cluster::Options options;
    options.metrics = true;
    options.coordinator_flags.push_back("--llm-endpoints=" + file);
    cluster_ = std::make_unique<testing::Cluster>(kRatchet, dir_, options);
    ASSERT_NO_FATAL_FAILURE(cluster_->Start(1));
  }
  // The endpoint "scripted" at `server`, with `extra` settings.
  void StartCluster(const ScriptedOpenAiServer& server, const std::string& extra = "") {
    StartCluster(absl::StrCat("endpoints:\n  scripted: {base_url: '", server.base_url(), "'",
                              extra, "}\n"));
  }

  v1::CandidateDetail Candidate(int64_t id) {
    grpc::ClientContext ctx;
    v1::GetCandidateRequest req;
    req.set_candidate_id(id);
    v1::CandidateDetail detail;
    EXPECT_TRUE(cluster_->stub()->GetCandidate(&ctx, req, &detail).ok());
    return detail;
  }

  std::string dir_;
  std::unique_ptr<testing::Cluster> cluster_;
};

TEST_F(LlmCampaign, EveryScriptedCaseEndsAsSpecifiedAndTheCampaignCompletes) {
  ScriptedOpenAiServer server(
      {
          ScriptedResponse::Error(429, "rate limited", /*retry_after_seconds=*/1),
          ScriptedResponse::Error(500, "internal error"),
          ScriptedResponse::Answer(
              SearchReplace("tell the compiler the loop has no dependences", kLoop,
                            absl::StrCat("#pragma GCC ivdep\n", kLoop)),
              1000, 200),
          ScriptedResponse::Answer(
              SearchReplace("faster loop", "  for (int i = 0; i < n; i++)\n", "  x\n"), 500, 50),
          ScriptedResponse::Hang(4000),
          ScriptedResponse::Answer(
              SearchReplace("add a bias", kLoop,
                            "  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + b[i] + "
                            "missing_bias;\n"),
              1000, 200),
          ScriptedResponse::Answer(kWholeFile, 1000, 200),
      },
      // Past the script: the campaign should have ended; count what comes.
      [](const testing::RecordedRequest&) { return ScriptedResponse::Answer("no edits"); });
  std::string error;
  ASSERT_TRUE(server.Start(&error)) << error;
  // The key is the operator's, in a file only the coordinator reads.
  std::ofstream(dir_ + "/scripted.key") << "sk-scripted\n";
  ASSERT_NO_FATAL_FAILURE(StartCluster(
      server, absl::StrCat(", api_key_file: ", dir_, "/scripted.key, models: [scripted-coder]")));

  const std::string spec = dir_ + "/llm.yaml";
  std::ofstream(spec) << absl::StrCat(R"(name: llm-vadd
problem: )", kSource, R"(/tests/data/vadd
baseline: )", kSource, R"(/tests/data/vadd/good
threads: 1
in_flight_per_thread: 1
proposer: llm
seed: 5
budget: {max_evaluations: 4, max_wall_seconds: 240}
verification: {replays: 2, min_gain: 10}  # out of reach: no claims
harness: {warmups: 1, repetitions: 3, correctness_rounds: 1, timeout_seconds: 60}
llm:
  endpoint: scripted
  models: [{name: scripted-coder, weight: 1, prompt_price_per_1k: 0.001, completion_price_per_1k: 0.002}]
  temperature: 0.3
  max_tokens: 1000
  timeout_seconds: 1.5
  max_retries: 3
  max_concurrency: 1
  max_cost_usd: 1
)");
  const int64_t id = cluster_->Submit(spec);
  ASSERT_GT(id, 0);

  v1::Campaign campaign = cluster_->WaitUntilDone(id, 240);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED) << campaign.message();
  EXPECT_EQ(campaign.evaluations(), 4);  // the baseline and three llm candidates
  EXPECT_EQ(campaign.outcomes().at("ok"), 3);
  EXPECT_EQ(campaign.outcomes().at("compile_error"), 1);
  // 429 and 500 before the first answer, a timeout before the fourth.
  EXPECT_EQ(campaign.llm_retries(), 3);
  EXPECT_EQ(campaign.llm_requests(), 4);
  EXPECT_EQ(campaign.llm_failed_requests(), 0);
  EXPECT_EQ(campaign.llm_malformed(), 1);
  EXPECT_EQ(campaign.llm_duplicates(), 0);
  EXPECT_EQ(campaign.llm_prompt_tokens(), 3500);
  EXPECT_EQ(campaign.llm_completion_tokens(), 650);
  EXPECT_NEAR(campaign.llm_cost_usd(), 3.5 * 0.001 + 0.65 * 0.002, 1e-9);

  // Nothing asked after the budget was spent.
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 7u);
  for (const auto& r : requests) {
    EXPECT_EQ(r.path, "/v1/chat/completions");
    EXPECT_EQ(r.headers.at("authorization"), "Bearer sk-scripted");
    auto body = nlohmann::json::parse(r.body);
    EXPECT_EQ(body["model"], "scripted-coder");
    EXPECT_EQ(body["max_tokens"], 1000);
  }
  // The Retry-After of the 429 was waited out.
  EXPECT_GE(requests[1].unix_ms - requests[0].unix_ms, 950);
  auto user_prompt = [&](int i) {
    return nlohmann::json::parse(requests[i].body)["messages"][1]["content"].get<std::string>();
  };
  // After the malformed answer the model is told why it was discarded.
  EXPECT_NE(user_prompt(5).find("previous answer in this thread was discarded"),
            std::string::npos);
  EXPECT_NE(user_prompt(5).find("the SEARCH text is not in kernel.cc"), std::string::npos);
  // After the edit that does not compile, the next prompt shows the error.
  const std::string last = user_prompt(6);
  EXPECT_NE(last.find("-> compile_error"), std::string::npos) << last;
  EXPECT_NE(last.find("missing_bias"), std::string::npos) << last;
  EXPECT_NE(last.find("tell the compiler the loop has no dependences"), std::string::npos);

  // The candidates: the first llm answer, the one that did not compile and
  // the whole-file rewrite, each with the model's idea as its description.
  std::vector<v1::CandidateDetail> llm_candidates;
  for (int64_t cid = campaign.baseline_candidate_id() + 1;
       cid <= campaign.baseline_candidate_id() + 3; ++cid)
    llm_candidates.push_back(Candidate(cid));
  ASSERT_EQ(llm_candidates.size(), 3u);
  EXPECT_NE(llm_candidates[0].candidate().description().find(
                "[scripted-coder] tell the compiler the loop has no dependences"),
            std::string::npos);
  EXPECT_EQ(llm_candidates[0].candidate().parent_id(), campaign.baseline_candidate_id());
  ASSERT_EQ(llm_candidates[1].evaluations_size(), 1);
  EXPECT_EQ(llm_candidates[1].evaluations(0).outcome(), v1::OUTCOME_COMPILE_ERROR);
  EXPECT_NE(llm_candidates[1].evaluations(0).message().find("missing_bias"), std::string::npos);
  EXPECT_EQ(llm_candidates[1].candidate().status(), v1::CANDIDATE_FAILED);
  EXPECT_NE(llm_candidates[2].candidate().solution().files().at("kernel.cc").find("__restrict"),
            std::string::npos);
  ASSERT_EQ(llm_candidates[2].evaluations_size(), 1);
  EXPECT_EQ(llm_candidates[2].evaluations(0).outcome(), v1::OUTCOME_OK);

  // `ratchet status` reports the spend and the malformed answer.
  auto status = RunCommand({kRatchet, "status", std::to_string(id), "--coordinator=" + cluster_->address()});
  EXPECT_EQ(status.exit_code, 0) << status.err;
  EXPECT_NE(status.out.find("llm          4 requests (3 retried, 0 failed), 1 malformed"),
            std::string::npos)
      << status.out;
  // And the coordinator's metrics count the tokens.
  const std::string metrics = cluster_->Metrics("coordinator");
  EXPECT_NE(metrics.find("ratchet_llm_tokens_total{campaign=\"" + std::to_string(id) +
                         "\",kind=\"prompt\"} 3500"),
            std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("ratchet_llm_answers_total{result=\"malformed\"} 1"), std::string::npos);
}

// A spec for tests/data/vadd with proposer llm and the given llm: settings.
std::string VaddSpec(int max_evaluations, const std::string& llm) {
  return absl::StrCat(R"(name: llm-vadd
problem: )", kSource, R"(/tests/data/vadd
baseline: )", kSource, R"(/tests/data/vadd/good
threads: 1
in_flight_per_thread: 1
proposer: llm
seed: 5
budget: {max_evaluations: )", max_evaluations, R"(, max_wall_seconds: 240}
verification: {replays: 2, min_gain: 10}  # out of reach: no claims
harness: {warmups: 1, repetitions: 3, correctness_rounds: 1, timeout_seconds: 60}
llm:
)", llm);
}

TEST_F(LlmCampaign, CostCapStopsProposingAndEndsTheCampaign) {
  // Every answer is a new, correct edit that costs $0.001.
  std::atomic<int> answered{0};
  ScriptedOpenAiServer server({}, [&](const testing::RecordedRequest&) {
    const int n = ++answered;
    return ScriptedResponse::Answer(
        SearchReplace(absl::StrCat("variant ", n), kLoop,
                      absl::StrCat("  // variant ", n, "\n", kLoop)),
        1000, 0);
  });
  ASSERT_TRUE(server.Start());
  ASSERT_NO_FATAL_FAILURE(StartCluster(server));
  const std::string spec = dir_ + "/cap.yaml";
  std::ofstream(spec) << VaddSpec(10, absl::StrCat(R"(  endpoint: scripted
  models: [{name: priced, prompt_price_per_1k: 0.001}]
  max_cost_usd: 0.002
)"));
  const int64_t id = cluster_->Submit(spec);
  ASSERT_GT(id, 0);
  v1::Campaign campaign = cluster_->WaitUntilDone(id, 240);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FINISHED);
  EXPECT_EQ(campaign.message(), "LLM cost cap reached ($0.0020 of $0.0020)");
  EXPECT_EQ(server.requests().size(), 2u);
  EXPECT_EQ(campaign.llm_requests(), 2);
  EXPECT_EQ(campaign.evaluations(), 3);  // the baseline and both paid-for candidates
  EXPECT_NEAR(campaign.llm_cost_usd(), 0.002, 1e-12);
}

TEST_F(LlmCampaign, AnEndpointThatKeepsFailingEndsTheCampaignWithTheReason) {
  int port;
  {
    ScriptedOpenAiServer gone({});
    ASSERT_TRUE(gone.Start());
    port = gone.port();
  }  // nothing listens there any more
  ASSERT_NO_FATAL_FAILURE(StartCluster(
      absl::StrCat("endpoints:\n  down: {base_url: 'http://127.0.0.1:", port, "'}\n")));
  const std::string spec = dir_ + "/down.yaml";
  std::ofstream(spec) << VaddSpec(10, absl::StrCat(R"(  endpoint: down
  models: [m]
  max_retries: 0
  max_concurrency: 1
)"));
  const int64_t id = cluster_->Submit(spec);
  ASSERT_GT(id, 0);
  v1::Campaign campaign = cluster_->WaitUntilDone(id, 120);
  EXPECT_EQ(campaign.state(), v1::CAMPAIGN_FAILED);
  EXPECT_EQ(campaign.message(), "the LLM endpoint failed 5 requests in a row (see the campaign's events)");
  EXPECT_EQ(campaign.llm_failed_requests(), 5);
  EXPECT_EQ(campaign.evaluations(), 1);  // the baseline only
}

// The spec as the coordinator receives it, built by hand: a client need
// not use the CLI (which refuses base_url and api_key_env itself).
v1::CampaignSpec LlmSpecProto(const v1::LlmSettings& llm) {
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  };
  v1::CampaignSpec spec;
  spec.set_name("llm-attack");
  spec.mutable_problem()->set_definition_json(read(kSource + "/tests/data/vadd/definition.json"));
  spec.mutable_problem()->set_workload_jsonl(read(kSource + "/tests/data/vadd/workload.jsonl"));
  for (const char* file : {"solution.json", "kernel.cc"})
    (*spec.mutable_baseline()->mutable_files())[file] =
        read(kSource + "/tests/data/vadd/good/" + file);
  spec.set_proposer(v1::PROPOSER_LLM);
  *spec.mutable_llm() = llm;
  return spec;
}

TEST_F(LlmCampaign, AnUnknownEndpointIsRefusedAtSubmission) {
  ScriptedOpenAiServer server({});
  ASSERT_TRUE(server.Start());
  ASSERT_NO_FATAL_FAILURE(StartCluster(server));
  const std::string spec = dir_ + "/unknown.yaml";
  std::ofstream(spec) << VaddSpec(3, "  endpoint: elsewhere\n  models: [m]\n");
  auto submitted = RunCommand({kRatchet, "submit", spec, "--coordinator=" + cluster_->address()});
  EXPECT_NE(submitted.exit_code, 0);
  EXPECT_NE(submitted.err.find("llm.endpoint: no LLM endpoint named 'elsewhere' on this "
                               "coordinator (configured: scripted)"),
            std::string::npos)
      << submitted.err;

  v1::LlmSettings llm;
  llm.set_endpoint("elsewhere");
  grpc::ClientContext ctx;
  v1::SubmitCampaignRequest req;
  *req.mutable_spec() = LlmSpecProto(llm);
  v1::Campaign campaign;
  grpc::Status s = cluster_->stub()->SubmitCampaign(&ctx, req, &campaign);
  EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
  EXPECT_TRUE(server.requests().empty());
}

// Issue 12: before endpoints, a submitter could send any of the
// coordinator's environment variables (its database password...) as a
// bearer token to a listener of their own, and read the reply in the events.
TEST_F(LlmCampaign, ASpecCannotMakeTheCoordinatorSendItsEnvironmentAnywhere) {
  ScriptedOpenAiServer listener({}, [](const testing::RecordedRequest&) {
    return ScriptedResponse::Answer("IDEA: thanks\n");
  });
  ASSERT_TRUE(listener.Start());
  ::setenv("PGPASSWORD", "hunter2", 1);  // the coordinator inherits it
  ASSERT_NO_FATAL_FAILURE(StartCluster(listener));
  ::unsetenv("PGPASSWORD");

  v1::LlmSettings attack;
  attack.set_base_url(listener.base_url());
  attack.set_api_key_env("PGPASSWORD");
  attack.add_models()->set_name("m");
  for (const char* endpoint : {"", "scripted"}) {  // with a real endpoint named, too
    attack.set_endpoint(endpoint);
    grpc::ClientContext ctx;
    v1::SubmitCampaignRequest req;
    *req.mutable_spec() = LlmSpecProto(attack);
    v1::Campaign campaign;
    grpc::Status s = cluster_->stub()->SubmitCampaign(&ctx, req, &campaign);
    EXPECT_EQ(s.error_code(), grpc::INVALID_ARGUMENT) << s.error_message();
    EXPECT_NE(s.error_message().find("not allowed in a campaign spec; name an LLM endpoint"),
              std::string::npos)
        << s.error_message();
  }
  // And through the CLI, which refuses it before sending.
  const std::string spec = dir_ + "/attack.yaml";
  std::ofstream(spec) << VaddSpec(3, absl::StrCat("  base_url: ", listener.base_url(),
                                                  "\n  api_key_env: PGPASSWORD\n  models: [m]\n"));
  auto submitted = RunCommand({kRatchet, "submit", spec, "--coordinator=" + cluster_->address()});
  EXPECT_NE(submitted.exit_code, 0);
  EXPECT_NE(submitted.err.find("llm.base_url: not allowed in a campaign spec"), std::string::npos)
      << submitted.err;

  std::this_thread::sleep_for(std::chrono::seconds(1));  // a research tick or more
  EXPECT_TRUE(listener.requests().empty());
  grpc::ClientContext ctx;
  v1::ListCampaignsResponse list;
  ASSERT_TRUE(cluster_->stub()->ListCampaigns(&ctx, v1::ListCampaignsRequest(), &list).ok());
  EXPECT_EQ(list.campaigns_size(), 0);
}

TEST_F(LlmCampaign, ACoordinatorWithABadEndpointsFileDoesNotStart) {
  const std::string file = dir_ + "/bad-endpoints.yaml";
  std::ofstream(file) << "endpoints:\n  a: {base_url: 'http://127.0.0.1:1'}\n"
                         "  a: {base_url: 'http://127.0.0.1:2'}\n";
  auto run = RunCommand({kRatchet, "coordinator", "--listen=127.0.0.1:0",
                         "--db=" + dir_ + "/bad.db", "--llm-endpoints=" + file});
  EXPECT_EQ(run.exit_code, 1);
  EXPECT_NE(run.err.find(file + ":3: endpoints.a: duplicate endpoint name"), std::string::npos)
      << run.err;
}

}  // namespace
}  // namespace ratchet
