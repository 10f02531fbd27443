// Constructors of the built-in proposers, for MakeProposer (proposer.cc).
#ifndef RATCHET_COORDINATOR_PROPOSERS_BUILTIN_H_
#define RATCHET_COORDINATOR_PROPOSERS_BUILTIN_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/proposers/proposer.h"

namespace ratchet::proposers {

std::unique_ptr<Proposer> NewEvolveProposer();
std::unique_ptr<Proposer> NewRandomProposer();
// Every point of the knob space in a fixed order: the first knob of the
// KnobSpace (knob names sort alphabetically) varies fastest, each knob
// through its choices as declared.
std::unique_ptr<Proposer> NewGridProposer();
// The given knob settings in order, each already normalised (every declared
// knob explicit; MakeProposer checks and fills them from the spec).
std::unique_ptr<Proposer> NewReplayProposer(
    std::vector<std::map<std::string, std::string>> settings);

}  // namespace ratchet::proposers

#endif  // RATCHET_COORDINATOR_PROPOSERS_BUILTIN_H_
