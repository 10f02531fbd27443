#include "services/verifier/verdict.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "services/verifier/welch.h"

namespace ratchet::verifier {
namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string Scores(const std::vector<double>& v) {
  return absl::StrJoin(v, " ", [](std::string* out, double x) {
    absl::StrAppend(out, absl::StrFormat("%.4f", x));
  });
}

}  // namespace

bool ReplaysFinished(const v1::GetReplaysResponse& replays) {
  if (replays.jobs_size() == 0) return false;
  for (const auto& job : replays.jobs())
    if (job.state() != v1::JOB_DONE && job.state() != v1::JOB_FAILED) return false;
  return true;
}

v1::Verification Decide(const v1::Verification& claim, const v1::GetReplaysResponse& replays) {
  v1::Verification v = claim;
  std::map<int64_t, const v1::Evaluation*> by_job;
  for (const auto& e : replays.evaluations()) by_job[e.job_id()] = &e;

  std::vector<double> cand, inc;
  std::string cand_problem, inc_problem;
  bool cand_wrong = false;
  std::string timing_flag;
  for (const auto& job : replays.jobs()) {
    const bool is_candidate = job.candidate_id() == claim.candidate_id();
    auto it = by_job.find(job.id());
    std::string problem;
    if (it == by_job.end()) {
      problem = absl::StrCat("replay job ", job.id(), " never completed");
    } else if (it->second->outcome() != v1::OUTCOME_OK) {
      const auto& e = *it->second;
      problem = absl::StrCat("replay job ", job.id(), " on ", e.worker_id(), ": outcome ",
                             v1::Outcome_Name(e.outcome()), ": ",
                             e.message().substr(0, e.message().find('\n')).substr(0, 200));
      if (is_candidate && e.outcome() == v1::OUTCOME_WRONG_ANSWER) cand_wrong = true;
    } else {
      (is_candidate ? cand : inc).push_back(it->second->score());
      // The harness's own evidence against a timing: faster than physics
      // allows, or CUPTI and events disagreeing (work hidden from one clock).
      for (const auto& w : it->second->workloads())
        for (const auto& flag : w.flags())
          if (is_candidate && (flag == "below-sol" || flag == "timing-disagreement") &&
              timing_flag.empty())
            timing_flag = absl::StrCat(flag, ": replay job ", job.id(), " workload ", w.index(),
                                       " (", w.axes(), ") T_k ", w.t_k_ns(), " ns, events ",
                                       w.t_k_events_ns(), " ns, T_sol ", w.t_sol_ns(), " ns");
      continue;
    }
    std::string& slot = is_candidate ? cand_problem : inc_problem;
    if (slot.empty()) slot = problem;
  }
  for (double s : cand) v.add_candidate_scores(s);
  for (double s : inc) v.add_incumbent_scores(s);

  auto reject = [&](const std::string& reason, const std::string& detail) {
    v.set_outcome(v1::VERDICT_REJECTED);
    v.set_reason(reason);
    v.set_detail(detail);
    return v;
  };
  if (cand_wrong) return reject("wrong-on-replay", cand_problem);
  if (!cand_problem.empty()) return reject("failed-on-replay", cand_problem);
  if (!timing_flag.empty())
    return reject(timing_flag.substr(0, timing_flag.find(':')), timing_flag);
  if (!inc_problem.empty() || inc.empty() || cand.empty())
    return reject("incumbent-failed",
                  inc_problem.empty() ? "no replay scores to compare" : inc_problem);

  const double med_cand = Median(cand), med_inc = Median(inc);
  const double gain = med_inc > 0 ? med_cand / med_inc - 1.0 : 1.0;
  const double alpha = claim.policy().significance() > 0 ? claim.policy().significance() : 0.05;
  std::string evidence = absl::StrFormat(
      "replays: candidate [%s] median %.4f, incumbent [%s] median %.4f, gain %+.1f%%; "
      "claimed %.4f",
      Scores(cand), med_cand, Scores(inc), med_inc, 100 * gain, claim.claimed_score());
  bool significant;
  if (cand.size() >= 2 && inc.size() >= 2) {
    const WelchResult w = WelchGreater(cand, inc);
    significant = w.p < alpha;
    absl::StrAppend(&evidence, absl::StrFormat("; Welch t=%.2f df=%.1f p=%.2g (needs < %g), "
                                               "effect size d=%.2f",
                                               w.t, w.df, w.p, alpha, w.effect));
  } else {
    // One replay a side has no variance to test: fall back to demanding that
    // the worst candidate replay beats the best incumbent one.
    significant = *std::min_element(cand.begin(), cand.end()) >
                  *std::max_element(inc.begin(), inc.end());
    absl::StrAppend(&evidence, "; too few replays for a t-test, spread rule used");
  }
  if (!significant)
    return reject("noise", absl::StrCat("improvement not beyond the noise: ", evidence));
  if (gain < claim.policy().min_gain())
    return reject("below-min-gain",
                  absl::StrFormat("gain %.1f%% below the campaign's minimum %.1f%%; %s",
                                  100 * gain, 100 * claim.policy().min_gain(), evidence));
  v.set_outcome(v1::VERDICT_ACCEPTED);
  v.clear_reason();
  v.set_detail(evidence);
  return v;
}

}  // namespace ratchet::verifier
