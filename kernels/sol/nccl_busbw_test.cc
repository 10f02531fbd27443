// The NCCL all-reduce bus bandwidth of ratchet-gpu-probe
// (kernels/sol/nccl_busbw.h): the formula and the JSON everywhere; the
// measurement itself, in process and through the probe, only where a GPU is
// (skipped otherwise).
#include <cuda_runtime.h>
#include <unistd.h>

#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "gtest/gtest.h"
#include "kernels/sol/gpu_calibration.h"
#include "kernels/sol/nccl_busbw.h"
#include "nlohmann/json.hpp"

namespace ratchet::kernels {
namespace {

using Json = nlohmann::json;

int GpuCount(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    *why = std::string("no GPU: cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0) *why = "no GPU: cudaGetDeviceCount returned 0";
  return n;
}

// $RATCHET_GPU_PROBE, else beside this test (a bundle), else the build's.
std::string ProbePath() {
  if (const char* e = std::getenv("RATCHET_GPU_PROBE"); e != nullptr && *e) return e;
  char self[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n > 0) {
    std::string dir(self, size_t(n));
    dir = dir.substr(0, dir.rfind('/'));
    if (access((dir + "/ratchet-gpu-probe").c_str(), X_OK) == 0) return dir + "/ratchet-gpu-probe";
  }
  return RATCHET_GPU_PROBE_BIN;
}

// Runs the probe with `env` before it; its stdout as JSON.
Json RunProbe(const std::string& env, const std::string& args) {
  const std::string cmd = env + " '" + ProbePath() + "' " + args;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return Json();
  std::string out;
  std::array<char, 4096> buf;
  size_t got;
  while ((got = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), got);
  const int status = pclose(p);
  EXPECT_EQ(status, 0) << cmd;
  Json j = Json::parse(out, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << cmd << " printed:\n" << out;
  return j;
}

TEST(NcclBusBwTest, NcclTestsFormula) {
  EXPECT_DOUBLE_EQ(AllReduceBusBandwidth(100, 8), 175);
  EXPECT_DOUBLE_EQ(AllReduceBusBandwidth(100, 2), 100);
  EXPECT_DOUBLE_EQ(AllReduceBusBandwidth(100, 4), 150);
  EXPECT_DOUBLE_EQ(AllReduceBusBandwidth(100, 1), 0);  // nothing crosses a link
  EXPECT_DOUBLE_EQ(AllReduceBusBandwidth(100, 0), 0);
}

TEST(NcclBusBwTest, MedianTimeGivesAlgAndBusBandwidth) {
  NcclAllReduceResult r;
  r.ranks = 8;
  r.bytes = int64_t{256} << 20;
  ASSERT_TRUE(FinishNcclResult({3.0, 1.0, 2.0, 100.0, 1.5}, &r));
  EXPECT_DOUBLE_EQ(r.median_ms, 2.0);
  EXPECT_NEAR(r.algbw_gbps, 268435456 / 2e-3 / 1e9, 1e-9);  // 134.2 GB/s
  EXPECT_NEAR(r.busbw_gbps, r.algbw_gbps * 1.75, 1e-9);
  EXPECT_EQ(r.note, "");

  NcclAllReduceResult one;  // one GPU: algbw only
  one.ranks = 1;
  one.bytes = 1 << 20;
  ASSERT_TRUE(FinishNcclResult({1.0, 1.0}, &one));
  EXPECT_GT(one.algbw_gbps, 0);
  EXPECT_EQ(one.busbw_gbps, 0);

  NcclAllReduceResult none;
  none.ranks = 2;
  none.bytes = 1 << 20;
  EXPECT_FALSE(FinishNcclResult({}, &none));
  EXPECT_EQ(none.algbw_gbps, 0);
  EXPECT_NE(none.note, "");
}

TEST(NcclBusBwTest, ProbeJsonCarriesTheFigures) {
  NcclAllReduceResult r;
  r.ranks = 8;
  r.bytes = int64_t{256} << 20;
  r.median_ms = 1.25;
  r.algbw_gbps = 214.7;
  r.busbw_gbps = 375.8;
  r.nccl_version = "2.28.9";
  const Json j = Json::parse(CalibrationJson({}, "no GPU visible", r));
  EXPECT_EQ(j.at("nccl_ranks"), 8);
  EXPECT_DOUBLE_EQ(j.at("nccl_allreduce_busbw_gbps").get<double>(), 375.8);
  EXPECT_DOUBLE_EQ(j.at("nccl_allreduce_algbw_gbps").get<double>(), 214.7);
  EXPECT_EQ(j.at("nccl_bytes"), int64_t{256} << 20);
  EXPECT_EQ(j.at("nccl_version"), "2.28.9");
  EXPECT_EQ(j.at("nccl_note"), "");
  EXPECT_EQ(j.at("note"), "no GPU visible");
  // Not measured: zeros and the reason.
  const Json z = Json::parse(CalibrationJson({}, "", NcclAllReduceResult{0, 0, 0, 0, 0, "", "x\"y"}));
  EXPECT_EQ(z.at("nccl_ranks"), 0);
  EXPECT_EQ(z.at("nccl_allreduce_busbw_gbps"), 0);
  EXPECT_EQ(z.at("nccl_note"), "x\"y");
}

// The probe always prints its JSON, NCCL or not, GPU or not.
TEST(NcclBusBwTest, ProbeCanSkipTheAllReduce) {
  const Json skipped = RunProbe("RATCHET_SKIP_NCCL=1", "--quick");
  EXPECT_EQ(skipped.value("nccl_ranks", -1), 0);
  EXPECT_EQ(skipped.value("nccl_note", ""), "skipped (RATCHET_SKIP_NCCL)");
  const Json flag = RunProbe("", "--quick --no-nccl");
  EXPECT_EQ(flag.value("nccl_note", ""), "skipped (--no-nccl)");
  const Json properties = RunProbe("", "--no-measure");
  EXPECT_EQ(properties.value("nccl_note", ""), "skipped (--no-measure)");
}

TEST(NcclBusBwGpuTest, ProbeMeasuresAllGpus) {
  std::string why;
  const int gpus = GpuCount(&why);
  if (gpus == 0) {
    // Still: the probe reports 0 and says why, without failing.
    const Json j = RunProbe("", "--quick");
    EXPECT_EQ(j.value("nccl_ranks", -1), 0);
    EXPECT_NE(j.value("nccl_note", ""), "");
    GTEST_SKIP() << why;
  }
  const Json j = RunProbe("", "--quick");
#ifdef RATCHET_HAVE_NCCL
  if (j.value("nccl_note", "").find("libnccl not found") != std::string::npos)
    GTEST_SKIP() << j.value("nccl_note", "");
  EXPECT_EQ(j.value("nccl_note", "?"), "") << j.dump(1);
  EXPECT_EQ(j.value("nccl_ranks", 0), gpus);
  EXPECT_EQ(j.value("nccl_bytes", 0), int64_t{256} << 20);
  const double algbw = j.value("nccl_allreduce_algbw_gbps", 0.0);
  EXPECT_GT(algbw, 1.0);
  EXPECT_NEAR(j.value("nccl_allreduce_busbw_gbps", 0.0), AllReduceBusBandwidth(algbw, gpus),
              1e-3 * algbw + 1e-3);
  std::printf("probe: NCCL %s, %d GPU(s): algbw %.1f GB/s, busbw %.1f GB/s, %.3f ms\n",
              j.value("nccl_version", "").c_str(), gpus, algbw,
              j.value("nccl_allreduce_busbw_gbps", 0.0), j.value("nccl_median_ms", 0.0));
#else
  EXPECT_EQ(j.value("nccl_ranks", -1), 0);
  GTEST_SKIP() << "built without NCCL";
#endif
}

#ifdef RATCHET_HAVE_NCCL
TEST(NcclBusBwGpuTest, InProcessOneGpuAndAll) {
  std::string why;
  const int gpus = GpuCount(&why);
  if (gpus == 0) GTEST_SKIP() << why;
  NcclOptions one;
  one.only_device = 0;
  one.bytes = int64_t{64} << 20;
  const NcclAllReduceResult r1 = MeasureNcclAllReduce(one);
  if (r1.note.find("libnccl not found") != std::string::npos) GTEST_SKIP() << r1.note;
  EXPECT_EQ(r1.note, "");
  EXPECT_EQ(r1.ranks, 1);  // world size 1 goes the same way
  EXPECT_GT(r1.algbw_gbps, 0);
  EXPECT_EQ(r1.busbw_gbps, 0);
  NcclOptions all;
  all.bytes = int64_t{64} << 20;
  const NcclAllReduceResult r = MeasureNcclAllReduce(all);
  EXPECT_EQ(r.note, "");
  EXPECT_EQ(r.ranks, gpus);
  EXPECT_GT(r.algbw_gbps, 0);
  if (gpus > 1) {
    EXPECT_GT(r.busbw_gbps, 0);
  }
  // A GPU that is not there: 0 and a reason, no crash.
  NcclOptions missing;
  missing.only_device = gpus + 3;
  const NcclAllReduceResult bad = MeasureNcclAllReduce(missing);
  EXPECT_EQ(bad.ranks, 0);
  EXPECT_NE(bad.note.find("no GPU"), std::string::npos) << bad.note;
}
#endif

}  // namespace
}  // namespace ratchet::kernels
