// Runs the real ratchet-harness-cuda (and the ratchet-candidate-cuda process
// it starts) on kernels/testdata/cuda: every planted misbehaving candidate
// must be caught or made harmless, honest ones must pass. Compile-only cases
// need nvcc but no GPU and run everywhere the CUDA harness is built; the rest
// skip without a GPU.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/harness/contract.h"

namespace {

using Json = nlohmann::json;

// The build tree's paths, or the environment's where the binary was carried to
// another machine (the GPU host) without its build tree.
std::string FromEnv(const char* name, const char* fallback) {
  const char* e = std::getenv(name);
  return e != nullptr && *e ? e : fallback;
}
const std::string kHarness = FromEnv("RATCHET_HARNESS_CUDA", RATCHET_HARNESS_CUDA_BIN);
const std::string kData = FromEnv("RATCHET_TESTDATA", RATCHET_TESTDATA) + "/cuda";

bool HaveGpu(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *why = std::string("no GPU: cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return false;
  }
  if (n == 0) {
    *why = "no GPU: cudaGetDeviceCount returned 0";
    return false;
  }
  return true;
}

bool HaveNvcc() {
  if (const char* e = std::getenv("RATCHET_NVCC"); e != nullptr && *e) return true;
  return access("/usr/local/cuda/bin/nvcc", X_OK) == 0;
}

std::string TempPath(const std::string& tag) {
  const char* tmp = std::getenv("TMPDIR");
  return std::string(tmp != nullptr ? tmp : "/tmp") + "/ratchet_cuda_test_" + tag + "_" +
         std::to_string(getpid()) + ".json";
}

// Runs the harness on solutions/<name> with `env` ("NAME=value ...", may be
// empty) added to its environment; returns the parsed result.
Json RunHarness(const std::string& name, const std::string& extra, const std::string& env = "") {
  const std::string out = TempPath(name);
  std::remove(out.c_str());
  const std::string cmd = (env.empty() ? "" : "env " + env + " ") + kHarness + " --problem " +
                          kData + "/axpy --solution " + kData + "/solutions/" + name + " --out " +
                          out + " " + extra + " 2>/dev/null";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << cmd;
  std::ifstream f(out);
  std::stringstream ss;
  ss << f.rdbuf();
  std::remove(out.c_str());
  // Every file the harness writes is one the contract reads, and writes back
  // byte for byte (kernels/harness/contract.h).
  auto read = ratchet::kernels::FromJson(ss.str());
  EXPECT_TRUE(read.ok()) << read.status() << "\n" << ss.str();
  if (read.ok()) {
    EXPECT_EQ(ratchet::kernels::ToJson(*read), ss.str());
  }
  try {
    return Json::parse(ss.str());
  } catch (const std::exception& e) {
    ADD_FAILURE() << "no result JSON from " << cmd << ": " << e.what();
    return Json::object();
  }
}

Json ReadJson(const std::string& path) {
  std::ifstream f(path);
  return Json::parse(f, nullptr, /*allow_exceptions=*/false);
}

// The guards and the screen do not need torch.compile's T_b, and every case
// shares one problem: eager T_b and one cache keep each case to seconds, not
// half a minute.
void UseQuickBaselines() {
  setenv("RATCHET_TB_COMPILE", "0", /*overwrite=*/0);
  const std::string cache = ::testing::TempDir() + "/ratchet_cuda_test_tb_cache_" + std::to_string(getpid());
  setenv("RATCHET_TB_CACHE", cache.c_str(), /*overwrite=*/0);
}

bool HasFlag(const Json& r, const std::string& flag) {
  if (!r.contains("flags")) return false;
  for (const auto& f : r["flags"]) {
    if (f == flag) return true;
  }
  return false;
}

TEST(CudaHarnessCompileTest, CompileErrorCarriesNvccOutput) {
  if (!HaveNvcc()) GTEST_SKIP() << "no nvcc";
  const Json r = RunHarness("compile_error", "--compile-only --arch sm_90");
  EXPECT_EQ(r.value("outcome", ""), "compile_error");
  EXPECT_NE(r.value("message", "").find("this_is_not_declared"), std::string::npos) << r.dump(2);
}

TEST(CudaHarnessCompileTest, MissingEntryPointIsCompileError) {
  if (!HaveNvcc()) GTEST_SKIP() << "no nvcc";
  const Json r = RunHarness("no_export", "--compile-only --arch sm_90");
  EXPECT_EQ(r.value("outcome", ""), "compile_error");
  EXPECT_NE(r.value("message", "").find("ratchet_run_cuda"), std::string::npos) << r.dump(2);
}

TEST(CudaHarnessCompileTest, HonestCandidatesCompileForEveryArch) {
  if (!HaveNvcc()) GTEST_SKIP() << "no nvcc";
  for (const char* arch : {"sm_90", "sm_90a", "sm_100"}) {
    const Json r = RunHarness("correct", std::string("--compile-only --arch ") + arch);
    EXPECT_EQ(r.value("outcome", ""), "ok") << arch << ": " << r.dump(2);
  }
  const Json r = RunHarness("correct_cublas", "--compile-only --arch sm_90");
  EXPECT_EQ(r.value("outcome", ""), "ok") << r.dump(2);
}

TEST(CudaHarnessCompileTest, KnobOverrideReachesTheSource) {
  if (!HaveNvcc()) GTEST_SKIP() << "no nvcc";
  const Json r = RunHarness("correct", "--compile-only --arch sm_90 --knob BLOCK=NOT_A_NUMBER");
  EXPECT_EQ(r.value("outcome", ""), "compile_error") << r.dump(2);
}

// Every argument a worker passes to the CUDA harness is one the harness knows
// (a worker once passed --cache-dir, which the harness refused as unknown).
TEST(CudaHarnessCompileTest, AcceptsTheWorkersArguments) {
  if (!HaveNvcc()) GTEST_SKIP() << "no nvcc";
  const std::string cache = TempPath("tb-cache");
  const Json r = RunHarness("correct", "--compile-only --arch sm_90 --device-index 0 --seed 7 "
                                       "--warmups 1 --repetitions 50 --rounds 2 --screen auto --cache-dir " +
                                           cache + " --scratch " + ::testing::TempDir());
  EXPECT_EQ(r.value("outcome", ""), "ok") << r.dump(2);
}

// The worker compiles with --compile-only outside its GPU lock and then runs
// the job in the same scratch folder: the build is reused only when sources,
// knobs and flags are the same.
TEST(CudaHarnessCompileTest, ReusesTheScratchBuildOnlyForTheSameSources) {
  if (!HaveNvcc()) GTEST_SKIP() << "no nvcc";
  const std::string scratch = ::testing::TempDir() + "/ratchet_reuse_" + std::to_string(getpid());
  const std::string base = "--compile-only --arch sm_90 --scratch " + scratch;
  const Json first = RunHarness("correct", base);
  ASSERT_EQ(first.value("outcome", ""), "ok") << first.dump(2);
  EXPECT_FALSE(first.value("build_reused", true));
  EXPECT_GT(first.value("compile_seconds", 0.0), 0.0);
  const Json again = RunHarness("correct", base);
  EXPECT_TRUE(again.value("build_reused", false)) << again.dump(2);
  EXPECT_EQ(again.value("compile_seconds", -1.0), 0.0);
  const Json other_knob = RunHarness("correct", base + " --knob BLOCK=128");
  EXPECT_EQ(other_knob.value("outcome", ""), "ok") << other_knob.dump(2);
  EXPECT_FALSE(other_knob.value("build_reused", true)) << "a different knob reused the old build";
}

// Verification's second timing method, in the same run: with
// $RATCHET_INDEPENDENT_TIMING the harness checks and times as always, then
// calls the candidate back to back and prints marks (workload, calls so far)
// on its own stdout for the parent's clock; every batch is checked too.
TEST(CudaHarnessBackToBackTest, PrintsMarksForTheParentsClock) {
  std::string why;
  if (!HaveGpu(&why)) GTEST_SKIP() << why;
  UseQuickBaselines();
  const std::string scratch = ::testing::TempDir() + "/ratchet_b2b_" + std::to_string(getpid());
  const std::string out = TempPath("b2b");
  const std::string cmd = "env RATCHET_INDEPENDENT_TIMING=0.2 " + kHarness + " --problem " +
                          kData + "/axpy --solution " + kData + "/solutions/correct --out " + out +
                          " --warmups 2 --repetitions 10 --rounds 1 --scratch " + scratch +
                          " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::map<int, long long> last_mark;
  char line[256];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    int w = 0;
    long long calls = 0;
    if (std::sscanf(line, "ratchet-mark %d %lld", &w, &calls) == 2) last_mark[w] = calls;
  }
  ASSERT_EQ(pclose(p), 0) << cmd;
  const Json r = ReadJson(out);
  std::remove(out.c_str());
  ASSERT_FALSE(r.is_discarded()) << cmd;
  EXPECT_EQ(r.value("outcome", ""), "ok") << r.dump(2);
  ASSERT_EQ(r["workloads"].size(), 2u) << r.dump(2);
  ASSERT_EQ(last_mark.size(), 2u);
  for (const auto& w : r["workloads"]) {
    EXPECT_GT(w.value("t_k_ns", 0.0), 0.0);
    EXPECT_EQ(w.value("calls", 0LL), last_mark[w.value("index", -1)]) << w.dump();
  }
  for (const auto& [w, calls] : last_mark) EXPECT_GE(calls, 8) << "workload " << w;
}

// The result's secret reaches the harness only: the candidate process sees
// neither it nor the harness's environment or memory (probe_secrets answers
// wrongly if it does), and the result echoes it for the worker.
TEST(CudaHarnessSecretsTest, CandidateCannotSeeTheNonceAndTheResultEchoesIt) {
  std::string why;
  if (!HaveGpu(&why)) GTEST_SKIP() << why;
  UseQuickBaselines();
  const std::string nonce = "cafe" + std::to_string(getpid()) + "f00d";
  const Json r = RunHarness("probe_secrets", "--warmups 2 --repetitions 10 --rounds 1",
                            "RATCHET_RESULT_NONCE=" + nonce);
  EXPECT_EQ(r.value("outcome", ""), "ok") << r.dump(2);
  EXPECT_EQ(r.value("nonce", ""), nonce) << r.dump(2);
  EXPECT_EQ(r.value("isolation", ""), "process");
  EXPECT_EQ(r.value("timing", ""), "round-trip");
  // Without a secret there is none to echo.
  const Json plain = RunHarness("correct", "--warmups 2 --repetitions 10 --rounds 1");
  EXPECT_EQ(plain.value("outcome", ""), "ok") << plain.dump(2);
  EXPECT_FALSE(plain.contains("nonce")) << plain.dump(2);
}

// Work a candidate leaves on a private stream is inside its time: the
// candidate process synchronises the whole device before it answers.
// other_stream makes 20 passes on a hidden stream where correct makes one.
TEST(CudaHarnessTimingTest, WorkOnAHiddenStreamIsTimed) {
  std::string why;
  if (!HaveGpu(&why)) GTEST_SKIP() << why;
  UseQuickBaselines();
  const Json honest = RunHarness("correct", "--warmups 2 --repetitions 10 --rounds 1");
  const Json hidden = RunHarness("other_stream", "--warmups 2 --repetitions 10 --rounds 1");
  ASSERT_EQ(honest.value("outcome", ""), "ok") << honest.dump(2);
  ASSERT_EQ(hidden.value("outcome", ""), "ok") << hidden.dump(2);
  // Workload 0 (N = 4M): far more than launch overhead on any GPU.
  const double t1 = honest["workloads"][0].value("t_k_ns", 0.0);
  const double t20 = hidden["workloads"][0].value("t_k_ns", 0.0);
  EXPECT_GT(t20, 4 * t1) << "correct " << t1 << " ns, other_stream " << t20 << " ns";
  EXPECT_GT(honest.value("round_trip_ns", 0.0), 0.0);
}

// The cascade's screen: one round of the smallest workload (axpy-odd,
// N=4097, index 1) ends a wrong candidate before the full oracle runs.
class CudaHarnessScreenTest : public testing::Test {
 protected:
  static void SetUpTestSuite() { UseQuickBaselines(); }
  void SetUp() override {
    std::string why;
    if (!HaveGpu(&why)) GTEST_SKIP() << why;
    scratch_ = ::testing::TempDir() + "/ratchet_screen_" +
               testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
               std::to_string(getpid());
  }
  std::string scratch_;
};

TEST_F(CudaHarnessScreenTest, EndsAWrongCandidateBeforeTheFullOracle) {
  const Json r = RunHarness("lazy", "--warmups 2 --repetitions 10 --rounds 2 --screen on --scratch " + scratch_);
  EXPECT_EQ(r.value("outcome", ""), "wrong_answer") << r.dump(2);
  EXPECT_NE(r.value("message", "").find("screen: workload 1 (N=4097)"), std::string::npos) << r.dump(2);
  ASSERT_EQ(r["workloads"].size(), 1u) << r.dump(2);
  EXPECT_EQ(r["workloads"][0].value("index", -1), 1);
  // The only oracle run was the screen's: one workload, one round, no T_b.
  const Json request = ReadJson(scratch_ + "/oracle-screen/oracle_request.json");
  ASSERT_EQ(request["workloads"].size(), 1u) << request.dump(2);
  EXPECT_EQ(request.value("rounds", 0), 1);
  EXPECT_EQ(request.value("time_reference", true), false);
  EXPECT_EQ(ReadJson(scratch_ + "/oracle-screen/oracle_manifest.json")["workloads"].size(), 1u);
  EXPECT_NE(access((scratch_ + "/oracle").c_str(), F_OK), 0) << "the full oracle ran";
}

TEST_F(CudaHarnessScreenTest, PassesACorrectCandidateOnToEveryWorkload) {
  const Json r = RunHarness("correct", "--warmups 2 --repetitions 10 --rounds 2 --screen on --scratch " + scratch_);
  EXPECT_EQ(r.value("outcome", ""), "ok") << r.dump(2);
  ASSERT_EQ(r["workloads"].size(), 2u) << r.dump(2);
  for (const auto& w : r["workloads"]) {
    EXPECT_TRUE(w.value("correct", false));
    EXPECT_GT(w.value("t_k_ns", 0.0), 0.0);
    EXPECT_GT(w.value("t_b_ns", 0.0), 0.0);
  }
  // The screen's oracle ran (one workload), then the full one.
  EXPECT_EQ(ReadJson(scratch_ + "/oracle-screen/oracle_manifest.json")["workloads"].size(), 1u);
  EXPECT_EQ(ReadJson(scratch_ + "/oracle/oracle_manifest.json")["workloads"].size(), 2u);
}

struct GuardCase {
  const char* solution;
  const char* outcome;
  const char* message_has;  // "" when any message will do.
  const char* flag;         // Required flag, or "".
  const char* extra;        // Extra harness arguments.
};

// Keeps ctest's names readable.
void PrintTo(const GuardCase& c, std::ostream* os) { *os << c.solution << " " << c.extra; }

class CudaHarnessGuardTest : public testing::TestWithParam<GuardCase> {
 protected:
  static void SetUpTestSuite() { UseQuickBaselines(); }
};

TEST_P(CudaHarnessGuardTest, GuardCatchesIt) {
  std::string why;
  if (!HaveGpu(&why)) GTEST_SKIP() << why;
  const GuardCase& c = GetParam();
  const Json r = RunHarness(c.solution, std::string("--warmups 2 --repetitions 10 --rounds 2 ") + c.extra);
  EXPECT_EQ(r.value("outcome", ""), c.outcome) << r.dump(2);
  if (*c.message_has) {
    EXPECT_NE(r.value("message", "").find(c.message_has), std::string::npos) << r.dump(2);
  }
  if (*c.flag) {
    EXPECT_TRUE(HasFlag(r, c.flag)) << "expected flag " << c.flag << ": " << r.dump(2);
  }
  if (std::string(c.outcome) == "ok") {
    ASSERT_TRUE(r.contains("workloads"));
    EXPECT_EQ(r.value("timing", ""), "round-trip");
    for (const auto& w : r["workloads"]) {
      EXPECT_GT(w.value("t_k_ns", 0.0), 0.0);
      EXPECT_GT(w.value("t_b_ns", 0.0), 0.0);
      EXPECT_EQ(w.value("repetitions", 0), 10);
      // Every timed call had a round of its own, or as many as fit.
      EXPECT_GE(w.value("timed_rounds", 0), 2);
    }
  }
  if (*c.flag == '\0' && std::string(c.outcome) == "ok") {
    // Candidates that pass raise no integrity flag (unless the case plants one).
    for (const char* f : {"below-sol", "stale-output", "cached-answer", "work-after-return"}) {
      EXPECT_FALSE(HasFlag(r, f)) << c.solution << " flagged " << f << ": " << r.dump(2);
    }
  }
}

// What each planted candidate comes to now that it runs in its own process
// and every call has new inputs at a new placement: caches keyed on
// pointers or sampled contents never hit with a wrong answer (ok, nothing
// gained), hidden-stream work is timed (ok; see WorkOnAHiddenStreamIsTimed),
// a thread that writes later leaves the outputs poisoned, and a process
// that crashes is observed from outside.
INSTANTIATE_TEST_SUITE_P(
    Candidates, CudaHarnessGuardTest,
    testing::Values(
        GuardCase{"correct", "ok", "", "", ""},
        GuardCase{"correct_cublas", "ok", "", "", ""},
        GuardCase{"correct_two_streams", "ok", "", "", ""},
        GuardCase{"correct", "ok", "", "below-sol", "--peak-gbps 0.001 --peak-tflops 0.001"},
        GuardCase{"lazy", "wrong_answer", "NaN", "", ""},
        GuardCase{"cache_pointer", "ok", "", "", ""},
        GuardCase{"cache_content", "ok", "", "", ""},
        GuardCase{"other_stream", "ok", "", "", ""},
        GuardCase{"background_thread", "wrong_answer", "output 'c'", "", ""},
        GuardCase{"modifies_input", "wrong_answer", "modified its inputs", "modified-inputs", ""},
        GuardCase{"nondeterministic", "ok", "", "", ""},
        GuardCase{"out_of_bounds", "out_of_bounds", "output 'c'", "", ""},
        GuardCase{"illegal_address", "crash", "cudaErrorIllegalAddress", "", ""},
        GuardCase{"nonzero_return", "crash", "returned 7", "", ""},
        GuardCase{"host_segfault", "crash", "SIGSEGV", "", ""},
        GuardCase{"stops_when_timed", "wrong_answer", "stale-output", "stale-output", ""},
        // Python solutions (candidate_host.py on the device arena).
        GuardCase{"python_correct", "ok", "", "", ""},
        GuardCase{"python_returns", "ok", "", "", ""},
        GuardCase{"python_wrong", "wrong_answer", "output 'c'", "", ""},
        GuardCase{"python_late_thread", "wrong_answer", "", "", ""},
        GuardCase{"python_side_stream", "ok", "", "", ""},
        // A Triton solution: the same Python host, its own kernel.
        GuardCase{"triton_correct", "ok", "", "", ""},
        GuardCase{"triton_wrong", "wrong_answer", "output 'c'", "", ""},
        // A C++ solution with a torch binding (public cuda_cpp).
        GuardCase{"cuda_cpp_correct", "ok", "", "", ""},
        GuardCase{"cuda_cpp_wrong", "wrong_answer", "output 'c'", "", ""}),
    [](const testing::TestParamInfo<GuardCase>& info) {
      std::string n = info.param.solution;
      if (*info.param.extra) n += "_with_peaks";
      return n;
    });

}  // namespace
