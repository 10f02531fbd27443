// Multi-fidelity training campaigns: a candidate is first trained for a
// fraction of the budget and goes on to the next fraction only while its
// score is among the best 1/halving of every score seen at that fraction
// (asynchronous successive halving), so that full-length runs go only to
// promising candidates. The baseline runs at every fraction, so each rung
// starts with a reference; replays are always at full fidelity.
// docs/training.md, "Multi-fidelity".
#ifndef RATCHET_COORDINATOR_MULTI_FIDELITY_H_
#define RATCHET_COORDINATOR_MULTI_FIDELITY_H_

#include <vector>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

// The fractions below 1 that a campaign trains candidates at first, in
// order; empty for single-fidelity campaigns (every kernel campaign).
std::vector<double> LowFidelities(const v1::CampaignSpec& spec);

// The fidelity a new candidate's first evaluation runs at (0 = full).
double FirstFidelity(const v1::CampaignSpec& spec);

// The fidelity after `fidelity` (0 = full, when it was the last low one).
double NextFidelity(const v1::CampaignSpec& spec, double fidelity);

// A job's fidelity as a fraction in (0, 1]: 0 (unset) is 1.
inline double FidelityOf(const v1::Job& job) {
  return job.fidelity() > 0 && job.fidelity() < 1 ? job.fidelity() : 1.0;
}

// The rung of `fidelity`, made if missing.
v1::Rung* RungOf(v1::Campaign* campaign, double fidelity);

// True when `score` (already added to rung.scores) is among the best
// ceil(n / halving) of the rung's n scores (higher is better).
bool Promote(const v1::Rung& rung, double score, int halving);

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_MULTI_FIDELITY_H_
