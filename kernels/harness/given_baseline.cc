#include "kernels/harness/given_baseline.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "kernels/harness/subprocess.h"

namespace ratchet::kernels {

using Json = nlohmann::json;

GivenBaseline LoadGivenBaseline(const std::string& path) {
  GivenBaseline g;
  if (path.empty()) return g;
  const Json b = Json::parse(ReadFileOrEmpty(path), nullptr, /*allow_exceptions=*/false);
  if (b.is_discarded() || !b.is_object() || !b.contains("workloads") ||
      !b["workloads"].is_array() || !b.contains("software") || !b["software"].is_string()) {
    std::fprintf(stderr, "ratchet-harness: --baseline %s is unreadable: timing T_b here\n",
                 path.c_str());
    return g;
  }
  g.software = b["software"].get<std::string>();
  for (const Json& w : b["workloads"]) {
    if (!w.is_object() || !w.contains("index") || !w["index"].is_number_integer()) continue;
    auto num = [&](const char* k) { return w.contains(k) && w[k].is_number() ? w[k].get<double>() : 0.0; };
    GivenBaseline::Entry e;
    e.t_b_ns = num("t_b_ns");
    e.t_b_spread = num("t_b_spread");
    e.t_b_eager_ns = num("t_b_eager_ns");
    e.t_b_compile_ns = num("t_b_compile_ns");
    e.t_ref_kernel_ns = num("t_ref_kernel_ns");
    if (e.t_b_ns > 0) g.workloads[w["index"].get<int>()] = e;
  }
  return g;
}

std::string OracleSoftware(const std::string& manifest_text) {
  const Json m = Json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
  if (m.is_discarded() || !m.is_object()) return "";
  std::string s = absl::StrCat("torch ", m.contains("torch") && m["torch"].is_string()
                                             ? m["torch"].get<std::string>()
                                             : "?");
  if (m.contains("cuda") && m["cuda"].is_string())
    absl::StrAppend(&s, " / cuda ", m["cuda"].get<std::string>());
  return s;
}

}  // namespace ratchet::kernels
