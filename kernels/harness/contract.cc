#include "kernels/harness/contract.h"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <tuple>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "kernels/harness/subprocess.h"

namespace ratchet::kernels {
namespace {

using Json = nlohmann::ordered_json;

// ---------------------------------------------------------------------------
// The command line.

// The shortest text that reads back as the same double ("2500", "0.25").
std::string Number(double x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), x);
  return std::string(buf, r.ptr);
}

auto Fields(const HarnessArgs& a) {
  return std::tie(a.kind, a.problem, a.solution, a.out, a.scratch, a.seed, a.warmups,
                  a.repetitions, a.rounds, a.screen, a.peak_gbps, a.peak_gflops, a.peak_tflops,
                  a.knobs, a.python, a.baseline, a.back_to_back, a.print, a.device_index, a.arch,
                  a.cache_dir, a.compile_only, a.oracle_only, a.given_rounds, a.device_lock);
}

absl::Status Bad(const std::string& why) { return absl::InvalidArgumentError(why); }

bool IsArch(const std::string& v) {
  for (const char* a : {"sm_90", "sm_90a", "sm_100", "sm_100a", "sm_80", "sm_89", "sm_120"})
    if (v == a) return true;
  return false;
}

// ---------------------------------------------------------------------------
// The result file.

// Typed access to an optional (or required) key that names the key instead
// of throwing; a null is an absent key.
template <typename T>
absl::Status Get(const Json& obj, const char* key, T* out, bool required = false) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return Bad(absl::StrCat("missing \"", key, "\""));
    return absl::OkStatus();
  }
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // get<int> of 1e300 or 2^40 is a cast out of range (undefined for a
    // double): only whole numbers that fit are taken.
    constexpr auto lo = static_cast<double>(std::numeric_limits<T>::min());
    constexpr auto hi = static_cast<double>(std::numeric_limits<T>::max());
    bool fits;
    if (it->is_number_unsigned()) {
      fits = it->template get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
    } else if (it->is_number_integer()) {
      const int64_t v = it->template get<int64_t>();
      fits = v >= std::numeric_limits<T>::min() && v <= std::numeric_limits<T>::max();
    } else {
      const double v = it->is_number_float() ? it->template get<double>() : NAN;
      // `hi` of int64 rounds up to 2^63: the bound is exclusive there.
      fits = std::isfinite(v) && v >= lo && (sizeof(T) < 8 ? v <= hi : v < hi) &&
             std::trunc(v) == v;
    }
    if (!fits)
      return Bad(absl::StrCat("\"", key, "\" is not a whole number in range (", it->type_name(),
                              ")"));
  }
  try {
    *out = it->template get<T>();
  } catch (const Json::exception&) {
    return Bad(absl::StrCat("\"", key, "\" has the wrong type (", it->type_name(), ")"));
  }
  return absl::OkStatus();
}

absl::Status GetStrings(const Json& obj, const char* key, std::vector<std::string>* out) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return absl::OkStatus();
  const absl::Status wrong = Bad(absl::StrCat("\"", key, "\" is not an array of strings"));
  if (!it->is_array()) return wrong;
  for (const Json& s : *it) {
    if (!s.is_string()) return wrong;
    out->push_back(s.get<std::string>());
  }
  return absl::OkStatus();
}

// The object at `key`, or null when there is none.
absl::StatusOr<const Json*> GetObject(const Json& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  if (!it->is_object()) return Bad(absl::StrCat("\"", key, "\" is not an object"));
  return &*it;
}

Json WorkloadJson(const WorkloadResult& w, bool cuda) {
  Json x;
  x["index"] = w.index;
  x["axes"] = w.axes;
  x["correct"] = w.correct;
  x["matched_fraction"] = w.matched_fraction;
  x["max_abs_error"] = w.max_abs_error;
  if (cuda) {
    x["atol"] = w.atol;
    x["rtol"] = w.rtol;
  }
  x["t_k_ns"] = w.t_k_ns;
  x["t_k_spread"] = w.t_k_spread;
  if (w.t_k_p10_ns > 0) x["t_k_p10_ns"] = w.t_k_p10_ns;
  if (w.t_k_events_ns > 0) x["t_k_events_ns"] = w.t_k_events_ns;
  x["t_b_ns"] = w.t_b_ns;
  if (cuda) {
    x["t_b_eager_ns"] = w.t_b_eager_ns;
    x["t_b_compile_ns"] = w.t_b_compile_ns;
    x["t_ref_kernel_ns"] = w.t_ref_kernel_ns;
  }
  x["t_b_spread"] = w.t_b_spread;
  x["t_b_given"] = w.t_b_given;
  x["t_sol_ns"] = w.t_sol_ns;
  if (cuda) {
    x["flops"] = w.flops;
    x["bytes"] = w.bytes;
  }
  x["score"] = w.score;
  if (cuda) x["repetitions"] = w.repetitions;
  if (w.timed_rounds > 0) x["timed_rounds"] = w.timed_rounds;
  if (!cuda && !w.flags.empty()) x["flags"] = w.flags;
  if (w.calls > 0) x["calls"] = w.calls;
  if (cuda) {
    if (!w.baseline_notes.empty()) x["baseline_notes"] = w.baseline_notes;
    x["flags"] = w.flags;
  }
  return x;
}

absl::StatusOr<WorkloadResult> WorkloadFromJson(const Json& x) {
  if (!x.is_object()) return Bad("a \"workloads\" entry is not an object");
  WorkloadResult w;
  for (absl::Status s : {
           Get(x, "index", &w.index, /*required=*/true),
           Get(x, "axes", &w.axes),
           Get(x, "correct", &w.correct),
           Get(x, "matched_fraction", &w.matched_fraction),
           Get(x, "max_abs_error", &w.max_abs_error),
           Get(x, "t_k_ns", &w.t_k_ns),
           Get(x, "t_k_spread", &w.t_k_spread),
           Get(x, "t_k_p10_ns", &w.t_k_p10_ns),
           Get(x, "t_b_ns", &w.t_b_ns),
           Get(x, "t_b_spread", &w.t_b_spread),
           Get(x, "t_b_given", &w.t_b_given),
           Get(x, "t_sol_ns", &w.t_sol_ns),
           Get(x, "score", &w.score),
           Get(x, "timed_rounds", &w.timed_rounds),
           Get(x, "calls", &w.calls),
           GetStrings(x, "flags", &w.flags),
           Get(x, "atol", &w.atol),
           Get(x, "rtol", &w.rtol),
           Get(x, "t_b_eager_ns", &w.t_b_eager_ns),
           Get(x, "t_b_compile_ns", &w.t_b_compile_ns),
           Get(x, "t_ref_kernel_ns", &w.t_ref_kernel_ns),
           Get(x, "flops", &w.flops),
           Get(x, "bytes", &w.bytes),
           Get(x, "repetitions", &w.repetitions),
           GetStrings(x, "baseline_notes", &w.baseline_notes),
           Get(x, "t_k_events_ns", &w.t_k_events_ns),
       }) {
    if (!s.ok()) return s;
  }
  return w;
}

}  // namespace

const char* HarnessName(HarnessKind kind) {
  return kind == HarnessKind::kCuda ? "ratchet-harness-cuda" : "ratchet-harness";
}

HarnessDefaults DefaultsFor(HarnessKind kind) {
  return kind == HarnessKind::kCuda ? kCudaHarnessDefaults : kCpuHarnessDefaults;
}

bool IsHarnessSwitch(std::string_view flag) {
  return flag == "--print" || flag == "--oracle-only" || flag == "--verify" ||
         flag == "--compile-only";
}

bool operator==(const HarnessArgs& a, const HarnessArgs& b) { return Fields(a) == Fields(b); }

std::vector<std::string> ToArgv(const HarnessArgs& a) {
  const bool cuda = a.kind == HarnessKind::kCuda;
  std::vector<std::string> v = {"--problem", a.problem, "--solution", a.solution, "--out", a.out};
  auto add = [&v](const char* flag, const std::string& value) {
    v.push_back(flag);
    v.push_back(value);
  };
  if (!a.scratch.empty()) add("--scratch", a.scratch);
  add("--seed", absl::StrCat(a.seed));
  if (a.warmups) add("--warmups", absl::StrCat(*a.warmups));
  if (a.repetitions) add("--repetitions", absl::StrCat(*a.repetitions));
  if (a.rounds) add("--rounds", absl::StrCat(*a.rounds));
  if (!a.screen.empty()) add("--screen", a.screen);
  if (cuda) {
    add("--device-index", absl::StrCat(a.device_index));
    if (!a.arch.empty()) add("--arch", a.arch);
  }
  if (a.peak_gbps > 0) add("--peak-gbps", Number(a.peak_gbps));
  if (cuda && a.peak_tflops > 0) add("--peak-tflops", Number(a.peak_tflops));
  if (!cuda && a.peak_gflops > 0) add("--peak-gflops", Number(a.peak_gflops));
  if (cuda && !a.cache_dir.empty()) add("--cache-dir", a.cache_dir);
  for (const auto& [name, value] : a.knobs) add("--knob", absl::StrCat(name, "=", value));
  if (!a.python.empty()) add("--python", a.python);
  if (!a.baseline.empty()) add("--baseline", a.baseline);
  if (!a.given_rounds.empty()) add("--given-rounds", a.given_rounds);
  if (!a.device_lock.empty()) add("--device-lock", a.device_lock);
  if (a.oracle_only) v.push_back("--oracle-only");
  if (a.back_to_back > 0) add("--back-to-back", Number(a.back_to_back));
  if (a.print) v.push_back("--print");
  if (cuda && a.compile_only) v.push_back("--compile-only");
  return v;
}

absl::StatusOr<HarnessArgs> ParseArgv(HarnessKind kind, const std::vector<std::string>& args) {
  const bool cuda = kind == HarnessKind::kCuda;
  HarnessArgs o;
  o.kind = kind;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i], v;
    // --verify changes nothing (every run checks every call): kept so that
    // older command lines work.
    if (IsHarnessSwitch(a) && (cuda || a != "--compile-only")) {
      if (a == "--print") o.print = true;
      if (a == "--compile-only") o.compile_only = true;
      if (a == "--oracle-only") o.oracle_only = true;
      continue;
    }
    if (a == "-h" || a == "--help") return Bad("help");
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else {
      if (i + 1 >= args.size()) return Bad(absl::StrCat(a, " needs a value"));
      v = args[++i];
    }
    auto count = [&](std::optional<int>* dst, int min) {
      int n = 0;
      if (!absl::SimpleAtoi(v, &n) || n < min) return false;
      *dst = n;
      return true;
    };
    auto positive = [&](double* dst) { return absl::SimpleAtod(v, dst) && *dst > 0; };
    if (a == "--problem") o.problem = v;
    else if (a == "--solution") o.solution = v;
    else if (a == "--out") o.out = v;
    else if (a == "--python") o.python = v;
    else if (a == "--scratch") o.scratch = v;
    else if (a == "--baseline") o.baseline = v;
    else if (a == "--given-rounds") o.given_rounds = v;
    else if (a == "--device-lock") o.device_lock = v;
    else if (cuda && a == "--cache-dir") o.cache_dir = v;
    else if (a == "--screen") {
      if (v != "auto" && v != "on" && v != "off") return Bad("--screen must be auto, on or off");
      o.screen = v;
    } else if (cuda && a == "--arch") {
      if (!IsArch(v))
        return Bad("--arch must be one of sm_80, sm_89, sm_90, sm_90a, sm_100, sm_100a, sm_120");
      o.arch = v;
    } else if (a == "--seed") {
      if (!absl::SimpleAtoi(v, &o.seed)) return Bad("--seed needs a non-negative integer");
    } else if (a == "--warmups") {
      if (!count(&o.warmups, 0)) return Bad("--warmups needs a non-negative integer");
    } else if (a == "--repetitions") {
      if (!count(&o.repetitions, 1)) return Bad("--repetitions needs an integer >= 1");
    } else if (a == "--rounds") {
      if (!count(&o.rounds, 1)) return Bad("--rounds needs an integer >= 1");
    } else if (cuda && a == "--device-index") {
      if (!absl::SimpleAtoi(v, &o.device_index) || o.device_index < 0)
        return Bad("--device-index needs a non-negative integer");
    } else if (a == "--peak-gbps") {
      if (!positive(&o.peak_gbps)) return Bad("--peak-gbps needs a positive number");
    } else if (!cuda && a == "--peak-gflops") {
      if (!positive(&o.peak_gflops)) return Bad("--peak-gflops needs a positive number");
    } else if (cuda && a == "--peak-tflops") {
      if (!positive(&o.peak_tflops)) return Bad("--peak-tflops needs a positive number");
    } else if (a == "--back-to-back") {
      if (!positive(&o.back_to_back) || o.back_to_back > 60)
        return Bad("--back-to-back needs seconds in (0, 60]");
    } else if (a == "--knob") {
      const size_t k = v.find('=');
      if (k == std::string::npos || k == 0) return Bad("--knob needs NAME=VALUE");
      o.knobs.emplace_back(v.substr(0, k), v.substr(k + 1));
    } else {
      return Bad(absl::StrCat("unknown argument ", a));
    }
  }
  if (o.problem.empty() || o.solution.empty() || o.out.empty())
    return Bad("--problem, --solution and --out are required");
  const double compute = cuda ? o.peak_tflops : o.peak_gflops;
  if ((o.peak_gbps > 0) != (compute > 0))
    return Bad(cuda ? "--peak-gbps and --peak-tflops go together"
                    : "--peak-gbps and --peak-gflops go together");
  return o;
}

std::string HarnessUsage(HarnessKind kind) {
  if (kind == HarnessKind::kCuda) {
    return "usage: ratchet-harness-cuda --problem DIR --solution DIR --out FILE\n"
           "         [--knob NAME=VALUE]... [--seed N] [--warmups N] [--repetitions N]\n"
           "         [--rounds N] [--device-index N] [--arch sm_90|sm_90a|sm_100]\n"
           "         [--peak-gbps X --peak-tflops Y] [--python PATH] [--scratch DIR]\n"
           "         [--cache-dir DIR] [--compile-only] [--screen auto|on|off] [--print]\n"
           "         [--verify] [--back-to-back SECONDS] [--baseline FILE]\n"
           "         [--oracle-only] [--given-rounds DIR] [--device-lock FILE]\n";
  }
  return "usage: ratchet-harness --problem DIR --solution DIR --out FILE\n"
         "         [--knob NAME=VALUE]... [--seed N] [--warmups N] [--repetitions N]\n"
         "         [--rounds N] [--peak-gbps X --peak-gflops Y] [--python PATH]\n"
         "         [--scratch DIR] [--screen auto|on|off] [--print]\n"
         "         [--verify] [--back-to-back SECONDS] [--baseline FILE]\n"
         "         [--oracle-only] [--given-rounds DIR] [--device-lock FILE]\n";
}

std::vector<std::string> ToEnvironment(const HarnessSecrets& s) {
  std::vector<std::string> env;
  if (!s.nonce.empty()) env.push_back(absl::StrCat(kNonceEnv, "=", s.nonce));
  if (s.independent_timing > 0)
    env.push_back(absl::StrCat(kIndependentTimingEnv, "=", Number(s.independent_timing)));
  return env;
}

HarnessSecrets SecretsFromEnvironment() {
  HarnessSecrets s;
  if (const char* n = std::getenv(kNonceEnv)) s.nonce = n;
  if (const char* b = std::getenv(kIndependentTimingEnv)) {
    double t = 0;
    if (absl::SimpleAtod(b, &t) && t > 0 && t <= 60) s.independent_timing = t;
  }
  return s;
}

// ---------------------------------------------------------------------------

bool IsHarnessOutcome(std::string_view o) {
  for (const char* known : {"ok", "compile_error", "wrong_answer", "timeout", "crash",
                            "out_of_bounds", "harness_error"})
    if (o == known) return true;
  return false;
}

bool operator==(const WorkloadResult& a, const WorkloadResult& b) {
  auto f = [](const WorkloadResult& w) {
    return std::tie(w.index, w.axes, w.correct, w.matched_fraction, w.max_abs_error, w.t_k_ns,
                    w.t_k_spread, w.t_b_ns, w.t_b_spread, w.t_b_given, w.t_sol_ns, w.score,
                    w.timed_rounds, w.calls, w.flags, w.atol, w.rtol, w.t_b_eager_ns,
                    w.t_b_compile_ns, w.t_ref_kernel_ns, w.flops, w.bytes, w.repetitions,
                    w.baseline_notes, w.t_k_events_ns, w.t_k_p10_ns);
  };
  return f(a) == f(b);
}

bool operator==(const HarnessResult& a, const HarnessResult& b) {
  auto f = [](const HarnessResult& r) {
    return std::tie(r.kind, r.outcome, r.message, r.score, r.workloads, r.peak_gbps,
                    r.peak_gflops, r.compile_seconds, r.round_trip_ns, r.wall_seconds,
                    r.software, r.nonce, r.flags, r.device_name, r.compute_capability, r.arch,
                    r.peak_tflops, r.peak_sku, r.peak_source, r.peak_unit, r.peak_dtype,
                    r.build_reused, r.candidate_user, r.stage_seconds, r.rounds_given);
  };
  return f(a) == f(b);
}

std::string ToJson(const HarnessResult& r) {
  const bool cuda = r.kind == HarnessKind::kCuda;
  Json j;
  j["outcome"] = r.outcome;
  j["message"] = r.message.size() > kMaxResultMessage ? Tail(r.message, kMaxResultMessage)
                                                      : r.message;
  j["score"] = r.score;
  Json ws = Json::array();
  for (const WorkloadResult& w : r.workloads) ws.push_back(WorkloadJson(w, cuda));
  j["workloads"] = std::move(ws);
  if (cuda) {
    j["flags"] = r.flags;
    j["device"] = {{"name", r.device_name},
                   {"compute_capability", r.compute_capability},
                   {"arch", r.arch}};
    j["peaks"] = {{"gbps", r.peak_gbps}, {"tflops", r.peak_tflops}, {"gflops", r.peak_gflops},
                  {"sku", r.peak_sku},   {"source", r.peak_source},  {"unit", r.peak_unit},
                  {"dtype", r.peak_dtype}};
  } else {
    j["peaks"] = {{"gbps", r.peak_gbps}, {"gflops", r.peak_gflops}};
  }
  j["compile_seconds"] = r.compile_seconds;
  if (cuda) j["build_reused"] = r.build_reused;
  j["round_trip_ns"] = r.round_trip_ns;
  j["wall_seconds"] = r.wall_seconds;
  if (r.rounds_given) j["rounds_given"] = true;
  if (!r.stage_seconds.empty()) {
    Json stages = Json::object();
    for (const auto& [stage, seconds] : r.stage_seconds) stages[stage] = seconds;
    j["stage_seconds"] = std::move(stages);
  }
  // CUDA: T_k is the trusted clock's request-to-answer time less the
  // calibrated round trip (launch overhead included, no in-process CUPTI or
  // events). Both: the candidate ran in a process of its own.
  if (cuda) j["timing"] = "round-trip";
  j["isolation"] = "process";
  if (cuda && !r.candidate_user.empty()) j["candidate_user"] = r.candidate_user;
  if (cuda) {
    if (!r.nonce.empty()) j["nonce"] = r.nonce;
    if (!r.software.empty()) j["software"] = r.software;
  } else {
    if (!r.software.empty()) j["software"] = r.software;
    if (!r.nonce.empty()) j["nonce"] = r.nonce;
  }
  // The message may quote candidate output or file names: bytes that are not
  // UTF-8 become U+FFFD rather than an exception that would lose the result.
  return j.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

absl::StatusOr<HarnessResult> FromJson(std::string_view text) {
  const Json doc = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return Bad("result is not valid JSON");
  if (!doc.is_object()) return Bad("result is not a JSON object");
  HarnessResult r;
  if (auto s = Get(doc, "outcome", &r.outcome, /*required=*/true); !s.ok()) return s;
  if (!IsHarnessOutcome(r.outcome)) return Bad(absl::StrCat("unknown outcome \"", r.outcome, "\""));
  auto device = GetObject(doc, "device");
  if (!device.ok()) return device.status();
  auto peaks = GetObject(doc, "peaks");
  if (!peaks.ok()) return peaks.status();
  r.kind = *device != nullptr ? HarnessKind::kCuda : HarnessKind::kCpu;
  for (absl::Status s : {
           Get(doc, "message", &r.message),
           Get(doc, "score", &r.score),
           Get(doc, "compile_seconds", &r.compile_seconds),
           Get(doc, "round_trip_ns", &r.round_trip_ns),
           Get(doc, "wall_seconds", &r.wall_seconds),
           Get(doc, "software", &r.software),
           GetStrings(doc, "flags", &r.flags),
           Get(doc, "build_reused", &r.build_reused),
           Get(doc, "candidate_user", &r.candidate_user),
           Get(doc, "rounds_given", &r.rounds_given),
       }) {
    if (!s.ok()) return s;
  }
  if (auto it = doc.find("stage_seconds"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) return Bad("\"stage_seconds\" must be an object");
    for (auto st = it->begin(); st != it->end(); ++st) {
      if (!st.value().is_number()) return Bad("\"stage_seconds\" values must be numbers");
      r.stage_seconds.emplace_back(st.key(), st.value().get<double>());
    }
  }
  if (const Json* d = *device) {
    for (absl::Status s : {Get(*d, "name", &r.device_name),
                           Get(*d, "compute_capability", &r.compute_capability),
                           Get(*d, "arch", &r.arch)}) {
      if (!s.ok()) return s;
    }
  }
  if (const Json* p = *peaks) {
    for (absl::Status s : {Get(*p, "gbps", &r.peak_gbps), Get(*p, "gflops", &r.peak_gflops),
                           Get(*p, "tflops", &r.peak_tflops), Get(*p, "sku", &r.peak_sku),
                           Get(*p, "source", &r.peak_source), Get(*p, "unit", &r.peak_unit),
                           Get(*p, "dtype", &r.peak_dtype)}) {
      if (!s.ok()) return s;
    }
  }
  // The secret is only ever compared: anything but a string is none.
  if (auto n = doc.find("nonce"); n != doc.end() && n->is_string()) r.nonce = n->get<std::string>();
  auto ws = doc.find("workloads");
  if (ws != doc.end() && !ws->is_null()) {
    if (!ws->is_array()) return Bad("\"workloads\" is not an array");
    for (const Json& x : *ws) {
      auto w = WorkloadFromJson(x);
      if (!w.ok()) return w.status();
      r.workloads.push_back(*std::move(w));
    }
  }
  return r;
}

}  // namespace ratchet::kernels
