#include "kernels/harness/back_to_back.h"

#include <chrono>
#include <cstdio>

namespace ratchet::kernels {

absl::StatusOr<int64_t> RunMarkedBatches(
    int workload, double seconds, double settle_seconds,
    const std::function<absl::Status(int64_t first, int64_t n)>& calls) {
  using Clock = std::chrono::steady_clock;
  auto mark = [workload](int64_t n) {
    std::fprintf(stdout, "ratchet-mark %d %lld\n", workload, static_cast<long long>(n));
    std::fflush(stdout);
  };
  mark(0);
  const auto start = Clock::now();
  int64_t made = 0;
  for (int64_t batch = 1; made < (int64_t{1} << 22);) {
    const auto batch_start = Clock::now();
    if (absl::Status st = calls(made, batch); !st.ok()) return st;
    made += batch;
    mark(made);
    const auto now = Clock::now();
    if (std::chrono::duration<double>(now - batch_start).count() < settle_seconds) batch *= 2;
    if (made >= 8 && std::chrono::duration<double>(now - start).count() >= seconds) break;
  }
  return made;
}

}  // namespace ratchet::kernels
