#include "kernels/harness/back_to_back.h"

#include <chrono>
#include <cstdio>

namespace ratchet::kernels {

absl::StatusOr<int64_t> RunMarkedBatches(
    int workload, double seconds, double settle_seconds,
    const std::function<absl::Status(int64_t first, int64_t n, const BatchMarks& marks)>&
        calls) {
  using Clock = std::chrono::steady_clock;
  auto mark = [workload](int64_t n, Clock::time_point at) {
    const long long ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
    std::fprintf(stdout, "ratchet-mark %d %lld %lld\n", workload, static_cast<long long>(n), ns);
    std::fflush(stdout);
  };
  const auto start = Clock::now();
  int64_t made = 0, settled = 0;
  for (int64_t batch = 1; made < (int64_t{1} << 22);) {
    Clock::time_point began, ended;
    bool marked_end = false;
    BatchMarks marks;
    marks.begin = [&] {
      began = Clock::now();
      mark(made, began);
    };
    marks.end = [&] {
      ended = Clock::now();
      mark(made + batch, ended);
      marked_end = true;
    };
    if (absl::Status st = calls(made, batch, marks); !st.ok()) return st;
    if (!marked_end) return absl::InternalError("a back-to-back batch ended without its mark");
    made += batch;
    if (std::chrono::duration<double>(ended - began).count() < settle_seconds) {
      batch *= 2;
    } else {
      ++settled;
    }
    if (settled >= 6 && std::chrono::duration<double>(Clock::now() - start).count() >= seconds)
      break;
  }
  return made;
}

}  // namespace ratchet::kernels
