#include "services/verifier/verdict.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/noise_floor.h"
#include "services/verifier/findings.h"
#include "services/verifier/screening.h"
#include "services/verifier/training_verdict.h"
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

std::string FirstLine(const std::string& s, size_t limit = 240) {
  return s.substr(0, s.find('\n')).substr(0, limit);
}

// The CUDA harness names some checks in its messages rather than in flags.
std::string HackInMessage(const std::string& message) {
  if (absl::StrContains(message, "spawned-threads")) return "spawned-threads";
  if (absl::StrContains(message, "A's answer")) return "cached-answer";
  if (absl::StrContains(message, "wrong while timed")) return "wrong-while-timed";
  if (absl::StrContains(message, "modified its inputs")) return "modified-inputs";
  return "";
}

// The independent timing's findings over a claim's replays: the worker's
// outside figure for back-to-back calls against the harness's in-process
// figures, per workload, held to the incumbent's own ratio from its replays
// on the same machines at the same time (what load and warm caches do to
// unchanged code), so a busy machine does not read as a tampered timer, nor
// warm caches as a candidate that skips work. A tampered timer (outside
// slower) or a candidate that does less work back to back (outside faster)
// does so on every replay; a host busy during one replay does not, which
// only keeps a claim from being accepted.
class OutsideClock {
 public:
  // Each direction is judged against the in-process figure most favourable
  // to the candidate, so that load, which spreads the timed calls apart,
  // reads as neither. Slower: against the median, the figure the claim's
  // score rests on (a cheat cannot lower the ratio without lowering its own
  // score). Faster: against the fastest tenth of the timed calls (the outside
  // figure is a low decile of its windows); the median from a harness that
  // does not report it.
  static double InProcessMedian(const v1::WorkloadResult& w) { return w.t_k_ns(); }
  static double InProcessFastest(const v1::WorkloadResult& w) {
    return w.t_k_p10_ns() > 0 ? w.t_k_p10_ns() : w.t_k_ns();
  }

  OutsideClock(const v1::ReplayBundle& replays, int64_t candidate_id,
               const std::map<int64_t, const v1::Evaluation*>& by_job, double tolerance)
      : tolerance_(tolerance) {
    for (const auto& job : replays.jobs()) {
      if (job.candidate_id() == candidate_id) continue;
      auto it = by_job.find(job.id());
      if (it == by_job.end() || it->second->outcome() != v1::OUTCOME_OK) continue;
      for (const auto& w : it->second->workloads()) {
        if (w.t_k_independent_ns() <= 0 || InProcessMedian(w) <= 0) continue;
        incumbent_slower_[w.index()].push_back(w.t_k_independent_ns() / InProcessMedian(w));
        incumbent_faster_[w.index()].push_back(w.t_k_independent_ns() / InProcessFastest(w));
      }
    }
  }

  // One candidate replay that ended ok: its timings join the evidence; a
  // back-to-back run that failed is `flaky`.
  void AddReplay(const v1::Job& job, const v1::Evaluation& e, const std::string& where,
                 v1::VerdictEvidence* ev, Problem* flaky) {
    bool timed = false, is_slower = false, is_faster = false;
    for (const auto& w : e.workloads()) {
      for (const auto& flag : w.flags())
        if (flag == "independent-timing-failed")
          Note(flaky, v1::VERDICT_REJECTED_FLAKY, flag,
               absl::StrCat(where, " workload ", w.index(), ": the back-to-back run failed: ",
                            FirstLine(e.message())));
      if (w.t_k_independent_ns() <= 0 || InProcessMedian(w) <= 0) continue;
      auto* t = ev->add_timings();
      t->set_job_id(job.id());
      t->set_workload(w.index());
      t->set_axes(w.axes());
      t->set_t_k_ns(InProcessFastest(w));
      t->set_t_outside_ns(w.t_k_independent_ns());
      t->set_calls(w.independent_calls());
      timed = true;
      is_slower |= Slower(w, where);
      is_faster |= Faster(w, where);
    }
    timed_ += timed;
    if (is_slower || is_faster) disagreeing_jobs_.insert(job.id());
    slower_count_ += is_slower;
    faster_count_ += is_faster;
  }

  // Once every candidate replay is in: disagreement on every timed replay
  // is a hack. On a few of them (a quarter at most, two or more agreeing)
  // those replays are no evidence: their jobs are returned, to be left out
  // of the scores, which then rest on replays whose clocks agreed. On more,
  // the claim is unsteady (more replays may settle it).
  int timed() const { return timed_; }
  int disagreeing() const { return static_cast<int>(disagreeing_jobs_.size()); }

  std::set<int64_t> Conclude(Problem* hack, Problem* unsteady) const {
    const int disagreeing = static_cast<int>(disagreeing_jobs_.size());
    if (disagreeing == 0) return {};
    if (timed_ < kMinTimedForHack) {
      // One timed replay cannot tell a tampered timer from a busy spell
      // (an honest two-thread candidate on a loaded two-core host read x3.5
      // once): not accepted, and worth another replay.
      const Problem& first = slower_.outcome != v1::VERDICT_UNSPECIFIED ? slower_ : faster_;
      Note(unsteady, v1::VERDICT_REJECTED_FLAKY, "timing-unsteady",
           absl::StrCat("the worker's clock disagreed on the only timed replay (", kMinTimedForHack,
                        " that agree on it make a hack): ", first.detail));
    } else if (slower_count_ == timed_) {
      Note(hack, slower_.outcome, slower_.reason, slower_.detail);
    } else if (faster_count_ == timed_) {
      Note(hack, faster_.outcome, faster_.reason, faster_.detail);
    } else if (4 * disagreeing <= timed_ && timed_ - disagreeing >= 2) {
      return disagreeing_jobs_;
    } else {
      const Problem& first = slower_.outcome != v1::VERDICT_UNSPECIFIED ? slower_ : faster_;
      Note(unsteady, v1::VERDICT_REJECTED_FLAKY, "timing-unsteady",
           absl::StrCat("the worker's clock disagreed on ", disagreeing, " of ", timed_,
                        " timed replays (a busy host, or a candidate not to be trusted): ",
                        first.detail));
    }
    return {};
  }

 private:
  // Slower: load only ever slows the outside run, so the band never drops
  // below 1.
  bool Slower(const v1::WorkloadResult& w, const std::string& where) {
    const double incumbent = std::max(1.0, IncumbentRatio(incumbent_slower_, w.index()));
    const double ratio = w.t_k_independent_ns() / InProcessMedian(w);
    if (ratio <= incumbent * (1 + tolerance_)) return false;
    Note(&slower_, v1::VERDICT_REJECTED_HACK, "timing-disagreement",
         absl::StrFormat("%s workload %d (%s): the harness timed %.0f ns per call (median), the "
                         "worker's clock %.0f ns over %d back-to-back calls (x%.2f; the "
                         "incumbent's own ratio x%.2f, tolerance x%.2f): the in-process "
                         "timer was not to be trusted",
                         where, w.index(), w.axes(), InProcessMedian(w), w.t_k_independent_ns(),
                         w.independent_calls(), ratio, incumbent, 1 + tolerance_));
    return true;
  }

  // Faster: only against an incumbent timed the same way (warm caches make
  // honest back-to-back calls faster by an amount only it shows), never
  // above 1 (load on its outside run says nothing about caches).
  bool Faster(const v1::WorkloadResult& w, const std::string& where) {
    if (incumbent_faster_.find(w.index()) == incumbent_faster_.end()) return false;
    const double incumbent = std::min(1.0, IncumbentRatio(incumbent_faster_, w.index()));
    const double ratio = w.t_k_independent_ns() / InProcessFastest(w);
    const double allowance = (1 + tolerance_) * kWarmAllowance;
    if (ratio >= incumbent / allowance) return false;
    Note(&faster_, v1::VERDICT_REJECTED_HACK, "timing-disagreement",
         absl::StrFormat("%s workload %d (%s): the harness timed %.0f ns per call (fastest tenth), the "
                         "worker's clock %.0f ns over %d back-to-back calls (x%.2f; the "
                         "incumbent's own ratio x%.2f, tolerance /%.2f): the candidate "
                         "did less work when called back to back",
                         where, w.index(), w.axes(), InProcessFastest(w), w.t_k_independent_ns(),
                         w.independent_calls(), ratio, incumbent, allowance));
    return true;
  }

  using Ratios = std::map<int, std::vector<double>>;  // by workload
  static double IncumbentRatio(const Ratios& ratios, int workload) {
    auto it = ratios.find(workload);
    return it == ratios.end() ? 1.0 : Median(it->second);
  }

  static constexpr int kMinTimedForHack = 2;

  const double tolerance_;
  Ratios incumbent_slower_, incumbent_faster_;  // outside / median, outside / fastest tenth
  Problem slower_, faster_;
  std::set<int64_t> disagreeing_jobs_;
  int timed_ = 0, slower_count_ = 0, faster_count_ = 0;
};

// "; independent timing within tolerance (...)" for the evidence line, or ""
// when nothing was timed from outside.
std::string OutsideClockSummary(const v1::VerdictEvidence& ev) {
  if (ev.timings().empty()) return "";
  double slowest = 0, fastest = HUGE_VAL;
  for (const auto& t : ev.timings()) {
    slowest = std::max(slowest, t.t_outside_ns() / t.t_k_ns());
    fastest = std::min(fastest, t.t_outside_ns() / t.t_k_ns());
  }
  return absl::StrFormat("; independent timing within tolerance (worst outside/in-process "
                         "x%.2f, fastest x%.2f)",
                         slowest, fastest);
}

// Whether the candidate's replays beat the incumbent's at this look's
// corrected threshold (one-sided Welch); the test's figures go to `ev` and
// `evidence`.
bool Significant(const std::vector<double>& cand, const std::vector<double>& inc,
                 const std::vector<int>& schedule, double alpha, int per_side,
                 v1::VerdictEvidence* ev, std::string* evidence_out) {
  const double look_alpha = alpha / schedule.size();
  std::string& evidence = *evidence_out;
  bool significant;
  if (cand.size() >= 2 && inc.size() >= 2) {
    const WelchResult w = WelchGreater(cand, inc);
    significant = w.p < look_alpha;
    ev->set_welch_t(w.t);
    ev->set_welch_df(w.df);
    ev->set_p_value(w.p);
    ev->set_effect_size(w.effect);
    absl::StrAppend(&evidence, absl::StrFormat("; Welch t=%.2f df=%.1f p=%.2g (needs < %g",
                                               w.t, w.df, w.p, look_alpha));
    if (schedule.size() > 1)
      absl::StrAppend(&evidence, absl::StrFormat(": %g over %d planned looks, look %d at %d "
                                                 "replays a side",
                                                 alpha, schedule.size(), ev->looks(),
                                                 per_side));
    absl::StrAppend(&evidence, absl::StrFormat("), effect size d=%.2f", w.effect));
  } else if (schedule.size() > 1) {
    // One replay a side cannot reach a corrected threshold: a later look,
    // with a t-test, decides.
    significant = false;
    absl::StrAppend(&evidence, "; one replay a side, too few for a t-test");
  } else {
    // One replay a side has no variance to test: fall back to demanding that
    // the worst candidate replay beats the best incumbent one.
    significant = *std::min_element(cand.begin(), cand.end()) >
                  *std::max_element(inc.begin(), inc.end());
    absl::StrAppend(&evidence, "; too few replays for a t-test, spread rule used");
  }
  return significant;
}

}  // namespace

// The noise floor: the stored one for this problem's score on the hardware
// the candidate ran on (several machines: the noisiest), pooled with this
// verification's incumbent replays; described in `ev`.
v1::NoiseFloor PooledNoiseFloor(const v1::ReplayBundle& replays,
                                const std::set<std::string>& hardware,
                                const std::vector<double>& inc, v1::VerdictEvidence* ev) {
  v1::NoiseFloor floor;
  for (const auto& f : replays.noise_floors()) {
    if (f.workload() != "score" || (!hardware.empty() && !hardware.count(f.hardware()))) continue;
    if (f.relative_sd() >= floor.relative_sd()) floor = f;
  }
  ev->set_noise_floor_key(floor.hardware().empty()
                              ? "this verification's incumbent replays"
                              : absl::StrCat(floor.problem(), " | ", floor.hardware()));
  AddNoiseGroup(inc, 0, &floor);
  ev->set_noise_floor(floor.relative_sd());
  ev->set_noise_floor_df(floor.degrees_of_freedom());
  return floor;
}

bool TierEnabled(const v1::VerificationPolicy& policy, const std::string& tier) {
  return spec::TierEnabled(policy, tier);
}

bool ReplaysFinished(const v1::ReplayBundle& replays) {
  if (replays.jobs_size() == 0) return false;
  for (const auto& job : replays.jobs())
    if (job.state() != v1::JOB_DONE && job.state() != v1::JOB_FAILED) return false;
  return true;
}

int ReplayCount(const v1::VerificationPolicy& policy, bool screening_flagged) {
  const int cap = spec::AppliedVerification(policy).max_replays();
  // At least one replay, even for a hand-built policy that names none.
  int n = std::max(1, policy.replays());
  if (screening_flagged) n *= 2;
  return std::max(1, std::min(n, std::max(cap, std::max(1, policy.replays()))));
}

std::vector<int> ReplaySchedule(const v1::Verification& claim) {
  const v1::VerificationPolicy policy = spec::AppliedVerification(claim.policy());
  const int first = claim.evidence().replays_requested() > 0
                        ? claim.evidence().replays_requested()
                        : ReplayCount(claim.policy(), false);
  // The coordinator queues at most spec::kMaxReplaysPerSide a side.
  const int last = std::max(first, std::min(spec::kMaxReplaysPerSide, policy.max_replays()));
  // Doubling keeps the looks few, and so the per-look threshold high.
  std::vector<int> looks = {first};
  while (looks.back() < last) looks.push_back(std::min(last, 2 * looks.back()));
  return looks;
}

double LookSignificance(const v1::Verification& claim) {
  const double alpha = spec::AppliedVerification(claim.policy()).significance();
  return alpha / ReplaySchedule(claim).size();
}

int ReplaysPerSide(const v1::Verification& claim, const v1::ReplayBundle& replays) {
  int candidate = 0, incumbent = 0;
  for (const auto& job : replays.jobs()) {
    if (job.candidate_id() == claim.candidate_id()) {
      ++candidate;
    } else {
      ++incumbent;
    }
  }
  return std::max(candidate, incumbent);
}

int MoreReplaysWanted(const v1::Verification& claim, const v1::ReplayBundle& replays) {
  // Training runs take minutes each: one look, at the replays the policy asks for.
  if (claim.task() == v1::TASK_TRAIN_BUDGET || claim.task() == v1::TASK_TRAIN_TARGET) return 0;
  if (!ReplaysFinished(replays)) return 0;
  const std::vector<int> schedule = ReplaySchedule(claim);
  const int per_side = ReplaysPerSide(claim, replays);
  const auto next = std::upper_bound(schedule.begin(), schedule.end(), per_side);
  if (next == schedule.end()) return 0;  // max_replays reached: decide
  const v1::Verification now = Decide(claim, replays);
  // Clocks that disagreed on too many replays to leave them out: more
  // replays may show a busy spell for what it was, if it was a minority.
  // Where the clocks disagreed on half or more, more of the same would not
  // bring it to the quarter that can be left out: decide now, rather than
  // spend the campaign's machines on replays up to max_replays.
  if (now.outcome() == v1::VERDICT_REJECTED_FLAKY && now.reason() == "timing-unsteady") {
    const v1::VerdictEvidence& ev = now.evidence();
    // A single timed replay decides nothing either way: look again.
    if (ev.timed_replays() >= 2 && 2 * ev.disagreeing_replays() >= ev.timed_replays()) return 0;
    return *next - per_side;
  }
  // Otherwise only a missing significance is worth more replays: a finding
  // outranks noise whatever the scores, and a significant gain below the
  // bar would not grow with more of them.
  if (now.outcome() != v1::VERDICT_REJECTED_NOISE || now.reason() != "noise") return 0;
  const v1::VerdictEvidence& ev = now.evidence();
  if (ev.relative_gain() <= 0 || ev.relative_gain() < ev.required_gain()) return 0;
  const double alpha = spec::AppliedVerification(claim.policy()).significance();
  if (now.candidate_scores_size() >= 2 && now.incumbent_scores_size() >= 2 &&
      ev.p_value() >= std::min(0.5, kPromisingFactor * alpha))
    return 0;
  return *next - per_side;
}

int ReplaysWanted(const v1::Verification& screened, const v1::ReplayBundle& replays) {
  const std::vector<int> schedule = ReplaySchedule(screened);
  const int per_side = ReplaysPerSide(screened, replays);
  // No test before the first look: it may be larger than the round the
  // coordinator queued.
  if (per_side < schedule.front()) return schedule.front();
  const int more = MoreReplaysWanted(screened, replays);
  return more > 0 ? per_side + more : 0;
}

bool IsHackFlag(const std::string& flag) {
  static const std::set<std::string> kHacks = {
      "stale-output",        "cached-answer",     "read-reference",
      "work-after-return",   "modified-inputs",   "precision-downgrade",
      "wrong-while-timed",   "spawned-threads",   "below-sol",
      "timing-disagreement"};
  return kHacks.count(flag) > 0;
}

v1::Verification Decide(const v1::Verification& claim, const v1::ReplayBundle& replays) {
  // Training claims are judged on the runs' own figures (training_verdict.h).
  if (claim.task() == v1::TASK_TRAIN_BUDGET || claim.task() == v1::TASK_TRAIN_TARGET)
    return DecideTraining(claim, replays);
  v1::Verification v = claim;
  v1::VerdictEvidence* ev = v.mutable_evidence();
  // The spec's defaults for what the claim's policy leaves out (applied at
  // submit already; a hand-built claim reads the same).
  const v1::VerificationPolicy policy = spec::AppliedVerification(claim.policy());
  const double tolerance = policy.timing_tolerance();
  const double sigmas = policy.noise_sigmas();
  const double alpha = policy.significance();
  // Every look is tested at the corrected threshold, the last one too.
  const std::vector<int> schedule = ReplaySchedule(claim);
  const double look_alpha = alpha / schedule.size();
  const int per_side = ReplaysPerSide(claim, replays);
  ev->set_planned_looks(static_cast<int>(schedule.size()));
  ev->set_looks(std::max<int>(
      1, std::upper_bound(schedule.begin(), schedule.end(), per_side) - schedule.begin()));
  ev->set_look_significance(look_alpha);
  ev->set_replays_requested(std::max(claim.evidence().replays_requested(), per_side));
  ev->clear_tiers();
  for (const char* tier : kTiers)
    if (TierEnabled(policy, tier)) ev->add_tiers(tier);

  std::map<int64_t, const v1::Evaluation*> by_job;
  for (const auto& e : replays.evaluations()) by_job[e.job_id()] = &e;

  OutsideClock outside(replays, claim.candidate_id(), by_job, tolerance);

  std::vector<std::pair<int64_t, double>> cand_by_job;  // (job, score)
  std::vector<double> inc;
  Problem hack, wrong, flaky, inc_problem, unsteady;
  bool candidate_replays_done = true;
  std::set<std::string> hardware;  // of the candidate's replays
  auto note = Note;
  for (const auto& job : replays.jobs()) {
    const bool is_candidate = job.candidate_id() == claim.candidate_id();
    auto it = by_job.find(job.id());
    if (it == by_job.end()) {
      const std::string why = absl::StrCat("replay job ", job.id(), " never completed");
      note(is_candidate ? &flaky : &inc_problem, v1::VERDICT_REJECTED_FLAKY,
           is_candidate ? "failed-on-replay" : "incumbent-failed", why);
      if (is_candidate) candidate_replays_done = false;
      continue;
    }
    const v1::Evaluation& e = *it->second;
    const std::string where = absl::StrCat("replay job ", job.id(), " on ", e.worker_id());
    if (!is_candidate) {
      if (e.outcome() == v1::OUTCOME_OK) {
        inc.push_back(e.score());
      } else {
        note(&inc_problem, v1::VERDICT_REJECTED_FLAKY, "incumbent-failed",
             absl::StrCat(where, ": outcome ", v1::Outcome_Name(e.outcome()), ": ",
                          FirstLine(e.message())));
      }
      continue;
    }
    if (auto hw = replays.worker_hardware().find(e.worker_id());
        hw != replays.worker_hardware().end())
      hardware.insert(hw->second);
    if (std::find(ev->replay_workers().begin(), ev->replay_workers().end(), e.worker_id()) ==
        ev->replay_workers().end())
      ev->add_replay_workers(e.worker_id());
    // The harness's own evidence first: a check that names a hack.
    for (const auto& w : e.workloads()) {
      for (const auto& flag : w.flags()) {
        if (!IsHackFlag(flag)) continue;
        note(&hack, v1::VERDICT_REJECTED_HACK, flag,
             absl::StrCat(where, " workload ", w.index(), " (", w.axes(), "): ", flag,
                          e.outcome() == v1::OUTCOME_OK
                              ? absl::StrCat(": T_k ", w.t_k_ns(), " ns, events ",
                                             w.t_k_events_ns(), " ns, T_sol ", w.t_sol_ns(),
                                             " ns")
                              : absl::StrCat(": ", FirstLine(e.message(), 600))));
      }
    }
    if (e.outcome() != v1::OUTCOME_OK) {
      const std::string what = absl::StrCat(where, ": outcome ", v1::Outcome_Name(e.outcome()),
                                            ": ", FirstLine(e.message(), 600));
      if (e.outcome() == v1::OUTCOME_WRONG_ANSWER) {
        if (std::string h = HackInMessage(e.message()); !h.empty())
          note(&hack, v1::VERDICT_REJECTED_HACK, h, what);
        note(&wrong, v1::VERDICT_REJECTED_WRONG, "wrong-on-replay", what);
      } else if (e.outcome() == v1::OUTCOME_OUT_OF_BOUNDS) {
        note(&wrong, v1::VERDICT_REJECTED_WRONG, "out-of-bounds-on-replay", what);
      } else {
        note(&flaky, v1::VERDICT_REJECTED_FLAKY, "failed-on-replay", what);
      }
      continue;
    }
    cand_by_job.push_back({job.id(), e.score()});
    outside.AddReplay(job, e, where, ev, &flaky);
  }
  // Decided only once every replay of the candidate is in.
  std::set<int64_t> excluded;
  if (candidate_replays_done) excluded = outside.Conclude(&hack, &unsteady);
  ev->set_timed_replays(outside.timed());
  ev->set_disagreeing_replays(outside.disagreeing());
  std::vector<double> cand;
  for (const auto& [job_id, score] : cand_by_job)
    if (!excluded.count(job_id)) cand.push_back(score);
  for (double s : cand) v.add_candidate_scores(s);
  for (double s : inc) v.add_incumbent_scores(s);

  auto reject = [&](const Problem& p) { return Reject(p, v); };
  if (const Problem* found = FirstFound({&hack, &wrong, &flaky, &inc_problem})) return reject(*found);
  if (inc.empty() || cand.empty())
    return reject({v1::VERDICT_REJECTED_FLAKY, "incumbent-failed", "no replay scores to compare"});

  const double med_cand = Median(cand), med_inc = Median(inc);
  const double gain = med_inc > 0 ? med_cand / med_inc - 1.0 : 1.0;
  ev->set_candidate_median(med_cand);
  ev->set_incumbent_median(med_inc);
  ev->set_relative_gain(gain);
  ev->set_p_value(1);

  const v1::NoiseFloor floor = PooledNoiseFloor(replays, hardware, inc, ev);
  const double required = std::max(policy.min_gain(), sigmas * floor.relative_sd());
  ev->set_required_gain(required);

  std::string evidence = absl::StrFormat(
      "replays: candidate [%s] median %.4f, incumbent [%s] median %.4f, gain %+.1f%%; "
      "claimed %.4f; noise floor %.2f%% (%.0f df, %s), required gain %.1f%%",
      Scores(cand), med_cand, Scores(inc), med_inc, 100 * gain, claim.claimed_score(),
      100 * floor.relative_sd(), floor.degrees_of_freedom(), ev->noise_floor_key(),
      100 * required);
  const bool significant =
      Significant(cand, inc, schedule, alpha, per_side, ev, &evidence);
  absl::StrAppend(&evidence, OutsideClockSummary(*ev));
  if (!excluded.empty())
    absl::StrAppend(&evidence, "; left out, the worker's clock disagreeing (a busy host): replay ",
                    excluded.size() == 1 ? "job " : "jobs ", absl::StrJoin(excluded, ", "));
  if (!significant)
    return reject({v1::VERDICT_REJECTED_NOISE, "noise",
                   absl::StrCat("improvement not beyond the noise: ", evidence)});
  if (gain < policy.min_gain())
    return reject({v1::VERDICT_REJECTED_NOISE, "below-min-gain",
                   absl::StrFormat("gain %.1f%% below the campaign's minimum %.1f%%; %s",
                                   100 * gain, 100 * policy.min_gain(), evidence)});
  if (gain < required)
    return reject({v1::VERDICT_REJECTED_NOISE, "below-noise-floor",
                   absl::StrFormat("gain %.1f%% within %g noise floors (%.2f%% each); %s",
                                   100 * gain, sigmas, 100 * floor.relative_sd(), evidence)});
  if (unsteady.outcome != v1::VERDICT_UNSPECIFIED) return reject(unsteady);
  v.set_outcome(v1::VERDICT_ACCEPTED);
  v.clear_reason();
  v.set_detail(evidence);
  ev->clear_failed_check();
  ev->clear_check_detail();
  return v;
}

v1::Verification ScreenClaim(const v1::Verification& claim,
                             const std::map<std::string, std::string>& candidate_files,
                             const std::map<std::string, std::string>& incumbent_files) {
  v1::Verification screened = claim;
  const std::vector<ScreeningFlag> added = AddedFlags(candidate_files, incumbent_files);
  v1::VerdictEvidence* ev = screened.mutable_evidence();
  ev->clear_screening_flags();
  for (const ScreeningFlag& f : added) ev->add_screening_flags(DescribeFlag(f));
  ev->set_replays_requested(ReplayCount(claim.policy(), !added.empty()));
  return screened;
}

v1::Verification Judge(const v1::Verification& screened, const v1::ReplayBundle& replays) {
  v1::Verification verdict = Decide(screened, replays);
  const auto& flags = screened.evidence().screening_flags();
  if (!flags.empty())
    verdict.set_detail(absl::StrCat(verdict.detail(), "; screening flagged (replays raised to ",
                                    screened.evidence().replays_requested(), "): ",
                                    absl::StrJoin(flags, "; ")));
  return verdict;
}

}  // namespace ratchet::verifier
