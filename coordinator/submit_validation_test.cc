// Issue 12's absurd specs, submitted as an attacker would: over real gRPC to
// a real `ratchet coordinator` on loopback. Each comes back INVALID_ARGUMENT
// with the validator's message, and nothing is queued.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "tests/support/process.h"

namespace ratchet {
namespace {

using ::testing::HasSubstr;

class SubmitValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("submit-validation");
    const std::string port_file = dir_ + "/port";
    coordinator_ = std::make_unique<testing::Process>(
        std::vector<std::string>{RATCHET_BIN, "coordinator", "--listen=127.0.0.1:0",
                                 "--db=" + dir_ + "/ratchet.db", "--port-file=" + port_file},
        dir_ + "/coordinator.log");
    ASSERT_TRUE(testing::WaitForFile(port_file, 60'000))
        << testing::ReadFile(dir_ + "/coordinator.log");
    int port = 0;
    ASSERT_TRUE(absl::SimpleAtoi(absl::StripAsciiWhitespace(testing::ReadFile(port_file)), &port));
    stub_ = v1::CoordinatorService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (coordinator_) coordinator_->Stop(SIGTERM);
    testing::RunCommand({"rm", "-rf", dir_});
  }

  grpc::Status Submit(const v1::CampaignSpec& spec, v1::Campaign* out = nullptr) {
    v1::SubmitCampaignRequest req;
    *req.mutable_spec() = spec;
    v1::Campaign reply;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = stub_->SubmitCampaign(&ctx, req, &reply);
    if (out != nullptr) *out = reply;
    return s;
  }

  int Campaigns() {
    v1::ListCampaignsRequest req;
    v1::ListCampaignsResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
    grpc::Status s = stub_->ListCampaigns(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.campaigns_size();
  }

  std::string dir_;
  std::unique_ptr<testing::Process> coordinator_;
  std::unique_ptr<v1::CoordinatorService::Stub> stub_;
};

// vadd, as tests/data/vadd has it, in short.
constexpr char kDefinition[] = R"({"name": "vadd", "axes": {"n": {"type": "var"}},
  "inputs": {"a": {"shape": ["n"], "dtype": "float32"}, "b": {"shape": ["n"], "dtype": "float32"}},
  "outputs": {"c": {"shape": ["n"], "dtype": "float32"}},
  "reference": "def run(a, b):\n    return a + b\n"})";
constexpr char kWorkloads[] =
    "{\"axes\": {\"n\": 1000}, \"inputs\": {\"a\": {\"type\": \"random\"}, \"b\": {\"type\": \"random\"}}}\n"
    "{\"axes\": {\"n\": 4096}, \"inputs\": {\"a\": {\"type\": \"random\"}, \"b\": {\"type\": \"random\"}}}\n";

// A kernel spec the coordinator takes (the shape the CLI sends).
v1::CampaignSpec KernelSpec() {
  v1::CampaignSpec spec;
  spec.set_name("absurd");
  spec.mutable_problem()->set_name("p");
  spec.mutable_problem()->set_definition_json(kDefinition);
  spec.mutable_problem()->set_workload_jsonl(kWorkloads);
  auto& files = *spec.mutable_baseline()->mutable_files();
  files["solution.json"] = "{\"name\": \"b\", \"language\": \"cpp\", \"sources\": [\"k.cc\"]}";
  files["k.cc"] = "int x;\n";
  return spec;
}

TEST_F(SubmitValidationTest, AbsurdSpecsAreInvalidArgument) {
  struct Case {
    const char* what;
    std::function<void(v1::CampaignSpec*)> spoil;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"in_flight_per_thread 100000", [](v1::CampaignSpec* s) { s->set_in_flight_per_thread(100000); },
       "in_flight_per_thread: 100000 is out of range [1, 16]"},
      {"timeout 1e12 s", [](v1::CampaignSpec* s) { s->mutable_harness()->set_timeout_seconds(1e12); },
       "harness.timeout_seconds: 1e+12 is out of range"},
      {"2e9 repetitions",
       [](v1::CampaignSpec* s) { s->mutable_harness()->set_repetitions(2000000000); },
       "harness.repetitions: 2000000000 is out of range"},
      {"a million sleep jobs",
       [](v1::CampaignSpec* s) {
         s->Clear();
         s->set_task(v1::TASK_SLEEP);
         s->mutable_budget()->set_max_evaluations(1000000);
       },
       "budget.max_evaluations: 1000000 is out of range [1, 100000]"},
      {"../ in a file name",
       [](v1::CampaignSpec* s) {
         (*s->mutable_baseline()->mutable_files())["../../etc/cron.d/x"] = "x";
       },
       "file name '../../etc/cron.d/x'"},
      {"absolute source",
       [](v1::CampaignSpec* s) {
         (*s->mutable_baseline()->mutable_files())["solution.json"] =
             "{\"language\": \"cpp\", \"sources\": [\"/etc/passwd\"]}";
       },
       "absolute"},
      {"unknown language",
       [](v1::CampaignSpec* s) {
         (*s->mutable_baseline()->mutable_files())["solution.json"] =
             "{\"language\": \"fortran\", \"sources\": [\"k.cc\"]}";
       },
       "language 'fortran' is not run on device cpu"},
      {"newline in the name", [](v1::CampaignSpec* s) { s->set_name("x\necho pwned"); },
       "name: control character 0x0a"},
      // A spec choosing where the coordinator connects and which of its
      // environment variables it sends there as a bearer token.
      {"llm base_url and api_key_env",
       [](v1::CampaignSpec* s) {
         s->set_proposer(v1::PROPOSER_LLM);
         s->mutable_llm()->set_endpoint("local");
         s->mutable_llm()->set_base_url("http://attacker.example/v1");
         s->mutable_llm()->set_api_key_env("PGPASSWORD");
       },
       "llm.base_url: not allowed in a campaign spec"},
      {"llm api_key_env alone",
       [](v1::CampaignSpec* s) {
         s->set_proposer(v1::PROPOSER_LLM);
         s->mutable_llm()->set_endpoint("local");
         s->mutable_llm()->set_api_key_env("PGPASSWORD");
       },
       "llm.api_key_env: not allowed in a campaign spec"},
      // The problem, read at submit with the harness's reader.
      {"malformed definition",
       [](v1::CampaignSpec* s) { s->mutable_problem()->set_definition_json("{\"name\": 3}"); },
       "problem: definition.json"},
      {"malformed workload line 2",
       [](v1::CampaignSpec* s) {
         s->mutable_problem()->set_workload_jsonl(
             "{\"axes\": {\"n\": 8}, \"inputs\": {\"a\": {\"type\": \"random\"}, \"b\": {\"type\": \"random\"}}}\n"
             "{\"axes\": {\"n\": \"big\"}}\n");
       },
       "workload.jsonl:2"},
      {"4e15-element tensor",
       [](v1::CampaignSpec* s) {
         s->mutable_problem()->set_workload_jsonl(
             "{\"axes\": {\"n\": 8}, \"inputs\": {\"a\": {\"type\": \"random\"}, \"b\": {\"type\": \"random\"}}}\n"
             "{\"axes\": {\"n\": 4000000000000000}, \"inputs\": {\"a\": {\"type\": \"random\"}, "
             "\"b\": {\"type\": \"random\"}}}\n");
       },
       "workload.jsonl:2: tensor 'a' would take 1.6e+16 bytes (axis n = 4000000000000000); at "
       "most 17179869184"},
      // What the harness would refuse about the solution.
      {"triton on cpu",
       [](v1::CampaignSpec* s) {
         auto& files = *s->mutable_baseline()->mutable_files();
         files["solution.json"] =
             "{\"language\": \"triton\", \"sources\": [\"k.py\"], \"entry_point\": \"k.py::run\"}";
         files["k.py"] = "def run(): pass\n";
       },
       "language 'triton' is not run on device cpu (it launches GPU kernels: device: cuda)"},
      {"bad entry_point",
       [](v1::CampaignSpec* s) {
         auto& files = *s->mutable_baseline()->mutable_files();
         files["solution.json"] =
             "{\"language\": \"pytorch\", \"sources\": [\"k.py\"], \"entry_point\": \"run\"}";
         files["k.py"] = "def run(): pass\n";
       },
       "entry_point 'run': expected \"FILE::FUNCTION\""},
  };
  for (const Case& c : cases) {
    v1::CampaignSpec spec = KernelSpec();
    c.spoil(&spec);
    const grpc::Status s = Submit(spec);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.what << ": "
                                                                   << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(c.expect)) << c.what;
  }
  // Nothing of them reached the store.
  EXPECT_EQ(Campaigns(), 0);
  // The same coordinator takes a sane one.
  v1::CampaignSpec sleep;
  sleep.set_name("sane");
  sleep.set_task(v1::TASK_SLEEP);
  sleep.set_sleep_ms(1);
  sleep.mutable_budget()->set_max_evaluations(3);
  v1::Campaign campaign;
  const grpc::Status ok = Submit(sleep, &campaign);
  EXPECT_TRUE(ok.ok()) << ok.error_message();
  EXPECT_GT(campaign.id(), 0);
  EXPECT_EQ(Campaigns(), 1);
}

// The languages the CUDA harness runs pass submit on device cuda; the
// problem above passes its check.
TEST_F(SubmitValidationTest, CudaHarnessLanguagesAreAcceptedOnCuda) {
  struct Lang {
    const char* language;
    const char* file;
  };
  int submitted = 0;
  for (const Lang& l : {Lang{"triton", "kernel.py"}, Lang{"cuda_cpp", "kernel.cu"},
                        Lang{"cute_dsl", "kernel.py"}, Lang{"cuda", "kernel.cu"}}) {
    v1::CampaignSpec spec = KernelSpec();
    spec.set_name(absl::StrCat("lang-", submitted));
    spec.set_device(v1::DEVICE_CUDA);
    auto& files = *spec.mutable_baseline()->mutable_files();
    files.clear();
    files["solution.json"] = absl::StrCat("{\"language\": \"", l.language, "\", \"sources\": [\"",
                                          l.file, "\"], \"entry_point\": \"", l.file, "::run\"}");
    files[l.file] = "x\n";
    const grpc::Status s = Submit(spec);
    EXPECT_TRUE(s.ok()) << l.language << ": " << s.error_message();
    submitted += s.ok();
  }
  EXPECT_EQ(Campaigns(), submitted);
  // The same on cpu: refused, saying where it runs.
  v1::CampaignSpec cpu = KernelSpec();
  auto& files = *cpu.mutable_baseline()->mutable_files();
  files["solution.json"] =
      "{\"language\": \"cuda_cpp\", \"sources\": [\"k.cu\"], \"entry_point\": \"k.cu::run\"}";
  files["k.cu"] = "x\n";
  const grpc::Status s = Submit(cpu);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("language 'cuda_cpp' is not run on device cpu"));
}

}  // namespace
}  // namespace ratchet
