// The answer format the `llm` proposer asks models for, and its strict parser.
// An answer is free text (ignored) around blocks; each block starts and ends
// with a marker line:
//
//   IDEA: one line saying what the change does and why it should be faster
//
//   <<<<<<< SEARCH kernel.cc
//   lines copied exactly from the current kernel.cc
//   =======
//   the lines that replace them
//   >>>>>>> REPLACE
//
//   <<<<<<< FILE kernel.cc
//   the complete new content of kernel.cc
//   >>>>>>> END
//
//   <<<<<<< KNOBS
//   VEC=8
//   UNROLL=4
//   >>>>>>> END
//
// Blocks apply in order, each to the result of the ones before. The whole
// answer is rejected, and nothing applied, when any block is malformed or
// unterminated, a marker line appears out of place, a SEARCH text is not found
// exactly once, a file is not one of the solution's sources (solution.json is
// not editable: knobs change through a KNOBS block), a knob is undeclared or
// set to a value outside its choices, or the answer changes nothing.
#ifndef RATCHET_COORDINATOR_PROPOSERS_LLM_EDIT_FORMAT_H_
#define RATCHET_COORDINATOR_PROPOSERS_LLM_EDIT_FORMAT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "coordinator/proposers/knob_space.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::llm {

struct Edit {
  enum class Kind { kSearchReplace, kWholeFile };
  Kind kind = Kind::kSearchReplace;
  std::string path;
  std::string search;   // kSearchReplace: the exact text to find
  std::string content;  // the replacement, or the whole new file
  int line = 0;         // where the block starts in the answer (1-based)
};

struct ParsedAnswer {
  std::string idea;  // "" when the answer has no IDEA line
  std::vector<Edit> edits;
  std::vector<std::pair<std::string, std::string>> knobs;  // in answer order
};

// Syntax only. InvalidArgument with the reason and the answer's line number.
absl::StatusOr<ParsedAnswer> ParseAnswer(const std::string& answer);

// Applies a parsed answer to a copy of `parent` (knobs checked against
// `space`). InvalidArgument with the reason if any part does not apply.
absl::StatusOr<v1::Solution> ApplyAnswer(const ParsedAnswer& answer, const v1::Solution& parent,
                                         const proposers::KnobSpace& space);

// The format as the prompt explains it to the model.
std::string EditFormatGuide();

}  // namespace ratchet::llm

#endif  // RATCHET_COORDINATOR_PROPOSERS_LLM_EDIT_FORMAT_H_
