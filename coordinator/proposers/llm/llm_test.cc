// The chat client and the llm proposer against a real HTTP server on
// loopback (tests/support/scripted_openai_server.h) that replays a script.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/proposers/llm/chat_client.h"
#include "coordinator/proposers/llm/endpoints.h"
#include "coordinator/proposers/llm/llm_proposer.h"
#include "coordinator/proposers/llm/prompt.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/scripted_openai_server.h"

namespace ratchet::llm {
namespace {

using testing::ScriptedOpenAiServer;
using testing::ScriptedResponse;

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

ChatClientOptions FastOptions(const ScriptedOpenAiServer& server) {
  ChatClientOptions o;
  o.base_url = server.base_url();
  o.timeout_seconds = 5;
  o.max_retries = 3;
  o.initial_backoff_seconds = 0.05;
  o.max_backoff_seconds = 0.2;
  return o;
}

ChatRequest Hello() {
  ChatRequest r;
  r.model = "m1";
  r.temperature = 0.25;
  r.max_tokens = 123;
  r.messages = {{"system", "be brief"}, {"user", "hello"}};
  return r;
}

TEST(ChatClient, SendsAnOpenAiRequestAndParsesTheAnswer) {
  ScriptedOpenAiServer server({ScriptedResponse::Answer("hi there", 11, 3)});
  ASSERT_TRUE(server.Start());
  ChatClientOptions options = FastOptions(server);
  options.api_key = "sk-test";
  options.base_url = server.base_url() + "/v1/";  // a trailing /v1 is accepted too
  ChatClient client(options, nullptr);
  CallStats stats;
  auto r = client.Complete(Hello(), nullptr, &stats);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->content, "hi there");
  EXPECT_EQ(r->prompt_tokens, 11);
  EXPECT_EQ(r->completion_tokens, 3);
  EXPECT_TRUE(r->usage_reported);
  EXPECT_EQ(r->finish_reason, "stop");
  EXPECT_EQ(stats.attempts, 1);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "POST");
  EXPECT_EQ(requests[0].path, "/v1/chat/completions");
  EXPECT_EQ(requests[0].headers["authorization"], "Bearer sk-test");
  auto body = nlohmann::json::parse(requests[0].body);
  EXPECT_EQ(body["model"], "m1");
  EXPECT_DOUBLE_EQ(body["temperature"].get<double>(), 0.25);
  EXPECT_EQ(body["max_tokens"], 123);
  ASSERT_EQ(body["messages"].size(), 2u);
  EXPECT_EQ(body["messages"][1]["role"], "user");
  EXPECT_EQ(body["messages"][1]["content"], "hello");
}

TEST(ChatClient, HonoursRetryAfterOn429) {
  ScriptedOpenAiServer server({ScriptedResponse::Error(429, "slow down", 1),
                               ScriptedResponse::Answer("ok")});
  ASSERT_TRUE(server.Start());
  ChatClient client(FastOptions(server), nullptr);
  CallStats stats;
  auto start = std::chrono::steady_clock::now();
  auto r = client.Complete(Hello(), nullptr, &stats);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->content, "ok");
  EXPECT_EQ(stats.attempts, 2);
  ASSERT_EQ(stats.retry_reasons.size(), 1u);
  EXPECT_EQ(stats.retry_reasons[0], "HTTP 429, Retry-After 1s");
  // The backoff alone is at most 0.2 s here; the server asked for 1 s.
  EXPECT_GE(SecondsSince(start), 0.95);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_GE(requests[1].unix_ms - requests[0].unix_ms, 950);
}

TEST(ChatClient, RetriesServerErrorsAndTimeouts) {
  ScriptedOpenAiServer server({ScriptedResponse::Error(500, "boom"),
                               ScriptedResponse::Error(503, "overloaded"),
                               ScriptedResponse::Hang(3000), ScriptedResponse::Answer("done")});
  ASSERT_TRUE(server.Start());
  ChatClientOptions options = FastOptions(server);
  options.timeout_seconds = 0.5;
  ChatClient client(options, nullptr);
  CallStats stats;
  auto start = std::chrono::steady_clock::now();
  auto r = client.Complete(Hello(), nullptr, &stats);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->content, "done");
  EXPECT_EQ(stats.attempts, 4);
  EXPECT_EQ(stats.retry_reasons,
            (std::vector<std::string>{"HTTP 500", "HTTP 503", "timeout"}));
  EXPECT_LT(SecondsSince(start), 2.5);  // the hang was cut at the timeout
}

TEST(ChatClient, GivesUpAfterMaxRetriesWithStatusAndBody) {
  ScriptedOpenAiServer server({}, [](const testing::RecordedRequest&) {
    return ScriptedResponse::Error(502, "upstream is down");
  });
  ASSERT_TRUE(server.Start());
  ChatClientOptions options = FastOptions(server);
  options.max_retries = 2;
  ChatClient client(options, nullptr);
  CallStats stats;
  auto r = client.Complete(Hello(), nullptr, &stats);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("HTTP 502 from " + server.base_url()), std::string::npos)
      << r.status();
  EXPECT_NE(r.status().message().find("upstream is down"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("after 3 attempts"), std::string::npos) << r.status();
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(ChatClient, ClientErrorsAreNotRetried) {
  ScriptedOpenAiServer server({ScriptedResponse::Error(401, "bad key")});
  ASSERT_TRUE(server.Start());
  ChatClient client(FastOptions(server), nullptr);
  auto r = client.Complete(Hello());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsPermissionDenied(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("HTTP 401"), std::string::npos);
  EXPECT_NE(r.status().message().find("bad key"), std::string::npos);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(ChatClient, TooLongRetryAfterIsAnError) {
  ScriptedOpenAiServer server({ScriptedResponse::Error(429, "come back tomorrow", 86400)});
  ASSERT_TRUE(server.Start());
  ChatClient client(FastOptions(server), nullptr);
  auto r = client.Complete(Hello());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(r.status())) << r.status();
  EXPECT_NE(r.status().message().find("Retry-After 86400 s is too long"), std::string::npos);
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(ChatClient, ConnectionRefusedIsRetriedThenUnavailable) {
  int port;
  {
    ScriptedOpenAiServer gone({});
    ASSERT_TRUE(gone.Start());
    port = gone.port();
  }  // nothing listens there now
  ChatClientOptions options;
  options.base_url = "http://127.0.0.1:" + std::to_string(port);
  options.max_retries = 1;
  options.initial_backoff_seconds = 0.01;
  ChatClient client(options, nullptr);
  CallStats stats;
  auto r = client.Complete(Hello(), nullptr, &stats);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::IsUnavailable(r.status())) << r.status();
  EXPECT_EQ(stats.attempts, 2);
}

TEST(ChatClient, A200ThatIsNoCompletionIsDataLoss) {
  ScriptedResponse not_json;
  not_json.body = "<html>proxy login</html>";
  ScriptedResponse no_content;
  no_content.body = R"({"choices":[{"message":{"role":"assistant","content":null}}]})";
  ScriptedOpenAiServer server({not_json, no_content});
  ASSERT_TRUE(server.Start());
  ChatClient client(FastOptions(server), nullptr);
  auto a = client.Complete(Hello());
  EXPECT_TRUE(absl::IsDataLoss(a.status())) << a.status();
  auto b = client.Complete(Hello());
  EXPECT_TRUE(absl::IsDataLoss(b.status())) << b.status();
  EXPECT_NE(b.status().message().find("content is not a string"), std::string::npos);
}

TEST(ChatClient, ConcurrencyLimitIsSharedAcrossClients) {
  ScriptedOpenAiServer server({}, [](const testing::RecordedRequest&) {
    ScriptedResponse r = ScriptedResponse::Answer("x");
    r.hang_ms = 300;
    return r;
  });
  ASSERT_TRUE(server.Start());
  auto limit = std::make_shared<ConcurrencyLimit>(2);
  ChatClient a(FastOptions(server), limit), b(FastOptions(server), limit);
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] { EXPECT_TRUE((i % 2 ? a : b).Complete(Hello()).ok()); });
  for (auto& t : threads) t.join();
  // Four 300 ms requests, two at a time.
  EXPECT_GE(SecondsSince(start), 0.58);
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 4u);
  std::vector<int64_t> at;
  for (const auto& r : requests) at.push_back(r.unix_ms);
  std::sort(at.begin(), at.end());
  EXPECT_GE(at[2] - at[0], 250);  // the third waited for a slot
}

TEST(ChatClient, CancellationStopsAHangingRequest) {
  ScriptedOpenAiServer server({ScriptedResponse::Hang(5000)});
  ASSERT_TRUE(server.Start());
  ChatClient client(FastOptions(server), nullptr);
  std::atomic<bool> cancelled{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    cancelled = true;
  });
  auto start = std::chrono::steady_clock::now();
  auto r = client.Complete(Hello(), &cancelled);
  canceller.join();
  EXPECT_TRUE(absl::IsCancelled(r.status())) << r.status();
  EXPECT_LT(SecondsSince(start), 2.0);
}

// ---------------------------------------------------------------------------
// The proposer.

constexpr char kKernel[] =
    "#include <ratchet/kernel_abi.h>\n"
    "extern \"C\" int ratchet_run(const ratchet_tensor* in, int32_t n_in,\n"
    "                             ratchet_tensor* out, int32_t n_out) {\n"
    "  for (int64_t i = 0; i < in[0].shape[0]; ++i) sum(i);\n"
    "  return 0;\n"
    "}\n";

struct Fixture {
  Fixture() {
    (*parent.mutable_solution()->mutable_files())["solution.json"] =
        R"({"name":"p","knobs":{"VEC":{"choices":[1,8]}}})";
    (*parent.mutable_solution()->mutable_files())["kernel.cc"] = kKernel;
    (*parent.mutable_solution()->mutable_knobs())["VEC"] = "1";
    parent.set_id(7);
    parent.set_thread_id(1);
    parent.set_score(0.25);
    parent.set_description("baseline");
    space = *proposers::ParseKnobSpace(parent.solution());
    problem.set_name("vadd_f32");
    problem.set_definition_json(R"({"name": "vadd_f32", "reference": "def run(a, b): return a + b"})");
    problem.set_workload_jsonl("{\"axes\": {\"n\": 1000}}\n");
    proposers::Attempt failed;
    failed.candidate.set_id(8);
    failed.candidate.set_description("[m] unrolled (source changed)");
    failed.candidate.set_status(v1::CANDIDATE_FAILED);
    failed.candidate.set_score(-1);
    failed.outcome = "compile_error";
    failed.message = "kernel.cc:4:40: error: 'sum' was not declared in this scope";
    attempts.push_back(failed);
    v1::Candidate other = parent;
    other.set_id(9);
    other.set_thread_id(2);
    other.set_score(0.5);
    other.set_description("[m] blocked loop (VEC 1→8)");
    (*other.mutable_solution()->mutable_knobs())["VEC"] = "8";
    inspirations.push_back(other);
    history = {parent, other};
    v1::Candidate child = other;
    child.set_id(10);
    child.set_parent_id(7);
    child.set_status(v1::CANDIDATE_EVALUATED);
    history.push_back(child);
  }
  proposers::ProposalContext Context() {
    proposers::ProposalContext ctx;
    ctx.parent = &parent;
    ctx.space = &space;
    ctx.history = &history;
    ctx.rng = &rng;
    ctx.problem = &problem;
    ctx.device = &device;
    ctx.recent_attempts = &attempts;
    ctx.inspirations = &inspirations;
    return ctx;
  }
  v1::Candidate parent;
  proposers::KnobSpace space;
  v1::Problem problem;
  std::string device = "cpu";
  std::vector<proposers::Attempt> attempts;
  std::vector<v1::Candidate> inspirations;
  std::vector<v1::Candidate> history;
  std::mt19937_64 rng{5};
};

// The operator's endpoints: "scripted" is the server, `extra` more of its
// settings (", api_key_file: ...").
absl::StatusOr<LlmEndpoints> EndpointsFor(const ScriptedOpenAiServer& server,
                                          const std::string& extra = "") {
  return LlmEndpoints::Parse(
      absl::StrCat("endpoints:\n  scripted: {base_url: '", server.base_url(), "'", extra, "}\n"),
      "/nonexistent/endpoints.yaml");
}

// The proposer for `settings`, with the endpoint "scripted" naming `server`.
absl::StatusOr<std::unique_ptr<LlmProposer>> Make(const v1::LlmSettings& settings,
                                                  const ScriptedOpenAiServer& server) {
  auto endpoints = EndpointsFor(server);
  if (!endpoints.ok()) return endpoints.status();
  return LlmProposer::Create(settings, &*endpoints);
}

v1::LlmSettings Settings(const ScriptedOpenAiServer&) {
  v1::LlmSettings s;
  s.set_endpoint("scripted");
  auto* m = s.add_models();
  m->set_name("m");
  m->set_weight(1);
  m->set_prompt_price_per_1k(0.5);
  m->set_completion_price_per_1k(2.0);
  s.set_max_retries(1);
  s.set_timeout_seconds(5);
  return s;
}

const char kGoodAnswer[] =
    "IDEA: declare the helper and vectorise\n"
    "<<<<<<< SEARCH kernel.cc\n"
    "  for (int64_t i = 0; i < in[0].shape[0]; ++i) sum(i);\n"
    "=======\n"
    "  for (int64_t i = 0; i < in[0].shape[0]; ++i) (void)i;\n"
    ">>>>>>> REPLACE\n"
    "<<<<<<< KNOBS\nVEC=8\n>>>>>>> END\n";

TEST(LlmProposer, GoodAnswerBecomesACandidateWithItsCost) {
  ScriptedOpenAiServer server({ScriptedResponse::Answer(kGoodAnswer, 2000, 500)});
  ASSERT_TRUE(server.Start());
  auto proposer = Make(Settings(server), server);
  ASSERT_TRUE(proposer.ok()) << proposer.status();
  EXPECT_TRUE((*proposer)->slow());
  Fixture f;
  auto p = (*proposer)->Propose(f.Context());
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_TRUE(p->answer.ok()) << p->answer;
  EXPECT_NE(p->solution.files().at("kernel.cc").find("(void)i;"), std::string::npos);
  EXPECT_EQ(p->solution.knobs().at("VEC"), "8");
  EXPECT_EQ(p->description,
            "[m] declare the helper and vectorise (VEC 1\u21928, source changed)");
  EXPECT_EQ(p->usage.model, "m");
  EXPECT_EQ(p->usage.prompt_tokens, 2000);
  EXPECT_EQ(p->usage.completion_tokens, 500);
  EXPECT_DOUBLE_EQ(p->usage.cost_usd, 2.0 * 0.5 + 0.5 * 2.0);
  EXPECT_EQ(p->usage.requests, 1);
  EXPECT_EQ(p->merged_with, 0);

  // The prompt carries the problem, the parent, the failed attempt's
  // compiler error, lessons and the other thread's incumbent.
  auto body = nlohmann::json::parse(server.requests().at(0).body);
  const std::string system = body["messages"][0]["content"];
  const std::string user = body["messages"][1]["content"];
  EXPECT_NE(system.find("<<<<<<< SEARCH"), std::string::npos);
  EXPECT_NE(system.find("ratchet_run"), std::string::npos);
  for (const char* needle :
       {"## Problem: vadd_f32", "def run(a, b): return a + b", "{\"axes\": {\"n\": 1000}}",
        "## Current solution (#7, score 0.2500)", "for (int64_t i = 0;", "- VEC = 1; 1, 8",
        "#8 [m] unrolled (source changed) -> compile_error",
        "error: 'sum' was not declared in this scope", "## Lessons",
        "+100.0% vs parent: [m] blocked loop (VEC 1\u21928) (evaluated)",
        "### #9, score 0.5000", "Knobs: VEC=8"})
    EXPECT_NE(user.find(needle), std::string::npos) << needle << " not in:\n" << user;
}

TEST(LlmProposer, MalformedAnswerIsReportedWithItsCost) {
  ScriptedOpenAiServer server({ScriptedResponse::Answer(
      "<<<<<<< SEARCH kernel.cc\nnot in the file\n=======\nx\n>>>>>>> REPLACE\n", 100, 10,
      "length")});
  ASSERT_TRUE(server.Start());
  auto proposer = Make(Settings(server), server);
  ASSERT_TRUE(proposer.ok());
  Fixture f;
  auto p = (*proposer)->Propose(f.Context());
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(p->answer)) << p->answer;
  EXPECT_NE(p->answer.message().find("SEARCH text is not in kernel.cc"), std::string::npos);
  EXPECT_NE(p->answer.message().find("cut off at max_tokens"), std::string::npos);
  EXPECT_EQ(p->usage.requests, 1);
  EXPECT_EQ(p->usage.prompt_tokens, 100);
}

TEST(LlmProposer, EndpointFailureIsReportedNotFatal) {
  ScriptedOpenAiServer server({ScriptedResponse::Error(500, "a"), ScriptedResponse::Error(500, "b")});
  ASSERT_TRUE(server.Start());
  auto proposer = Make(Settings(server), server);  // max_retries 1
  ASSERT_TRUE(proposer.ok());
  Fixture f;
  auto p = (*proposer)->Propose(f.Context());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(absl::IsUnavailable(p->answer)) << p->answer;
  EXPECT_EQ(p->usage.failed_requests, 1);
  EXPECT_EQ(p->usage.retries, 1);
  EXPECT_EQ(p->usage.requests, 0);
  EXPECT_EQ(p->usage.cost_usd, 0);
}

TEST(LlmProposer, UsageIsEstimatedWhenTheServerReportsNone) {
  ScriptedResponse answer;
  answer.body = nlohmann::json({{"choices", {{{"message", {{"content", kGoodAnswer}}}}}}}).dump();
  ScriptedOpenAiServer server({answer});
  ASSERT_TRUE(server.Start());
  auto proposer = Make(Settings(server), server);
  Fixture f;
  auto p = (*proposer)->Propose(f.Context());
  ASSERT_TRUE(p.ok() && p->answer.ok());
  EXPECT_TRUE(p->usage.estimated);
  EXPECT_GT(p->usage.prompt_tokens, 100);
  EXPECT_GT(p->usage.cost_usd, 0);
}

TEST(LlmProposer, MergeOnScheduleAsksToCombineTwoIncumbents) {
  ScriptedOpenAiServer server({ScriptedResponse::Answer(kGoodAnswer)});
  ASSERT_TRUE(server.Start());
  v1::LlmSettings settings = Settings(server);
  settings.set_merge_every(3);
  auto proposer = Make(settings, server);
  Fixture f;
  proposers::ProposalContext ctx = f.Context();
  ctx.thread_proposals = 2;  // the third proposal of the thread merges
  auto p = (*proposer)->Propose(ctx);
  ASSERT_TRUE(p.ok() && p->answer.ok()) << p->answer;
  EXPECT_EQ(p->merged_with, 9);
  EXPECT_TRUE(absl::StartsWith(p->description, "merge with #9 [m]: ")) << p->description;
  auto body = nlohmann::json::parse(server.requests().at(0).body);
  const std::string user = body["messages"][1]["content"];
  EXPECT_NE(user.find("## Solution A (#7"), std::string::npos) << user;
  EXPECT_NE(user.find("## Solution B (#9"), std::string::npos) << user;
}

TEST(LlmProposer, ModelsAreDrawnByWeight) {
  ScriptedOpenAiServer server({}, [](const testing::RecordedRequest&) {
    return ScriptedResponse::Answer(kGoodAnswer);
  });
  ASSERT_TRUE(server.Start());
  v1::LlmSettings settings = Settings(server);
  settings.mutable_models(0)->set_weight(3);
  auto* small = settings.add_models();
  small->set_name("small");
  small->set_weight(1);
  auto proposer = Make(settings, server);
  Fixture f;
  std::map<std::string, int> used;
  for (int i = 0; i < 60; ++i) {
    auto p = (*proposer)->Propose(f.Context());
    ASSERT_TRUE(p.ok());
    used[p->usage.model]++;
  }
  int sent_small = 0;
  for (const auto& r : server.requests())
    sent_small += nlohmann::json::parse(r.body)["model"] == "small";
  EXPECT_EQ(sent_small, used["small"]);
  EXPECT_GT(used["m"], 2 * used["small"]);
  EXPECT_GT(used["small"], 3);
}

TEST(LlmProposer, ApiKeyComesFromTheOperatorsFileOrVariable) {
  ScriptedOpenAiServer server({}, [](const testing::RecordedRequest&) {
    return ScriptedResponse::Answer(kGoodAnswer);
  });
  ASSERT_TRUE(server.Start());
  char dir[] = "/tmp/ratchet-llm-key-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  const std::string key_file = std::string(dir) + "/key";
  std::ofstream(key_file) << "sk-from-file\n";
  auto from_file = EndpointsFor(server, ", api_key_file: " + key_file);
  ASSERT_TRUE(from_file.ok()) << from_file.status();
  ::setenv("RATCHET_LLM_TEST_KEY", "sk-from-env", 1);
  auto from_env = EndpointsFor(server, ", api_key_env: RATCHET_LLM_TEST_KEY");
  ASSERT_TRUE(from_env.ok()) << from_env.status();
  Fixture f;
  for (const LlmEndpoints* endpoints : {&*from_file, &*from_env}) {
    auto proposer = LlmProposer::Create(Settings(server), endpoints);
    ASSERT_TRUE(proposer.ok()) << proposer.status();
    ASSERT_TRUE((*proposer)->Propose(f.Context()).ok());
  }
  auto requests = server.requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].headers["authorization"], "Bearer sk-from-file");
  EXPECT_EQ(requests[1].headers["authorization"], "Bearer sk-from-env");
  // Without a key the server sees no Authorization header at all.
  auto proposer = Make(Settings(server), server);
  ASSERT_TRUE(proposer.ok());
  ASSERT_TRUE((*proposer)->Propose(f.Context()).ok());
  EXPECT_EQ(server.requests().at(2).headers.count("authorization"), 0u);
  std::remove(key_file.c_str());
  ::rmdir(dir);
}

// Issue 12: a spec must not make the coordinator send one of its secrets
// anywhere. Before endpoints, api_key_env: PGPASSWORD with base_url at a
// listener of the submitter's would have sent the database password there.
TEST(LlmProposer, ASpecCannotSendAnEnvironmentVariableAnywhere) {
  ScriptedOpenAiServer listener({}, [](const testing::RecordedRequest&) {
    return ScriptedResponse::Answer(kGoodAnswer);
  });
  ASSERT_TRUE(listener.Start());
  ::setenv("PGPASSWORD", "hunter2", 1);
  auto endpoints = EndpointsFor(listener);  // a real endpoint exists, too
  ASSERT_TRUE(endpoints.ok());
  v1::LlmSettings attack;
  attack.set_base_url(listener.base_url());
  attack.set_api_key_env("PGPASSWORD");
  attack.add_models()->set_name("m");
  for (const char* endpoint : {"", "scripted"}) {
    attack.set_endpoint(endpoint);
    auto proposer = LlmProposer::Create(attack, &*endpoints);
    ASSERT_FALSE(proposer.ok());
    EXPECT_TRUE(absl::IsInvalidArgument(proposer.status()));
    EXPECT_NE(proposer.status().message().find("llm.base_url: not allowed in a campaign spec"),
              std::string::npos)
        << proposer.status();
    EXPECT_EQ(proposer.status().message().find("hunter2"), std::string::npos);
  }
  attack.clear_base_url();
  auto key_only = LlmProposer::Create(attack, &*endpoints);
  ASSERT_FALSE(key_only.ok());
  EXPECT_NE(key_only.status().message().find("llm.api_key_env: not allowed"), std::string::npos)
      << key_only.status();
  EXPECT_TRUE(listener.requests().empty());
  ::unsetenv("PGPASSWORD");
}

TEST(LlmProposer, EndpointAndModelsAreResolvedAmongTheOperators) {
  ScriptedOpenAiServer server({}, [](const testing::RecordedRequest&) {
    return ScriptedResponse::Answer(kGoodAnswer);
  });
  ASSERT_TRUE(server.Start());
  auto endpoints = EndpointsFor(server, ", models: [m, big], model: big");
  ASSERT_TRUE(endpoints.ok()) << endpoints.status();

  v1::LlmSettings unknown = Settings(server);
  unknown.set_endpoint("elsewhere");
  auto p = LlmProposer::Create(unknown, &*endpoints);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
  EXPECT_EQ(p.status().message(),
            "llm.endpoint: no LLM endpoint named 'elsewhere' on this coordinator "
            "(configured: scripted)");
  p = LlmProposer::Create(Settings(server), nullptr);  // a coordinator without endpoints
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
  EXPECT_NE(p.status().message().find("this coordinator has none"), std::string::npos);

  v1::LlmSettings not_allowed = Settings(server);
  not_allowed.add_models()->set_name("gpt-9");
  p = LlmProposer::Create(not_allowed, &*endpoints);
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(p.status()));
  EXPECT_EQ(p.status().message(),
            "llm.models[1]: endpoint 'scripted' does not allow model 'gpt-9' (allowed: m, big)");

  // No models in the spec: the endpoint's default.
  v1::LlmSettings no_models = Settings(server);
  no_models.clear_models();
  p = LlmProposer::Create(no_models, &*endpoints);
  ASSERT_TRUE(p.ok()) << p.status();
  Fixture f;
  auto proposal = (*p)->Propose(f.Context());
  ASSERT_TRUE(proposal.ok() && proposal->answer.ok());
  EXPECT_EQ(proposal->usage.model, "big");
  EXPECT_EQ(nlohmann::json::parse(server.requests().at(0).body)["model"], "big");
  EXPECT_EQ(server.requests().at(0).path, "/v1/chat/completions");
}

TEST(LlmProposer, WhatIsLoggedOfAnAnswerIsBoundedAndClean) {
  // A malformed answer whose quoted line is long and full of terminal
  // escapes, and a good one whose idea is.
  const std::string escapes = "\x1b]0;owned\x07\x1b[2J\r\xc2\x9b" "31m";
  ScriptedResponse raw_error;  // a body as it came, not JSON-escaped
  raw_error.status = 400;
  raw_error.body = absl::StrCat("bad", escapes, "\xff\xfe", std::string(5000, 'C'));
  ScriptedOpenAiServer server(
      {ScriptedResponse::Answer(absl::StrCat("<<<<<<< SEARCH a b ", escapes,
                                             std::string(5000, 'A'), "\n")),
       ScriptedResponse::Answer(absl::StrCat("IDEA: fast", escapes, std::string(5000, 'B'),
                                             "\n<<<<<<< KNOBS\nVEC=8\n>>>>>>> END\n")),
       raw_error});
  ASSERT_TRUE(server.Start());
  v1::LlmSettings settings = Settings(server);
  settings.set_max_retries(0);
  auto proposer = Make(settings, server);
  ASSERT_TRUE(proposer.ok()) << proposer.status();
  Fixture f;
  auto clean = [](const std::string& text) {
    for (unsigned char c : text)
      if (c < 0x20 || c == 0x7f || c == 0xff || c == 0xfe) return false;
    return text.find("\xc2\x9b") == std::string::npos;
  };
  auto malformed = (*proposer)->Propose(f.Context());
  ASSERT_TRUE(malformed.ok());
  const std::string m(malformed->answer.message());
  EXPECT_TRUE(absl::IsInvalidArgument(malformed->answer));
  EXPECT_NE(m.find("needs exactly one file name"), std::string::npos) << m;
  EXPECT_LE(m.size(), 303u);
  EXPECT_TRUE(clean(m)) << m;
  auto good = (*proposer)->Propose(f.Context());
  ASSERT_TRUE(good.ok() && good->answer.ok()) << good->answer;
  EXPECT_LE(good->description.size(), 260u) << good->description;
  EXPECT_TRUE(clean(good->description)) << good->description;
  EXPECT_NE(good->description.find("fast ]0;owned"), std::string::npos) << good->description;
  auto failed = (*proposer)->Propose(f.Context());
  ASSERT_TRUE(failed.ok());
  const std::string e(failed->answer.message());
  EXPECT_NE(e.find("HTTP 400 from"), std::string::npos) << e;
  EXPECT_LE(e.size(), 303u);
  EXPECT_TRUE(clean(e)) << e;
}

// ---------------------------------------------------------------------------
// The operator's endpoints file.

class EndpointsFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/ratchet-endpoints-XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr);
    dir_ = dir;
    std::ofstream(dir_ + "/openai.key") << "  sk-openai-123\n\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  absl::StatusOr<LlmEndpoints> Load(const std::string& text) {
    std::ofstream(dir_ + "/endpoints.yaml") << text;
    return LlmEndpoints::Load(dir_ + "/endpoints.yaml");
  }
  std::string Error(const std::string& text) {
    auto e = Load(text);
    EXPECT_FALSE(e.ok()) << text;
    EXPECT_TRUE(e.ok() || absl::IsInvalidArgument(e.status())) << e.status();
    return e.ok() ? "" : std::string(e.status().message());
  }
  std::string dir_;
};

TEST_F(EndpointsFile, AGoodFileResolvesNamesModelsAndKeys) {
  ::setenv("RATCHET_TEST_ENDPOINT_KEY", "sk-env-456", 1);
  auto e = Load(R"(# the operator's
endpoints:
  local-vllm: {base_url: "http://127.0.0.1:8000", model: "qwen2.5-coder"}   # no key
  openai: {base_url: "https://api.openai.com", api_key_file: openai.key, models: ["gpt-4.1", "gpt-4.1-mini"]}
  other:
    base_url: https://llm.example.com/v1
    api_key_env: RATCHET_TEST_ENDPOINT_KEY
)");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->names(), (std::vector<std::string>{"local-vllm", "openai", "other"}));
  auto local = e->Resolve("local-vllm", "");
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_EQ(local->base_url, "http://127.0.0.1:8000");
  EXPECT_EQ(local->api_key, "");
  EXPECT_EQ(local->model, "qwen2.5-coder");
  // `model` alone is the only model allowed there.
  EXPECT_TRUE(absl::IsPermissionDenied(e->Resolve("local-vllm", "llama").status()));
  auto openai = e->Resolve("openai", "gpt-4.1-mini");
  ASSERT_TRUE(openai.ok()) << openai.status();
  EXPECT_EQ(openai->api_key, "sk-openai-123");  // relative to the file, whitespace trimmed
  EXPECT_EQ(openai->model, "gpt-4.1-mini");
  auto denied = e->Resolve("openai", "o3");
  EXPECT_TRUE(absl::IsPermissionDenied(denied.status())) << denied.status();
  EXPECT_EQ(denied.status().message(),
            "endpoint 'openai' does not allow model 'o3' (allowed: gpt-4.1, gpt-4.1-mini)");
  EXPECT_TRUE(absl::IsInvalidArgument(e->Resolve("openai", "").status()));  // no default
  auto other = e->Resolve("other", "anything");  // no list: any model
  ASSERT_TRUE(other.ok()) << other.status();
  EXPECT_EQ(other->api_key, "sk-env-456");
  auto unknown = e->Resolve("nope", "m");
  EXPECT_TRUE(absl::IsNotFound(unknown.status()));
  EXPECT_EQ(unknown.status().message(),
            "no LLM endpoint named 'nope' on this coordinator (configured: local-vllm, openai, "
            "other)");
  EXPECT_TRUE(absl::IsNotFound(LlmEndpoints().Resolve("local-vllm", "").status()));

  // The same as JSON.
  auto json = Load(R"({"endpoints": {"local": {"base_url": "http://127.0.0.1:1", "models": ["a"]}}})");
  ASSERT_TRUE(json.ok()) << json.status();
  EXPECT_EQ(json->Resolve("local", "a")->base_url, "http://127.0.0.1:1");
}

TEST_F(EndpointsFile, MistakesAreNamedWithTheFileLineAndKey) {
  const std::string file = dir_ + "/endpoints.yaml";
  ::unsetenv("RATCHET_TEST_ENDPOINT_KEY_UNSET");
  for (const auto& [text, expected] : std::vector<std::pair<std::string, std::string>>{
           {"endpoints:\n  a: {base_url: 'http://h'}\n  a: {base_url: 'http://i'}\n",
            file + ":3: endpoints.a: duplicate endpoint name"},
           {"endpoints:\n  a: {base_url: 'http://h', api_key_file: missing.key}\n",
            file + ":2: endpoints.a.api_key_file: cannot read " + dir_ +
                "/missing.key: No such file or directory"},
           {"endpoints:\n  a: {base_url: 'http://h', api_key_file: /dev/null}\n",
            "endpoints.a.api_key_file: /dev/null is empty"},
           {"endpoints:\n  a: {base_url: 'http://h', timeout: 3}\n",
            file + ":2: endpoints.a.timeout: unknown key (known: base_url, api_key_file, "
                   "api_key_env, model, models)"},
           {"endpoints:\n  a: {base_url: 'http://h'}\nproxies: {}\n",
            file + ":3: proxies: unknown key (known: endpoints)"},
           {"endpoints:\n  a: {base_url: 'http://h', api_key: sk-123}\n",
            "endpoints.a.api_key: a key is not written in this file"},
           {"endpoints:\n  a: {base_url: 'http://h', api_key_env: RATCHET_TEST_ENDPOINT_KEY_UNSET}\n",
            "endpoints.a.api_key_env: the environment variable RATCHET_TEST_ENDPOINT_KEY_UNSET "
            "is not set where the coordinator runs"},
           {"endpoints:\n  a: {base_url: 'http://h', api_key_env: X, api_key_file: k}\n",
            "endpoints.a: give api_key_file or api_key_env, not both"},
           {"endpoints:\n  a: {model: m}\n", "endpoints.a.base_url: missing"},
           {"endpoints:\n  a: {base_url: 'ftp://h'}\n",
            "endpoints.a.base_url: must be an http:// or https:// URL, got 'ftp://h'"},
           {"endpoints:\n  a: {base_url: 'http://u:p@h:1/v1'}\n",
            "endpoints.a.base_url: must not hold credentials"},
           {"endpoints:\n  a: {base_url: 'http://h', models: [x], model: y}\n",
            "endpoints.a.model: 'y' is not one of models"},
           {"endpoints:\n  a: {base_url: 'http://h', models: []}\n",
            "endpoints.a.models: expected a non-empty list"},
           {"endpoints:\n  'a b': {base_url: 'http://h'}\n",
            "endpoints.a b: 'a b' is not a name (letters, digits"},
           {"endpoints: [a]\n", "endpoints: expected a map"},
           {"{}\n", "endpoints: missing"},
           {"endpoints: {a: {base_url: 'http://h'\n", file + ":2: not valid YAML or JSON"},
       }) {
    const std::string error = Error(text);
    EXPECT_NE(error.find(expected), std::string::npos) << text << "\ngave: " << error;
  }
  // A key that would add a header of its own.
  std::ofstream(dir_ + "/two-lines.key") << "sk-1\nX-Injected: yes\n";
  EXPECT_NE(Error("endpoints:\n  a: {base_url: 'http://h', api_key_file: two-lines.key}\n")
                .find("holds more than one word"),
            std::string::npos);
  auto missing = LlmEndpoints::Load(dir_ + "/no-such-file.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot read LLM endpoints file " + dir_ +
                                            "/no-such-file.yaml"),
            std::string::npos);
}

TEST(ForLog, KeepsUtf8AndBoundsTheLengthAtACharacter) {
  EXPECT_EQ(ForLog("plain", 100), "plain");
  EXPECT_EQ(ForLog("a\nb\tc\x1b[0m", 100), "a b c [0m");
  EXPECT_EQ(ForLog("VEC 1\u21928 caf\u00e9", 100), "VEC 1\u21928 caf\u00e9");
  EXPECT_EQ(ForLog("\xc0\xaf\xed\xa0\x80x\xe2\x80\xaey", 100), "?????x y");  // overlong, surrogate, RLO
  EXPECT_EQ(ForLog("ab\u00e9", 3), "ab...");  // no half of a character
  EXPECT_EQ(ForLog(std::string(10, 'x'), 4), "xxxx...");
}

// ---------------------------------------------------------------------------
// Stored lessons in the prompt.

v1::Lesson KnobLesson(int64_t campaign_id, int64_t candidate_id, const std::string& problem,
                      const std::string& hardware, double effect,
                      const std::string& outcome = "ok") {
  v1::Lesson l;
  l.set_campaign_id(campaign_id);
  l.set_candidate_id(candidate_id);
  l.set_problem(problem);
  l.set_op_type("vadd");
  l.set_hardware(hardware);
  l.set_knob("VEC");
  l.set_from_value("1");
  l.set_to_value("8");
  l.set_effect(effect);
  l.set_outcome(outcome);
  return l;
}

v1::Lesson IdeaLesson(int64_t candidate_id, const std::string& idea, double effect) {
  v1::Lesson l = KnobLesson(2, candidate_id, "vadd_f32_long", "cuda", effect);
  l.clear_knob();
  l.clear_from_value();
  l.clear_to_value();
  l.set_idea(idea);
  return l;
}

// The experience section of the proposal prompt: its list items.
std::vector<std::string> ExperienceLines(const proposers::ProposalContext& ctx,
                                         const PromptLimits& limits = {}) {
  const std::string user = BuildProposalPrompt(ctx, limits).at(1).content;
  std::vector<std::string> lines;
  size_t at = user.find("## Experience");
  if (at == std::string::npos) return lines;
  const size_t end = std::min(user.find("\n## ", at + 1), user.size());
  for (at = user.find("\n- ", at); at < end; at = user.find("\n- ", at + 1))
    lines.push_back(user.substr(at + 3, user.find('\n', at + 1) - at - 3));
  return lines;
}

TEST(Prompt, OtherCampaignsLessonsAreSummarisedWithWhereTheyComeFrom) {
  Fixture f;
  f.parent.set_campaign_id(1);
  for (auto& c : f.history) c.set_campaign_id(1);
  std::vector<v1::Lesson> lessons = {
      // Campaign 2, another shape on other hardware: one move, three tries.
      KnobLesson(2, 101, "vadd_f32_long", "cuda", 0.4),
      KnobLesson(2, 102, "vadd_f32_long", "cuda", 0.6),
      KnobLesson(2, 103, "vadd_f32_long", "cuda", -1, "compile_error"),
      // This campaign's lesson about #10, which "Lessons from this campaign"
      // lists already: not counted again.
      KnobLesson(1, 10, "vadd_f32", "cpu", 1.0),
      // An idea that never worked.
      IdeaLesson(104, "unroll by 64", -1),
  };
  lessons.back().set_outcome("wrong_answer");
  proposers::ProposalContext ctx = f.Context();
  EXPECT_TRUE(ExperienceLines(ctx).empty());  // no stored lessons, no section
  ctx.lessons = &lessons;
  const std::string user = BuildProposalPrompt(ctx).at(1).content;
  EXPECT_NE(user.find("+100.0% vs parent: [m] blocked loop (VEC 1\u21928) (evaluated)"),
            std::string::npos)
      << user;
  EXPECT_EQ(ExperienceLines(ctx),
            (std::vector<std::string>{
                "VEC 1\u21928: +50.0% mean over 2 tries that worked; failed 1 (compile_error 1) "
                "[vadd_f32_long on cuda]",
                "idea \"unroll by 64\": failed (wrong_answer 1) "
                "[vadd_f32_long on cuda]"}))
      << user;

  // The same move in this campaign, on a candidate no longer listed, joins
  // the group with its source named; a verdict is counted.
  lessons.push_back(KnobLesson(1, 3, "vadd_f32", "cpu", 0.5));
  lessons.back().set_verdict("accepted");
  EXPECT_EQ(ExperienceLines(ctx).at(0),
            "VEC 1\u21928: +50.0% mean over 3 tries that worked; failed 1 (compile_error 1); "
            "verdicts accepted 1 [vadd_f32_long on cuda, this campaign]");
  // The merge prompt carries the same section.
  const std::string merge = BuildMergePrompt(ctx, f.inspirations[0]).at(1).content;
  EXPECT_NE(merge.find("[vadd_f32_long on cuda, this campaign]"), std::string::npos) << merge;
}

TEST(Prompt, ExperienceKeepsTheBestAndTheWorstWithinTheLimit) {
  Fixture f;
  std::vector<v1::Lesson> lessons;
  // 40 ideas, idea i with effect (i - 10) / 10: -100% (a crash) to +290%.
  for (int i = 0; i < 40; ++i)
    lessons.push_back(
        IdeaLesson(200 + i, absl::StrCat("idea-", i, ":", std::string(i, 'x')), (i - 10) / 10.0));
  lessons[0].set_outcome("crash");
  proposers::ProposalContext ctx = f.Context();
  ctx.lessons = &lessons;
  PromptLimits limits;
  limits.max_lesson_groups = 6;
  limits.max_idea_chars = 12;
  std::vector<std::string> lines = ExperienceLines(ctx, limits);
  // Four best, a line for what was left out, the two worst.
  ASSERT_EQ(lines.size(), 7u) << absl::StrJoin(lines, "\n");
  EXPECT_EQ(lines[0], "idea \"idea-39:xxxx...\": +290.0% mean over 1 try that worked "
                      "[vadd_f32_long on cuda]");
  EXPECT_TRUE(absl::StartsWith(lines[3], "idea \"idea-36:")) << lines[3];
  EXPECT_EQ(lines[4], "[... 34 more kinds of change, ranked in between, left out]");
  EXPECT_TRUE(absl::StartsWith(lines[5], "idea \"idea-1:x\": -90.0%")) << lines[5];
  EXPECT_EQ(lines[6], "idea \"idea-0:\": failed (crash 1) [vadd_f32_long on cuda]");
}

TEST(LlmProposer, BadSettingsAreRejected) {
  v1::LlmSettings s;
  EXPECT_NE(ValidateLlmSettings(s).message().find("llm.endpoint: missing"), std::string::npos);
  s.set_endpoint("local");
  EXPECT_TRUE(ValidateLlmSettings(s).ok());  // no models: the endpoint's default
  s.add_models()->set_name("m");
  EXPECT_TRUE(ValidateLlmSettings(s).ok());
  s.set_base_url("http://x");
  EXPECT_NE(ValidateLlmSettings(s).message().find(
                "llm.base_url: not allowed in a campaign spec; name an LLM endpoint configured "
                "by the coordinator's operator"),
            std::string::npos)
      << ValidateLlmSettings(s);
  s.clear_base_url();
  s.set_api_key_env("HOME");
  EXPECT_NE(ValidateLlmSettings(s).message().find("llm.api_key_env: not allowed"),
            std::string::npos);
  s.clear_api_key_env();
  s.set_temperature(5);
  EXPECT_FALSE(ValidateLlmSettings(s).ok());
  s.set_temperature(0.5);
  s.set_max_cost_usd(-1);
  EXPECT_FALSE(ValidateLlmSettings(s).ok());
}

}  // namespace
}  // namespace ratchet::llm
