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
//     endpoint: local-vllm         # an endpoint the coordinator's operator configured
//     models: [{name: qwen2.5-coder-32b, weight: 1, prompt_price_per_1k: 0,
//               completion_price_per_1k: 0}]   # left out: the endpoint's default model
//     temperature: 0.7
//     max_tokens: 4096
//     timeout_seconds: 120
//     max_retries: 4
//     max_concurrency: 4
//     max_cost_usd: 5              # 0 = no cap
//     merge_every: 0               # every Nth proposal of a thread merges; 0 = never
//   replay: [{VEC: 8}, {VEC: 16, UNROLL: 4}]   # proposer replay only
//
// Paths are relative to the YAML file. Omitted fields get the spec's
// defaults (spec/defaults.h, docs/campaign-spec.md), the same ones the
// coordinator gives a spec from any other client.
#ifndef RATCHET_SERVICES_CLI_SPEC_H_
#define RATCHET_SERVICES_CLI_SPEC_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::cli {

// Reads `yaml_path`, the problem folder and the baseline folder. Errors are
// InvalidArgument (or NotFound for missing files) and name the file, the line,
// the key and what is wrong, e.g. "demo.yaml:4: threads: 0 is out of range
// [1, 64]". Every value is checked by the spec's own rule for its field as it
// is read, and the spec built by the validator that the coordinator runs at
// submit (spec/validation.h), so a spec that loads also passes submit's
// checks. Duplicate keys are refused with both lines.
absl::StatusOr<ratchet::v1::CampaignSpec> LoadCampaignSpec(const std::string& yaml_path);

// A spec whose `problem:` is a folder of problems (no definition.json of its
// own; subfolders that have one) is a suite: one campaign per problem, in
// name order, each named "NAME/PROBLEM", with the problem folder's
// `baseline/` as its baseline when the spec names none (else one derived
// from its reference), and `experience: shared` unless the spec says
// otherwise. Any other spec is a suite of one.
absl::StatusOr<std::vector<ratchet::v1::CampaignSpec>> LoadCampaignSuite(
    const std::string& yaml_path);

// The same from the YAML text; `yaml_path` names it in errors, gives the
// default name and is where relative problem and baseline folders start.
// Never throws, whatever the text (tests/fuzz/spec_fuzzer.cc).
absl::StatusOr<ratchet::v1::CampaignSpec> ParseCampaignSpec(const std::string& yaml_text,
                                                            const std::string& yaml_path);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_SPEC_H_
