#include "kernels/harness/result_table.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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

std::string FormatResultTable(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    return absl::StrCat("unreadable result: ", e.what(), "\n");
  }
  std::string out;
  const std::string outcome = j.value("outcome", "?");
  absl::StrAppendFormat(&out, "%-4s %-28s %7s %12s %7s %12s %12s %6s\n", "#", "axes", "correct",
                        "T_k", "spread", "T_b", "T_sol", "score");
  if (j.contains("workloads") && j["workloads"].is_array()) {
    for (const auto& w : j["workloads"]) {
      absl::StrAppendFormat(
          &out, "%-4d %-28s %7s %12s %6.1f%% %12s %12s %6.3f\n", w.value("index", 0),
          w.value("axes", ""), w.value("correct", false) ? "yes" : "NO",
          Time(w.value("t_k_ns", 0.0)), 100 * w.value("t_k_spread", 0.0),
          Time(w.value("t_b_ns", 0.0)), Time(w.value("t_sol_ns", 0.0)), w.value("score", 0.0));
    }
  }
  if (j.contains("peaks")) {
    absl::StrAppendFormat(&out, "peaks: %.1f GB/s, %.1f GFLOP/s; compile %.2f s, wall %.2f s\n",
                          j["peaks"].value("gbps", 0.0), j["peaks"].value("gflops", 0.0),
                          j.value("compile_seconds", 0.0), j.value("wall_seconds", 0.0));
  }
  absl::StrAppendFormat(&out, "outcome: %s   problem score: %.4f\n", outcome,
                        j.value("score", 0.0));
  const std::string msg = j.value("message", "");
  if (!msg.empty()) absl::StrAppend(&out, "message: ", msg, "\n");
  return out;
}

}  // namespace ratchet::kernels
