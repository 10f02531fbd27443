// The one check of a campaign spec, run where it is submitted (the
// coordinator's SubmitCampaign, for every client) and by the CLI: field by
// field as it reads the YAML (CheckNumber, CheckString, so that the message
// names the line) and on the whole spec it built (so that a user sees the
// same message before submitting). Every number in CampaignSpec and its
// messages has a range, every string a size and a character set (and a
// list of names where it names something), every enum a value that a spec
// may name (spec/names.h: a task that runs), solution files names that stay
// inside the solution folder, the language and device are ones a worker can
// run (common/languages.h) with the entry_point and knobs its harness reads,
// and the problem reads with the harness's reader where that is linked
// (common/problem_check.h): a spec that passes cannot turn into a million jobs or a job that
// fails on a worker for a reason known at submit. The bounds are tabled in
// docs/campaign-spec.md.
#ifndef RATCHET_SPEC_VALIDATION_H_
#define RATCHET_SPEC_VALIDATION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/utf8.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::spec {

// Sizes (bytes) and counts.
inline constexpr size_t kMaxSpecBytes = 16 << 20;  // the whole serialized spec
inline constexpr size_t kMaxNameBytes = 128;       // name, gpu_model
inline constexpr size_t kMaxShortStringBytes = 256;
inline constexpr size_t kMaxOtherStringBytes = 4096;  // a string field not named below
inline constexpr size_t kMaxDefinitionBytes = 1 << 20;
inline constexpr size_t kMaxWorkloadBytes = 8 << 20;
inline constexpr size_t kMaxSolutionFiles = 64;
inline constexpr size_t kMaxFileNameBytes = 255;
inline constexpr size_t kMaxFileBytes = 1 << 20;
inline constexpr size_t kMaxSolutionBytes = 8 << 20;  // all files together
inline constexpr size_t kMaxKnobs = 64;
inline constexpr size_t kMaxKnobNameBytes = 64;
inline constexpr size_t kMaxReplaySettings = 10000;
inline constexpr size_t kMaxTierEntries = 8;  // verification.tiers
inline constexpr size_t kMaxLlmModels = 16;
inline constexpr size_t kMaxUrlBytes = 2048;
inline constexpr size_t kMaxEndpointNameBytes = 64;  // llm.endpoint
inline constexpr int kMaxFidelities = 5;  // training.fidelities

// The range of one number, by its field path without indices
// ("harness.timeout_seconds", "llm.models.weight").
struct SpecBound {
  const char* path;
  double lo, hi;
  bool lo_open = false, hi_open = false;  // (lo, ...] or [..., hi)
  bool zero_is_default = false;           // 0 (proto3's "unset") also passes
};
// Every numeric field of CampaignSpec and its messages, in proto order.
const std::vector<SpecBound>& CampaignSpecBounds();

// OK, or InvalidArgument naming the field and the rule, e.g.
// "harness.repetitions: 2000000000 is out of range [1, 10000] (0 = default)":
// the message starts with the field's place and ": ".
absl::Status ValidateCampaignSpec(const v1::CampaignSpec& spec);

// The llm section alone, as LlmProposer::Create takes it: base_url and
// api_key_env refused (the endpoint's URL and key are the coordinator
// operator's, docs/llm.md), an endpoint named, every model named, and the
// bounds of its numbers. Messages start with "llm.".
absl::Status ValidateLlmSettings(const v1::LlmSettings& llm);

// One field's rule, for a reader that knows where the value came from (the
// CLI: a YAML line). `field` is its place with or without indices
// ("harness.repetitions", "llm.models[0].weight"). InvalidArgument with the
// rule alone, without the field: the caller names it.
//
// A number against its bound; `text` shows it in the message. `written`: the
// value was written out (a YAML key), so a 0 does not stand for "unset" and
// gets no pass from zero_is_default.
absl::Status CheckNumber(absl::string_view field, double value, absl::string_view text,
                         bool written);
// A string against its field's size, characters and names (an empty string
// passes: it is the default).
absl::Status CheckString(absl::string_view field, absl::string_view value);

// An operator's LLM endpoint name, as `llm.endpoint` names it: letters,
// digits, '-', '_' and '.', at most kMaxEndpointNameBytes.
absl::Status ValidateEndpointName(absl::string_view name);

// A solution file name: relative, no "." or ".." or empty component, no
// control characters, valid UTF-8, at most kMaxFileNameBytes.
absl::Status ValidateSolutionFileName(absl::string_view name);

// Whether `s` is well-formed UTF-8 (common/utf8.h).
using ::ratchet::IsValidUtf8;

}  // namespace ratchet::spec

#endif  // RATCHET_SPEC_VALIDATION_H_
