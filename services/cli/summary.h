// The end-of-campaign summary that `ratchet local` prints (and any client can
// reuse): baseline vs best verified score, what changed, evaluation outcomes,
// verdicts and wall time. Pure functions of the protos so they can be tested.
#ifndef RATCHET_SERVICES_CLI_SUMMARY_H_
#define RATCHET_SERVICES_CLI_SUMMARY_H_

#include <map>
#include <string>
#include <vector>

#include "ratchet/v1/ratchet.pb.h"
#include "common/names.h"

namespace ratchet::cli {

struct SummaryInput {
  ratchet::v1::Campaign campaign;
  ratchet::v1::Leaderboard leaderboard;
  // GetCandidate of campaign.best_candidate_id; empty if there is none.
  ratchet::v1::CandidateDetail best;
  // Wall time to report; if <= 0, taken from the campaign's timestamps.
  double wall_seconds = 0;
  std::string logs;  // where the local services logged; "" to omit
};

// A suite's table (one campaign per problem, `ratchet report ID ID ...`):
// per problem the baseline's and the best SOL score (verified or not), and
// the best candidate's workloads' means of T_b eager and compiled, the
// reference's own kernel time, T_sol and T_k; then the mean scores.
std::string SuiteText(const std::vector<SummaryInput>& suite);
std::string SuiteJson(const std::vector<SummaryInput>& suite);

// "OUTCOME_WRONG_ANSWER" or "wrong_answer" -> "wrong_answer".
std::string OutcomeName(const std::string& raw);
// CAMPAIGN_FINISHED -> "finished" (common/names.h).
using ::ratchet::CampaignStateName;

// The knobs of the best candidate that differ from the baseline's, as
// "NAME: old -> new" (old is "default" when the baseline leaves it unset).
std::map<std::string, std::string> ChangedKnobs(const SummaryInput& in);

// The llm proposer's spend and answers in one line (no newline), e.g.
// "4 requests (3 retried, 0 failed), 1 malformed, 0 duplicate; 3500+650 tokens,
// $0.0048 of $5.00"; "" unless the campaign's proposer is llm.
std::string LlmLine(const ratchet::v1::Campaign& campaign);

// Where a workload's T_b came from (docs/cluster.md, "Baselines"): "stored
// n=3 spread 2.0%" when the harness used the coordinator's stored baseline
// (n measurements, their spread), "measured spread 1.0%" when it timed the
// reference itself (the spread of its repetitions, when reported), "-"
// without a T_b.
std::string TbSource(const ratchet::v1::WorkloadResult& w);

// The evaluation of `detail` whose T_b the report shows: the last ok
// evaluation (a research evaluation before a replay); nullptr if none.
const ratchet::v1::Evaluation* TbEvaluation(const ratchet::v1::CandidateDetail& detail);

// A training campaign's score as people read it ("BPB 1.2345" for
// train-budget, whose score is 1 / BPB; "312.4 s to target" for
// train-target, 3600 / seconds); "" for other tasks.
std::string TrainingScoreText(const ratchet::v1::Campaign& c, double score);

// Human-readable, several lines, ending with a newline.
std::string SummaryText(const SummaryInput& in);

// Exactly one JSON object (no trailing newline):
// {"campaign", "name", "state", "message", "baseline": {"score", "candidate"},
//  "best": {"score", "candidate", "verified", "description", "knobs",
//  "changed_knobs", "gain", "t_b": [{"workload", "axes", "t_b_ns", "stored",
//  "measurements", "spread"}]} or null, "evaluations", "outcomes": {kind: n},
//  "verdicts": {"accepted": n, "rejected": {reason: n}}, "wall_seconds",
//  "job_seconds", "migrations", "merges", "experience": {"mode",
//  "lessons_written", "lessons_from_other_campaigns"}, "logs"}.
std::string SummaryJson(const SummaryInput& in);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_SUMMARY_H_
