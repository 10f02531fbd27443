#include "worker/result.h"

#include <signal.h>

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/utf8.h"
#include "kernels/harness/contract.h"

namespace ratchet::worker {
namespace {

constexpr size_t kMaxMessage = 16 * 1024;

// At most kMaxMessage bytes, cut between characters.
// Protobuf `string` fields must be UTF-8, or the coordinator cannot parse
// the report at all; candidate output (the tail) is any bytes.
std::string Clip(std::string s) {
  s = ToValidUtf8(s);
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


// The harness's result as the coordinator takes it: strings made UTF-8
// (protobuf refuses anything else), the message clipped, no score unless ok.
absl::StatusOr<v1::Evaluation> ToEvaluation(const kernels::HarnessResult& r) {
  v1::Evaluation eval;
  eval.set_outcome(OutcomeFromString(r.outcome));
  if (eval.outcome() == v1::OUTCOME_UNSPECIFIED)
    return absl::InvalidArgumentError(absl::StrCat("unknown outcome \"", r.outcome, "\""));
  eval.set_message(Clip(r.message));
  eval.set_score(eval.outcome() == v1::OUTCOME_OK ? r.score : 0.0);
  // The oracle's software: part of a stored baseline's key (docs/cluster.md,
  // "Baselines").
  eval.set_baseline_software(ToValidUtf8(r.software));
  eval.set_rounds_given(r.rounds_given);
  for (const auto& [stage, seconds] : r.stage_seconds)
    (*eval.mutable_stage_seconds())[ToValidUtf8(stage)] = seconds;
  for (const kernels::WorkloadResult& w : r.workloads) {
    v1::WorkloadResult* p = eval.add_workloads();
    p->set_index(w.index);
    p->set_axes(ToValidUtf8(w.axes));
    p->set_correct(w.correct);
    p->set_matched_fraction(w.matched_fraction);
    p->set_max_abs_error(w.max_abs_error);
    p->set_t_k_ns(w.t_k_ns);
    p->set_t_k_spread(w.t_k_spread);
    p->set_t_k_p10_ns(w.t_k_p10_ns);
    p->set_t_b_ns(w.t_b_ns);
    p->set_t_sol_ns(w.t_sol_ns);
    p->set_score(w.score);
    // GPU backend extras, 0 on the CPU.
    p->set_t_k_events_ns(w.t_k_events_ns);
    p->set_t_b_eager_ns(w.t_b_eager_ns);
    p->set_t_b_compile_ns(w.t_b_compile_ns);
    p->set_t_ref_kernel_ns(w.t_ref_kernel_ns);
    p->set_repetitions(w.repetitions);
    // T_b's provenance: timed in this run, or the stored baseline given
    // with --baseline.
    p->set_t_b_spread(w.t_b_spread);
    p->set_t_b_given(w.t_b_given);
    for (const std::string& f : w.flags) p->add_flags(ToValidUtf8(f));
  }
  return eval;
}

}  // namespace

absl::StatusOr<v1::Evaluation> ParseHarnessResult(const std::string& text) {
  auto result = kernels::FromJson(text);
  if (!result.ok()) return result.status();
  return ToEvaluation(*result);
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
    // Read once: whether it is the harness's, then what it says.
    auto result = kernels::FromJson(*result_json);
    absl::StatusOr<v1::Evaluation> parsed =
        result.ok() ? ToEvaluation(*result) : absl::StatusOr<v1::Evaluation>(result.status());
    if (!nonce.empty() && !result.ok()) {
      // The harness only writes files the contract reads back (its tests
      // check each one): this one carries no secret.
      forged(absl::StrCat("the result file is unreadable (", result.status().message(),
                          ") and carries no secret; candidate code wrote it"));
    } else if (!nonce.empty() && result->nonce != nonce) {
      forged("the result file does not carry the harness's secret; candidate code wrote it");
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
