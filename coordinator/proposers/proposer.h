// Proposers turn a research thread's state into the next candidate (docs/architecture.md).
// They are pure functions of their inputs and a seeded random generator, so a
// campaign's proposals are reproducible from its seed (an LLM's answers are
// reproducible only as far as its server is).
#ifndef RATCHET_COORDINATOR_PROPOSERS_PROPOSER_H_
#define RATCHET_COORDINATOR_PROPOSERS_PROPOSER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "coordinator/proposers/knob_space.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::llm {
class LlmEndpoints;
}  // namespace ratchet::llm

namespace ratchet::proposers {

// One of the thread's earlier candidates and how its evaluation went.
struct Attempt {
  v1::Candidate candidate;
  std::string outcome;  // "ok", "compile_error", ...; "" while not evaluated
  std::string message;  // compiler output, first mismatch, ...
  double parent_score = -1;
};

struct ProposalContext {
  const v1::Candidate* parent = nullptr;         // the thread's incumbent
  const KnobSpace* space = nullptr;              // the baseline's knobs
  // Every candidate of the campaign so far, with scores (-1 = none yet or
  // failed): the shared experience a proposer may learn from.
  const std::vector<v1::Candidate>* history = nullptr;
  int thread_index = 0;
  std::mt19937_64* rng = nullptr;

  // Filled in for proposers that write code (llm); may stay null otherwise.
  const v1::Problem* problem = nullptr;
  const std::string* device = nullptr;                  // "cpu" | "cuda"
  const std::vector<Attempt>* recent_attempts = nullptr; // this thread's, oldest first
  const std::vector<v1::Candidate>* inspirations = nullptr;  // other threads' incumbents
  int thread_proposals = 0;            // candidates this thread has made so far
  std::string previous_answer_problem; // why the thread's last answer was unusable
  const std::atomic<bool>* cancelled = nullptr;  // set when the answer is no longer wanted
  // evolve: every merge_every-th proposal of a thread (counted by
  // thread_proposals) merges the parent with the best of `inspirations`.
  int merge_every = 0;
  // Lessons of this op type (the campaign's, or every campaign's when the
  // spec says `experience: shared`); may be null.
  const std::vector<v1::Lesson>* lessons = nullptr;
  // Each evaluation is a training run (minutes of GPU time): evolve moves
  // one or two knobs of a tuned recipe from the start and rarely samples
  // every knob afresh, which costs a run and is almost always far worse.
  bool costly_evaluations = false;
};

// Tournament selection from a thread's archive: `tournament_size` draws (with
// replacement) from the archive and the incumbent, the best score wins, so
// better candidates are likelier parents but none is certain. A size of 1,
// or an empty archive, gives the incumbent; 0 means 3.
const v1::Candidate* SelectParent(const std::vector<const v1::Candidate*>& archive,
                                  const v1::Candidate* incumbent, int tournament_size,
                                  std::mt19937_64* rng);

// What asking a model cost; zero for proposers that ask none.
struct ModelUsage {
  std::string model;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  double cost_usd = 0;
  int requests = 0;         // answered requests
  int retries = 0;          // attempts repeated after 429, 5xx, timeouts
  int failed_requests = 0;  // requests given up after the retries
  bool estimated = false;   // the server reported no usage; tokens estimated
};

struct Proposal {
  v1::Solution solution;    // knobs normalised (every knob explicit)
  std::string description;  // what changed against the parent
  ModelUsage usage;
  // Not OK when the proposer ran but produced nothing to evaluate: the
  // model's answer was malformed (InvalidArgument) or its endpoint failed
  // (Unavailable, DeadlineExceeded, ...). `usage` still counts then.
  absl::Status answer;
  int64_t merged_with = 0;  // the other incumbent of a merge, else 0
};

class Proposer {
 public:
  virtual ~Proposer() = default;
  // OutOfRange: nothing new is left to propose (grid, replay).
  virtual absl::StatusOr<Proposal> Propose(const ProposalContext& context) = 0;
  // Slow proposers (a network call) are run off the research loop.
  virtual bool slow() const { return false; }
};

// "evolve" | "random" | "grid"; InvalidArgument for anything else.
absl::StatusOr<std::unique_ptr<Proposer>> MakeProposer(const std::string& name);

// Any proposer, configured from the campaign spec ("replay" and "llm" need
// it). Checks the proposer's settings; InvalidArgument names what is wrong.
// "llm" resolves its endpoint among the coordinator's `llm_endpoints` (null =
// none configured).
absl::StatusOr<std::unique_ptr<Proposer>> MakeProposer(
    const v1::CampaignSpec& spec, const llm::LlmEndpoints* llm_endpoints = nullptr);

}  // namespace ratchet::proposers

#endif  // RATCHET_COORDINATOR_PROPOSERS_PROPOSER_H_
