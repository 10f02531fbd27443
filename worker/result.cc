#include "worker/result.h"

#include <signal.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"

namespace ratchet::worker {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxMessage = 16 * 1024;

// Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong
// forms, surrogates or code points past U+10FFFF), 0 when there is none.
size_t Utf8SequenceAt(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t extra;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) extra = 1;
  else if (c == 0xE0) extra = 2, lo = 0xA0;
  else if (c == 0xED) extra = 2, hi = 0x9F;
  else if (c >= 0xE1 && c <= 0xEF) extra = 2;
  else if (c == 0xF0) extra = 3, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) extra = 3;
  else if (c == 0xF4) extra = 3, hi = 0x8F;
  else return 0;
  if (i + extra >= s.size()) return 0;
  const auto c1 = static_cast<unsigned char>(s[i + 1]);
  if (c1 < lo || c1 > hi) return 0;
  for (size_t k = 2; k <= extra; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return extra + 1;
}

// Protobuf `string` fields must be UTF-8, or the coordinator cannot parse the
// report at all; candidate output (the tail) is any bytes. Each byte that
// does not start a well-formed sequence becomes U+FFFD.
std::string ValidUtf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceAt(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s, i, n);
      i += n;
    }
  }
  return out;
}

// At most kMaxMessage bytes, cut between characters.
std::string Clip(std::string s) {
  s = ValidUtf8(s);
  if (s.size() > kMaxMessage) {
    size_t cut = kMaxMessage;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s.resize(cut);
    s += "\n[truncated]";
  }
  return s;
}

std::string WithTail(std::string message, const std::string& tail) {
  if (!tail.empty()) absl::StrAppend(&message, "\nlast output:\n", tail);
  return Clip(std::move(message));
}

// Typed field access that reports the field by name instead of throwing an
// opaque type_error.
template <typename T>
absl::Status Get(const json& obj, const char* key, T* out, bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return absl::InvalidArgumentError(absl::StrCat("missing \"", key, "\""));
    return absl::OkStatus();
  }
  if constexpr (std::is_same_v<T, int>) {
    // get<int> of 1e300 or 2^40 is a cast out of range (undefined for a
    // double): only whole numbers that fit are taken.
    const bool fits = it->is_number_integer()
                          ? (it->is_number_unsigned()
                                 ? it->template get<uint64_t>() <= INT_MAX
                                 : it->template get<int64_t>() >= INT_MIN &&
                                       it->template get<int64_t>() <= INT_MAX)
                          : it->is_number_float() && std::isfinite(it->template get<double>()) &&
                                it->template get<double>() >= INT_MIN &&
                                it->template get<double>() <= INT_MAX &&
                                std::trunc(it->template get<double>()) == it->template get<double>();
    if (!fits)
      return absl::InvalidArgumentError(absl::StrCat("\"", key, "\" is not a whole number in "
                                                     "range (", it->type_name(), ")"));
  }
  try {
    *out = it->get<T>();
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", key, "\" has the wrong type (", it->type_name(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::Evaluation> ParseHarnessResult(const std::string& text) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return absl::InvalidArgumentError("result is not valid JSON");
  if (!doc.is_object()) return absl::InvalidArgumentError("result is not a JSON object");

  v1::Evaluation eval;
  std::string outcome;
  if (auto s = Get(doc, "outcome", &outcome, true); !s.ok()) return s;
  eval.set_outcome(OutcomeFromString(outcome));
  if (eval.outcome() == v1::OUTCOME_UNSPECIFIED)
    return absl::InvalidArgumentError(absl::StrCat("unknown outcome \"", outcome, "\""));
  std::string message;
  if (auto s = Get(doc, "message", &message, false); !s.ok()) return s;
  eval.set_message(Clip(message));
  double score = 0;
  if (auto s = Get(doc, "score", &score, false); !s.ok()) return s;
  eval.set_score(eval.outcome() == v1::OUTCOME_OK ? score : 0.0);
  // The oracle's software: part of a stored baseline's key (docs/cluster.md,
  // "Baselines").
  std::string software;
  if (auto s = Get(doc, "software", &software, false); !s.ok()) return s;
  eval.set_baseline_software(ValidUtf8(software));

  auto it = doc.find("workloads");
  if (it != doc.end() && !it->is_null()) {
    if (!it->is_array()) return absl::InvalidArgumentError("\"workloads\" is not an array");
    for (const json& w : *it) {
      if (!w.is_object())
        return absl::InvalidArgumentError("a \"workloads\" entry is not an object");
      v1::WorkloadResult* r = eval.add_workloads();
      int index = r->index();
      std::string axes;
      bool correct = false;
      double matched = 0, max_err = 0, tk = 0, spread = 0, tb = 0, tsol = 0, ws = 0;
      absl::Status s;
      if (s = Get(w, "index", &index, true); !s.ok()) return s;
      if (s = Get(w, "axes", &axes, false); !s.ok()) return s;
      if (s = Get(w, "correct", &correct, false); !s.ok()) return s;
      if (s = Get(w, "matched_fraction", &matched, false); !s.ok()) return s;
      if (s = Get(w, "max_abs_error", &max_err, false); !s.ok()) return s;
      if (s = Get(w, "t_k_ns", &tk, false); !s.ok()) return s;
      if (s = Get(w, "t_k_spread", &spread, false); !s.ok()) return s;
      if (s = Get(w, "t_b_ns", &tb, false); !s.ok()) return s;
      if (s = Get(w, "t_sol_ns", &tsol, false); !s.ok()) return s;
      if (s = Get(w, "score", &ws, false); !s.ok()) return s;
      r->set_index(index);
      r->set_axes(ValidUtf8(axes));
      r->set_correct(correct);
      r->set_matched_fraction(matched);
      r->set_max_abs_error(max_err);
      r->set_t_k_ns(tk);
      r->set_t_k_spread(spread);
      r->set_t_b_ns(tb);
      r->set_t_sol_ns(tsol);
      r->set_score(ws);
      // GPU backend extras, all optional.
      double tk_events = 0, tb_eager = 0, tb_compile = 0, t_ref = 0;
      int repetitions = 0;
      if (s = Get(w, "t_k_events_ns", &tk_events, false); !s.ok()) return s;
      if (s = Get(w, "t_b_eager_ns", &tb_eager, false); !s.ok()) return s;
      if (s = Get(w, "t_b_compile_ns", &tb_compile, false); !s.ok()) return s;
      if (s = Get(w, "t_ref_kernel_ns", &t_ref, false); !s.ok()) return s;
      if (s = Get(w, "repetitions", &repetitions, false); !s.ok()) return s;
      r->set_t_k_events_ns(tk_events);
      r->set_t_b_eager_ns(tb_eager);
      r->set_t_b_compile_ns(tb_compile);
      r->set_t_ref_kernel_ns(t_ref);
      r->set_repetitions(repetitions);
      // T_b's provenance: timed in this run, or the stored baseline given
      // with --baseline.
      double tb_spread = 0;
      bool tb_given = false;
      if (s = Get(w, "t_b_spread", &tb_spread, false); !s.ok()) return s;
      if (s = Get(w, "t_b_given", &tb_given, false); !s.ok()) return s;
      r->set_t_b_spread(tb_spread);
      r->set_t_b_given(tb_given);
      auto flags = w.find("flags");
      if (flags != w.end() && !flags->is_null()) {
        if (!flags->is_array())
          return absl::InvalidArgumentError("\"flags\" is not an array of strings");
        for (const json& f : *flags) {
          if (!f.is_string())
            return absl::InvalidArgumentError("\"flags\" is not an array of strings");
          r->add_flags(ValidUtf8(f.get<std::string>()));
        }
      }
    }
  }
  return eval;
}

v1::Evaluation EvaluationFromRun(const RunResult& run,
                                 const std::optional<std::string>& result_json,
                                 double timeout_seconds, const std::string& tail,
                                 const std::string& nonce, int64_t scratch_limit_bytes) {
  v1::Evaluation eval;
  auto forged = [&](const std::string& why) {
    eval.set_outcome(v1::OUTCOME_CRASH);
    eval.set_message(WithTail(absl::StrCat("forged-result: ", why), tail));
  };
  if (run.scratch_exceeded) {
    // The candidate's doing (the harness's own files are small), and checked
    // first: a run killed for it may also have run long or died of a signal.
    eval.set_outcome(v1::OUTCOME_CRASH);
    std::string message = absl::StrFormat(
        "scratch-exceeded: wrote more than %d bytes (%.0f MiB) of scratch and was stopped",
        scratch_limit_bytes, scratch_limit_bytes / 1048576.0);
    if (run.signal == SIGXFSZ)
      absl::StrAppend(&message, " (a file reached the limit: ", SignalName(run.signal), ")");
    else if (run.scratch_used_bytes > 0 && run.scratch_used_bytes < INT64_MAX)
      absl::StrAppend(&message, " (", run.scratch_used_bytes, " bytes when measured)");
    else if (run.scratch_used_bytes == INT64_MAX)
      absl::StrAppend(&message, " (folders nested too deep to measure)");
    eval.set_message(WithTail(std::move(message), tail));
  } else if (run.timed_out) {
    eval.set_outcome(v1::OUTCOME_TIMEOUT);
    eval.set_message(WithTail(
        absl::StrFormat("ran past the wall-clock limit of %gs and was killed", timeout_seconds),
        tail));
  } else if (run.signal != 0) {
    // A result file written before the process died is not trusted.
    eval.set_outcome(v1::OUTCOME_CRASH);
    eval.set_message(WithTail(absl::StrCat("killed by ", SignalName(run.signal),
                                           " (signal ", run.signal, ")"),
                              tail));
  } else if (result_json.has_value() && !result_json->empty() && !nonce.empty() &&
             run.exit_code != 0) {
    forged("the harness exited with status " + std::to_string(run.exit_code) +
           " but a result file is there: it was not the harness's");
  } else if (result_json.has_value() && !result_json->empty()) {
    auto parsed = ParseHarnessResult(*result_json);
    if (parsed.ok() && !nonce.empty()) {
      const json doc = json::parse(*result_json, nullptr, /*allow_exceptions=*/false);
      if (!doc.is_object() || !doc.contains("nonce") || doc["nonce"] != nonce) {
        forged("the result file does not carry the harness's secret; candidate code wrote it");
        parsed = absl::UnknownError("forged");
      }
    }
    if (eval.outcome() == v1::OUTCOME_CRASH) {
      // forged above
    } else if (parsed.ok()) {
      eval = *std::move(parsed);
    } else {
      eval.set_outcome(v1::OUTCOME_HARNESS_ERROR);
      eval.set_message(WithTail(absl::StrCat("unreadable harness result: ",
                                             parsed.status().message()),
                                tail));
    }
  } else {
    eval.set_outcome(v1::OUTCOME_CRASH);
    eval.set_message(WithTail(
        absl::StrCat("exited with status ", run.exit_code, " without a result"), tail));
  }
  if (eval.outcome() != v1::OUTCOME_OK) eval.set_score(0);
  eval.set_wall_seconds(run.wall_seconds);
  return eval;
}

}  // namespace ratchet::worker
