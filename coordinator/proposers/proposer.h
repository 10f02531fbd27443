// Proposers turn a research thread's state into the next candidate (brief §2).
// They are pure functions of their inputs and a seeded random generator, so a
// campaign's proposals are reproducible from its seed.
#ifndef RATCHET_COORDINATOR_PROPOSERS_PROPOSER_H_
#define RATCHET_COORDINATOR_PROPOSERS_PROPOSER_H_

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/proposers/knob_space.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::proposers {

struct ProposalContext {
  const v1::Candidate* parent = nullptr;         // the thread's incumbent
  const KnobSpace* space = nullptr;              // the baseline's knobs
  // Every candidate of the campaign so far, with scores (-1 = none yet or
  // failed): the shared experience a proposer may learn from.
  const std::vector<v1::Candidate>* history = nullptr;
  int thread_index = 0;
  std::mt19937_64* rng = nullptr;
};

struct Proposal {
  v1::Solution solution;    // knobs normalised (every knob explicit)
  std::string description;  // what changed against the parent
};

class Proposer {
 public:
  virtual ~Proposer() = default;
  virtual absl::StatusOr<Proposal> Propose(const ProposalContext& context) = 0;
};

// "evolve" | "random"; InvalidArgument for anything else.
absl::StatusOr<std::unique_ptr<Proposer>> MakeProposer(const std::string& name);

}  // namespace ratchet::proposers

#endif  // RATCHET_COORDINATOR_PROPOSERS_PROPOSER_H_
