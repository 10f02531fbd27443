#include "services/cli/summary.h"

#include <algorithm>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "nlohmann/json.hpp"

#include "kernels/sol/sol.h"

namespace ratchet::cli {
namespace {

using ratchet::v1::Campaign;

std::string Lower(std::string s) {
  absl::AsciiStrToLower(&s);
  return s;
}

// The baseline's knobs: its candidate's (the coordinator may fill in the
// defaults) if the leaderboard has it, else what the spec submitted.
std::map<std::string, std::string> BaselineKnobs(const SummaryInput& in) {
  for (const auto& e : in.leaderboard.entries()) {
    if (e.candidate().id() == in.campaign.baseline_candidate_id()) {
      return {e.candidate().solution().knobs().begin(), e.candidate().solution().knobs().end()};
    }
  }
  const auto& k = in.campaign.spec().baseline().knobs();
  return {k.begin(), k.end()};
}

bool HasBest(const SummaryInput& in) { return in.campaign.best_candidate_id() != 0; }
bool HasBaselineScore(const Campaign& c) {
  return c.baseline_candidate_id() != 0 && c.baseline_score() >= 0;
}

double WallSeconds(const SummaryInput& in) {
  if (in.wall_seconds > 0) return in.wall_seconds;
  const Campaign& c = in.campaign;
  if (c.created_unix_ms() > 0 && c.finished_unix_ms() >= c.created_unix_ms())
    return (c.finished_unix_ms() - c.created_unix_ms()) / 1000.0;
  return 0;
}

struct VerdictTally {
  int accepted = 0;
  int rejected = 0;
  std::map<std::string, int> rejected_by_reason;
  int pending = 0;
};

VerdictTally TallyVerdicts(const Campaign& c) {
  VerdictTally t;
  for (const auto& v : c.verdicts()) {
    std::string outcome = Lower(v.outcome());
    if (absl::StrContains(outcome, "accept")) {
      t.accepted += v.count();
    } else if (absl::StrContains(outcome, "reject")) {
      t.rejected += v.count();
      t.rejected_by_reason[v.reason().empty() ? "unspecified" : v.reason()] += v.count();
    } else {
      t.pending += v.count();
    }
  }
  return t;
}

std::map<std::string, int> Outcomes(const Campaign& c) {
  std::map<std::string, int> out;
  for (const auto& [k, n] : c.outcomes()) out[OutcomeName(k)] += n;
  return out;
}

std::string Duration(double ns) {
  if (ns <= 0) return "-";
  if (ns < 1e3) return absl::StrFormat("%.0fns", ns);
  if (ns < 1e6) return absl::StrFormat("%.2fus", ns / 1e3);
  if (ns < 1e9) return absl::StrFormat("%.2fms", ns / 1e6);
  return absl::StrFormat("%.2fs", ns / 1e9);
}

}  // namespace

std::string TbSource(const ratchet::v1::WorkloadResult& w) {
  if (w.t_b_ns() <= 0) return "-";
  const std::string spread =
      w.t_b_spread() > 0 ? absl::StrFormat(" spread %.1f%%", 100 * w.t_b_spread()) : "";
  if (w.t_b_given())
    return absl::StrCat("stored", w.t_b_measurements() > 0
                                      ? absl::StrCat(" n=", w.t_b_measurements())
                                      : "",
                        spread);
  return absl::StrCat("measured", spread);
}

const ratchet::v1::Evaluation* TbEvaluation(const ratchet::v1::CandidateDetail& detail) {
  const ratchet::v1::Evaluation* found = nullptr;
  for (const auto& e : detail.evaluations()) {
    if (e.outcome() != ratchet::v1::OUTCOME_OK || e.workloads_size() == 0) continue;
    if (found == nullptr || e.kind() == ratchet::v1::JOB_EVALUATE ||
        found->kind() != ratchet::v1::JOB_EVALUATE)
      found = &e;
  }
  return found;
}

std::string OutcomeName(const std::string& raw) {
  std::string s = Lower(raw);
  if (absl::StartsWith(s, "outcome_")) s = s.substr(8);
  return s;
}

std::map<std::string, std::string> ChangedKnobs(const SummaryInput& in) {
  std::map<std::string, std::string> changed;
  if (!HasBest(in) || in.best.candidate().id() != in.campaign.best_candidate_id()) return changed;
  const std::map<std::string, std::string> base = BaselineKnobs(in);
  for (const auto& [name, value] : in.best.candidate().solution().knobs()) {
    auto it = base.find(name);
    if (it == base.end()) {
      changed[name] = "default -> " + value;
    } else if (it->second != value) {
      changed[name] = it->second + " -> " + value;
    }
  }
  return changed;
}

namespace {

// The harness's mean seconds per kernel job and stage, the usual stages in
// pipeline order first.
std::vector<std::pair<std::string, double>> StageMeans(const v1::Campaign& c) {
  std::vector<std::pair<std::string, double>> out;
  if (c.staged_jobs() <= 0) return out;
  std::vector<std::string> order = {"compile", "device-wait", "prepare",     "device",
                                    "screen",  "oracle",      "correctness", "timing"};
  for (const auto& [stage, seconds] : c.stage_seconds())
    if (std::find(order.begin(), order.end(), stage) == order.end()) order.push_back(stage);
  for (const std::string& stage : order)
    if (auto it = c.stage_seconds().find(stage); it != c.stage_seconds().end())
      out.emplace_back(stage, it->second / c.staged_jobs());
  return out;
}

// "compile 0.6 s, oracle 1.2 s, ... (mean of N jobs)", or "".
std::string StagesLine(const v1::Campaign& c) {
  std::vector<std::string> parts;
  for (const auto& [stage, seconds] : StageMeans(c))
    parts.push_back(absl::StrFormat("%s %.1f s", stage, seconds));
  if (parts.empty()) return "";
  return absl::StrCat(absl::StrJoin(parts, ", "), " (mean of ", c.staged_jobs(), " jobs)");
}

}  // namespace

std::string LlmLine(const Campaign& c) {
  if (c.spec().proposer() != v1::PROPOSER_LLM) return "";
  std::string cap = c.spec().llm().max_cost_usd() > 0
                        ? absl::StrFormat(" of $%.2f", c.spec().llm().max_cost_usd())
                        : "";
  return absl::StrFormat(
      "%d requests (%d retried, %d failed), %d malformed, %d duplicate; %d+%d tokens, $%.4f%s",
      c.llm_requests(), c.llm_retries(), c.llm_failed_requests(), c.llm_malformed(),
      c.llm_duplicates(), c.llm_prompt_tokens(), c.llm_completion_tokens(), c.llm_cost_usd(),
      cap);
}

std::string TrainingScoreText(const Campaign& c, double score) {
  if (c.spec().task() == ratchet::v1::TASK_TRAIN_BUDGET)
    return score > 0 ? absl::StrFormat("BPB %.4f", 1.0 / score) : "BPB -";
  if (c.spec().task() == ratchet::v1::TASK_TRAIN_TARGET)
    return score > 0 ? absl::StrFormat("%.1f s to target", 3600.0 / score) : "target missed";
  return "";
}

namespace {

// A score as people read it: a training run's BPB or time, a kernel's SOL score.
std::string ScoreText(const Campaign& c, double score) {
  const std::string training = TrainingScoreText(c, score);
  return training.empty() ? absl::StrFormat("SOL %.4f", score) : training;
}

}  // namespace

namespace {

// One problem of a suite: its scores and the best candidate's timings.
struct SuiteRow {
  std::string problem;
  double baseline = -1, best = -1;
  bool verified = false;
  double t_b_eager = 0, t_b_compile = 0, t_ref_kernel = 0, t_sol = 0, t_k = 0;  // means, ns
  // The SOL score the reference itself would get replayed as a CUDA graph
  // (T_k = its own kernel time): the trivial win research must clearly beat.
  double graph = -1;
};

SuiteRow RowOf(const SummaryInput& in) {
  const Campaign& c = in.campaign;
  SuiteRow r;
  r.problem = c.spec().problem().name().empty() ? c.spec().name() : c.spec().problem().name();
  if (HasBaselineScore(c)) r.baseline = c.baseline_score();
  if (HasBest(in)) {
    r.best = c.best_score();
    r.verified = c.best_verified();
  }
  // The best candidate's last evaluation that ended ok.
  const v1::Evaluation* e = nullptr;
  for (const auto& ev : in.best.evaluations())
    if (ev.outcome() == v1::OUTCOME_OK && ev.kind() != v1::JOB_REPLAY) e = &ev;
  if (e != nullptr && e->workloads_size() > 0) {
    const double n = e->workloads_size();
    double graph = 0;
    bool graph_known = true;
    for (const auto& w : e->workloads()) {
      graph_known = graph_known && w.t_ref_kernel_ns() > 0 && w.t_b_ns() > 0;
      graph += kernels::SolScore(w.t_ref_kernel_ns(), w.t_b_ns(), w.t_sol_ns()) / n;
      r.t_b_eager += (w.t_b_eager_ns() > 0 ? w.t_b_eager_ns() : w.t_b_ns()) / n;
      r.t_b_compile += w.t_b_compile_ns() / n;
      r.t_ref_kernel += w.t_ref_kernel_ns() / n;
      r.t_sol += w.t_sol_ns() / n;
      r.t_k += w.t_k_ns() / n;
    }
    if (graph_known) r.graph = graph;
  }
  return r;
}

std::string Score3(double s) { return s < 0 ? "-" : absl::StrFormat("%.3f", s); }

// The suite's mean scores, each over the problems that have one (-1: none).
struct Means {
  struct Mean1 {
    double sum = 0;
    int n = 0;
    void Add(double s) {
      if (s >= 0) sum += s, ++n;
    }
    double Mean() const { return n > 0 ? sum / n : -1; }
  };
  Mean1 baseline, best, graph;
  void Add(const SuiteRow& r) {
    baseline.Add(r.baseline);
    best.Add(r.best);
    graph.Add(r.graph);
  }
};

}  // namespace

std::string SuiteText(const std::vector<SummaryInput>& suite) {
  std::string out = absl::StrFormat("%-28s %8s %8s %-8s %8s %10s %10s %10s %10s %10s\n", "problem",
                                    "baseline", "best", "", "graph", "T_b eager", "T_b comp.",
                                    "ref kern.", "T_sol", "best T_k");
  Means means;
  for (const SummaryInput& in : suite) {
    const SuiteRow r = RowOf(in);
    absl::StrAppend(&out, absl::StrFormat("%-28s %8s %8s %-8s %8s %10s %10s %10s %10s %10s\n",
                                          r.problem.substr(0, 28), Score3(r.baseline),
                                          Score3(r.best), r.verified ? "verified" : "",
                                          Score3(r.graph), Duration(r.t_b_eager),
                                          Duration(r.t_b_compile), Duration(r.t_ref_kernel),
                                          Duration(r.t_sol), Duration(r.t_k)));
    means.Add(r);
  }
  absl::StrAppend(&out, absl::StrFormat("%-28s %8s %8s %-8s %8s  (%d problems; graph: the "
                                        "reference replayed as a CUDA graph; T_ columns: means "
                                        "over the best candidate's workloads)\n",
                                        "mean", Score3(means.baseline.Mean()),
                                        Score3(means.best.Mean()), "", Score3(means.graph.Mean()),
                                        suite.size()));
  return out;
}

std::string SuiteJson(const std::vector<SummaryInput>& suite) {
  using nlohmann::json;
  const auto score = [](double s) { return s >= 0 ? json(s) : json(nullptr); };
  json rows = json::array();
  Means means;
  for (const SummaryInput& in : suite) {
    const SuiteRow r = RowOf(in);
    rows.push_back({{"campaign", in.campaign.id()},
                    {"problem", r.problem},
                    {"baseline_score", score(r.baseline)},
                    {"best_score", score(r.best)},
                    {"verified", r.verified},
                    {"graph_score", score(r.graph)},
                    {"t_b_eager_ns", r.t_b_eager},
                    {"t_b_compile_ns", r.t_b_compile},
                    {"t_ref_kernel_ns", r.t_ref_kernel},
                    {"t_sol_ns", r.t_sol},
                    {"best_t_k_ns", r.t_k}});
    means.Add(r);
  }
  json j = {{"problems", rows},
            {"mean_baseline_score", score(means.baseline.Mean())},
            {"mean_best_score", score(means.best.Mean())},
            {"mean_graph_score", score(means.graph.Mean())}};
  return j.dump(2);
}

std::string SummaryText(const SummaryInput& in) {
  const Campaign& c = in.campaign;
  std::string out;
  absl::StrAppend(&out, "campaign ", c.id(), " (", c.spec().name(), "): ",
                  CampaignStateName(c.state()));
  if (!c.message().empty()) absl::StrAppend(&out, " - ", c.message());
  absl::StrAppend(&out, "\n");

  if (HasBaselineScore(c)) {
    absl::StrAppend(&out, absl::StrFormat("  baseline     %s  (candidate %d)\n",
                                          ScoreText(c, c.baseline_score()),
                                          c.baseline_candidate_id()));
  } else {
    absl::StrAppend(&out, "  baseline     not evaluated\n");
  }
  if (!HasBest(in)) {
    absl::StrAppend(&out, "  best         none\n");
  } else if (c.best_candidate_id() == c.baseline_candidate_id()) {
    absl::StrAppend(&out, absl::StrFormat(
                              "  best         %s  (the baseline; no verified improvement)\n",
                              ScoreText(c, c.best_score())));
  } else {
    std::string gain;
    if (HasBaselineScore(c) && c.baseline_score() > 0) {
      gain = absl::StrFormat(", %+.1f%% vs baseline",
                             100.0 * (c.best_score() / c.baseline_score() - 1.0));
    }
    absl::StrAppend(&out, absl::StrFormat("  best         %s  (candidate %d, %s%s)\n",
                                          ScoreText(c, c.best_score()), c.best_candidate_id(),
                                          c.best_verified() ? "verified" : "NOT verified", gain));
    if (in.best.candidate().id() == c.best_candidate_id()) {
      const auto& cand = in.best.candidate();
      if (!cand.description().empty())
        absl::StrAppend(&out, "  what changed ", cand.description(), "\n");
      std::vector<std::string> parts;
      for (const auto& [name, change] : ChangedKnobs(in)) parts.push_back(name + ": " + change);
      absl::StrAppend(&out, "  knobs        ",
                      parts.empty() ? "same as baseline" : absl::StrJoin(parts, ", "), "\n");
    }
  }
  // The T_b the best was scored against, per workload, and whether it was
  // the stored baseline.
  if (HasBest(in) && in.best.candidate().id() == c.best_candidate_id()) {
    if (const auto* e = TbEvaluation(in.best)) {
      absl::StrAppend(&out, "  T_b          (evaluation #", e->id(), ")\n");
      int width = 0;
      for (const auto& w : e->workloads()) width = std::max(width, static_cast<int>(w.axes().size()));
      for (const auto& w : e->workloads())
        absl::StrAppend(&out, absl::StrFormat("    %-3d %-*s  %-9s %s\n", w.index(), width,
                                              w.axes(), Duration(w.t_b_ns()), TbSource(w)));
    }
  }

  std::vector<std::string> outcome_parts;
  for (const auto& [k, n] : Outcomes(c)) outcome_parts.push_back(absl::StrCat(k, " ", n));
  absl::StrAppend(&out, "  evaluations  ", c.evaluations());
  if (c.spec().budget().max_evaluations() > 0)
    absl::StrAppend(&out, " of ", c.spec().budget().max_evaluations());
  if (!outcome_parts.empty())
    absl::StrAppend(&out, " (", absl::StrJoin(outcome_parts, ", "), ")");
  absl::StrAppend(&out, "\n");

  VerdictTally t = TallyVerdicts(c);
  absl::StrAppend(&out, "  verdicts     accepted ", t.accepted, ", rejected ", t.rejected);
  if (!t.rejected_by_reason.empty()) {
    std::vector<std::string> parts;
    for (const auto& [reason, n] : t.rejected_by_reason)
      parts.push_back(absl::StrCat(reason, " ", n));
    absl::StrAppend(&out, " (", absl::StrJoin(parts, ", "), ")");
  }
  if (t.pending > 0) absl::StrAppend(&out, ", pending ", t.pending);
  absl::StrAppend(&out, "\n");
  if (std::string llm = LlmLine(c); !llm.empty()) absl::StrAppend(&out, "  llm          ", llm, "\n");
  absl::StrAppend(&out, absl::StrFormat("  wall time    %.1f s", WallSeconds(in)));
  if (WallSeconds(in) > 0 && c.evaluations() > 0)
    absl::StrAppend(&out, absl::StrFormat(" (%.0f evaluations an hour)",
                                          3600.0 * c.evaluations() / WallSeconds(in)));
  absl::StrAppend(&out, "\n");
  const char* unit = c.spec().device() == v1::DEVICE_CUDA ? "GPU" : "CPU";
  absl::StrAppend(&out, absl::StrFormat("  job time     %.1f %s-s", c.gpu_seconds(), unit));
  if (c.spec().budget().max_gpu_seconds() > 0)
    absl::StrAppend(&out, absl::StrFormat(" of %.1f", c.spec().budget().max_gpu_seconds()));
  absl::StrAppend(&out, "\n");
  if (std::string stages = StagesLine(c); !stages.empty())
    absl::StrAppend(&out, "  stages       ", stages, "\n");
  if (c.migrations() > 0 || c.merges() > 0)
    absl::StrAppend(&out, "  islands      ", c.migrations(), " migrations, ", c.merges(), " merges\n");
  const bool shared = c.spec().experience() == "shared";
  if (c.lessons() > 0 || shared) {
    absl::StrAppend(&out, "  experience   ", c.lessons(), " lessons written");
    if (shared)
      absl::StrAppend(&out, "; read ", c.lessons_from_other_campaigns(),
                      " of other campaigns (shared)");
    absl::StrAppend(&out, "\n");
  }
  if (!in.logs.empty()) absl::StrAppend(&out, "  logs         ", in.logs, "\n");
  return out;
}

std::string SummaryJson(const SummaryInput& in) {
  using nlohmann::json;
  const Campaign& c = in.campaign;
  json j;
  j["campaign"] = c.id();
  j["name"] = c.spec().name();
  j["state"] = CampaignStateName(c.state());
  j["message"] = c.message();
  j["baseline"] = {{"score", HasBaselineScore(c) ? json(c.baseline_score()) : json(nullptr)},
                   {"candidate", c.baseline_candidate_id()}};
  // Training campaigns also in their own figures (the score is 1 / BPB, or
  // 3600 / seconds to the target).
  const auto add_figure = [&](json* at, double score) {
    if (score <= 0) return;
    if (c.spec().task() == ratchet::v1::TASK_TRAIN_BUDGET) (*at)["bpb"] = 1.0 / score;
    if (c.spec().task() == ratchet::v1::TASK_TRAIN_TARGET)
      (*at)["training_seconds"] = 3600.0 / score;
  };
  if (HasBaselineScore(c)) add_figure(&j["baseline"], c.baseline_score());
  if (HasBest(in)) {
    json best = {{"score", c.best_score()},
                 {"candidate", c.best_candidate_id()},
                 {"verified", c.best_verified()},
                 {"is_baseline", c.best_candidate_id() == c.baseline_candidate_id()}};
    const bool have_detail = in.best.candidate().id() == c.best_candidate_id();
    best["description"] = have_detail ? in.best.candidate().description() : "";
    json knobs = json::object();
    if (have_detail)
      for (const auto& [k, v] : in.best.candidate().solution().knobs()) knobs[k] = v;
    best["knobs"] = knobs;
    json changed = json::object();
    for (const auto& [k, v] : ChangedKnobs(in)) changed[k] = v;
    best["changed_knobs"] = changed;
    best["gain"] = HasBaselineScore(c) && c.baseline_score() > 0
                       ? json(c.best_score() / c.baseline_score() - 1.0)
                       : json(nullptr);
    json t_b = json::array();
    if (have_detail)
      if (const auto* e = TbEvaluation(in.best))
        for (const auto& w : e->workloads())
          t_b.push_back({{"workload", w.index()},
                         {"axes", w.axes()},
                         {"t_b_ns", w.t_b_ns()},
                         {"stored", w.t_b_given()},
                         {"measurements", w.t_b_measurements()},
                         {"spread", w.t_b_spread()}});
    best["t_b"] = t_b;
    add_figure(&best, c.best_score());
    j["best"] = best;
  } else {
    j["best"] = nullptr;
  }
  j["evaluations"] = c.evaluations();
  json outcomes = json::object();
  for (const auto& [k, n] : Outcomes(c)) outcomes[k] = n;
  j["outcomes"] = outcomes;
  VerdictTally t = TallyVerdicts(c);
  json rejected = json::object();
  for (const auto& [reason, n] : t.rejected_by_reason) rejected[reason] = n;
  j["verdicts"] = {{"accepted", t.accepted}, {"rejected", rejected}};
  if (t.pending > 0) j["verdicts"]["pending"] = t.pending;
  j["wall_seconds"] = WallSeconds(in);
  j["evaluations_per_hour"] =
      WallSeconds(in) > 0 ? json(3600.0 * c.evaluations() / WallSeconds(in)) : json(nullptr);
  j["job_seconds"] = c.gpu_seconds();
  if (c.staged_jobs() > 0) {
    json stages = json::object();
    for (const auto& [stage, seconds] : StageMeans(c)) stages[stage] = seconds;
    j["stage_seconds_per_job"] = stages;
  }
  j["migrations"] = c.migrations();
  j["merges"] = c.merges();
  j["experience"] = {
      {"mode", c.spec().experience().empty() ? "campaign" : c.spec().experience()},
      {"lessons_written", c.lessons()},
      {"lessons_from_other_campaigns", c.lessons_from_other_campaigns()}};
  j["logs"] = in.logs;
  return j.dump();
}

}  // namespace ratchet::cli
