// Turning what the harness left behind (its result JSON, or how its process
// ended) into an Evaluation. Pure functions, so that the mapping is tested
// without processes.
#ifndef RATCHET_WORKER_RESULT_H_
#define RATCHET_WORKER_RESULT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "ratchet/v1/ratchet.pb.h"
#include "common/names.h"
#include "worker/sandbox.h"

namespace ratchet::worker {

// The harness's outcome strings (common/names.h): "ok" -> OUTCOME_OK,
// unknown strings -> OUTCOME_UNSPECIFIED; and back, for metrics and logs.
inline v1::Outcome OutcomeFromString(const std::string& s) { return OutcomeFromName(s); }
inline std::string OutcomeLabel(v1::Outcome outcome) { return OutcomeName(outcome); }

// Parses the harness's --out file (docs/harness.md; read by the contract's
// FromJson, kernels/harness/contract.h) into outcome, message, score and
// workloads. Fails (InvalidArgument) on malformed JSON, a missing or unknown
// outcome, or fields of the wrong type.
absl::StatusOr<v1::Evaluation> ParseHarnessResult(const std::string& json);

// The whole mapping for one finished run: `result_json` is the result file's
// content, or nullopt when there was none. `tail` is the last lines the
// harness printed, appended to crash and timeout messages. Fills outcome,
// message, score, workloads and wall_seconds (the sandbox's measurement, which
// the candidate cannot influence).
//
// `nonce`, when not empty, is the secret the harness was given
// ($RATCHET_RESULT_NONCE): a result file is the harness's only if the
// harness exited 0 and the file carries it (one that cannot be read carries
// nothing). Anything else in that file was written by candidate code
// (docs/verifier.md, "Threat model") and is reported as a crash,
// "forged-result".
//
// A run whose scratch folder grew past its limit (`scratch_limit_bytes`, the
// SandboxSpec's) is a crash, "scratch-exceeded", whatever else it left: the
// candidate wrote it, and a result file written meanwhile is not trusted.
v1::Evaluation EvaluationFromRun(const RunResult& run,
                                 const std::optional<std::string>& result_json,
                                 double timeout_seconds, const std::string& tail,
                                 const std::string& nonce = "",
                                 int64_t scratch_limit_bytes = 0);

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_RESULT_H_
