// The one check of a campaign spec, run where it is submitted (the
// coordinator's SubmitCampaign, for every client) and by the CLI after it
// has read the YAML (so that a user sees the same message before
// submitting). Every number in CampaignSpec and its messages has a range,
// every string a size and a character set, solution files names that stay
// inside the solution folder, and the language and device are ones a worker
// can run: a spec that passes cannot turn into a million jobs or a job that
// fails on a worker for a reason known at submit. The bounds are tabled in
// docs/campaign-spec.md.
#ifndef RATCHET_COORDINATOR_SPEC_VALIDATION_H_
#define RATCHET_COORDINATOR_SPEC_VALIDATION_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet {

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
inline constexpr size_t kMaxLlmModels = 16;
inline constexpr size_t kMaxUrlBytes = 2048;

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
// "harness.repetitions: 2000000000 is out of range [1, 10000] (0 = default)".
absl::Status ValidateCampaignSpec(const v1::CampaignSpec& spec);

// A solution file name: relative, no "." or ".." or empty component, no
// control characters, valid UTF-8, at most kMaxFileNameBytes.
absl::Status ValidateSolutionFileName(absl::string_view name);

// Whether `s` is well-formed UTF-8 (RFC 3629).
bool IsValidUtf8(absl::string_view s);

}  // namespace ratchet

#endif  // RATCHET_COORDINATOR_SPEC_VALIDATION_H_
