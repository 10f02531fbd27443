// The prompts the `llm` proposer sends: a system message with the rules of
// the game (the kernel ABI, the answer format) and a user message with the
// problem, the parent's code and knobs, what this thread tried recently and
// how it went, lessons from the whole campaign, and other threads' incumbents
// as inspiration. A merge prompt asks to combine two incumbents instead.
#ifndef RATCHET_COORDINATOR_PROPOSERS_LLM_PROMPT_H_
#define RATCHET_COORDINATOR_PROPOSERS_LLM_PROMPT_H_

#include <string>
#include <vector>

#include "coordinator/proposers/llm/chat_client.h"
#include "coordinator/proposers/proposer.h"

namespace ratchet::llm {

// Caps that keep a prompt within a small model's context window.
struct PromptLimits {
  size_t max_file_chars = 24'000;      // per source file shown
  size_t max_error_chars = 1'500;      // per attempt's compiler output or mismatch
  size_t max_workload_lines = 16;
  size_t max_attempts = 6;
  size_t max_lessons = 16;
  size_t max_inspirations = 2;
};

std::vector<ChatMessage> BuildProposalPrompt(const proposers::ProposalContext& context,
                                             const PromptLimits& limits = {});

// Combine `context.parent` (thread A, whose files the edits apply to) with
// `other` (thread B's incumbent).
std::vector<ChatMessage> BuildMergePrompt(const proposers::ProposalContext& context,
                                          const v1::Candidate& other,
                                          const PromptLimits& limits = {});

// One line per evaluated candidate whose parent is known, newest first:
// "+41.2% vs parent: VEC 1→8 (accepted)" or "compile_error: source changed".
std::vector<std::string> Lessons(const std::vector<v1::Candidate>& history, size_t max);

}  // namespace ratchet::llm

#endif  // RATCHET_COORDINATOR_PROPOSERS_LLM_PROMPT_H_
