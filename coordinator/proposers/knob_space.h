// The candidate identity derived from files plus knob choices. The knobs a
// solution declares in its solution.json are the spec's (spec/knobs.h).
#ifndef RATCHET_COORDINATOR_PROPOSERS_KNOB_SPACE_H_
#define RATCHET_COORDINATOR_PROPOSERS_KNOB_SPACE_H_

#include <string>

#include "ratchet/v1/ratchet.pb.h"
#include "spec/knobs.h"

namespace ratchet::proposers {

// Proposers use the spec's knob declarations under these names.
using spec::Knob;
using spec::KnobSpace;
using spec::KnobValue;
using spec::NormalizeKnobs;
using spec::ParseKnobSpace;

// A stable content hash (hex) over file paths, contents and knob choices.
std::string ContentHash(const v1::Solution& solution);

// "BLOCK 32→64, UNROLL 1→4"; "no change" when equal.
std::string DescribeKnobChange(const v1::Solution& from, const v1::Solution& to);

}  // namespace ratchet::proposers

#endif  // RATCHET_COORDINATOR_PROPOSERS_KNOB_SPACE_H_
