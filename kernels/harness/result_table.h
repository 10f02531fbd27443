// Human-readable rendering of a harness result JSON (docs/harness.md).
#ifndef RATCHET_KERNELS_HARNESS_RESULT_TABLE_H_
#define RATCHET_KERNELS_HARNESS_RESULT_TABLE_H_

#include <string>

namespace ratchet::kernels {

// One line per workload (axes, T_k, spread, T_b, T_sol, score) and the
// problem score; the outcome and message when not ok. `result_json` is the
// text of the result file; a parse failure is rendered as such.
std::string FormatResultTable(const std::string& result_json);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_RESULT_TABLE_H_
