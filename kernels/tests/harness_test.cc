// Runs the real ratchet-harness on kernels/testdata/vector_add with one
// solution per outcome. Needs a python that imports torch (the oracle).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "kernels/bench.h"
#include "kernels/harness/contract.h"
#include "kernels/harness/derived_baseline.h"
#include "kernels/harness/kernel_library.h"
#include "kernels/harness/solution.h"
#include "kernels/harness/tensors.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

// The first of $RATCHET_PYTHON, /usr/bin/python3, python3 that imports torch.
std::string TorchPython() {
  static const std::string found = [] {
    std::vector<std::string> c;
    if (const char* e = std::getenv("RATCHET_PYTHON")) c.push_back(e);
    c.push_back("/usr/bin/python3");
    c.push_back("python3");
    for (const auto& py : c) {
      const std::string cmd = py + " -c 'import torch' >/dev/null 2>&1";
      if (std::system(cmd.c_str()) == 0) return py;
    }
    return std::string();
  }();
  return found;
}

struct HarnessRun {
  int exit_code = -1;
  nlohmann::json result;
  std::string stderr_text;
};

HarnessRun RunHarness(const std::string& problem, const std::string& solution,
               const std::string& extra = "", const std::string& env = "") {
  const std::string out = ::testing::TempDir() + "/harness_" +
                          ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                          ".json";
  const std::string err = out + ".stderr";
  std::remove(out.c_str());
  // Names are of kernels/testdata; absolute paths are taken as they are.
  auto at = [](const std::string& sub, const std::string& p) {
    return !p.empty() && p[0] == '/' ? p : std::string(RATCHET_TESTDATA) + sub + p;
  };
  // Small flush buffer and fixed peaks keep the test fast; the logic is the same.
  const std::string cmd = env + " RATCHET_FLUSH_MIB=4 " + std::string(RATCHET_HARNESS_BIN) +
                          " --problem " + at("/", problem) + " --solution " +
                          at("/solutions/", solution) + " --out " + out +
                          " --python " + TorchPython() +
                          " --rounds 2 --warmups 1 --repetitions 3 --peak-gbps 10"
                          " --peak-gflops 100 " + extra + " 2>" + err;
  HarnessRun r;
  const int status = std::system(cmd.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream e(err);
  std::stringstream ss;
  ss << e.rdbuf();
  r.stderr_text = ss.str();
  std::ifstream f(out);
  if (f) {
    std::stringstream text;
    text << f.rdbuf();
    try {
      r.result = nlohmann::json::parse(text.str());
    } catch (const std::exception& ex) {
      ADD_FAILURE() << "unparseable result: " << ex.what();
    }
    // Every file the harness writes is one the contract reads, and writes
    // back byte for byte (contract.h).
    auto read = FromJson(text.str());
    EXPECT_TRUE(read.ok()) << read.status() << "\n" << text.str();
    if (read.ok()) {
      EXPECT_EQ(ToJson(*read), text.str());
    }
  }
  return r;
}

class HarnessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (TorchPython().empty()) {
      GTEST_SKIP() << "no python that can import torch ($RATCHET_PYTHON, /usr/bin/python3, "
                      "python3); the oracle needs one";
    }
  }
};

TEST_F(HarnessTest, CorrectSolutionScores) {
  HarnessRun r = RunHarness("vector_add", "correct", "--knob UNROLL=4");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  ASSERT_EQ(r.result["workloads"].size(), 2u);
  for (const auto& w : r.result["workloads"]) {
    EXPECT_TRUE(w["correct"].get<bool>());
    EXPECT_EQ(w["matched_fraction"].get<double>(), 1.0);
    EXPECT_GT(w["t_k_ns"].get<double>(), 0);
    EXPECT_GT(w["t_b_ns"].get<double>(), 0);
    EXPECT_GT(w["t_sol_ns"].get<double>(), 0);
    EXPECT_GT(w["score"].get<double>(), 0);
  }
  EXPECT_EQ(r.result["workloads"][1]["axes"], "N=4097");
  // T_sol from bytes (3 reads/writes of N floats + alpha + N/2 floats) at 10 GB/s.
  EXPECT_NEAR(r.result["workloads"][0]["t_sol_ns"].get<double>(),
              (3 * 1000 * 4 + 4 + 500 * 4) / 10.0, 1e-6);
  EXPECT_EQ(r.result["peaks"]["gbps"], 10.0);
  EXPECT_GT(r.result["score"].get<double>(), 0);
  EXPECT_THAT(r.stderr_text, HasSubstr("stage: compile"));
  EXPECT_THAT(r.stderr_text, HasSubstr("stage: oracle"));
  EXPECT_THAT(r.stderr_text, HasSubstr("stage: correctness"));
  EXPECT_THAT(r.stderr_text, HasSubstr("stage: timing workload 2/2"));
  // Two workloads of a few KiB: auto leaves the screen off.
  EXPECT_THAT(r.stderr_text, Not(HasSubstr("stage: screen")));
  // Where the time went, stage by stage, in the order they ran.
  std::vector<std::string> stages;
  for (auto it = r.result["stage_seconds"].begin(); it != r.result["stage_seconds"].end(); ++it) {
    stages.push_back(it.key());
    EXPECT_GE(it.value().get<double>(), 0) << it.key();
  }
  EXPECT_THAT(stages, ::testing::IsSupersetOf({"compile", "prepare", "oracle", "correctness",
                                               "timing"}));
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
}

// A scratch folder of the test's own, emptied first.
std::string FreshScratch() {
  const std::string dir = ::testing::TempDir() + "/harness_scratch_" +
                          ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::system(("rm -rf " + dir).c_str());
  return dir;
}

// The cascade's screen: one round of the smallest workload (N=1000, index 0)
// ends a wrong candidate before the full oracle runs.
TEST_F(HarnessTest, ScreenEndsAWrongCandidateBeforeTheFullOracle) {
  const std::string scratch = FreshScratch();
  HarnessRun r = RunHarness("vector_add", "wrong", "--screen on --scratch " + scratch);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "wrong_answer") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("screen: workload 0 (N=1000)"));
  ASSERT_EQ(r.result["workloads"].size(), 1u) << r.result.dump(2);
  EXPECT_FALSE(r.result["workloads"][0]["correct"].get<bool>());
  EXPECT_THAT(r.stderr_text, HasSubstr("stage: screen"));
  EXPECT_THAT(r.stderr_text, Not(HasSubstr("stage: oracle")));
  EXPECT_THAT(r.stderr_text, Not(HasSubstr("stage: timing")));
  // The only oracle run was the screen's: one workload, one round, another
  // seed than the job's (1), and no reference timing.
  const nlohmann::json request = ReadJson(scratch + "/oracle-screen/oracle_request.json");
  ASSERT_EQ(request["workloads"].size(), 1u) << request.dump(2);
  EXPECT_EQ(request["workloads"][0]["index"], 0);
  EXPECT_EQ(request["rounds"], 1);
  EXPECT_NE(request["seed"], 1);
  EXPECT_EQ(request["time_reference"], false);
  EXPECT_EQ(ReadJson(scratch + "/oracle-screen/oracle_manifest.json")["workloads"].size(), 1u);
  EXPECT_FALSE(std::filesystem::exists(scratch + "/oracle"));
}

TEST_F(HarnessTest, ScreenPassesACorrectCandidateOnToEveryWorkload) {
  const std::string scratch = FreshScratch();
  HarnessRun r = RunHarness("vector_add", "correct", "--screen on --scratch " + scratch);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  ASSERT_EQ(r.result["workloads"].size(), 2u);
  for (const auto& w : r.result["workloads"]) {
    EXPECT_TRUE(w["correct"].get<bool>());
    EXPECT_GT(w["t_k_ns"].get<double>(), 0);
    EXPECT_GT(w["t_b_ns"].get<double>(), 0);
  }
  const size_t screen = r.stderr_text.find("stage: screen");
  ASSERT_NE(screen, std::string::npos) << r.stderr_text;
  EXPECT_GT(r.stderr_text.find("stage: oracle"), screen);
  EXPECT_THAT(r.stderr_text, HasSubstr("stage: timing workload 2/2"));
  // The full oracle ran after the screen's, in a folder of its own.
  EXPECT_EQ(ReadJson(scratch + "/oracle/oracle_manifest.json")["workloads"].size(), 2u);
}

TEST_F(HarnessTest, ScreenCrashNamesTheScreen) {
  HarnessRun r = RunHarness("vector_add", "segfault", "--screen on");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "crash");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("screen: workload 0"));
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("SIGSEGV"));
}

TEST_F(HarnessTest, CustomEntrypointBf16AndScalars) {
  HarnessRun r = RunHarness("rmsnorm_custom", "rmsnorm_bf16");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  EXPECT_EQ(r.result["workloads"][1]["axes"], "batch=17");
}

TEST_F(HarnessTest, WrongAnswer) {
  HarnessRun r = RunHarness("vector_add", "wrong");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "wrong_answer");
  EXPECT_EQ(r.result["score"], 0.0);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("output 'c'"));
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("first mismatch at ["));
  EXPECT_FALSE(r.result["workloads"][0]["correct"].get<bool>());
}

// Python solutions (language "pytorch"): hosted by candidate_host.py in a
// process of their own, called as SOL-ExecBench calls them, timed and
// checked from outside like every candidate.
TEST_F(HarnessTest, PythonSolutionScores) {
  HarnessRun r = RunHarness("vector_add", "python_correct", "--knob SCALE_FIRST=1");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  for (const auto& w : r.result["workloads"]) {
    EXPECT_EQ(w["matched_fraction"].get<double>(), 1.0);
    EXPECT_GT(w["t_k_ns"].get<double>(), 0);
  }
  EXPECT_EQ(r.result["isolation"], "process");
}

TEST_F(HarnessTest, PythonValueReturningSolutionScores) {
  HarnessRun r = RunHarness("vector_add", "python_returns");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
}

TEST_F(HarnessTest, PythonWrongAnswer) {
  HarnessRun r = RunHarness("vector_add", "python_wrong");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "wrong_answer") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("output 'c'"));
}

TEST_F(HarnessTest, PythonSyntaxErrorIsCompileError) {
  HarnessRun r = RunHarness("vector_add", "python_syntax");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "compile_error") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("SyntaxError"));
}

// Thread injection: outputs written by a thread after the call answered.
TEST_F(HarnessTest, PythonThreadFinishingAfterReturnIsCaught) {
  HarnessRun r = RunHarness("vector_add", "python_late_thread");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "wrong_answer") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("work-after-return"));
}

// Timer monkey-patching: the candidate's clocks are not the harness's. Its
// calls spin 5 ms of CPU each with every time function frozen.
TEST_F(HarnessTest, PythonPatchedTimersDoNotShortenACall) {
  HarnessRun r = RunHarness("vector_add", "python_timer_patch");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  for (const auto& w : r.result["workloads"]) EXPECT_GE(w["t_k_ns"].get<double>(), 5e6) << w;
}

// SOL-ExecBench's own solution.json, sources inline, run unchanged.
TEST_F(HarnessTest, PublicPythonSolutionRunsUnchanged) {
  const std::string dir = FreshScratch() + "_public";
  std::filesystem::create_directories(dir);
  nlohmann::json sol = {
      {"name", "axpy_python"},
      {"definition", "vector_axpy_test"},
      {"author", "someone"},
      {"spec",
       {{"languages", {"pytorch"}},
        {"target_hardware", {"LOCAL"}},
        {"entry_point", "main.py::run"},
        {"dependencies", {"torch"}}}},
      {"sources",
       {{{"path", "main.py"},
         {"content",
          "def run(a, b, alpha, c, head_sum):\n"
          "    c.copy_(a + alpha * b)\n"
          "    h = c.shape[0] // 2\n"
          "    head_sum.copy_(c[:h] + c[h:2 * h])\n"}}}}};
  std::ofstream(dir + "/solution.json") << sol.dump(1);
  HarnessRun r = RunHarness("vector_add", dir);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);

  sol["spec"]["entry_point"] = "main.py::run::again";
  std::ofstream(dir + "/solution.json") << sol.dump(1);
  r = RunHarness("vector_add", dir);
  EXPECT_EQ(r.result["outcome"], "harness_error");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("spec.entry_point"));
}

// Research from nothing: the baseline derived from the problem's reference
// runs, at its defaults and with its knobs turned.
TEST_F(HarnessTest, DerivedBaselineRunsTheReference) {
  auto problem = LoadProblem(std::string(RATCHET_TESTDATA) + "/vector_add");
  ASSERT_TRUE(problem.ok()) << problem.status();
  auto files = DeriveBaseline(problem->definition, /*cuda=*/false);
  ASSERT_TRUE(files.ok()) << files.status();
  const std::string dir = FreshScratch() + "_derived";
  std::filesystem::create_directories(dir);
  for (const auto& [name, content] : *files) std::ofstream(dir + "/" + name) << content;
  HarnessRun r = RunHarness("vector_add", dir);
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  r = RunHarness("vector_add", dir, "--knob THREADS=1 --knob INFERENCE_MODE=1 --knob COMPILE=1");
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
}

TEST(DerivedBaselineTest, NeedsAReferenceWithRun) {
  Definition def;
  def.name = "no_reference";
  def.outputs.resize(1);
  EXPECT_FALSE(DeriveBaseline(def, false).ok());
  def.reference = "import torch\n\ndef forward(x):\n    return x\n";
  auto r = DeriveBaseline(def, false);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("run("));
  def.reference = "def run(x):\n    return x";
  r = DeriveBaseline(def, true);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->at("solution.json"), HasSubstr("CUDA_GRAPH"));
  EXPECT_THAT(r->at("kernel.py"), HasSubstr("N_OUTPUTS = 1"));
  EXPECT_EQ(r->at("reference.py"), "def run(x):\n    return x\n");
}

// SOL-ExecBench's example rmsnorm (two inputs, eps fixed in its reference):
// the library's rmsnorm_bf16 fits it, eps a constant, and the derived
// baseline offers it behind IMPL with its own knobs.
constexpr char kTwoInputRmsnorm[] = R"({
  "name": "rmsnorm_h4096", "op_type": "rmsnorm",
  "axes": {"batch_size": {"type": "var"}, "hidden_size": {"type": "const", "value": 4096}},
  "inputs": {"hidden_states": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"},
             "weight": {"shape": ["hidden_size"], "dtype": "bfloat16"}},
  "outputs": {"output": {"shape": ["batch_size", "hidden_size"], "dtype": "bfloat16"}},
  "reference": "import torch\n\ndef run(hidden_states, weight):\n    EPS = 1e-5\n    x = hidden_states.float()\n    return (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * weight.float()).to(hidden_states.dtype)\n"
})";

TEST(KernelLibraryTest, MatchesAProblemItWasNotWrittenFor) {
  auto def = ParseDefinition(kTwoInputRmsnorm, "definition.json");
  ASSERT_TRUE(def.ok()) << def.status();
  const auto matches = MatchKernelLibrary(*def, EmbeddedKernelLibrary());
  ASSERT_EQ(matches.size(), 1u);
  const LibraryMatch& m = matches[0];
  EXPECT_EQ(m.kernel, "rmsnorm_bf16");
  ASSERT_EQ(m.inputs.size(), 3u);  // hidden_states, weight, eps
  EXPECT_EQ(m.inputs[0].problem_index, 0);
  EXPECT_EQ(m.inputs[1].problem_index, 1);
  EXPECT_EQ(m.inputs[2].problem_index, -1);
  EXPECT_DOUBLE_EQ(m.inputs[2].constant, 1e-5);
  ASSERT_EQ(m.outputs.size(), 1u);
  EXPECT_EQ(m.outputs[0].problem_index, 0);
  // A leading dimension more ([B, S, H]) collapses into the kernel's first.
  Definition three_d = *def;
  three_d.inputs[0].shape.insert(three_d.inputs[0].shape.begin(), three_d.inputs[0].shape[0]);
  three_d.outputs[0].shape.insert(three_d.outputs[0].shape.begin(), three_d.outputs[0].shape[0]);
  auto m3 = MatchKernelLibrary(three_d, EmbeddedKernelLibrary());
  ASSERT_EQ(m3.size(), 1u);
  EXPECT_EQ(m3[0].inputs[0].collapse, 2);
  EXPECT_EQ(m3[0].inputs[1].collapse, 1);
  // Without the constant in its reference, or with another op type, or an
  // input the kernel has no place for: no match.
  Definition no_eps = *def;
  no_eps.reference = "def run(hidden_states, weight):\n    return hidden_states\n";
  EXPECT_TRUE(MatchKernelLibrary(no_eps, EmbeddedKernelLibrary()).empty());
  Definition other_op = *def;
  other_op.op_type = "layernorm";
  EXPECT_TRUE(MatchKernelLibrary(other_op, EmbeddedKernelLibrary()).empty());
  Definition extra = *def;
  extra.inputs.push_back(extra.inputs[1]);
  extra.inputs.back().name = "bias";
  EXPECT_TRUE(MatchKernelLibrary(extra, EmbeddedKernelLibrary()).empty());
  // SOL-ExecBench's nemotron_rms_norm shape (hidden, residual [B,S,H],
  // weight [H], eps) with no op type: layernorm's bias [H] must not take the
  // residual, nor does any other kernel fit.
  Definition residual = *def;
  residual.op_type = "";
  residual.inputs[0].shape.insert(residual.inputs[0].shape.begin(), residual.inputs[0].shape[0]);
  residual.inputs.insert(residual.inputs.begin() + 1, residual.inputs[0]);
  residual.inputs[1].name = "residual";
  residual.outputs[0].shape = residual.inputs[0].shape;
  for (const LibraryMatch& m : MatchKernelLibrary(residual, EmbeddedKernelLibrary()))
    ADD_FAILURE() << "matched " << m.kernel;
}

TEST(KernelLibraryTest, TheDerivedBaselineOffersTheLibraryKernelOnAGpu) {
  auto def = ParseDefinition(kTwoInputRmsnorm, "definition.json");
  ASSERT_TRUE(def.ok()) << def.status();
  auto files = DeriveBaseline(*def, /*cuda=*/true);
  ASSERT_TRUE(files.ok()) << files.status();
  const auto sol = nlohmann::json::parse(files->at("solution.json"));
  EXPECT_EQ(sol["knobs"]["IMPL"]["choices"], nlohmann::json({"reference", "rmsnorm_bf16"}));
  EXPECT_EQ(sol["knobs"]["IMPL"]["default"], "reference");
  EXPECT_TRUE(sol["knobs"].contains("RMSNORM_BF16_BLOCK"));
  EXPECT_TRUE(files->count("library/rmsnorm_bf16/baseline/kernel.cu"));
  EXPECT_TRUE(files->count("library/include/ratchet/kernel_abi.h"));
  const auto spec = nlohmann::json::parse(files->at("library.json"));
  EXPECT_EQ(spec["rmsnorm_bf16"]["inputs"][2]["constant"], 1e-5);
  // Every file travels with the solution (its sources list), and the
  // solution still loads as a Python one.
  const std::string dir = ::testing::TempDir() + "/derived-library";
  std::filesystem::remove_all(dir);
  for (const auto& [name, content] : *files) {
    std::filesystem::create_directories(std::filesystem::path(dir + "/" + name).parent_path());
    std::ofstream(dir + "/" + name) << content;
  }
  auto loaded = LoadSolution(dir, {{"IMPL", "rmsnorm_bf16"}}, SolutionBackend::kCuda);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->sources.size() + loaded->headers.size(), sol["sources"].size());
  // kernel.py is valid Python.
  const std::string check = "python3 -c \"import ast,sys; ast.parse(open(sys.argv[1]).read())\" " +
                            dir + "/kernel.py";
  EXPECT_EQ(std::system(check.c_str()), 0);
  // On a CPU there is no library to offer.
  auto cpu = DeriveBaseline(*def, /*cuda=*/false);
  ASSERT_TRUE(cpu.ok());
  EXPECT_FALSE(cpu->count("library.json"));
  std::filesystem::remove_all(dir);
}

TEST_F(HarnessTest, CompileError) {
  HarnessRun r = RunHarness("vector_add", "compile_error");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "compile_error");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("undeclared_thing"));
}

TEST_F(HarnessTest, WritePastTheEndIsOutOfBounds) {
  HarnessRun r = RunHarness("vector_add", "out_of_bounds");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "out_of_bounds") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("output 'c'"));
}

TEST_F(HarnessTest, WriteBeforeTheStartIsOutOfBounds) {
  HarnessRun r = RunHarness("vector_add", "underflow");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "out_of_bounds");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("canary"));
}

TEST_F(HarnessTest, SegfaultIsCrash) {
  HarnessRun r = RunHarness("vector_add", "segfault");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "crash");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("SIGSEGV"));
}

TEST_F(HarnessTest, NonZeroReturnIsCrash) {
  HarnessRun r = RunHarness("vector_add", "nonzero_return");
  EXPECT_EQ(r.result["outcome"], "crash");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("returned 7"));
}

TEST_F(HarnessTest, ModifiedInputsAreWrong) {
  HarnessRun r = RunHarness("vector_add", "modifies_input");
  EXPECT_EQ(r.result["outcome"], "wrong_answer");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("modified its inputs"));
}

TEST_F(HarnessTest, UnwrittenOutputIsWrong) {
  HarnessRun r = RunHarness("vector_add", "lazy");
  EXPECT_EQ(r.result["outcome"], "wrong_answer");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("NaN"));
}

// A Python solution's entry point is checked before anything runs.
TEST_F(HarnessTest, BadPythonEntryPointsAreHarnessErrors) {
  const std::string dir = FreshScratch() + "_entry";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/kernel.py") << "def run(a, b, alpha, c, head_sum):\n    pass\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "a Python solution names its function"},
      {"\"entry_point\": \"kernel.py\", ", "FILE.py::FUNCTION"},
      {"\"entry_point\": \"kernel.py::a::b\", ", "FILE.py::FUNCTION"},
      {"\"entry_point\": \"other.py::run\", ", "is not one of the sources"},
      {"\"entry_point\": \"kernel.py::run\", \"destination_passing_style\": 1, ",
       "expected true or false"}};
  for (const auto& [field, message] : cases) {
    std::ofstream(dir + "/solution.json")
        << "{" << field << "\"language\": \"pytorch\", \"sources\": [\"kernel.py\"]}";
    HarnessRun r = RunHarness("vector_add", dir);
    EXPECT_EQ(r.result["outcome"], "harness_error") << field;
    EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr(message)) << field;
  }
}

TEST_F(HarnessTest, UnknownKnobIsHarnessError) {
  HarnessRun r = RunHarness("vector_add", "correct", "--knob NOPE=1");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.result["outcome"], "harness_error");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("NOPE"));
}

TEST_F(HarnessTest, MissingProblemIsHarnessError) {
  HarnessRun r = RunHarness("no_such_problem", "correct");
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.result["outcome"], "harness_error");
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("definition.json"));
}

// Input the harness cannot read is its own error (harness_error, exit 0 with
// a result, the nonce echoed), never a crash the worker would blame on the
// candidate: invalid UTF-8 once made nlohmann's error message unwritable and
// the harness abort.
class HarnessInputTest : public HarnessTest {
 protected:
  // A copy of vector_add and of the correct solution that the test may spoil.
  void SetUp() override {
    HarnessTest::SetUp();
    if (IsSkipped()) return;
    dir_ = ::testing::TempDir() + "/harness_input_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    std::filesystem::copy(std::string(RATCHET_TESTDATA) + "/vector_add", dir_ + "/problem");
    std::filesystem::copy(std::string(RATCHET_TESTDATA) + "/solutions/correct",
                          dir_ + "/solution");
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  void Write(const std::string& rel, const std::string& text) {
    std::ofstream(dir_ + "/" + rel, std::ios::binary | std::ios::trunc) << text;
  }
  HarnessRun Run() {
    return RunHarness(dir_ + "/problem", dir_ + "/solution", "", "RATCHET_RESULT_NONCE=n0nce");
  }
  std::string dir_;
};

TEST_F(HarnessInputTest, InvalidUtf8InSolutionJsonIsHarnessError) {
  Write("solution/solution.json",
        "{\"name\": \"bad\xff\xfe\", \"language\": \"cpp\", \"sources\": [\"kernel.cc\"]}");
  HarnessRun r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "harness_error") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(),
              AllOf(HasSubstr("solution.json"), HasSubstr("not valid UTF-8")));
  EXPECT_EQ(r.result["nonce"], "n0nce");
}

TEST_F(HarnessInputTest, InvalidUtf8InAWorkloadLineIsHarnessError) {
  // Line 2 is spoilt: the message names the file and the line.
  std::ifstream in(dir_ + "/problem/workload.jsonl");
  std::string first;
  std::getline(in, first);
  in.close();
  Write("problem/workload.jsonl",
        first + "\n{\"uuid\": \"w\xc3\x28\", \"axes\": {\"N\": 1000}}\n");
  HarnessRun r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "harness_error") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(),
              AllOf(HasSubstr("workload.jsonl:2"), HasSubstr("not valid UTF-8")));
  EXPECT_EQ(r.result["nonce"], "n0nce");
}

TEST_F(HarnessInputTest, MessageWithInvalidUtf8IsStillWritten) {
  // The error quotes the knob's name, bytes and all: the result replaces
  // them (U+FFFD) instead of failing to serialize.
  HarnessRun r = RunHarness("vector_add", "correct", "--knob \"$(printf 'N\\377')=1\"",
                            "RATCHET_RESULT_NONCE=n0nce");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "harness_error") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("N\xef\xbf\xbd"));
  EXPECT_EQ(r.result["nonce"], "n0nce");
}

TEST_F(HarnessInputTest, WrongTypesInSolutionJsonAreHarnessError) {
  // A name that is not a string once threw from json::value().
  Write("solution/solution.json",
        "{\"name\": 5, \"language\": \"cpp\", \"sources\": [\"kernel.cc\"]}");
  HarnessRun r = Run();
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "harness_error") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("'name'"));
}

// The trust boundary (docs/verifier.md, "Threat model"): candidate code runs
// in a process of its own that cannot see the result's secret, the harness's
// environment or memory, or the oracle's files, and nothing it starts outlives
// the run or touches the result.
TEST_F(HarnessTest, CandidateFindsNoSecretsAndNoReferences) {
  const std::string scratch = FreshScratch();
  HarnessRun r = RunHarness("vector_add", "probe_secrets", "--scratch " + scratch,
                            "RATCHET_RESULT_NONCE=s3cret-1234");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  // Wrong (alpha 1e6) if it found any of them.
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  EXPECT_EQ(r.result["nonce"], "s3cret-1234");
  EXPECT_EQ(r.result["isolation"], "process");
}

TEST_F(HarnessTest, NothingTheCandidateStartsOutlivesTheRun) {
  HarnessRun r = RunHarness("vector_add", "daemon_rewrite", "", "RATCHET_RESULT_NONCE=n0nce");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  EXPECT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  EXPECT_EQ(r.result["nonce"], "n0nce");
  // The detached grandchild would rewrite the result every 100 ms for 4 s.
  usleep(600000);
  const std::string out = ::testing::TempDir() + "/harness_" +
                          ::testing::UnitTest::GetInstance()->current_test_info()->name() +
                          ".json";
  std::ifstream f(out);
  const nlohmann::json again = nlohmann::json::parse(f);
  EXPECT_EQ(again["nonce"], "n0nce") << again.dump(2);
  EXPECT_NE(again["message"], "forged");
}

TEST_F(HarnessTest, EveryTimedCallHasARoundOfItsOwn) {
  HarnessRun r = RunHarness("vector_add", "correct");
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  // --warmups 1 --repetitions 3: the warm-up goes round the two correctness
  // rounds, the three timed calls take three rounds after them.
  for (const auto& w : r.result["workloads"]) EXPECT_EQ(w["timed_rounds"], 3) << w.dump();
  EXPECT_GT(r.result["round_trip_ns"].get<double>(), 0);
}

// A round's bytes per workload as the harness counts them against its
// budget: inputs, references and decoys.
std::vector<double> RoundBytes(const Problem& problem) {
  std::vector<double> round;
  for (const Workload& w : problem.workloads) {
    double b = 1;
    for (const Tensor& t : MakeTensors(problem.definition.inputs, w)) b += t.bytes;
    for (const Tensor& t : MakeTensors(problem.definition.outputs, w)) b += 2.0 * t.bytes;
    round.push_back(b);
  }
  return round;
}

// A round budget that holds every workload's correctness rounds and one
// timed round, and then two more rounds of the small workload only: the
// small one gets them (three timed calls), the large one stays at one.
TEST_F(HarnessTest, TheRoundBudgetGoesToSmallWorkloadsFirst) {
  auto problem = LoadProblem(std::string(RATCHET_TESTDATA) + "/vector_add");
  ASSERT_TRUE(problem.ok()) << problem.status();
  const std::vector<double> round = RoundBytes(*problem);
  ASSERT_EQ(round.size(), 2u);
  ASSERT_LT(round[0], round[1]);
  // Two correctness rounds and one timed round each, then two more of the
  // small one and half of a third.
  const double budget = 3 * (round[0] + round[1]) + 2.5 * round[0];
  setenv("RATCHET_ROUND_BUDGET_BYTES", std::to_string(budget).c_str(), 1);
  HarnessRun r = RunHarness("vector_add", "correct");
  unsetenv("RATCHET_ROUND_BUDGET_BYTES");
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  ASSERT_EQ(r.result["workloads"].size(), 2u);
  EXPECT_EQ(r.result["workloads"][0]["timed_rounds"], 3) << r.result["workloads"][0].dump();
  EXPECT_EQ(r.result["workloads"][1]["timed_rounds"], 1) << r.result["workloads"][1].dump();
}

// A round budget below every workload's correctness rounds and one timed
// round: the large workload gives up correctness rounds (down to one), the
// small one keeps its two; each still has a timed round of its own, so a
// cache of an earlier answer never hits while timed.
TEST_F(HarnessTest, ABudgetBelowTheCorrectnessRoundsTakesThemFromTheLargestWorkload) {
  auto problem = LoadProblem(std::string(RATCHET_TESTDATA) + "/vector_add");
  ASSERT_TRUE(problem.ok()) << problem.status();
  const std::vector<double> round = RoundBytes(*problem);
  ASSERT_EQ(round.size(), 2u);
  // Three rounds of the small workload, two of the large one.
  const double budget = 3 * round[0] + 2 * round[1];
  const std::string scratch = FreshScratch();
  setenv("RATCHET_ROUND_BUDGET_BYTES", std::to_string(budget).c_str(), 1);
  HarnessRun r = RunHarness("vector_add", "correct", "--scratch " + scratch);
  HarnessRun wrong = RunHarness("vector_add", "wrong");
  unsetenv("RATCHET_ROUND_BUDGET_BYTES");
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  const nlohmann::json request = ReadJson(scratch + "/oracle/oracle_request.json");
  EXPECT_EQ(request["rounds_by_workload"], nlohmann::json::array({3, 2})) << request.dump();
  EXPECT_EQ(r.result["workloads"][0]["timed_rounds"], 1) << r.result["workloads"][0].dump();
  EXPECT_EQ(r.result["workloads"][1]["timed_rounds"], 1) << r.result["workloads"][1].dump();
  EXPECT_EQ(wrong.result["outcome"], "wrong_answer") << wrong.result.dump(2);
}

// The hack against that: a solution that answers every call after its
// first with the outputs it kept, betting that a timed call repeats the
// round it saw last. With one checked round and one timed round a
// workload, the timed round is one it never saw.
TEST_F(HarnessTest, OneCheckedRoundStillTimesAnUnseenRound) {
  HarnessRun r = RunHarness("vector_add", "replay_last", "", "RATCHET_ROUND_BUDGET_BYTES=1");
  EXPECT_EQ(r.result["outcome"], "wrong_answer") << r.result.dump(2);
  EXPECT_NE(r.result["message"].get<std::string>().find("cached-answer"), std::string::npos)
      << r.result.dump(2);
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Rounds an --oracle-only run made for a seed, given to an evaluation of
// that seed: no oracle runs, the checks are as strict, and nothing real is
// left on disk once they are read (references decoyed, inputs removed, the
// given folder gone). Another seed's rounds are not used.
TEST_F(HarnessTest, GivenRoundsOfTheSameSeedReplaceTheOracle) {
  HarnessRun first = RunHarness("vector_add", "correct", "--seed 7");
  ASSERT_EQ(first.result["outcome"], "ok") << first.result.dump(2);
  const std::string baseline = ::testing::TempDir() + "/given-rounds-baseline.json";
  { std::ofstream(baseline) << first.result.dump(); }
  const std::string given = ::testing::TempDir() + "/given-rounds";
  std::filesystem::remove_all(given);
  // Made under a round budget of one timed round a workload: the
  // evaluation, under the usual budget, takes them as they are.
  HarnessRun oracle = RunHarness("vector_add", "correct", "--seed 7 --oracle-only --scratch " + given,
                                 "RATCHET_ROUND_BUDGET_BYTES=1");
  ASSERT_EQ(oracle.result["outcome"], "ok") << oracle.result.dump(2) << oracle.stderr_text;
  ASSERT_TRUE(std::filesystem::exists(given + "/oracle/oracle_manifest.json"));
  const std::string real_ref = ReadFile(given + "/oracle/w0_r0_ref0.bin");
  ASSERT_FALSE(real_ref.empty());
  auto again = [&](const std::string& solution, const std::string& seed, const std::string& dir,
                   const std::string& more = "") {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(given + "-copy");
    std::filesystem::copy(given, given + "-copy", std::filesystem::copy_options::recursive |
                                                      std::filesystem::copy_options::overwrite_existing);
    return RunHarness("vector_add", solution,
                      "--seed " + seed + " --baseline " + baseline + " --given-rounds " + given +
                          "-copy --scratch " + dir + more);
  };
  const std::string scratch = ::testing::TempDir() + "/given-rounds-run";
  HarnessRun r = again("correct", "7", scratch);
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2) << r.stderr_text;
  EXPECT_EQ(r.result["rounds_given"], true);
  for (const auto& w : r.result["workloads"]) EXPECT_EQ(w["timed_rounds"], 1) << w.dump();
  EXPECT_FALSE(std::filesystem::exists(given + "-copy"));
  EXPECT_TRUE(std::filesystem::exists(scratch + "/oracle/w0_r0_ref0.bin"));
  EXPECT_NE(ReadFile(scratch + "/oracle/w0_r0_ref0.bin"), real_ref);  // a decoy
  EXPECT_FALSE(std::filesystem::exists(scratch + "/oracle/w0_r0_in0.bin"));
  // A wrong candidate is as wrong with given rounds.
  r = again("wrong", "7", scratch);
  EXPECT_EQ(r.result["outcome"], "wrong_answer") << r.result.dump(2);
  // With a screen (its round given too, the oracle-only run had none): no
  // oracle runs after it, so the process that passed the screen goes on.
  std::filesystem::remove_all(given);
  oracle = RunHarness("vector_add", "correct", "--seed 7 --screen on --oracle-only --scratch " + given);
  ASSERT_EQ(oracle.result["outcome"], "ok") << oracle.result.dump(2) << oracle.stderr_text;
  r = again("correct", "7", scratch, " --screen on");
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2) << r.stderr_text;
  EXPECT_EQ(r.result["rounds_given"], true);
  EXPECT_THAT(r.stderr_text, HasSubstr("stage: screen"));
  EXPECT_TRUE(std::filesystem::exists(scratch + "/candidate-screen"));
  EXPECT_FALSE(std::filesystem::exists(scratch + "/candidate"));
  r = again("wrong", "7", scratch, " --screen on");
  EXPECT_EQ(r.result["outcome"], "wrong_answer") << r.result.dump(2);
  EXPECT_THAT(r.result["message"].get<std::string>(), HasSubstr("screen: workload 0"));
  // Another seed's rounds: the oracle runs as usual.
  r = again("correct", "8", scratch);
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2);
  EXPECT_FALSE(r.result.contains("rounds_given"));
  EXPECT_THAT(r.stderr_text, HasSubstr("not used: its request is another"));
  std::filesystem::remove_all(given);
  std::filesystem::remove(baseline);
}

// --device-lock: the harness waits for the lock before it touches the
// device and holds it to the end; while another holder has it, the harness
// is seen blocked on it (/proc/locks), and it finishes once let go.
TEST_F(HarnessTest, DeviceLockIsWaitedForAndHeldToTheEnd) {
  const std::string lock = ::testing::TempDir() + "/device.lock";
  std::ofstream(lock).close();
  const int fd = open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(flock(fd, LOCK_EX), 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  std::atomic<bool> done{false};
  HarnessRun r;
  std::thread run([&] {
    r = RunHarness("vector_add", "correct", "--device-lock " + lock);
    done = true;
  });
  // A waiter on this file's inode shows in /proc/locks as "-> FLOCK ...".
  auto waiting = [&] {
    std::ifstream locks("/proc/locks");
    const std::string inode = absl::StrCat(":", st.st_ino, " ");
    for (std::string line; std::getline(locks, line);)
      if (line.find("->") != std::string::npos && line.find(inode) != std::string::npos)
        return true;
    return false;
  };
  bool seen = false;
  for (int i = 0; i < 600 && !seen && !done; ++i) {
    seen = waiting();
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(seen) << "the harness never waited for the lock";
  EXPECT_FALSE(done) << "the harness finished while another held the device";
  flock(fd, LOCK_UN);
  close(fd);
  run.join();
  ASSERT_EQ(r.result["outcome"], "ok") << r.result.dump(2) << r.stderr_text;
  EXPECT_THAT(r.stderr_text, HasSubstr("stage: device-wait"));
  EXPECT_THAT(r.stderr_text, HasSubstr("holding the device"));
  EXPECT_LT(r.stderr_text.find("holding the device"), r.stderr_text.find("stage: prepare"));
  // A lock that cannot be opened is the harness's error, not the candidate's.
  HarnessRun bad = RunHarness("vector_add", "correct", "--device-lock /nonexistent/dir/lock");
  EXPECT_EQ(bad.result["outcome"], "harness_error") << bad.result.dump(2);
  EXPECT_THAT(bad.result["message"].get<std::string>(), HasSubstr("--device-lock"));
}

// A baseline stored by the coordinator: used as given when it was measured
// with the same software, timed again when not.
TEST_F(HarnessTest, GivenBaselineIsUsedOnlyForTheSameSoftware) {
  HarnessRun first = RunHarness("vector_add", "correct");
  ASSERT_EQ(first.result["outcome"], "ok") << first.result.dump(2);
  const std::string software = first.result["software"].get<std::string>();
  EXPECT_THAT(software, HasSubstr("torch "));
  EXPECT_FALSE(first.result["workloads"][0]["t_b_given"].get<bool>());
  auto write = [](const std::string& path, const std::string& sw) {
    nlohmann::json b = {{"software", sw}, {"workloads", nlohmann::json::array()}};
    for (int i = 0; i < 2; ++i)
      b["workloads"].push_back({{"index", i}, {"t_b_ns", 7777777.0}, {"t_b_spread", 0.02}});
    std::ofstream(path) << b.dump();
  };
  const std::string same = ::testing::TempDir() + "/baseline_same.json";
  const std::string other = ::testing::TempDir() + "/baseline_other.json";
  write(same, software);
  write(other, "torch 0.0.1");
  HarnessRun given = RunHarness("vector_add", "correct", "--baseline " + same);
  ASSERT_EQ(given.result["outcome"], "ok") << given.result.dump(2);
  for (const auto& w : given.result["workloads"]) {
    EXPECT_TRUE(w["t_b_given"].get<bool>());
    EXPECT_EQ(w["t_b_ns"], 7777777.0);
  }
  HarnessRun timed = RunHarness("vector_add", "correct", "--baseline " + other);
  ASSERT_EQ(timed.result["outcome"], "ok") << timed.result.dump(2);
  for (const auto& w : timed.result["workloads"]) {
    EXPECT_FALSE(w["t_b_given"].get<bool>());
    EXPECT_NE(w["t_b_ns"], 7777777.0);
  }
  EXPECT_THAT(timed.stderr_text, HasSubstr("timing T_b here"));
  // An unreadable file is said and ignored: T_b is timed.
  const std::string broken = ::testing::TempDir() + "/baseline_broken.json";
  std::ofstream(broken) << "{not json";
  HarnessRun unreadable = RunHarness("vector_add", "correct", "--baseline " + broken);
  ASSERT_EQ(unreadable.result["outcome"], "ok") << unreadable.result.dump(2);
  EXPECT_FALSE(unreadable.result["workloads"][0]["t_b_given"].get<bool>());
  EXPECT_THAT(unreadable.stderr_text, HasSubstr("is unreadable: timing T_b here"));
}

// Root runs the candidate process as nobody, who may not reach the build
// folder by name (a checkout under /root, mode 0700): it is started from an
// open descriptor.
TEST_F(HarnessTest, CandidateStartsFromAFolderNobodyCanReach) {
  if (geteuid() != 0) GTEST_SKIP() << "only root hands the candidate to nobody";
  char tmpl[] = "/tmp/ratchet-private-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);  // mode 0700
  const std::filesystem::path dir = tmpl;
  const std::filesystem::path bin = std::filesystem::path(RATCHET_HARNESS_BIN).parent_path();
  for (const char* f : {"ratchet-harness", "ratchet-candidate", "oracle.py", "kernel_abi.h"})
    std::filesystem::copy(bin / f, dir / f);
  const std::string out = dir.string() + "/result.json";
  const std::string cmd = (dir / "ratchet-harness").string() + " --problem " + RATCHET_TESTDATA +
                          "/vector_add --solution " + RATCHET_TESTDATA +
                          "/solutions/correct --out " + out + " --python " + TorchPython() +
                          " --rounds 1 --warmups 0 --repetitions 2 --peak-gbps 10"
                          " --peak-gflops 100 2>/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream f(out);
  const nlohmann::json r = nlohmann::json::parse(f);
  EXPECT_EQ(r["outcome"], "ok") << r.dump(2);
  std::filesystem::remove_all(dir);
}

TEST(HarnessCliTest, BadCommandLineExitsTwo) {
  for (const std::string args : {" --problem x", " --problem p --solution s --out o --screen maybe"}) {
    const std::string cmd = std::string(RATCHET_HARNESS_BIN) + args + " 2>/dev/null";
    const int status = std::system(cmd.c_str());
    EXPECT_EQ(WEXITSTATUS(status), 2) << args;
  }
}

TEST(BenchTest, ArgumentErrorsExitTwo) {
  const char* a[] = {"bench", "only-one"};
  EXPECT_EQ(BenchMain(2, const_cast<char**>(a)), 2);
  const char* b[] = {"bench", "p", "s", "--frobnicate"};
  EXPECT_EQ(BenchMain(4, const_cast<char**>(b)), 2);
  const char* c[] = {"bench", "/nonexistent-p", "/nonexistent-s"};
  EXPECT_EQ(BenchMain(3, const_cast<char**>(c)), 2);
  // Values the harness would refuse are refused before it runs.
  const std::string problem = std::string(RATCHET_TESTDATA) + "/vector_add";
  const std::string solution = std::string(RATCHET_TESTDATA) + "/solutions/correct";
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--warmups", "x"}, {"--knob", "NOEQUALS"}, {"--peak-gbps", "10"},
        {"--device", "tpu"}, {"--device"}}) {
    std::vector<const char*> v = {"bench", problem.c_str(), solution.c_str()};
    for (const std::string& a : bad) v.push_back(a.c_str());
    EXPECT_EQ(BenchMain(static_cast<int>(v.size()), const_cast<char**>(v.data())), 2) << bad[0];
  }
}

// Bench passes the harness's flags through to the harness's own reader
// (contract.h), except those it writes itself.
TEST(BenchTest, HarnessFlagsAreReadByTheContract) {
  const std::string problem = std::string(RATCHET_TESTDATA) + "/vector_add";
  const std::string solution = std::string(RATCHET_TESTDATA) + "/solutions/correct";
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--out", "x.json"}, {"--problem=p"}, {"--solution", "s"},
        {"--print"}, {"--rounds=0"}, {"--screen", "sometimes"}, {"--frobnicate", "1"},
        {"--seed"}}) {
    std::vector<const char*> v = {"bench", problem.c_str(), solution.c_str()};
    for (const std::string& a : bad) v.push_back(a.c_str());
    EXPECT_EQ(BenchMain(static_cast<int>(v.size()), const_cast<char**>(v.data())), 2) << bad[0];
  }
}

// Runs `ratchet bench` in this process on vector_add with `solution` (of
// kernels/testdata/solutions) and `args`; returns its exit status and stdout.
std::pair<int, std::string> Bench(const std::string& solution, std::vector<std::string> args) {
  const std::string problem = std::string(RATCHET_TESTDATA) + "/vector_add";
  const std::string dir = std::string(RATCHET_TESTDATA) + "/solutions/" + solution;
  for (const char* a : {"--rounds", "1", "--python"}) args.push_back(a);
  args.push_back(TorchPython());
  for (const char* a : {"--peak-gbps", "10", "--peak-gflops", "100"}) args.push_back(a);
  std::vector<const char*> argv = {"bench", problem.c_str(), dir.c_str()};
  for (const std::string& a : args) argv.push_back(a.c_str());
  setenv("RATCHET_FLUSH_MIB", "4", 1);
  ::testing::internal::CaptureStdout();
  const int rc = BenchMain(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  return {rc, ::testing::internal::GetCapturedStdout()};
}

TEST_F(HarnessTest, BenchPrintsJson) {
  const auto [rc, out] = Bench("correct", {"--json", "--repetitions", "2", "--warmups", "0"});
  EXPECT_EQ(rc, 0);
  auto result = FromJson(out);
  ASSERT_TRUE(result.ok()) << result.status() << "\n" << out;
  EXPECT_EQ(result->outcome, "ok") << out;
  EXPECT_EQ(result->workloads.size(), 2u);
}

// An earlier result given as --baseline is T_b as a campaign's job gets it:
// the same T_b, not timed again.
TEST_F(HarnessTest, BenchTakesAnEarlierResultAsTheBaseline) {
  const auto [rc, out] = Bench("correct", {"--json", "--repetitions", "2", "--warmups", "0"});
  ASSERT_EQ(rc, 0) << out;
  auto first = FromJson(out);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string path = ::testing::TempDir() + "/bench-baseline.json";
  { std::ofstream(path) << out; }
  const auto [rc2, out2] =
      Bench("correct", {"--json", "--repetitions", "2", "--warmups", "0", "--baseline", path});
  ASSERT_EQ(rc2, 0) << out2;
  auto second = FromJson(out2);
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_EQ(second->workloads.size(), first->workloads.size());
  for (size_t k = 0; k < first->workloads.size(); ++k) {
    EXPECT_TRUE(second->workloads[k].t_b_given);
    EXPECT_EQ(second->workloads[k].t_b_ns, first->workloads[k].t_b_ns);
  }
  std::filesystem::remove(path);
}

// Without --json, bench prints the table of the result it read.
TEST_F(HarnessTest, BenchPrintsTheTable) {
  const auto [rc, out] = Bench("wrong", {});
  EXPECT_EQ(rc, 1);  // the table, and an exit status that says it was not ok
  EXPECT_THAT(out, HasSubstr("outcome: wrong_answer   problem score: 0.0000"));
  EXPECT_THAT(out, HasSubstr("peaks: 10.0 GB/s, 100.0 GFLOP/s"));
  EXPECT_THAT(out, HasSubstr("message: workload 0 (N=1000)"));
}

}  // namespace
}  // namespace ratchet::kernels
