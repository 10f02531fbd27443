#include "worker/result.h"

#include <fstream>
#include <sstream>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "kernels/harness/contract.h"
#include "prometheus/counter.h"
#include "prometheus/registry.h"
#include "worker/device_busy.h"
#include "worker/hardware.h"
#include "worker/worker.h"

namespace ratchet::worker {
namespace {

std::string ReadTestdata(const std::string& name) {
  std::ifstream in(std::string(RATCHET_WORKER_TESTDATA) + "/" + name);
  EXPECT_TRUE(in.good()) << name;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

RunResult Exited(int code, double wall = 1.5) {
  RunResult r;
  r.exit_code = code;
  r.wall_seconds = wall;
  return r;
}

TEST(ResultTest, OkResultMapsEveryField) {
  auto eval = ParseHarnessResult(ReadTestdata("ok.json"));
  ASSERT_TRUE(eval.ok()) << eval.status();
  EXPECT_EQ(eval->outcome(), v1::OUTCOME_OK);
  EXPECT_DOUBLE_EQ(eval->score(), 0.62);
  ASSERT_EQ(eval->workloads_size(), 2);
  const auto& w = eval->workloads(0);
  EXPECT_EQ(w.index(), 0);
  EXPECT_EQ(w.axes(), "M=256,N=1024");
  EXPECT_TRUE(w.correct());
  EXPECT_DOUBLE_EQ(w.matched_fraction(), 1.0);
  EXPECT_DOUBLE_EQ(w.max_abs_error(), 3.1e-6);
  EXPECT_DOUBLE_EQ(w.t_k_ns(), 81234.0);
  EXPECT_DOUBLE_EQ(w.t_k_spread(), 0.04);
  EXPECT_DOUBLE_EQ(w.t_b_ns(), 120345.0);
  EXPECT_DOUBLE_EQ(w.t_sol_ns(), 20480.0);
  EXPECT_DOUBLE_EQ(w.score(), 0.66);
  EXPECT_EQ(eval->workloads(1).index(), 1);
  EXPECT_DOUBLE_EQ(eval->workloads(1).t_k_ns(), 150000);  // integer JSON number
}

TEST(ResultTest, StageSecondsTravel) {
  kernels::HarnessResult r;
  r.outcome = kernels::kOutcomeOk;
  r.stage_seconds = {{"compile", 1.5}, {"oracle", 4.25}};
  auto eval = ParseHarnessResult(kernels::ToJson(r));
  ASSERT_TRUE(eval.ok()) << eval.status();
  ASSERT_EQ(eval->stage_seconds().size(), 2u);
  EXPECT_DOUBLE_EQ(eval->stage_seconds().at("compile"), 1.5);
  EXPECT_DOUBLE_EQ(eval->stage_seconds().at("oracle"), 4.25);
}

// A result is the harness's only if it carries the secret the worker gave
// it and the harness exited 0: candidate code that wrote the file (and killed
// the harness) is a crash, "forged-result".
TEST(ResultTest, AResultWithoutTheSecretIsForged) {
  const std::string ok = ReadTestdata("ok.json");
  auto forged = EvaluationFromRun(Exited(0), ok, 120, "", "s3cret");
  EXPECT_EQ(forged.outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(forged.message().find("forged-result"), std::string::npos) << forged.message();
  EXPECT_EQ(forged.score(), 0);
  std::string signed_ok = ok;
  signed_ok.insert(signed_ok.find('{') + 1, "\"nonce\": \"s3cret\", ");
  EXPECT_EQ(EvaluationFromRun(Exited(0), signed_ok, 120, "", "s3cret").outcome(),
            v1::OUTCOME_OK);
  auto killed = EvaluationFromRun(Exited(137), signed_ok, 120, "", "s3cret");
  EXPECT_EQ(killed.outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(killed.message().find("forged-result"), std::string::npos) << killed.message();
}

// The harness writes only files it can read back, so when it was given a
// secret an unreadable file is not its own either.
TEST(ResultTest, AnUnreadableResultIsForgedWhenASecretWasGiven) {
  for (const std::string text : {"{not json", "[1]", R"({"outcome": "ok", "score": "high"})",
                                 R"({"outcome": "ok", "nonce": 5})"}) {
    auto eval = EvaluationFromRun(Exited(0), text, 120, "", "s3cret");
    EXPECT_EQ(eval.outcome(), v1::OUTCOME_CRASH) << text;
    EXPECT_NE(eval.message().find("forged-result"), std::string::npos) << eval.message();
    // Without a secret to check it is the harness's error, as before.
    EXPECT_EQ(EvaluationFromRun(Exited(0), text, 120, "").outcome(),
              text.find("nonce") == std::string::npos ? v1::OUTCOME_HARNESS_ERROR
                                                      : v1::OUTCOME_OK)
        << text;
  }
}

TEST(ResultTest, RunWithOkFileUsesSandboxWallTime) {
  auto eval = EvaluationFromRun(Exited(0, 7.25), ReadTestdata("ok.json"), 120, "");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_OK);
  EXPECT_DOUBLE_EQ(eval.score(), 0.62);
  EXPECT_DOUBLE_EQ(eval.wall_seconds(), 7.25);  // not the file's 6.2
}

TEST(ResultTest, NonOkOutcomeHasZeroScoreAndKeepsMessage) {
  auto eval = EvaluationFromRun(Exited(0), ReadTestdata("wrong_answer.json"), 120, "");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_WRONG_ANSWER);
  EXPECT_EQ(eval.score(), 0);
  EXPECT_NE(eval.message().find("37% of elements match"), std::string::npos);
  ASSERT_EQ(eval.workloads_size(), 1);
  EXPECT_FALSE(eval.workloads(0).correct());

  auto compile = EvaluationFromRun(Exited(0), ReadTestdata("compile_error.json"), 120, "");
  EXPECT_EQ(compile.outcome(), v1::OUTCOME_COMPILE_ERROR);
  EXPECT_NE(compile.message().find("expected ;"), std::string::npos);
}

TEST(ResultTest, EveryOutcomeStringMaps) {
  for (const auto& [s, o] : std::vector<std::pair<std::string, v1::Outcome>>{
           {"ok", v1::OUTCOME_OK},
           {"compile_error", v1::OUTCOME_COMPILE_ERROR},
           {"wrong_answer", v1::OUTCOME_WRONG_ANSWER},
           {"timeout", v1::OUTCOME_TIMEOUT},
           {"crash", v1::OUTCOME_CRASH},
           {"out_of_bounds", v1::OUTCOME_OUT_OF_BOUNDS},
           {"harness_error", v1::OUTCOME_HARNESS_ERROR}}) {
    EXPECT_EQ(OutcomeFromString(s), o) << s;
    EXPECT_EQ(OutcomeLabel(o), s);
    auto eval = ParseHarnessResult("{\"outcome\": \"" + s + "\"}");
    ASSERT_TRUE(eval.ok()) << s;
    EXPECT_EQ(eval->outcome(), o);
  }
}

TEST(ResultTest, MalformedResultsAreHarnessErrors) {
  for (const char* name : {"truncated.json", "unknown_outcome.json", "bad_types.json"}) {
    auto parsed = ParseHarnessResult(ReadTestdata(name));
    EXPECT_FALSE(parsed.ok()) << name;
    auto eval = EvaluationFromRun(Exited(0), ReadTestdata(name), 120, "stage: timing\n");
    EXPECT_EQ(eval.outcome(), v1::OUTCOME_HARNESS_ERROR) << name;
    EXPECT_EQ(eval.score(), 0) << name;
    EXPECT_NE(eval.message().find("unreadable harness result"), std::string::npos);
    EXPECT_NE(eval.message().find("stage: timing"), std::string::npos);
  }
  EXPECT_NE(ParseHarnessResult(ReadTestdata("unknown_outcome.json")).status().message().find(
                "segfaulted"),
            std::string::npos);
  EXPECT_NE(ParseHarnessResult(ReadTestdata("bad_types.json")).status().message().find("score"),
            std::string::npos);
  EXPECT_FALSE(ParseHarnessResult("[1, 2]").ok());
}

TEST(ResultTest, NoResultFileAfterExitIsCrashWithStatus) {
  auto eval = EvaluationFromRun(Exited(3), std::nullopt, 120, "stage: compile\n");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(eval.message().find("exited with status 3 without a result"), std::string::npos);
  EXPECT_NE(eval.message().find("stage: compile"), std::string::npos);

  // exit(0) from candidate code before the harness wrote anything.
  auto empty = EvaluationFromRun(Exited(0), std::string(), 120, "");
  EXPECT_EQ(empty.outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(empty.message().find("status 0"), std::string::npos);
}

TEST(ResultTest, SignalIsCrashNamingTheSignalEvenWithAResultFile) {
  RunResult run;
  run.signal = 11;
  auto eval = EvaluationFromRun(run, ReadTestdata("ok.json"), 120, "");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_CRASH);
  EXPECT_NE(eval.message().find("SIGSEGV"), std::string::npos) << eval.message();
  EXPECT_EQ(eval.score(), 0);
}

TEST(ResultTest, TimeoutWinsOverEverything) {
  RunResult run;
  run.timed_out = true;
  run.signal = 9;
  run.wall_seconds = 30.01;
  auto eval = EvaluationFromRun(run, ReadTestdata("ok.json"), 30, "stage: timing workload 2/4\n");
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_TIMEOUT);
  EXPECT_EQ(eval.score(), 0);
  EXPECT_NE(eval.message().find("30s"), std::string::npos) << eval.message();
  EXPECT_NE(eval.message().find("workload 2/4"), std::string::npos);
}

TEST(ResultTest, LongMessagesAreClipped) {
  std::string big(100000, 'x');
  auto eval = ParseHarnessResult("{\"outcome\": \"compile_error\", \"message\": \"" + big + "\"}");
  ASSERT_TRUE(eval.ok());
  EXPECT_LT(eval->message().size(), 17 * 1024u);
}

TEST(ResultTest, GpuExtrasMapToTheProto) {
  auto eval = ParseHarnessResult(ReadTestdata("ok_cuda.json"));
  ASSERT_TRUE(eval.ok()) << eval.status();
  ASSERT_EQ(eval->workloads_size(), 1);
  const auto& w = eval->workloads(0);
  EXPECT_DOUBLE_EQ(w.t_k_ns(), 215000);
  EXPECT_DOUBLE_EQ(w.t_k_events_ns(), 219500);
  EXPECT_DOUBLE_EQ(w.t_b_ns(), 240000);
  EXPECT_DOUBLE_EQ(w.t_b_eager_ns(), 251000);
  EXPECT_DOUBLE_EQ(w.t_b_compile_ns(), 240000);
  EXPECT_DOUBLE_EQ(w.t_ref_kernel_ns(), 238000);
  EXPECT_EQ(w.repetitions(), 50);
  ASSERT_EQ(w.flags_size(), 2);
  EXPECT_EQ(w.flags(0), "timing-disagreement");
  EXPECT_EQ(w.flags(1), "compile-fallback");

  // Absent on the CPU harness: zeros and no flags.
  auto cpu = ParseHarnessResult(ReadTestdata("ok.json"));
  ASSERT_TRUE(cpu.ok());
  EXPECT_EQ(cpu->workloads(0).t_b_eager_ns(), 0);
  EXPECT_EQ(cpu->workloads(0).flags_size(), 0);
  EXPECT_EQ(cpu->workloads(0).repetitions(), 0);
}

TEST(ResultTest, BaselineKeysMapToTheProto) {
  auto eval = ParseHarnessResult(
      R"({"outcome": "ok", "score": 0.5, "software": "torch 2.11.0+cu130 / cuda 13.0",
          "workloads": [{"index": 0, "t_b_ns": 1000, "t_b_spread": 0.03, "t_b_given": true},
                        {"index": 1, "t_b_ns": 2000, "t_b_spread": 0.04, "t_b_given": false}]})");
  ASSERT_TRUE(eval.ok()) << eval.status();
  EXPECT_EQ(eval->baseline_software(), "torch 2.11.0+cu130 / cuda 13.0");
  ASSERT_EQ(eval->workloads_size(), 2);
  EXPECT_TRUE(eval->workloads(0).t_b_given());
  EXPECT_DOUBLE_EQ(eval->workloads(0).t_b_spread(), 0.03);
  EXPECT_FALSE(eval->workloads(1).t_b_given());
  EXPECT_DOUBLE_EQ(eval->workloads(1).t_b_spread(), 0.04);
  // Absent (an older harness): no software, measured.
  auto old = ParseHarnessResult(ReadTestdata("ok.json"));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->baseline_software(), "");
  EXPECT_FALSE(old->workloads(0).t_b_given());
  EXPECT_EQ(old->workloads(0).t_b_spread(), 0);
  // Wrong types are named.
  auto bad = ParseHarnessResult(R"({"outcome": "ok", "software": 3})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("software"), std::string::npos);
  bad = ParseHarnessResult(R"({"outcome": "ok", "workloads": [{"index": 0, "t_b_given": "yes"}]})");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("t_b_given"), std::string::npos);
}

TEST(ResultTest, GpuExtrasOfTheWrongTypeAreRejectedByName) {
  auto bad_flags = ParseHarnessResult(
      R"({"outcome": "ok", "workloads": [{"index": 0, "flags": "below-sol"}]})");
  ASSERT_FALSE(bad_flags.ok());
  EXPECT_NE(bad_flags.status().message().find("flags"), std::string::npos);
  auto bad_flag = ParseHarnessResult(
      R"({"outcome": "ok", "workloads": [{"index": 0, "flags": ["ok", 3]}]})");
  EXPECT_FALSE(bad_flag.ok());
  auto bad_time = ParseHarnessResult(
      R"({"outcome": "ok", "workloads": [{"index": 0, "t_b_compile_ns": "slow"}]})");
  ASSERT_FALSE(bad_time.ok());
  EXPECT_NE(bad_time.status().message().find("t_b_compile_ns"), std::string::npos);
}

// The GPU probe's output (kernels/sol/gpu_probe_main.cc) and the worker's
// reading of it.
TEST(GpuProbeParseTest, FillsGpusAndCalibration) {
  v1::Hardware hw;
  hw.add_gpus("from /proc");  // replaced by the probe's view
  std::string note;
  ASSERT_TRUE(ParseGpuProbe(ReadTestdata("gpu_probe_h200.json"), &hw, &note).ok());
  EXPECT_EQ(note, "");
  ASSERT_EQ(hw.gpus_size(), 2);
  EXPECT_EQ(hw.gpus(0), "NVIDIA H200");
  ASSERT_EQ(hw.gpu_info_size(), 2);
  const auto& g = hw.gpu_info(0);
  EXPECT_EQ(g.sku(), "H200");
  EXPECT_EQ(g.compute_capability(), "9.0");
  EXPECT_EQ(g.sm_count(), 132);
  EXPECT_EQ(g.l2_bytes(), 52428800);
  EXPECT_DOUBLE_EQ(g.table_dram_gbps(), 4800);
  EXPECT_DOUBLE_EQ(g.measured_copy_gbps(), 4012.5);
  EXPECT_DOUBLE_EQ(g.measured_gemm_bf16_tflops(), 731.2);
  const std::string line = GpuSummary(g);
  for (const char* want : {"NVIDIA H200", "H200", "4012 GB/s", "table 4800", "731 TFLOP/s"})
    EXPECT_NE(line.find(want), std::string::npos) << want << " in " << line;
  EXPECT_NE(GpuSummary(hw.gpu_info(1)).find("not in the peak table"), std::string::npos);
}

// The NCCL all-reduce figures of the probe (kernels/sol/nccl_busbw.h) land in
// Hardware; older probes without them leave 0; why it is 0 goes in the note.
TEST(GpuProbeParseTest, ReadsNcclAllReduce) {
  const std::string gpu =
      R"({"index": 0, "model": "NVIDIA H100 80GB HBM3", "sku": "H100-SXM", "error": ""})";
  v1::Hardware hw;
  std::string note;
  ASSERT_TRUE(ParseGpuProbe(R"({"gpus": [)" + gpu + ", " + gpu +
                                R"(], "nccl_ranks": 2, "nccl_allreduce_busbw_gbps": 361.5,
                                "nccl_allreduce_algbw_gbps": 361.5, "nccl_bytes": 268435456,
                                "nccl_median_ms": 0.74, "nccl_version": "2.28.9",
                                "nccl_note": "", "note": ""})",
                            &hw, &note)
                  .ok());
  EXPECT_EQ(note, "");
  EXPECT_EQ(hw.nccl_ranks(), 2);
  EXPECT_DOUBLE_EQ(hw.nccl_allreduce_busbw_gbps(), 361.5);

  v1::Hardware old;
  ASSERT_TRUE(ParseGpuProbe(R"({"gpus": [)" + gpu + R"(], "note": ""})", &old, &note).ok());
  EXPECT_EQ(old.nccl_ranks(), 0);
  EXPECT_EQ(old.nccl_allreduce_busbw_gbps(), 0);

  v1::Hardware failed;
  ASSERT_TRUE(ParseGpuProbe(R"({"gpus": [)" + gpu +
                                R"(], "nccl_ranks": 0, "nccl_allreduce_busbw_gbps": 0,
                                "nccl_note": "ncclCommInitAll: unhandled cuda error", "note": ""})",
                            &failed, &note)
                  .ok());
  EXPECT_EQ(failed.nccl_ranks(), 0);
  EXPECT_EQ(note, "NCCL all-reduce: ncclCommInitAll: unhandled cuda error");
}

TEST(GpuProbeParseTest, NoGpuKeepsHardwareAndSaysWhy) {
  v1::Hardware hw;
  std::string note;
  ASSERT_TRUE(ParseGpuProbe(R"({"gpus": [], "note": "no GPU visible"})", &hw, &note).ok());
  EXPECT_EQ(hw.gpu_info_size(), 0);
  EXPECT_EQ(note, "no GPU visible");
  EXPECT_FALSE(ParseGpuProbe("not json", &hw, &note).ok());
  EXPECT_FALSE(ParseGpuProbe(R"({"gpus": [{"model": "x"}]})", &hw, &note).ok());  // no index
  EXPECT_FALSE(ParseGpuProbe(R"({"gpus": 3})", &hw, &note).ok());
}

TEST(GpuProbeParseTest, AbsentOrFailingProbeMeansCpuOnly) {
  v1::Hardware hw;
  std::string line = ProbeGpus("/nonexistent/ratchet-gpu-probe", true, 5, &hw);
  EXPECT_NE(line.find("CPU-only worker"), std::string::npos) << line;
  EXPECT_EQ(hw.gpu_info_size(), 0);
  line = ProbeGpus("/bin/false", true, 5, &hw);
  EXPECT_NE(line.find("exited with status 1"), std::string::npos) << line;
  // A probe that prints the H200 file: a script standing in for the binary.
  const std::string script = ::testing::TempDir() + "/fake-gpu-probe.sh";
  {
    std::ofstream out(script);
    out << "#!/bin/sh\ncat '" << RATCHET_WORKER_TESTDATA << "/gpu_probe_h200.json'\n";
  }
  ASSERT_EQ(chmod(script.c_str(), 0755), 0);
  line = ProbeGpus(script, true, 5, &hw);
  EXPECT_NE(line.find("2 GPU(s)"), std::string::npos) << line;
  EXPECT_EQ(hw.gpu_info_size(), 2);
}

// Routing of "cuda" jobs in the worker.
class CudaRoutingTest : public ::testing::Test {
 protected:
  Worker MakeWorker(const v1::Hardware& hw) {
    WorkerOptions o;
    o.coordinator = "127.0.0.1:1";  // never contacted
    o.scratch_root = ::testing::TempDir() + "/cuda-routing";
    o.harness_path = "/bin/true";
    o.cuda_harness_path = "/bin/true";
    o.tb_cache_dir = ::testing::TempDir() + "/tb-cache";
    std::string warning;
    auto sandbox = Sandbox::Create("none", &warning);
    EXPECT_TRUE(sandbox.ok());
    return Worker(o, *std::move(sandbox), hw, nullptr);
  }
  static v1::Job CudaJob() {
    v1::Job job;
    job.set_id(7);
    job.set_device(v1::DEVICE_CUDA);
    job.set_seed(3);
    job.mutable_problem()->set_definition_json("{}");
    job.mutable_problem()->set_workload_jsonl("");
    return job;
  }
  static std::string After(const std::vector<std::string>& argv, const std::string& flag) {
    auto it = std::find(argv.begin(), argv.end(), flag);
    return it == argv.end() || it + 1 == argv.end() ? "<absent>" : *(it + 1);
  }
};

TEST_F(CudaRoutingTest, CpuOnlyWorkerRefusesCudaJobs) {
  Worker worker = MakeWorker(v1::Hardware());
  bool cancelled = false;
  v1::Evaluation eval = worker.RunJob(CudaJob(), nullptr, &cancelled, 0);
  EXPECT_EQ(eval.outcome(), v1::OUTCOME_HARNESS_ERROR);
  EXPECT_NE(eval.message().find("this worker has no GPU"), std::string::npos) << eval.message();
  EXPECT_EQ(eval.job_id(), 7);
}

TEST_F(CudaRoutingTest, ArgvPicksTheCudaHarnessGpuAndPeaks) {
  v1::Hardware hw;
  std::string note;
  ASSERT_TRUE(ParseGpuProbe(ReadTestdata("gpu_probe_h200.json"), &hw, &note).ok());
  hw.set_peak_gbps(10);
  hw.set_peak_gflops(100);
  Worker worker = MakeWorker(hw);
  v1::Job job = CudaJob();
  // Slot 0: GPU 0, an H200 the table knows: no peaks passed.
  auto argv = worker.HarnessArgv(job, "/s", 0);
  EXPECT_EQ(argv[0], "/bin/true");
  EXPECT_EQ(After(argv, "--device-index"), "0");
  EXPECT_EQ(After(argv, "--peak-gbps"), "<absent>");
  EXPECT_EQ(After(argv, "--peak-gflops"), "<absent>");
  EXPECT_EQ(After(argv, "--cache-dir"), "/s/tb-cache");
  // Slot 1: GPU 1, unknown to the table: its calibration is the peak.
  argv = worker.HarnessArgv(job, "/s", 1);
  EXPECT_EQ(After(argv, "--device-index"), "1");
  EXPECT_EQ(After(argv, "--peak-gbps"), "2500");
  EXPECT_EQ(After(argv, "--peak-tflops"), "600");
  // Slot 2 wraps to GPU 0.
  EXPECT_EQ(After(worker.HarnessArgv(job, "/s", 2), "--device-index"), "0");
  // A CPU job keeps the CPU harness flags.
  job.set_device(v1::DEVICE_CPU);
  argv = worker.HarnessArgv(job, "/s", 1);
  EXPECT_EQ(After(argv, "--device-index"), "<absent>");
  EXPECT_EQ(After(argv, "--peak-gflops"), "100");
  EXPECT_EQ(After(argv, "--cache-dir"), "<absent>");
}

TEST_F(CudaRoutingTest, StoredBaselinesGoToTheCpuHarnessOnly) {
  Worker worker = MakeWorker(v1::Hardware());
  v1::Job job = CudaJob();
  job.set_device(v1::DEVICE_CPU);
  EXPECT_EQ(After(worker.HarnessArgv(job, "/s", 0), "--baseline"), "<absent>");
  v1::Baseline* b = job.add_baselines();
  b->set_software("torch 2");
  b->set_t_b_ns(1000);
  EXPECT_EQ(After(worker.HarnessArgv(job, "/s", 0), "--baseline"), "/s/baseline.json");
  // The CUDA harness reads the same file.
  job.set_device(v1::DEVICE_CUDA);
  EXPECT_TRUE(PassesBaseline(job));
  EXPECT_EQ(After(worker.HarnessArgv(job, "/s", 0), "--baseline"), "/s/baseline.json");
}

}  // namespace
}  // namespace ratchet::worker

namespace ratchet::worker {
namespace {

// Marks every millisecond-long window: `calls` per window at `ns` each, with
// the windows listed in `stretched` taking `factor` times longer (preempted).
std::vector<Mark> Marks(int windows, int64_t calls, double ns, const std::vector<int>& stretched,
                        double factor) {
  std::vector<Mark> marks = {{0, 10.0, 10.0}};
  for (int w = 1; w <= windows; ++w) {
    const bool slow = std::find(stretched.begin(), stretched.end(), w) != stretched.end();
    const double at = marks.back().seconds + calls * ns * 1e-9 * (slow ? factor : 1.0);
    marks.push_back({marks.back().calls + calls, at, at});
  }
  return marks;
}

TEST(IndependentTimingTest, PreemptedWindowsDropOut) {
  // 40 windows of 20 calls at 60 us; a third of them stretched 3x by load.
  std::vector<int> busy;
  for (int w = 1; w <= 40; w += 3) busy.push_back(w);
  IndependentTime t = PerCallFromMarks(Marks(40, 20, 60e3, busy, 3.0));
  EXPECT_NEAR(t.ns_per_call, 60e3, 1);
  EXPECT_EQ(t.calls, 20 * 20);  // the second half's windows
}

TEST(IndependentTimingTest, SlowCallsEverywhereStaySlow) {
  // A tampered in-process timer cannot make the real calls faster: every
  // window shows them as they are.
  IndependentTime t = PerCallFromMarks(Marks(40, 2, 480e3, {}, 1.0));
  EXPECT_NEAR(t.ns_per_call, 480e3, 1);
}

TEST(IndependentTimingTest, GapsBetweenBatchesDoNotCount) {
  // Each batch bracketed by two marks, 20 ms of the harness's own work
  // (placing inputs, checking outputs) between one batch and the next: the
  // figure is the calls' time alone, with many windows and with few.
  for (const int batches : {40, 2}) {
    std::vector<Mark> marks;
    double now = 5.0;
    int64_t calls = 0;
    for (int b = 0; b < batches; ++b) {
      now += 20e-3;
      marks.push_back({calls, now, now});
      calls += 16;
      now += 16 * 70e-6;
      marks.push_back({calls, now, now});
    }
    IndependentTime t = PerCallFromMarks(marks);
    EXPECT_NEAR(t.ns_per_call, 70e3, 1) << batches << " batches";
    EXPECT_GT(t.calls, 0);
  }
}

TEST(IndependentTimingTest, FewWindowsAreSummed) {
  // Doubling batches (a slow candidate): the windows of the second half of
  // the calls, summed.
  std::vector<Mark> marks = {{0, 1.0, 1.0}};
  for (int64_t calls = 1; calls <= 1024; calls *= 2) {
    const double at = 1.0 + (calls * 2 - 1) * 40e-6;
    marks.push_back({calls * 2 - 1, at, at});
  }
  IndependentTime t = PerCallFromMarks(marks);
  EXPECT_EQ(t.calls, 2047 - 1023);
  EXPECT_NEAR(t.ns_per_call, 40e3, 1);
  EXPECT_EQ(PerCallFromMarks({{0, 1.0, 1.0}}).calls, 0);
}

TEST(IndependentTimingTest, LateReadingDoesNotShrinkWindows) {
  // A busy worker read each batch's two marks together, 3 ms after the
  // harness wrote the second: the harness's stamps still time the calls.
  std::vector<Mark> marks;
  double now = 2.0;
  int64_t calls = 0;
  for (int b = 0; b < 40; ++b) {
    now += 1e-3;
    const double begin = now;
    calls += 100;
    now += 100 * 20e-6;
    marks.push_back({calls - 100, begin, now + 3e-3});
    marks.push_back({calls, now, now + 3e-3});
  }
  ASSERT_TRUE(MarksArePlausible(marks));
  EXPECT_NEAR(PerCallFromMarks(marks).ns_per_call, 20e3, 1);
}

TEST(IndependentTimingTest, MarksFromTheFutureOrGoingBackAreRefused) {
  std::vector<Mark> ok = {{0, 1.0, 1.0001}, {10, 1.5, 1.5002}};
  EXPECT_TRUE(MarksArePlausible(ok));
  std::vector<Mark> future = ok;
  future[1].seconds = 1.6;  // stamped after it was read
  EXPECT_FALSE(MarksArePlausible(future));
  std::vector<Mark> back = ok;
  back[1].seconds = 0.9;
  back[1].arrived = 1.5;
  EXPECT_FALSE(MarksArePlausible(back));
  std::vector<Mark> fewer = ok;
  fewer[1].calls = -1;
  EXPECT_FALSE(MarksArePlausible(fewer));
}

}  // namespace
}  // namespace ratchet::worker

namespace ratchet::worker {
namespace {

double BusySeconds(prometheus::Family<prometheus::Counter>& family, const std::string& device) {
  return family.Add({{"device", device}}).Value();
}

TEST(DeviceBusyTest, CountsWhileAJobHoldsTheDevice) {
  prometheus::Registry registry;
  auto& family = prometheus::BuildCounter().Name("busy").Register(registry);
  DeviceBusy busy(&family);
  {
    DeviceBusy::Hold hold(&busy, "gpu0");
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    busy.Flush();  // as every heartbeat does: counted before the job ends
    EXPECT_GE(BusySeconds(family, "gpu0"), 0.005);
    EXPECT_EQ(BusySeconds(family, "cpu"), 0);
  }
  const double held = BusySeconds(family, "gpu0");
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  busy.Flush();  // nothing holds it now
  EXPECT_EQ(BusySeconds(family, "gpu0"), held);
  DeviceBusy none(nullptr);  // a worker without metrics
  DeviceBusy::Hold ignored(&none, "cpu");
  none.Flush();
}

}  // namespace
}  // namespace ratchet::worker

namespace ratchet::worker {
namespace {

TEST(JobFolderTest, WritesTheJobAndRefusesPathsOutOfIt) {
  char tmpl[] = "/tmp/ratchet-job-folder-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::filesystem::path scratch = tmpl;
  v1::Job job;
  job.mutable_problem()->set_definition_json("{}");
  job.mutable_problem()->set_workload_jsonl("{}\n");
  (*job.mutable_solution()->mutable_files())["src/kernel.cc"] = "int x;";
  ASSERT_TRUE(WriteJobFolder(job, scratch).ok());
  std::ifstream written(scratch / "solution" / "src" / "kernel.cc");
  std::string text((std::istreambuf_iterator<char>(written)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "int x;");
  EXPECT_FALSE(std::filesystem::exists(scratch / "baseline.json"));  // none stored

  (*job.mutable_solution()->mutable_files())["../escape.cc"] = "int y;";
  const absl::Status st = WriteJobFolder(job, scratch / "second");
  EXPECT_TRUE(absl::IsInvalidArgument(st)) << st;
  EXPECT_FALSE(std::filesystem::exists(scratch / "escape.cc"));
  std::filesystem::remove_all(scratch);
}

}  // namespace
}  // namespace ratchet::worker
