// The check of a kernel campaign's problem text (definition.json and
// workload.jsonl) that SubmitCampaign runs through spec::ValidateCampaignSpec.
// The problem reader is the harness's (kernels/problem/), a layer that spec/
// and coordinator/ may not include; it registers itself here, once, when it
// is linked into a binary (kernels/problem/problem.cc), as it is into
// `ratchet`, which serves every coordinator. Header-only: a function slot.
#ifndef RATCHET_COMMON_PROBLEM_CHECK_H_
#define RATCHET_COMMON_PROBLEM_CHECK_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ratchet {

// OK, or InvalidArgument naming the file, the line and the field.
using ProblemCheck = absl::Status (*)(absl::string_view definition_json,
                                      absl::string_view workload_jsonl);

// The registered check; nullptr in a binary without the problem reader.
inline ProblemCheck& RegisteredProblemCheck() {
  static ProblemCheck check = nullptr;
  return check;
}

}  // namespace ratchet

#endif  // RATCHET_COMMON_PROBLEM_CHECK_H_
