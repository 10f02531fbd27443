// The prompts the `llm` proposer sends: a system message with the rules of
// the game (the kernel ABI, the answer format) and a user message with the
// problem, the parent's code and knobs, what this thread tried recently and
// how it went, lessons (the campaign's recent changes, then the stored
// experience of its op type, summarised), and other threads' incumbents as
// inspiration. A merge prompt asks to combine two incumbents instead.
#ifndef RATCHET_COORDINATOR_PROPOSERS_LLM_PROMPT_H_
#define RATCHET_COORDINATOR_PROPOSERS_LLM_PROMPT_H_

#include <cstdint>
#include <set>
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
  size_t max_lessons = 16;        // the campaign's recent changes, one line each
  size_t max_lesson_groups = 12;  // stored lessons, one line per kind of change
  size_t max_idea_chars = 160;    // per code idea in a lesson group's line
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
// The ids of the candidates listed are added to `listed` when it is given.
std::vector<std::string> Lessons(const std::vector<v1::Candidate>& history, size_t max,
                                 std::set<int64_t>* listed = nullptr);

// Stored lessons grouped by the change they record (a knob move such as
// "VEC 1→8", or a code idea), one line per group: the mean effect against
// the parent over the tries that worked, how many tries failed and how, the
// verdicts, and where the lessons come from ("this campaign", whose id is
// `campaign_id`, or another campaign's problem and hardware). Groups are
// ranked by mean effect with a failure counting as -100%, best first. Lessons
// about candidates in `skip` (listed elsewhere) are left out. Past `max`
// groups, the best two thirds and the worst third are kept and a last line
// says how many were left out.
std::vector<std::string> SummarizeLessons(const std::vector<v1::Lesson>& lessons,
                                          int64_t campaign_id, const std::set<int64_t>& skip,
                                          size_t max, size_t max_idea_chars);

}  // namespace ratchet::llm

#endif  // RATCHET_COORDINATOR_PROPOSERS_LLM_PROMPT_H_
