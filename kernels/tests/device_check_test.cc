// The device's checks (kernels/cuda/device_check.h) against the host's rules
// they stand in for: on outputs drawn around every boundary the rules have
// (matched fraction at 99%, the near-miss bound, NaN/Inf, all zeros, a copied
// decoy), the device passes exactly the outputs that CompareOutputs and
// NearerDecoy pass. Skips without a GPU.
#include "kernels/cuda/device_check.h"

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "kernels/correctness/compare.h"
#include "kernels/harness/pipeline.h"
#include "kernels/problem/dtype.h"

namespace ratchet::kernels {
namespace {

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

// Device copies of host bytes, freed at the end of a test.
class DeviceBytes {
 public:
  ~DeviceBytes() {
    for (void* p : owned_) cudaFree(p);
  }
  void* Put(const std::string& host) {
    void* p = nullptr;
    EXPECT_EQ(cudaMalloc(&p, std::max<size_t>(host.size(), 1)), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(p, host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
    owned_.push_back(p);
    return p;
  }

 private:
  std::vector<void*> owned_;
};

device_check::OutputCounts DeviceCompare(const std::string& out, const std::string& ref,
                                         const std::string* decoy, DType dt, const Tolerance& tol) {
  DeviceBytes mem;
  device_check::CompareArgs a;
  a.out = mem.Put(out);
  a.ref = mem.Put(ref);
  a.decoy = decoy != nullptr ? mem.Put(*decoy) : nullptr;
  a.out_dtype = a.ref_dtype = static_cast<int>(dt);
  a.count = static_cast<int64_t>(out.size() / DTypeSize(dt));
  a.atol = tol.atol;
  a.rtol = tol.rtol;
  a.max_error_factor = tol.max_error_factor;
  device_check::OutputCounts* counts = nullptr;
  EXPECT_EQ(cudaMalloc(reinterpret_cast<void**>(&counts), sizeof(*counts)), cudaSuccess);
  EXPECT_EQ(cudaMemset(counts, 0, sizeof(*counts)), cudaSuccess);
  EXPECT_EQ(device_check::LaunchCompare(a, counts, nullptr), cudaSuccess);
  device_check::OutputCounts found{};
  EXPECT_EQ(cudaMemcpy(&found, counts, sizeof(found), cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(counts);
  return found;
}

// One case: n elements of `dt`, the output the reference moved by a chosen
// number of tolerances on a chosen share of the elements.
struct Drawn {
  std::string out, ref;
};

Drawn Draw(DType dt, int64_t n, double moved_share, double moved_by, const Tolerance& tol,
           std::mt19937_64* rng) {
  Drawn d;
  const size_t es = DTypeSize(dt);
  d.out.assign(static_cast<size_t>(n) * es, '\0');
  d.ref.assign(d.out.size(), '\0');
  std::normal_distribution<double> value(0, 2);
  std::uniform_real_distribution<double> u(0, 1);
  for (int64_t i = 0; i < n; ++i) {
    double r = value(*rng);
    if (!IsFloating(dt)) r = std::round(r * 10);
    StoreFromDouble(d.ref.data(), dt, static_cast<size_t>(i), r);
    r = LoadAsDouble(d.ref.data(), dt, static_cast<size_t>(i));
    double o = r;
    if (u(*rng) < moved_share) {
      const double step = moved_by * (tol.atol + tol.rtol * std::fabs(r)) * (0.9 + 0.2 * u(*rng));
      o = r + (u(*rng) < 0.5 ? step : -step);
      if (!IsFloating(dt)) o = r + 1;
    }
    StoreFromDouble(d.out.data(), dt, static_cast<size_t>(i), o);
  }
  return d;
}

TEST(DeviceCheck, PassesExactlyWhatTheHostPasses) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  std::mt19937_64 rng(7);
  const DType types[] = {DType::kFloat32, DType::kFloat16,     DType::kBFloat16,
                         DType::kFloat64, DType::kFloat8E4M3,  DType::kFloat8E5M2,
                         DType::kInt32,   DType::kInt64,       DType::kUInt8};
  // Share of moved elements around the 99% rule, distance around 1 and 8
  // tolerances (the match and the near-miss bound).
  const double shares[] = {0, 0.005, 0.0099, 0.0101, 0.02, 0.5};
  const double distances[] = {0.5, 0.999, 1.001, 3, 7.9, 8.1, 50};
  int cases = 0, passed = 0;
  for (const DType dt : types) {
    const DefaultTolerance dtol = DefaultToleranceFor(dt);
    Tolerance tol;
    tol.atol = dtol.atol;
    tol.rtol = dtol.rtol;
    for (const double share : shares) {
      for (const double by : distances) {
        for (const int64_t n : {int64_t{1000}, int64_t{20000}}) {
          const Drawn d = Draw(dt, n, share, by, tol, &rng);
          const CompareResult host = CompareOutputs(d.out.data(), dt, d.ref.data(), dt, n, {}, tol);
          const device_check::OutputCounts dev = DeviceCompare(d.out, d.ref, nullptr, dt, tol);
          const bool device_pass = device_check::Passes(dev, n, tol.min_matched_fraction);
          ASSERT_EQ(device_pass, host.ok)
              << DTypeName(dt) << " n=" << n << " share=" << share << " by=" << by
              << " host: " << host.message << " device matched " << dev.matched << " beyond "
              << dev.beyond_bound;
          EXPECT_EQ(static_cast<int64_t>(dev.matched), n - host.num_mismatched);
          double err = 0;
          std::memcpy(&err, &dev.max_abs_error_bits, sizeof(err));
          EXPECT_EQ(err, host.max_abs_error);
          ++cases;
          passed += host.ok;
        }
      }
    }
  }
  // Both verdicts were drawn often.
  EXPECT_GT(passed, cases / 5);
  EXPECT_LT(passed, cases * 4 / 5);
}

TEST(DeviceCheck, NonFiniteAllZerosAndTheDecoy) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  std::mt19937_64 rng(11);
  const DType dt = DType::kBFloat16;
  Tolerance tol;
  const int64_t n = 50000;
  const Drawn d = Draw(dt, n, 0, 0, tol, &rng);
  auto device_pass = [&](const std::string& out, const std::string* decoy) {
    return device_check::Passes(DeviceCompare(out, d.ref, decoy, dt, tol), n,
                                tol.min_matched_fraction);
  };
  EXPECT_TRUE(device_pass(d.out, nullptr));
  std::string nan = d.out;
  StoreFromDouble(nan.data(), dt, 777, std::numeric_limits<double>::quiet_NaN());
  EXPECT_FALSE(CompareOutputs(nan.data(), dt, d.ref.data(), dt, n, {}, tol).ok);
  EXPECT_FALSE(device_pass(nan, nullptr));
  const std::string zeros(d.out.size(), '\0');
  EXPECT_FALSE(device_pass(zeros, nullptr));
  // A copy of the decoy is within tolerance, and caught as nearer the decoy.
  const std::string decoy = MakeDecoy(d.ref, dt, tol.atol, tol.rtol);
  ASSERT_TRUE(CompareOutputs(decoy.data(), dt, d.ref.data(), dt, n, {}, tol).ok);
  ASSERT_TRUE(NearerDecoy(decoy, d.ref, decoy, dt));
  EXPECT_FALSE(device_pass(decoy, &decoy));
  EXPECT_TRUE(device_pass(d.out, &decoy));
}

TEST(DeviceCheck, BytesAndCanaries) {
  if (!HaveGpu()) GTEST_SKIP() << "no GPU";
  DeviceBytes mem;
  for (const size_t n : {size_t{1}, size_t{15}, size_t{16}, size_t{4097}, size_t{1} << 22}) {
    std::string a(n, 'x');
    for (size_t i = 0; i < n; ++i) a[i] = static_cast<char>(i * 131);
    for (const size_t flip : {size_t{0}, n / 2, n - 1}) {
      std::string b = a;
      b[flip] ^= 1;
      unsigned int* flag = nullptr;
      ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&flag), 2 * sizeof(unsigned int)), cudaSuccess);
      ASSERT_EQ(cudaMemset(flag, 0, 2 * sizeof(unsigned int)), cudaSuccess);
      ASSERT_EQ(device_check::LaunchBytesDiffer(mem.Put(a), mem.Put(a), n, flag, nullptr),
                cudaSuccess);
      ASSERT_EQ(device_check::LaunchBytesDiffer(mem.Put(a), mem.Put(b), n, flag + 1, nullptr),
                cudaSuccess);
      unsigned int got[2] = {9, 9};
      ASSERT_EQ(cudaMemcpy(got, flag, sizeof(got), cudaMemcpyDeviceToHost), cudaSuccess);
      cudaFree(flag);
      EXPECT_EQ(got[0], 0u) << n;
      EXPECT_EQ(got[1], 1u) << n << " flip " << flip;
    }
  }
  std::string arena(4096, static_cast<char>(0xA5));
  arena[1000] = 0;  // inside region 3, [992, 1248)
  const char* base = static_cast<const char*>(mem.Put(arena));
  const uint64_t offsets[] = {0, 256, 512, 992, 2048};
  int* first_bad = nullptr;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&first_bad), sizeof(int)), cudaSuccess);
  ASSERT_EQ(cudaMemset(first_bad, 0x7f, sizeof(int)), cudaSuccess);
  ASSERT_EQ(device_check::LaunchCanaryCheck(base, offsets, 5, 256, 0xA5, first_bad, nullptr),
            cudaSuccess);
  int got = 0;
  ASSERT_EQ(cudaMemcpy(&got, first_bad, sizeof(got), cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(first_bad);
  EXPECT_EQ(got, 3);
}

}  // namespace
}  // namespace ratchet::kernels
