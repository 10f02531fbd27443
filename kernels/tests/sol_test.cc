#include "kernels/sol/sol.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "common/usable_cpus.h"
#include "kernels/sol/cpu_peaks.h"

namespace ratchet::kernels {
namespace {

TEST(SolTest, RooflineTakesTheSlowerLimit) {
  // 1e9 flops at 100 GFLOP/s = 1e7 ns; 1e6 bytes at 10 GB/s = 1e5 ns.
  EXPECT_DOUBLE_EQ(SolTimeNs(1e9, 1e6, 100, 10), 1e7);
  // Memory-bound: 1e9 bytes at 10 GB/s = 1e8 ns.
  EXPECT_DOUBLE_EQ(SolTimeNs(1e6, 1e9, 100, 10), 1e8);
  EXPECT_DOUBLE_EQ(SolTimeNs(0, 4096, 100, 4), 1024);
}

TEST(SolTest, ScoreFormula) {
  EXPECT_DOUBLE_EQ(SolScore(/*t_k=*/200, /*t_b=*/200, /*t_sol=*/100), 0.5);  // Baseline.
  EXPECT_DOUBLE_EQ(SolScore(100, 200, 100), 1.0);                            // At SOL.
  EXPECT_DOUBLE_EQ(SolScore(300, 200, 100), 1.0 / 3);                        // Slower.
  EXPECT_DOUBLE_EQ(SolScore(150, 200, 100), 2.0 / 3);
  // Below SOL (impossible; flagged elsewhere) the score stays 1, never above
  // and never negative, however far below.
  EXPECT_EQ(SolScore(50, 200, 100), 1.0);
  EXPECT_EQ(SolScore(10, 150, 100), 1.0);
}

TEST(SolTest, BaselineAtOrBelowSol) {
  EXPECT_EQ(SolScore(100, 80, 100), 1.0);
  EXPECT_EQ(SolScore(90, 100, 100), 1.0);
  EXPECT_EQ(SolScore(101, 100, 100), 0.0);
  EXPECT_EQ(SolScore(1000, 50, 100), 0.0);
}

TEST(CpuPeaksTest, MeasuresPositivePeaks) {
  const auto t0 = std::chrono::steady_clock::now();
  const CpuPeaks p = MeasureCpuPeaks();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("cpu peaks: %.2f GB/s, %.1f GFLOP/s (%d cpus, LLC %ld MiB) in %.2f s\n", p.gbps,
              p.gflops, UsableCpus(), LastLevelCacheBytes() >> 20, s);
  EXPECT_GT(p.gbps, 0.1);
  EXPECT_GT(p.gflops, 0.1);
  EXPECT_GE(UsableCpus(), 1);
  EXPECT_GT(LastLevelCacheBytes(), 0);
}

}  // namespace
}  // namespace ratchet::kernels
