// Loading a campaign spec from YAML. The spec names a problem folder and a
// baseline solution folder; both are read here and carried by value in the
// CampaignSpec, so the coordinator never needs this machine's filesystem.
//
//   name: demo-matmul
//   task: kernel
//   problem: cpu/matmul            # folder with definition.json, workload.jsonl
//   baseline: cpu/matmul/baseline  # solution folder (solution.json + sources)
//   threads: 2
//   proposer: evolve               # evolve | random | grid | replay | llm
//   seed: 7
//   budget: {max_evaluations: 30, max_wall_seconds: 480}
//   verification: {replays: 3, min_gain: 0.02}
//   harness: {warmups: 2, repetitions: 15, correctness_rounds: 2, timeout_seconds: 90,
//             screen: auto}               # auto | on | off (docs/harness.md)
//   device: cpu
//   in_flight_per_thread: 2
//   llm:                           # proposer llm only (docs/llm.md)
//     base_url: http://127.0.0.1:8000
//     api_key_env: OPENAI_API_KEY  # the coordinator's environment variable
//     models: [{name: qwen2.5-coder-32b, weight: 1, prompt_price_per_1k: 0,
//               completion_price_per_1k: 0}]
//     temperature: 0.7
//     max_tokens: 4096
//     timeout_seconds: 120
//     max_retries: 4
//     max_concurrency: 4
//     max_cost_usd: 5              # 0 = no cap
//     merge_every: 0               # every Nth proposal of a thread merges; 0 = never
//   replay: [{VEC: 8}, {VEC: 16, UNROLL: 4}]   # proposer replay only
//
// Paths are relative to the YAML file. Omitted fields get the defaults below.
#ifndef RATCHET_SERVICES_CLI_SPEC_H_
#define RATCHET_SERVICES_CLI_SPEC_H_

#include <string>

#include "absl/status/statusor.h"
#include "coordinator/proposers/llm/llm_proposer.h"
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
inline constexpr const char* kDefaultScreen = "auto";
inline constexpr const char* kDefaultDevice = "cpu";
inline constexpr int kDefaultInFlightPerThread = 2;
// The llm: section (docs/llm.md); where the proposer has a default, the
// spec spells out the same one.
inline constexpr double kDefaultLlmTemperature = 0.7;
inline constexpr int kDefaultLlmMaxTokens = llm::kDefaultMaxTokens;
inline constexpr double kDefaultLlmTimeoutSeconds = llm::kDefaultTimeoutSeconds;
inline constexpr int kDefaultLlmMaxRetries = 4;
inline constexpr int kDefaultLlmMaxConcurrency = llm::kDefaultMaxConcurrency;

// Reads `yaml_path`, the problem folder and the baseline folder. Errors are
// InvalidArgument (or NotFound for missing files) and name the file, the key
// and what is wrong, e.g. "demo.yaml:4: threads: must be at least 1, got 0".
// Duplicate keys are refused with both lines; the spec built is then checked
// by the coordinator's validator (coordinator/spec_validation.h), so a spec
// that loads also passes submit's checks.
absl::StatusOr<ratchet::v1::CampaignSpec> LoadCampaignSpec(const std::string& yaml_path);

// The same from the YAML text; `yaml_path` names it in errors, gives the
// default name and is where relative problem and baseline folders start.
// Never throws, whatever the text (tests/fuzz/spec_fuzzer.cc).
absl::StatusOr<ratchet::v1::CampaignSpec> ParseCampaignSpec(const std::string& yaml_text,
                                                            const std::string& yaml_path);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_SPEC_H_
