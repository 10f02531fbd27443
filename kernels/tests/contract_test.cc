// The harness contract (kernels/harness/contract.h): what the worker and
// `ratchet bench` write is what the harness reads, and what the harness
// writes is what they read, for both harnesses; anything else is an error,
// never a crash.
#include "kernels/harness/contract.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernels/harness/oracle_client.h"
#include "kernels/harness/pipeline.h"

namespace ratchet::kernels {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

HarnessArgs FullCpuArgs() {
  HarnessArgs a;
  a.kind = HarnessKind::kCpu;
  a.problem = "/job/problem";
  a.solution = "/job/solution";
  a.out = "/job/result.json";
  a.scratch = "/job/work";
  a.seed = 1234;
  a.warmups = 0;
  a.repetitions = 7;
  a.rounds = 2;
  a.screen = "on";
  a.peak_gbps = 11.8;
  a.peak_gflops = 95.25;
  a.knobs = {{"BLOCK", "64"}, {"EXPR", "a=b"}, {"BLOCK", "128"}};
  a.python = "/usr/bin/python3";
  a.baseline = "/job/baseline.json";
  a.back_to_back = 0.25;
  a.print = true;
  a.given_rounds = "/job/given-rounds";
  return a;
}

HarnessArgs FullCudaArgs() {
  HarnessArgs a = FullCpuArgs();
  a.kind = HarnessKind::kCuda;
  a.peak_gflops = 0;
  a.peak_tflops = 731.2;
  a.device_index = 3;
  a.arch = "sm_90a";
  a.cache_dir = "/job/tb-cache";
  a.compile_only = true;
  a.oracle_only = true;
  return a;
}

HarnessArgs Minimal(HarnessKind kind) {
  HarnessArgs a;
  a.kind = kind;
  a.problem = "p";
  a.solution = "s";
  a.out = "o";
  return a;
}

std::string Joined(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : " ") + x;
  return s;
}

TEST(HarnessArgsTest, RoundTripsEveryField) {
  for (const HarnessArgs& a : {FullCpuArgs(), FullCudaArgs(), Minimal(HarnessKind::kCpu),
                               Minimal(HarnessKind::kCuda)}) {
    auto back = ParseArgv(a.kind, ToArgv(a));
    ASSERT_TRUE(back.ok()) << back.status() << ": " << Joined(ToArgv(a));
    EXPECT_TRUE(*back == a) << Joined(ToArgv(a));
    EXPECT_EQ(ToArgv(*back), ToArgv(a));
  }
}

TEST(HarnessArgsTest, WritesTheCommandLineTheWorkerAlwaysWrote) {
  HarnessArgs a = Minimal(HarnessKind::kCpu);
  a.scratch = "w";
  a.seed = 7;
  a.warmups = 2;
  a.peak_gbps = 10;
  a.peak_gflops = 50;
  a.knobs = {{"BLOCK", "64"}};
  EXPECT_EQ(Joined(ToArgv(a)),
            "--problem p --solution s --out o --scratch w --seed 7 --warmups 2 "
            "--peak-gbps 10 --peak-gflops 50 --knob BLOCK=64");
  // CUDA: the device index always, the GPU's flags, none of the CPU's.
  HarnessArgs c = Minimal(HarnessKind::kCuda);
  c.peak_gbps = 2500;
  c.peak_tflops = 600;
  c.peak_gflops = 99;  // not a CUDA flag: not written
  c.arch = "sm_90a";
  EXPECT_EQ(Joined(ToArgv(c)),
            "--problem p --solution s --out o --seed 1 --device-index 0 --arch sm_90a "
            "--peak-gbps 2500 --peak-tflops 600");
  // The CPU harness gets none of the CUDA flags.
  HarnessArgs cpu = FullCudaArgs();
  cpu.kind = HarnessKind::kCpu;
  const std::string line = Joined(ToArgv(cpu));
  for (const char* flag : {"--device-index", "--arch", "--cache-dir", "--compile-only",
                           "--peak-tflops"})
    EXPECT_THAT(line, ::testing::Not(HasSubstr(flag)));
}

TEST(HarnessArgsTest, ReadsTheFormsOlderCommandLinesUse) {
  auto a = ParseArgv(HarnessKind::kCpu, {"--problem=p", "--solution", "s", "--out", "o",
                                         "--verify", "--knob", "X=1=2", "--seed=9"});
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->problem, "p");
  EXPECT_EQ(a->seed, 9u);
  EXPECT_THAT(a->knobs, ElementsAre(std::make_pair(std::string("X"), std::string("1=2"))));
  EXPECT_FALSE(a->warmups.has_value());
  EXPECT_EQ(DefaultsFor(HarnessKind::kCpu).warmups, 3);
  EXPECT_EQ(DefaultsFor(HarnessKind::kCpu).repetitions, 20);
  EXPECT_EQ(DefaultsFor(HarnessKind::kCuda).warmups, 10);
  EXPECT_EQ(DefaultsFor(HarnessKind::kCuda).repetitions, 50);
  EXPECT_EQ(DefaultsFor(HarnessKind::kCuda).rounds, 3);
}

// The counts the pipeline and the oracle start from are the CPU harness's,
// written once (contract.h).
TEST(HarnessArgsTest, ThePipelineAndTheOracleStartFromTheContractsDefaults) {
  const HarnessDefaults cpu = DefaultsFor(HarnessKind::kCpu);
  const PipelineOptions pipeline;
  EXPECT_EQ(pipeline.warmups, cpu.warmups);
  EXPECT_EQ(pipeline.repetitions, cpu.repetitions);
  EXPECT_EQ(pipeline.correctness_rounds, cpu.rounds);
  const OracleOptions oracle;
  EXPECT_EQ(oracle.warmups, cpu.warmups);
  EXPECT_EQ(oracle.repetitions, cpu.repetitions);
  EXPECT_EQ(oracle.rounds, cpu.rounds);
}

// A caller that passes flags through (bench) splits them as ParseArgv reads
// them: the switches stand alone, every other flag takes a value.
TEST(HarnessArgsTest, SwitchesAreTheFlagsParseArgvTakesWithoutAValue) {
  for (const char* flag : {"--print", "--oracle-only", "--verify", "--compile-only"})
    EXPECT_TRUE(IsHarnessSwitch(flag)) << flag;
  for (const char* flag : {"--seed", "--knob", "--rounds", "--baseline", "--arch", "--out"})
    EXPECT_FALSE(IsHarnessSwitch(flag)) << flag;
  const std::vector<std::string> base = {"--problem", "p", "--solution", "s", "--out", "o"};
  for (HarnessKind kind : {HarnessKind::kCpu, HarnessKind::kCuda}) {
    std::vector<std::string> args = base;
    for (const char* flag : {"--print", "--oracle-only", "--verify"}) args.push_back(flag);
    if (kind == HarnessKind::kCuda) args.push_back("--compile-only");
    args.push_back("--seed");
    args.push_back("7");
    auto a = ParseArgv(kind, args);
    ASSERT_TRUE(a.ok()) << a.status();
    EXPECT_TRUE(a->print);
    EXPECT_TRUE(a->oracle_only);
    EXPECT_EQ(a->compile_only, kind == HarnessKind::kCuda);
    EXPECT_EQ(a->seed, 7u);
  }
  // --compile-only is CUDA's: the CPU harness refuses it.
  std::vector<std::string> cpu = base;
  cpu.push_back("--compile-only");
  EXPECT_FALSE(ParseArgv(HarnessKind::kCpu, cpu).ok());
}

TEST(HarnessArgsTest, BadCommandLinesAreErrorsThatSayWhy) {
  const std::vector<std::string> base = {"--problem", "p", "--solution", "s", "--out", "o"};
  struct Case {
    HarnessKind kind;
    std::vector<std::string> extra;
    const char* why;
  };
  const std::vector<Case> cases = {
      {HarnessKind::kCpu, {"--frobnicate", "1"}, "unknown argument --frobnicate"},
      {HarnessKind::kCpu, {"--arch", "sm_90"}, "unknown argument --arch"},
      {HarnessKind::kCpu, {"--peak-tflops", "1"}, "unknown argument --peak-tflops"},
      {HarnessKind::kCuda, {"--peak-gflops", "1"}, "unknown argument --peak-gflops"},
      {HarnessKind::kCpu, {"--seed"}, "--seed needs a value"},
      {HarnessKind::kCpu, {"--seed", "-1"}, "--seed needs a non-negative integer"},
      {HarnessKind::kCpu, {"--warmups", "x"}, "--warmups needs a non-negative integer"},
      {HarnessKind::kCpu, {"--repetitions", "0"}, "--repetitions needs an integer >= 1"},
      {HarnessKind::kCpu, {"--rounds", "0"}, "--rounds needs an integer >= 1"},
      {HarnessKind::kCpu, {"--screen", "maybe"}, "--screen must be auto, on or off"},
      {HarnessKind::kCpu, {"--knob", "=1"}, "--knob needs NAME=VALUE"},
      {HarnessKind::kCpu, {"--knob", "X"}, "--knob needs NAME=VALUE"},
      {HarnessKind::kCpu, {"--back-to-back", "61"}, "--back-to-back needs seconds in (0, 60]"},
      {HarnessKind::kCpu, {"--peak-gbps", "10"}, "--peak-gbps and --peak-gflops go together"},
      {HarnessKind::kCuda, {"--peak-tflops", "10"}, "--peak-gbps and --peak-tflops go together"},
      {HarnessKind::kCuda, {"--peak-gbps", "-1"}, "--peak-gbps needs a positive number"},
      {HarnessKind::kCuda, {"--arch", "sm_75"}, "--arch must be one of"},
      {HarnessKind::kCuda, {"--device-index", "-2"}, "--device-index needs a non-negative"},
      {HarnessKind::kCpu, {"--help"}, "help"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = base;
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    auto a = ParseArgv(c.kind, args);
    ASSERT_FALSE(a.ok()) << Joined(args);
    EXPECT_THAT(std::string(a.status().message()), HasSubstr(c.why)) << Joined(args);
  }
  auto none = ParseArgv(HarnessKind::kCpu, {"--problem", "p"});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().message(), "--problem, --solution and --out are required");
}

TEST(HarnessArgsTest, SecretsTravelInTheEnvironment) {
  HarnessSecrets s;
  s.nonce = "abc123";
  s.independent_timing = 0.25;
  const std::vector<std::string> env = ToEnvironment(s);
  EXPECT_THAT(env, ElementsAre("RATCHET_RESULT_NONCE=abc123", "RATCHET_INDEPENDENT_TIMING=0.25"));
  setenv(kNonceEnv, "abc123", 1);
  setenv(kIndependentTimingEnv, "0.25", 1);
  HarnessSecrets back = SecretsFromEnvironment();
  EXPECT_EQ(back.nonce, "abc123");
  EXPECT_EQ(back.independent_timing, 0.25);
  setenv(kIndependentTimingEnv, "99", 1);  // out of range: none
  EXPECT_EQ(SecretsFromEnvironment().independent_timing, 0);
  unsetenv(kNonceEnv);
  unsetenv(kIndependentTimingEnv);
  EXPECT_EQ(SecretsFromEnvironment().nonce, "");
  EXPECT_TRUE(ToEnvironment(HarnessSecrets{}).empty());
}

// Arbitrary argument lists are read without crashing.
TEST(HarnessArgsTest, AnyArgumentsAreReadOrRefused) {
  const std::vector<std::string> words = {"--problem", "--solution", "--out", "--knob", "=",
                                          "X=1", "--seed", "18446744073709551616", "--print",
                                          "--arch", "sm_90", "--compile-only", "",  "--x=",
                                          "--warmups", "1e3", "--back-to-back=0.5", "-h"};
  std::mt19937 rng(7);
  for (int i = 0; i < 5000; ++i) {
    std::vector<std::string> args(rng() % 10);
    for (auto& a : args) a = words[rng() % words.size()];
    for (HarnessKind kind : {HarnessKind::kCpu, HarnessKind::kCuda}) {
      auto a = ParseArgv(kind, args);
      if (!a.ok()) continue;
      EXPECT_TRUE(*ParseArgv(kind, ToArgv(*a)) == *a) << Joined(args);
    }
  }
}

// ---------------------------------------------------------------------------

WorkloadResult CpuWorkload(int index) {
  WorkloadResult w;
  w.index = index;
  w.axes = "M=256,N=1024";
  w.correct = true;
  w.matched_fraction = 0.995;
  w.max_abs_error = 3.1e-6;
  w.t_k_ns = 81234.5;
  w.t_k_spread = 0.04;
  w.t_b_ns = 120345;
  w.t_b_spread = 0.02;
  w.t_b_given = index == 1;
  w.t_sol_ns = 20480;
  w.score = 0.66;
  w.timed_rounds = 23;
  w.calls = index == 1 ? 4096 : 0;
  if (index == 1) w.flags = {"stale-output"};
  return w;
}

HarnessResult CpuResult() {
  HarnessResult r;
  r.kind = HarnessKind::kCpu;
  r.outcome = "ok";
  r.score = 0.62;
  r.workloads = {CpuWorkload(0), CpuWorkload(1)};
  r.peak_gbps = 11.8;
  r.peak_gflops = 95;
  r.compile_seconds = 0.9;
  r.round_trip_ns = 6800;
  r.wall_seconds = 6.2;
  r.software = "torch 2.11.0";
  r.nonce = "n0nce";
  return r;
}

HarnessResult CudaResult() {
  HarnessResult r = CpuResult();
  r.kind = HarnessKind::kCuda;
  for (WorkloadResult& w : r.workloads) {
    w.atol = 1e-2;
    w.rtol = 1e-2;
    w.t_b_eager_ns = 254000;
    w.t_b_compile_ns = 80110;
    w.t_ref_kernel_ns = 61000;
    w.flops = 2.0 * 4096 * 4096 * 4096;
    w.bytes = 3.0 * 4096 * 4096 * 2;
    w.repetitions = 50;
    w.baseline_notes = {"torch.compile failed; T_b is eager only"};
  }
  r.workloads[0].flags = {"below-sol"};
  r.flags = {"below-sol", "stale-output"};
  r.device_name = "NVIDIA H200";
  r.compute_capability = "9.0";
  r.arch = "sm_90a";
  r.peak_tflops = 989.5;
  r.peak_gflops = r.peak_tflops * 1e3;
  r.peak_sku = "H200";
  r.peak_source = "table";
  r.peak_unit = "tensor";
  r.peak_dtype = "bfloat16";
  r.build_reused = true;
  r.candidate_user = "nobody";
  r.stage_seconds = {{"compile", 2.2}, {"device", 0.4}, {"oracle", 12.3}, {"timing", 2.6}};
  return r;
}

nlohmann::json Parsed(const std::string& text) { return nlohmann::json::parse(text); }

TEST(HarnessResultTest, RoundTripsBothKinds) {
  HarnessResult failed;  // a harness_error with nothing else: what a crash writes
  failed.message = "ratchet-harness: internal error: boom";
  HarnessResult failed_cuda = failed;
  failed_cuda.kind = HarnessKind::kCuda;
  for (const HarnessResult& r : {CpuResult(), CudaResult(), failed, failed_cuda}) {
    const std::string text = ToJson(r);
    auto back = FromJson(text);
    ASSERT_TRUE(back.ok()) << back.status() << "\n" << text;
    EXPECT_TRUE(*back == r) << text;
    EXPECT_EQ(ToJson(*back), text);
  }
}

TEST(HarnessResultTest, EachKindWritesItsOwnKeys) {
  const nlohmann::json cpu = Parsed(ToJson(CpuResult()));
  for (const char* key : {"flags", "device", "build_reused", "timing", "candidate_user"})
    EXPECT_FALSE(cpu.contains(key)) << key;
  EXPECT_EQ(cpu["peaks"].size(), 2u);
  EXPECT_EQ(cpu["isolation"], "process");
  EXPECT_FALSE(cpu["workloads"][0].contains("flags"));  // none: not written
  EXPECT_EQ(cpu["workloads"][1]["flags"], nlohmann::json::array({"stale-output"}));
  EXPECT_FALSE(cpu["workloads"][0].contains("calls"));
  for (const char* key : {"atol", "t_b_eager_ns", "flops", "repetitions", "baseline_notes"})
    EXPECT_FALSE(cpu["workloads"][0].contains(key)) << key;

  const nlohmann::json cuda = Parsed(ToJson(CudaResult()));
  EXPECT_EQ(cuda["device"]["compute_capability"], "9.0");
  EXPECT_EQ(cuda["peaks"]["gflops"], 989500.0);
  EXPECT_EQ(cuda["timing"], "round-trip");
  EXPECT_EQ(cuda["candidate_user"], "nobody");
  for (const char* key : {"atol", "t_b_eager_ns", "flops", "repetitions", "baseline_notes"})
    EXPECT_TRUE(cuda["workloads"][0].contains(key)) << key;
  // A CUDA workload's flags are always there, empty or not.
  HarnessResult quiet = CudaResult();
  quiet.workloads[1].flags.clear();
  EXPECT_EQ(Parsed(ToJson(quiet))["workloads"][1]["flags"], nlohmann::json::array());
  // Nothing reads the screen's time: it is not written.
  EXPECT_FALSE(cpu.contains("screen_seconds"));
  EXPECT_FALSE(cuda.contains("screen_seconds"));
}

// Files the harnesses wrote before the contract (less "screen_seconds",
// which nothing read) read and write back byte for byte.
TEST(HarnessResultTest, ReadsAndWritesTheHarnessesFilesAsTheyWere) {
  const std::string cpu = R"({
  "outcome": "ok",
  "message": "",
  "score": 1.0,
  "workloads": [
    {
      "index": 0,
      "axes": "N=1000",
      "correct": true,
      "matched_fraction": 1.0,
      "max_abs_error": 0.0,
      "t_k_ns": 471.0,
      "t_k_spread": 0.06369426751592357,
      "t_b_ns": 11658.0,
      "t_b_spread": 0.7473837708011666,
      "t_b_given": false,
      "t_sol_ns": 1400.4,
      "score": 1.0,
      "timed_rounds": 4
    }
  ],
  "peaks": {
    "gbps": 10.0,
    "gflops": 100.0
  },
  "compile_seconds": 0.098470287,
  "round_trip_ns": 13149.0,
  "wall_seconds": 1.026016592,
  "isolation": "process",
  "software": "torch 1.13.0a0",
  "nonce": "n0nce"
}
)";
  const std::string cuda = R"({
  "outcome": "harness_error",
  "message": "no usable CUDA device: cudaGetDeviceCount: cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime version",
  "score": 0.0,
  "workloads": [],
  "flags": [],
  "device": {
    "name": "",
    "compute_capability": "0.0",
    "arch": "sm_90"
  },
  "peaks": {
    "gbps": 0.0,
    "tflops": 0.0,
    "gflops": 0.0,
    "sku": "",
    "source": "none",
    "unit": "simt",
    "dtype": ""
  },
  "compile_seconds": 0.608995266,
  "build_reused": false,
  "round_trip_ns": 0.0,
  "wall_seconds": 0.610027325,
  "timing": "round-trip",
  "isolation": "process"
}
)";
  for (const std::string& text : {cpu, cuda}) {
    auto r = FromJson(text);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(ToJson(*r), text);
  }
  EXPECT_EQ(FromJson(cpu)->kind, HarnessKind::kCpu);
  EXPECT_EQ(FromJson(cuda)->kind, HarnessKind::kCuda);
  EXPECT_EQ(FromJson(cuda)->arch, "sm_90");
}

TEST(HarnessResultTest, MessagesAreCutAndBytesReplaced) {
  HarnessResult r;
  r.message = "head" + std::string(kMaxResultMessage, 'x') + "tail";
  auto back = FromJson(ToJson(r));
  ASSERT_TRUE(back.ok());
  EXPECT_LE(back->message.size(), kMaxResultMessage);
  EXPECT_THAT(back->message, HasSubstr("tail"));
  EXPECT_THAT(back->message, ::testing::Not(HasSubstr("head")));
  r.message = "bad \xff\xfe bytes";
  back = FromJson(ToJson(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->message, "bad \xef\xbf\xbd\xef\xbf\xbd bytes");
}

TEST(HarnessResultTest, OlderAndLenientInputReads) {
  // An older CUDA harness's events time, integers for doubles, unknown keys,
  // nulls for absent keys.
  auto r = FromJson(R"({"outcome": "ok", "score": 1, "screen_seconds": 1.4, "whatever": [1],
      "message": null, "workloads": [{"index": 2.0, "t_k_ns": 150000, "t_k_events_ns": 219500,
      "flags": null, "axes": "N=4"}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->score, 1.0);
  EXPECT_EQ(r->message, "");
  ASSERT_EQ(r->workloads.size(), 1u);
  EXPECT_EQ(r->workloads[0].index, 2);
  EXPECT_EQ(r->workloads[0].t_k_ns, 150000);
  EXPECT_EQ(r->workloads[0].t_k_events_ns, 219500);
  EXPECT_THAT(ToJson(*r), HasSubstr("\"t_k_events_ns\": 219500.0"));
  for (const char* outcome : {"ok", "compile_error", "wrong_answer", "timeout", "crash",
                              "out_of_bounds", "harness_error"}) {
    EXPECT_TRUE(FromJson(std::string("{\"outcome\": \"") + outcome + "\"}").ok()) << outcome;
  }
  // The secret is only ever compared: anything but a string is none.
  EXPECT_EQ(FromJson(R"({"outcome": "ok", "nonce": 5})")->nonce, "");
  EXPECT_EQ(FromJson(R"({"outcome": "ok", "nonce": "s"})")->nonce, "s");
}

TEST(HarnessResultTest, MalformedResultsAreErrorsThatNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"{\"outcome\": \"ok\", ", "not valid JSON"},
      {"[1, 2]", "not a JSON object"},
      {"{}", "missing \"outcome\""},
      {R"({"outcome": 3})", "\"outcome\" has the wrong type"},
      {R"({"outcome": "segfaulted"})", "unknown outcome \"segfaulted\""},
      {R"({"outcome": "ok", "score": "high"})", "\"score\""},
      {R"({"outcome": "ok", "message": 1})", "\"message\""},
      {R"({"outcome": "ok", "software": 3})", "\"software\""},
      {R"({"outcome": "ok", "workloads": {}})", "\"workloads\" is not an array"},
      {R"({"outcome": "ok", "workloads": [3]})", "not an object"},
      {R"({"outcome": "ok", "workloads": [{"axes": "N=1"}]})", "missing \"index\""},
      {R"({"outcome": "ok", "workloads": [{"index": 1e300}]})", "\"index\" is not a whole number"},
      {R"({"outcome": "ok", "workloads": [{"index": 0.5}]})", "\"index\" is not a whole number"},
      {R"({"outcome": "ok", "workloads": [{"index": 4294967296}]})", "\"index\""},
      {R"({"outcome": "ok", "workloads": [{"index": 0, "calls": 1e19}]})", "\"calls\""},
      {R"({"outcome": "ok", "workloads": [{"index": 0, "t_b_given": "yes"}]})", "\"t_b_given\""},
      {R"({"outcome": "ok", "workloads": [{"index": 0, "flags": "below-sol"}]})", "\"flags\""},
      {R"({"outcome": "ok", "workloads": [{"index": 0, "flags": ["ok", 3]}]})", "\"flags\""},
      {R"({"outcome": "ok", "workloads": [{"index": 0, "t_b_compile_ns": "slow"}]})",
       "\"t_b_compile_ns\""},
      {R"({"outcome": "ok", "device": "H200"})", "\"device\" is not an object"},
      {R"({"outcome": "ok", "device": {"name": 1}})", "\"name\""},
      {R"({"outcome": "ok", "peaks": {"gbps": "fast"}})", "\"gbps\""},
      {R"({"outcome": "ok", "flags": [1]})", "\"flags\""},
      {R"({"outcome": "ok", "build_reused": 1})", "\"build_reused\""},
  };
  for (const auto& [text, why] : cases) {
    auto r = FromJson(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(why)) << text;
  }
}

// Arbitrary bytes, and results cut anywhere, are read or refused: never a
// crash or an exception.
TEST(HarnessResultTest, AnyBytesAreReadOrRefused) {
  const std::string text = ToJson(CudaResult());
  for (size_t n = 0; n + 2 <= text.size(); n += 7) {  // at least "}\n" missing
    auto r = FromJson(text.substr(0, n));
    EXPECT_FALSE(r.ok()) << n;
  }
  std::mt19937 rng(11);
  for (int i = 0; i < 2000; ++i) {
    std::string s = text;
    for (int k = 0; k < 3; ++k) s[rng() % s.size()] = static_cast<char>(rng());
    auto r = FromJson(s);
    if (!r.ok()) continue;
    EXPECT_TRUE(FromJson(ToJson(*r)).ok());
  }
}

}  // namespace
}  // namespace ratchet::kernels
