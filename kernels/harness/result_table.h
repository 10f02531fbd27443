// Human-readable rendering of a harness result (docs/harness.md).
#ifndef RATCHET_KERNELS_HARNESS_RESULT_TABLE_H_
#define RATCHET_KERNELS_HARNESS_RESULT_TABLE_H_

#include <string>

#include "kernels/harness/contract.h"

namespace ratchet::kernels {

// One line per workload (axes, T_k, spread, T_b, T_sol, score), the peaks,
// and the problem score; the outcome, and the message when there is one.
std::string FormatResultTable(const HarnessResult& result);

// The same for the text of a result file; one that FromJson cannot read is
// rendered as such.
std::string FormatResultTable(const std::string& result_json);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_RESULT_TABLE_H_
