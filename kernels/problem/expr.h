// Arithmetic over named axes, as in SOL-ExecBench `expr` axes and ratchet's
// flops/bytes extension: + - * / // % **, parentheses, unary +/-, numbers,
// identifiers, and comparisons (== != < <= > >=, yielding 1 or 0) plus
// `and`/`or` for `constraints`. Semantics follow Python: `/` is true
// division, `//` floors, `%` takes the divisor's sign, `**` is right-assoc.
#ifndef RATCHET_KERNELS_PROBLEM_EXPR_H_
#define RATCHET_KERNELS_PROBLEM_EXPR_H_

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ratchet::kernels {

// Looks up an identifier; nullopt means "unknown name".
using ExprLookup = std::function<std::optional<double>(absl::string_view)>;

absl::StatusOr<double> EvalExpr(absl::string_view expr, const ExprLookup& lookup);

// The identifiers an expression mentions, in order of first use. Fails on a
// syntax error.
absl::StatusOr<std::vector<std::string>> ExprIdentifiers(absl::string_view expr);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_PROBLEM_EXPR_H_
