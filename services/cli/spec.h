// Loading a campaign spec from YAML. The spec names a problem folder and a
// baseline solution folder; both are read here and carried by value in the
// CampaignSpec, so the coordinator never needs this machine's filesystem.
//
//   name: demo-matmul
//   task: kernel
//   problem: cpu/matmul            # folder with definition.json, workload.jsonl
//   baseline: cpu/matmul/baseline  # solution folder (solution.json + sources)
//   threads: 2
//   proposer: evolve               # evolve | random
//   seed: 7
//   budget: {max_evaluations: 30, max_wall_seconds: 480}
//   verification: {replays: 3, min_gain: 0.02}
//   harness: {warmups: 2, repetitions: 15, correctness_rounds: 2, timeout_seconds: 90}
//   device: cpu
//   in_flight_per_thread: 2
//
// Paths are relative to the YAML file. Omitted fields get the defaults below.
#ifndef RATCHET_SERVICES_CLI_SPEC_H_
#define RATCHET_SERVICES_CLI_SPEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::cli {

// Defaults for omitted fields.
inline constexpr const char* kDefaultTask = "kernel";
inline constexpr int kDefaultThreads = 2;
inline constexpr const char* kDefaultProposer = "evolve";
inline constexpr uint64_t kDefaultSeed = 1;
inline constexpr int kDefaultMaxEvaluations = 50;
inline constexpr double kDefaultMaxWallSeconds = 0;  // unlimited
inline constexpr int kDefaultReplays = 3;
inline constexpr double kDefaultMinGain = 0.01;
inline constexpr double kDefaultSignificance = 0.05;
inline constexpr int kDefaultWarmups = 10;  // SOL-ExecBench's timing settings
inline constexpr int kDefaultRepetitions = 50;
inline constexpr int kDefaultCorrectnessRounds = 10;
inline constexpr double kDefaultTimeoutSeconds = 120;
inline constexpr const char* kDefaultDevice = "cpu";
inline constexpr int kDefaultInFlightPerThread = 2;

// Reads `yaml_path`, the problem folder and the baseline folder. Errors are
// InvalidArgument (or NotFound for missing files) and name the file, the key
// and what is wrong, e.g. "demo.yaml:4: threads: must be at least 1, got 0".
absl::StatusOr<ratchet::v1::CampaignSpec> LoadCampaignSpec(const std::string& yaml_path);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_SPEC_H_
