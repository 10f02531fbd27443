// What the verifier found wrong with a claim's replays, kept by kind (a hack,
// a wrong answer, a flaky run, a failed incumbent) as it walks them, and the
// rejection the weightiest one makes. Shared by the kernel and the training
// verdicts (verdict.cc, training_verdict.cc).
#ifndef RATCHET_SERVICES_VERIFIER_FINDINGS_H_
#define RATCHET_SERVICES_VERIFIER_FINDINGS_H_

#include <initializer_list>
#include <string>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::verifier {

struct Problem {
  ratchet::v1::VerdictOutcome outcome = ratchet::v1::VERDICT_UNSPECIFIED;
  std::string reason, detail;
};

// Keeps the first problem of a kind: the earliest replay names it.
inline void Note(Problem* p, ratchet::v1::VerdictOutcome o, const std::string& reason,
                 const std::string& detail) {
  if (p->outcome != ratchet::v1::VERDICT_UNSPECIFIED) return;
  *p = {o, reason, detail};
}

// `p` as the verdict of `v`, its check and detail in the evidence.
inline ratchet::v1::Verification Reject(const Problem& p, ratchet::v1::Verification v) {
  v.set_outcome(p.outcome);
  v.set_reason(p.reason);
  v.set_detail(p.detail);
  v.mutable_evidence()->set_failed_check(p.reason);
  v.mutable_evidence()->set_check_detail(p.detail);
  return v;
}

// The first problem found among `in_order` (weightiest first: a hack
// outweighs everything, one caught replay is enough), or null.
inline const Problem* FirstFound(std::initializer_list<const Problem*> in_order) {
  for (const Problem* p : in_order)
    if (p->outcome != ratchet::v1::VERDICT_UNSPECIFIED) return p;
  return nullptr;
}

}  // namespace ratchet::verifier

#endif  // RATCHET_SERVICES_VERIFIER_FINDINGS_H_
