#include "coordinator/proposers/llm/prompt.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "coordinator/proposers/llm/edit_format.h"
#include "spec/names.h"

namespace ratchet::llm {
namespace {

using proposers::ProposalContext;

std::string Clip(const std::string& s, size_t max) {
  if (s.size() <= max) return s;
  return absl::StrCat(s.substr(0, max), "\n[... ", s.size() - max, " more characters cut]");
}

// One line of at most `max` characters, for text shown inside a list item.
std::string ClipLine(std::string s, size_t max) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s.size() <= max ? s : absl::StrCat(s.substr(0, max), "...");
}

std::string Score(double s) { return s < 0 ? "none" : absl::StrFormat("%.4f", s); }

std::string FenceLanguage(const std::string& path) {
  if (absl::EndsWith(path, ".cu") || absl::EndsWith(path, ".cuh")) return "cuda";
  if (absl::EndsWith(path, ".json")) return "json";
  if (absl::EndsWith(path, ".py")) return "python";
  return "cpp";
}

std::string SystemMessage(const std::string& device) {
  std::string abi =
      device == "cuda"
          ? "The solution is CUDA compiled into a shared library that exports\n"
            "  extern \"C\" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t n_in,\n"
            "                                  ratchet_tensor* outputs, int32_t n_out, void* stream);\n"
            "Every `data` pointer is device memory (scalars too). Enqueue all work on `stream`\n"
            "(a cudaStream_t) or finish it before returning.\n"
          : "The solution is C++17 compiled (g++ -O3 -march=native) into a shared library that\n"
            "exports\n"
            "  extern \"C\" int ratchet_run(const ratchet_tensor* inputs, int32_t n_in,\n"
            "                             ratchet_tensor* outputs, int32_t n_out);\n";
  return absl::StrCat(
      "You are an expert performance engineer. You improve one kernel at a time: each answer\n"
      "is one focused change to the current solution, which a harness then compiles, checks\n"
      "against a PyTorch reference on fresh random inputs, and times. The score is the\n"
      "speed-of-light score in [0, 1] (1 = as fast as the hardware allows); only correct,\n"
      "faster solutions count, and every claimed gain is replayed on another machine.\n\n",
      abi,
      "`ratchet_tensor` (from <ratchet/kernel_abi.h>) is {void* data; ratchet_dtype dtype;\n"
      "int32_t ndim; const int64_t* shape; const int64_t* strides;}, row-major contiguous.\n"
      "Inputs and outputs come in definition.json order; write every output element and\n"
      "return 0 (non-zero is reported as a failure). Never modify inputs, keep state between\n"
      "calls, cache results, start work that outlives the call, or read the clock: those are\n"
      "detected and the answer is rejected. Knobs reach the code as macros (-DNAME=value).\n\n",
      EditFormatGuide());
}

void AppendProblem(const ProposalContext& ctx, const PromptLimits& limits, std::string* out) {
  if (ctx.problem == nullptr) return;
  absl::StrAppend(out, "## Problem: ", ctx.problem->name(), "\n\n",
                  "definition.json (inputs, outputs and the PyTorch reference the output must "
                  "match):\n```json\n",
                  Clip(ctx.problem->definition_json(), limits.max_file_chars), "\n```\n\n");
  std::vector<std::string> lines = absl::StrSplit(ctx.problem->workload_jsonl(), '\n',
                                                  absl::SkipWhitespace());
  const size_t shown = std::min(lines.size(), limits.max_workload_lines);
  absl::StrAppend(out, "Workloads it is timed on (", lines.size(), " in all):\n```\n");
  for (size_t i = 0; i < shown; ++i) absl::StrAppend(out, lines[i], "\n");
  if (shown < lines.size()) absl::StrAppend(out, "[... ", lines.size() - shown, " more]\n");
  absl::StrAppend(out, "```\n\n");
}

void AppendKnobs(const ProposalContext& ctx, const v1::Solution& solution, std::string* out) {
  if (ctx.space == nullptr || ctx.space->knobs.empty()) {
    absl::StrAppend(out, "Knobs: none declared.\n\n");
    return;
  }
  absl::StrAppend(out, "Knobs (current value; choices):\n");
  for (const auto& knob : ctx.space->knobs) {
    auto it = solution.knobs().find(knob.name);
    absl::StrAppend(out, "- ", knob.name, " = ",
                    it == solution.knobs().end() ? knob.default_value : it->second, "; ",
                    absl::StrJoin(knob.choices, ", "), "\n");
  }
  absl::StrAppend(out, "\n");
}

void AppendFiles(const v1::Solution& solution, const PromptLimits& limits, std::string* out) {
  std::map<std::string, std::string> files(solution.files().begin(), solution.files().end());
  for (const auto& [path, content] : files) {
    absl::StrAppend(out, "File `", path, "`", path == "solution.json" ? " (read-only)" : "",
                    ":\n```", FenceLanguage(path), "\n", Clip(content, limits.max_file_chars));
    if (!content.empty() && content.back() != '\n') absl::StrAppend(out, "\n");
    absl::StrAppend(out, "```\n\n");
  }
}

void AppendAttempts(const ProposalContext& ctx, const PromptLimits& limits, std::string* out) {
  if (ctx.recent_attempts == nullptr || ctx.recent_attempts->empty()) return;
  const auto& attempts = *ctx.recent_attempts;
  const size_t from = attempts.size() > limits.max_attempts ? attempts.size() - limits.max_attempts
                                                            : 0;
  absl::StrAppend(out, "## Recent attempts in this research thread (oldest first)\n\n");
  for (size_t i = from; i < attempts.size(); ++i) {
    const auto& a = attempts[i];
    absl::StrAppend(out, "- #", a.candidate.id(), " ", a.candidate.description(), " -> ");
    if (a.outcome.empty()) {
      absl::StrAppend(out, "not evaluated yet\n");
      continue;
    }
    absl::StrAppend(out, a.outcome);
    if (a.outcome == "ok") {
      absl::StrAppend(out, ", score ", Score(a.candidate.score()));
      if (a.parent_score > 0 && a.candidate.score() >= 0)
        absl::StrAppend(out, absl::StrFormat(" (%+.1f%% vs its parent)",
                                             100.0 * (a.candidate.score() / a.parent_score - 1)));
      if (a.candidate.status() != v1::CANDIDATE_STATUS_UNSPECIFIED &&
          a.candidate.status() != v1::CANDIDATE_EVALUATED)
        absl::StrAppend(out, ", ", spec::Name(a.candidate.status()));
    }
    absl::StrAppend(out, "\n");
    if (!a.message.empty() && a.outcome != "ok")
      absl::StrAppend(out, "```\n", Clip(a.message, limits.max_error_chars), "\n```\n");
  }
  absl::StrAppend(out, "\n");
}

std::string Tally(const std::map<std::string, int>& counts) {
  std::vector<std::string> parts;
  for (const auto& [what, n] : counts) parts.push_back(absl::StrCat(what, " ", n));
  return absl::StrJoin(parts, ", ");
}

// Every stored try of one change (a knob move or a code idea).
struct LessonGroup {
  std::string change;
  int tries = 0;
  int worked = 0;
  double effect_sum = 0;                // over the tries that worked
  std::map<std::string, int> failures;  // outcome (or verdict) -> tries
  std::map<std::string, int> verdicts;  // of the tries that worked
  std::vector<std::string> sources;     // "this campaign", "PROBLEM on HARDWARE"

  // Mean effect with a failure as -100%: a move that often breaks ranks low
  // however well it did once.
  double Rank() const { return (effect_sum - (tries - worked)) / tries; }

  std::string Line() const {
    const int failed = tries - worked;
    std::string line;
    if (worked == 0) {
      line = tries == 1 ? absl::StrCat(change, ": failed (", Tally(failures), ")")
                        : absl::StrCat(change, ": failed in all ", tries, " tries (",
                                       Tally(failures), ")");
    } else {
      line = absl::StrFormat("%s: %+.1f%% mean over %d %s", change, 100.0 * effect_sum / worked,
                             worked, worked == 1 ? "try that worked" : "tries that worked");
      if (failed > 0) absl::StrAppend(&line, "; failed ", failed, " (", Tally(failures), ")");
    }
    if (!verdicts.empty()) absl::StrAppend(&line, "; verdicts ", Tally(verdicts));
    constexpr size_t kMaxSources = 2;
    const size_t shown = std::min(sources.size(), kMaxSources);
    absl::StrAppend(&line, " [",
                    absl::StrJoin(sources.begin(), sources.begin() + shown, ", "));
    if (sources.size() > shown) absl::StrAppend(&line, " +", sources.size() - shown, " more");
    return absl::StrCat(line, "]");
  }
};

void AppendLessons(const ProposalContext& ctx, const PromptLimits& limits, std::string* out) {
  std::set<int64_t> listed;
  if (ctx.history != nullptr) {
    std::vector<std::string> recent = Lessons(*ctx.history, limits.max_lessons, &listed);
    if (!recent.empty()) {
      absl::StrAppend(out, "## Lessons from this campaign (newest first)\n\n");
      for (const auto& l : recent) absl::StrAppend(out, "- ", l, "\n");
      absl::StrAppend(out, "\n");
    }
  }
  if (ctx.lessons == nullptr) return;
  std::vector<std::string> groups =
      SummarizeLessons(*ctx.lessons, ctx.parent->campaign_id(), listed,
                       limits.max_lesson_groups, limits.max_idea_chars);
  if (groups.empty()) return;
  absl::StrAppend(out,
                  "## Experience: earlier lessons about this operation (best first)\n\n"
                  "One line per kind of change: its effect against the solution it changed, "
                  "and where it was tried. Lessons from other problems (other shapes of the "
                  "same operation) or other hardware may carry over only in part.\n\n");
  for (const auto& g : groups) absl::StrAppend(out, "- ", g, "\n");
  absl::StrAppend(out, "\n");
}

void AppendInspirations(const ProposalContext& ctx, const PromptLimits& limits,
                        std::string* out) {
  if (ctx.inspirations == nullptr || ctx.inspirations->empty()) return;
  absl::StrAppend(out, "## Other research threads' best solutions (for inspiration)\n\n");
  size_t shown = 0;
  for (const auto& c : *ctx.inspirations) {
    if (shown++ >= limits.max_inspirations) break;
    absl::StrAppend(out, "### #", c.id(), ", score ", Score(c.score()), ": ", c.description(),
                    "\n");
    std::vector<std::string> knobs;
    std::map<std::string, std::string> sorted(c.solution().knobs().begin(),
                                              c.solution().knobs().end());
    for (const auto& [k, v] : sorted) knobs.push_back(absl::StrCat(k, "=", v));
    absl::StrAppend(out, "Knobs: ", knobs.empty() ? "none" : absl::StrJoin(knobs, " "), "\n");
    for (const auto& [path, content] : c.solution().files()) {
      auto mine = ctx.parent->solution().files().find(path);
      if (mine != ctx.parent->solution().files().end() && mine->second == content) continue;
      absl::StrAppend(out, "Its `", path, "` (differs from yours):\n```", FenceLanguage(path),
                      "\n", Clip(content, limits.max_file_chars / 2), "\n```\n");
    }
    absl::StrAppend(out, "\n");
  }
}

void AppendPreviousProblem(const ProposalContext& ctx, std::string* out) {
  if (ctx.previous_answer_problem.empty()) return;
  absl::StrAppend(out, "## Your previous answer in this thread was discarded\n\n",
                  ctx.previous_answer_problem,
                  "\nFollow the answer format exactly this time.\n\n");
}

}  // namespace

std::vector<std::string> Lessons(const std::vector<v1::Candidate>& history, size_t max,
                                 std::set<int64_t>* listed) {
  std::map<int64_t, const v1::Candidate*> by_id;
  for (const auto& c : history) by_id[c.id()] = &c;
  std::vector<const v1::Candidate*> order;
  for (const auto& c : history)
    if (c.parent_id() != 0 && by_id.count(c.parent_id()) && c.status() != v1::CANDIDATE_PROPOSED)
      order.push_back(&c);
  std::sort(order.begin(), order.end(),
            [](const auto* a, const auto* b) { return a->id() > b->id(); });
  std::vector<std::string> out;
  for (const v1::Candidate* c : order) {
    if (out.size() >= max) break;
    const v1::Candidate* parent = by_id[c->parent_id()];
    std::string what = c->description().empty() ? "(no description)" : c->description();
    if (c->status() == v1::CANDIDATE_FAILED || c->score() < 0) {
      out.push_back(absl::StrCat("failed (did not compile, wrong answer or crash): ", what));
    } else if (parent->score() > 0) {
      out.push_back(absl::StrFormat("%+.1f%% vs parent: %s (%s)",
                                    100.0 * (c->score() / parent->score() - 1.0), what,
                                    spec::Name(c->status())));
    } else {
      continue;
    }
    if (listed != nullptr) listed->insert(c->id());
  }
  return out;
}

std::vector<std::string> SummarizeLessons(const std::vector<v1::Lesson>& lessons,
                                          int64_t campaign_id, const std::set<int64_t>& skip,
                                          size_t max, size_t max_idea_chars) {
  // Keyed by the change, so that every try of a move lands in one group.
  std::map<std::string, LessonGroup> groups;
  for (const v1::Lesson& l : lessons) {
    if (skip.count(l.candidate_id())) continue;
    const std::string change =
        !l.knob().empty()
            ? absl::StrCat(l.knob(), " ", l.from_value().empty() ? "(unset)" : l.from_value(),
                           "\u2192", l.to_value())
            : absl::StrCat("idea \"", ClipLine(l.idea(), max_idea_chars), "\"");
    LessonGroup& g = groups[change];
    g.change = change;
    g.tries += 1;
    if (l.effect() <= -1) {
      const std::string& why = l.outcome() != "ok" ? l.outcome() : l.verdict();
      g.failures[why.empty() ? "failed" : why] += 1;
    } else {
      g.worked += 1;
      g.effect_sum += l.effect();
      if (!l.verdict().empty()) g.verdicts[l.verdict()]++;
    }
    const std::string source = l.campaign_id() == campaign_id
                                   ? "this campaign"
                                   : absl::StrCat(l.problem(), " on ", l.hardware());
    if (std::find(g.sources.begin(), g.sources.end(), source) == g.sources.end())
      g.sources.push_back(source);
  }
  std::vector<const LessonGroup*> ranked;
  for (const auto& [change, g] : groups) ranked.push_back(&g);
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto* a, const auto* b) {
    if (a->Rank() != b->Rank()) return a->Rank() > b->Rank();
    return a->tries > b->tries;
  });
  std::vector<std::string> out;
  const size_t worst = ranked.size() > max ? max / 3 : 0;
  const size_t best = ranked.size() > max ? max - worst : ranked.size();
  for (size_t i = 0; i < best; ++i) out.push_back(ranked[i]->Line());
  if (ranked.size() > max)
    out.push_back(absl::StrCat("[... ", ranked.size() - max,
                               " more kinds of change, ranked in between, left out]"));
  for (size_t i = ranked.size() - worst; i < ranked.size(); ++i)
    out.push_back(ranked[i]->Line());
  return out;
}

std::vector<ChatMessage> BuildProposalPrompt(const ProposalContext& ctx,
                                             const PromptLimits& limits) {
  const std::string device = ctx.device != nullptr ? *ctx.device : "cpu";
  std::string user;
  AppendProblem(ctx, limits, &user);
  absl::StrAppend(&user, "## Current solution (#", ctx.parent->id(), ", score ",
                  Score(ctx.parent->score()), ")\n\n");
  AppendFiles(ctx.parent->solution(), limits, &user);
  AppendKnobs(ctx, ctx.parent->solution(), &user);
  AppendAttempts(ctx, limits, &user);
  AppendLessons(ctx, limits, &user);
  AppendInspirations(ctx, limits, &user);
  AppendPreviousProblem(ctx, &user);
  absl::StrAppend(&user,
                  "## Your task\n\n"
                  "Propose ONE change to the current solution that makes it faster on these "
                  "workloads while every output stays within the reference's tolerance. Learn "
                  "from the attempts and lessons above: do not repeat what failed or did not "
                  "help; fix a compile error or wrong answer if the last attempt had one. "
                  "Answer in the format described in the system message.\n");
  return {{"system", SystemMessage(device)}, {"user", user}};
}

std::vector<ChatMessage> BuildMergePrompt(const ProposalContext& ctx, const v1::Candidate& other,
                                          const PromptLimits& limits) {
  const std::string device = ctx.device != nullptr ? *ctx.device : "cpu";
  std::string user;
  AppendProblem(ctx, limits, &user);
  absl::StrAppend(&user,
                  "Two research threads improved the same starting point in different ways. "
                  "Combine both improvements into one solution that is faster than either.\n\n",
                  "## Solution A (#", ctx.parent->id(), ", score ", Score(ctx.parent->score()),
                  "): ", ctx.parent->description(), "\n\n");
  AppendFiles(ctx.parent->solution(), limits, &user);
  AppendKnobs(ctx, ctx.parent->solution(), &user);
  absl::StrAppend(&user, "## Solution B (#", other.id(), ", score ", Score(other.score()),
                  "): ", other.description(), "\n\n");
  AppendFiles(other.solution(), limits, &user);
  AppendKnobs(ctx, other.solution(), &user);
  AppendLessons(ctx, limits, &user);
  AppendPreviousProblem(ctx, &user);
  absl::StrAppend(&user,
                  "## Your task\n\n"
                  "Write the merged solution as edits to solution A's files (SEARCH/REPLACE or "
                  "FILE blocks) plus a KNOBS block for the knob values it should use. Keep what "
                  "makes each of them fast; where they conflict, keep the faster idea.\n");
  return {{"system", SystemMessage(device)}, {"user", user}};
}

}  // namespace ratchet::llm
