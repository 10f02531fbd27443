// The correctness check of one large output (a GPU workload's: 8192 x 8192
// bf16 by default), on one core against the machine's cores, side by side in
// one run: it sits between the calls of every evaluation.
//   compare_bench [--elements=N] [--repeats=R]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "kernels/correctness/compare.h"

namespace {

using ratchet::kernels::CompareOutputs;
using ratchet::kernels::CompareResult;
using ratchet::kernels::DType;
using ratchet::kernels::Tolerance;

uint16_t ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

double MedianSeconds(int repeats, const std::vector<uint16_t>& out,
                     const std::vector<uint16_t>& ref, int threads, CompareResult* r) {
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    *r = CompareOutputs(out.data(), DType::kBFloat16, ref.data(), DType::kBFloat16,
                        static_cast<int64_t>(out.size()), {static_cast<int64_t>(out.size())},
                        Tolerance{}, threads);
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 8192ll * 8192;
  int repeats = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--elements=", 0) == 0) {
      n = std::atoll(a.c_str() + 11);
    } else if (a.rfind("--repeats=", 0) == 0) {
      repeats = std::max(1, std::atoi(a.c_str() + 10));
    } else {
      std::fprintf(stderr, "usage: compare_bench [--elements=N] [--repeats=R]\n");
      return 2;
    }
  }
  // A reference and an output that differs from it by bf16 rounding on a
  // third of the elements, as a correct kernel's would.
  std::vector<uint16_t> ref(n), out(n);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int64_t i = 0; i < n; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    const float v = static_cast<float>(x % 100000) / 25000.0f - 2.0f;
    ref[i] = ToBf16(v);
    out[i] = static_cast<uint16_t>(ref[i] + ((x >> 40) % 3 == 0 ? 1 : 0));
  }
  CompareResult one, many;
  const double t1 = MedianSeconds(repeats, out, ref, 1, &one);
  const double tn = MedianSeconds(repeats, out, ref, 0, &many);
  const bool same = one.ok == many.ok && one.worst_index == many.worst_index &&
                    one.matched_fraction == many.matched_fraction;
  std::printf("compare_bench: %lld bf16 elements, median of %d, %u cores\n",
              static_cast<long long>(n), repeats, std::thread::hardware_concurrency());
  std::printf("  one core   %8.3f s  (%.0f M elements/s)\n", t1, n / t1 / 1e6);
  std::printf("  all cores  %8.3f s  (%.0f M elements/s)\n", tn, n / tn / 1e6);
  std::printf("  speedup    x%.2f; results %s (ok=%d, worst excess %.3g at %lld)\n", t1 / tn,
              same ? "identical" : "DIFFER", many.ok, many.worst_excess,
              static_cast<long long>(many.worst_index));
  return same ? 0 : 1;
}
