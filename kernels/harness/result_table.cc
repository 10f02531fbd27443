#include "kernels/harness/result_table.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace ratchet::kernels {
namespace {

std::string Time(double ns) {
  if (ns <= 0) return "-";
  if (ns < 1e3) return absl::StrFormat("%.0f ns", ns);
  if (ns < 1e6) return absl::StrFormat("%.2f us", ns / 1e3);
  if (ns < 1e9) return absl::StrFormat("%.3f ms", ns / 1e6);
  return absl::StrFormat("%.3f s", ns / 1e9);
}

}  // namespace

std::string FormatResultTable(const HarnessResult& r) {
  std::string out;
  absl::StrAppendFormat(&out, "%-4s %-28s %7s %12s %7s %12s %12s %6s\n", "#", "axes", "correct",
                        "T_k", "spread", "T_b", "T_sol", "score");
  for (const WorkloadResult& w : r.workloads) {
    absl::StrAppendFormat(&out, "%-4d %-28s %7s %12s %6.1f%% %12s %12s %6.3f\n", w.index, w.axes,
                          w.correct ? "yes" : "NO", Time(w.t_k_ns), 100 * w.t_k_spread,
                          Time(w.t_b_ns), Time(w.t_sol_ns), w.score);
  }
  absl::StrAppendFormat(&out, "peaks: %.1f GB/s, %.1f GFLOP/s; compile %.2f s, wall %.2f s\n",
                        r.peak_gbps, r.peak_gflops, r.compile_seconds, r.wall_seconds);
  if (!r.stage_seconds.empty()) {
    std::vector<std::string> parts;
    for (const auto& [stage, seconds] : r.stage_seconds)
      parts.push_back(absl::StrFormat("%s %.2f s", stage, seconds));
    absl::StrAppend(&out, "stages: ", absl::StrJoin(parts, ", "), "\n");
  }
  absl::StrAppendFormat(&out, "outcome: %s   problem score: %.4f\n", r.outcome, r.score);
  if (!r.message.empty()) absl::StrAppend(&out, "message: ", r.message, "\n");
  return out;
}

std::string FormatResultTable(const std::string& text) {
  auto r = FromJson(text);
  if (!r.ok()) return absl::StrCat("unreadable result: ", r.status().message(), "\n");
  return FormatResultTable(*r);
}

}  // namespace ratchet::kernels
