#include "kernels/harness/back_to_back.h"

#include <chrono>
#include <cstdio>

namespace ratchet::kernels {

absl::StatusOr<int64_t> RunMarkedBatches(
    int workload, double seconds, double settle_seconds,
    const std::function<absl::Status(int64_t first, int64_t n, const BatchMarks& marks)>&
        calls) {
  using Clock = std::chrono::steady_clock;
  auto mark = [workload](int64_t n) {
    std::fprintf(stdout, "ratchet-mark %d %lld\n", workload, static_cast<long long>(n));
    std::fflush(stdout);
  };
  const auto start = Clock::now();
  int64_t made = 0, settled = 0;
  for (int64_t batch = 1; made < (int64_t{1} << 22);) {
    Clock::time_point began, ended;
    bool marked_end = false;
    BatchMarks marks;
    marks.begin = [&] {
      mark(made);
      began = Clock::now();
    };
    marks.end = [&] {
      ended = Clock::now();
      mark(made + batch);
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
