// Built with -O3 -march=native so that the FMA loop uses the widest vectors.
#include "kernels/sol/cpu_peaks.h"

#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/usable_cpus.h"

namespace ratchet::kernels {

long LastLevelCacheBytes() {
  long best = 0;
#ifdef _SC_LEVEL3_CACHE_SIZE
  best = std::max(best, sysconf(_SC_LEVEL3_CACHE_SIZE));
  if (best <= 0) best = std::max(best, sysconf(_SC_LEVEL2_CACHE_SIZE));
#endif
  if (best <= 0) {
    for (int i = 0; i < 8; ++i) {
      std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
      std::string s;
      if (!(f >> s) || s.empty()) continue;
      long v = std::atol(s.c_str());
      if (s.back() == 'K') v *= 1024;
      if (s.back() == 'M') v *= 1024 * 1024;
      best = std::max(best, v);
    }
  }
  return best > 0 ? best : 32L << 20;
}

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kHuge = size_t{2} << 20;

template <typename Fn>
void RunOnAll(int threads, Fn fn) {
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(fn, t);
  fn(0);
  for (auto& th : pool) th.join();
}

double MeasureBandwidth(int threads) {
  // Source plus destination exceed the LLC so that the copy streams from
  // memory; capped because first-touching pages is slow (worse in VMs) and
  // calibration must stay well under 2 s even where a huge shared LLC is
  // reported.
  size_t bytes = static_cast<size_t>(LastLevelCacheBytes());
  bytes = std::clamp<size_t>(bytes, size_t{32} << 20, size_t{192} << 20);
  bytes = (bytes + kHuge - 1) / kHuge * kHuge;
  const size_t n = bytes / sizeof(double);
  double* a = static_cast<double*>(std::aligned_alloc(kHuge, bytes));
  double* b = static_cast<double*>(std::aligned_alloc(kHuge, bytes));
  if (a == nullptr || b == nullptr) {
    std::free(a);
    std::free(b);
    return 0;
  }
  // Huge pages make the first touch several times cheaper.
  madvise(a, bytes, MADV_HUGEPAGE);
  madvise(b, bytes, MADV_HUGEPAGE);
  auto chunk = [&](int t) {
    const size_t lo = n * t / threads, hi = n * (t + 1) / threads;
    return std::make_pair(lo, hi);
  };
  // First touch from the thread that will use the pages (NUMA locality).
  RunOnAll(threads, [&](int t) {
    auto [lo, hi] = chunk(t);
    for (size_t i = lo; i < hi; ++i) a[i] = static_cast<double>(i), b[i] = 0;
  });
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    RunOnAll(threads, [&](int t) {
      auto [lo, hi] = chunk(t);
      std::memcpy(b + lo, a + lo, (hi - lo) * sizeof(double));
    });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(bytes) / s / 1e9);
    std::swap(a, b);
  }
  std::free(a);
  std::free(b);
  return best;
}

typedef float Vec __attribute__((vector_size(64)));
constexpr int kChains = 8;
constexpr int kLanes = 16;

// Independent FMA chains keep every FMA unit busy; the result is returned so
// the loop cannot be removed.
__attribute__((noinline)) float FmaLoop(long iters, float seed) {
  Vec acc[kChains];
  Vec mul, add;
  for (int l = 0; l < kLanes; ++l) mul[l] = 0.999999f, add[l] = seed * 1e-7f;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l) acc[c][l] = seed + static_cast<float>(c + l);
  for (long i = 0; i < iters; ++i) {
    for (int c = 0; c < kChains; ++c) acc[c] = acc[c] * mul + add;
    asm volatile("" : "+x"(mul));  // Stops the compiler from folding iterations.
  }
  float s = 0;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l) s += acc[c][l];
  return s;
}

double MeasureFlops(int threads) {
  const long iters = 2'000'000;
  double best = 0;
  std::vector<float> sink(static_cast<size_t>(threads));
  for (int rep = 0; rep < 3; ++rep) {
    const auto t0 = Clock::now();
    RunOnAll(threads, [&](int t) { sink[static_cast<size_t>(t)] = FmaLoop(iters, 1.0f + t); });
    const double s = std::chrono::duration<double>(Clock::now() - t0).count();
    const double flops = 2.0 * kChains * kLanes * static_cast<double>(iters) * threads;
    best = std::max(best, flops / s / 1e9);
  }
  volatile float keep = sink[0];
  (void)keep;
  return best;
}

}  // namespace

CpuPeaks MeasureCpuPeaks() {
  const int threads = UsableCpus();
  CpuPeaks p;
  p.gbps = MeasureBandwidth(threads);
  p.gflops = MeasureFlops(threads);
  return p;
}

}  // namespace ratchet::kernels
