// Stored baselines (docs/cluster.md, "Baselines: T_b once per workload and
// hardware"): T_b of every workload is measured by the trusted oracle in the
// first evaluations of a problem on a kind of hardware and software, kept by
// the coordinator, frozen after kBaselineMeasurements, and then handed to
// every later job of that problem on that hardware, so that all candidates
// (and a verification's replays of candidate and incumbent) are scored
// against the same T_b. Pure functions, so that the rules are tested without
// a coordinator.
#ifndef RATCHET_COORDINATOR_STORED_BASELINES_H_
#define RATCHET_COORDINATOR_STORED_BASELINES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

// A baseline freezes once kBaselineMeasurements of its measurements agree to
// within kBaselineSteadySpread ((max - min) / median; the fastest such run),
// and their median is T_b from then on; with no such run, it freezes after
// kBaselineMaxMeasurements on the median of all. A busy machine that times
// the reference at ten times its worth once must neither fix every later
// score of the problem on that hardware nor keep the others from agreeing.
inline constexpr int kBaselineMeasurements = 3;
inline constexpr double kBaselineSteadySpread = 0.25;
inline constexpr int kBaselineMaxMeasurements = 9;

// FNV-1a 64 of `text`, 16 hex digits (the worker's T_b cache folders use the
// same hash of definition.json).
std::string Fnv1a64Hex(absl::string_view text);

// The problem part of the key: the hash of definition.json, verbatim.
std::string BaselineProblemKey(const v1::Problem& problem);

// The workload part, one per workload in harness order (the non-blank lines
// of workload.jsonl): the hash of the line, whitespace-trimmed. A workload
// keeps its key when other lines are added, removed or moved.
std::vector<std::string> BaselineWorkloadKeys(const v1::Problem& problem);

// Adds the oracle's measurement in `w` (an ok evaluation's workload whose T_b
// the harness timed itself) to `b`: the sample is kept; `b` is frozen on the
// fastest kBaselineMeasurements samples within kBaselineSteadySpread, else
// at kBaselineMaxMeasurements. t_b_ns and the eager/compile/reference-kernel
// times are the medians of the samples it stands on (that steady run, else
// all), t_b_spread (max - min) / median of their t_b_ns. Returns false (and
// changes nothing) when `b` is frozen already or `w` has no T_b.
bool AddBaselineMeasurement(const v1::WorkloadResult& w, int64_t evaluation_id,
                            const std::string& worker_id, int64_t now_unix_ms, v1::Baseline* b);

// From `stored` (the baselines of one problem on one hardware), a frozen
// baseline for every one of `workload_keys` with one software, in workload
// order, each with workload_index set to its position and without samples:
// `preferred_software`'s when it has them all, else the software whose set
// was completed last. Empty when no software has them all.
std::vector<v1::Baseline> PickBaselines(const std::vector<v1::Baseline>& stored,
                                        const std::vector<std::string>& workload_keys,
                                        const std::string& preferred_software);

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_STORED_BASELINES_H_
