#include "kernels/harness/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "kernels/correctness/compare.h"
#include "kernels/harness/timing_stats.h"
#include "kernels/harness/back_to_back.h"

namespace ratchet::kernels {
namespace {

std::string Describe(const Workload& w) {
  return absl::StrCat("workload ", w.index, " (", w.axes_label, ")");
}

}  // namespace

std::string MakeDecoy(const std::string& ref, DType dtype, double atol, double rtol) {
  std::string d = ref;
  const size_t n = ref.size() / DTypeSize(dtype);
  if (!IsFloating(dtype)) return d;
  for (size_t i = 0; i < n; ++i) {
    const double r = LoadAsDouble(ref.data(), dtype, i);
    if (!std::isfinite(r)) continue;
    // Half the tolerance, its sign from the element's index: no smooth
    // function of the reference, so no honest rounding drifts towards it.
    const uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull;
    const double step = 0.5 * (atol + rtol * std::fabs(r));
    StoreFromDouble(d.data(), dtype, i, r + ((h >> 63) ? step : -step));
  }
  return d;
}

bool NearerDecoy(const std::string& out, const std::string& ref, const std::string& decoy,
                 DType dtype) {
  if (decoy.size() != ref.size() || out.size() != ref.size()) return false;
  const size_t n = ref.size() / DTypeSize(dtype);
  size_t differ = 0, nearer = 0;
  // A copy is a copy everywhere: a million elements tell as well as all.
  const size_t step = std::max<size_t>(1, n / (size_t{1} << 20));
  for (size_t i = 0; i < n; i += step) {
    const double r = LoadAsDouble(ref.data(), dtype, i);
    const double d = LoadAsDouble(decoy.data(), dtype, i);
    if (r == d || !std::isfinite(r) || !std::isfinite(d)) continue;
    const double o = LoadAsDouble(out.data(), dtype, i);
    ++differ;
    nearer += std::fabs(o - d) < std::fabs(o - r);
  }
  return differ >= 8 && nearer * 10 >= differ * 9;
}

std::string EvaluationPipeline::Classify(const Workload& w, const WorkloadRounds& rounds, int r,
                                         size_t out, const std::string& at_return,
                                         const std::string& now, std::string* why) {
  const TensorSpec& spec = def_.outputs[out];
  const DType dt = spec.dtype;
  const size_t esize = DTypeSize(dt), count = at_return.size() / esize;
  const Tolerance tol = ToleranceFor(w, dt);
  if (now != at_return) {
    *why = "the output changed after the call returned (work left running on another thread)";
    return "work-after-return";
  }
  std::string poison(at_return.size(), '\0');
  Poison(poison.data(), dt, count);
  size_t poisoned = 0;
  for (size_t i = 0; i < count; ++i)
    poisoned += std::memcmp(poison.data() + i * esize, at_return.data() + i * esize, esize) == 0;
  if (poisoned == count) {
    *why = "no element written; the output is still the poison the harness put there (no work "
           "done)";
    return "stale-output";
  }
  const std::string& expected = rounds.outputs[static_cast<size_t>(r)][out];
  // An answer for other inputs: at every element where another round's
  // reference differs from this one's, the output holds the other's value.
  for (size_t o = 0; o < rounds.outputs.size(); ++o) {
    if (static_cast<int>(o) == r) continue;
    const std::string& other = rounds.outputs[o][out];
    int64_t differ = 0, cached = 0;
    for (size_t i = 0; i < count; ++i) {
      const double e = LoadAsDouble(expected.data(), dt, i);
      const double x = LoadAsDouble(other.data(), dt, i);
      if (std::fabs(e - x) <= tol.atol + tol.rtol * std::fabs(e)) continue;
      ++differ;
      const double got = LoadAsDouble(at_return.data(), dt, i);
      cached += std::fabs(got - x) <= tol.atol + tol.rtol * std::fabs(x);
    }
    if (differ > 0 && cached == differ) {
      *why = absl::StrCat("at all ", differ, " elements where this call's reference differs "
                          "from round ", o, "'s, the output holds round ", o,
                          "'s answer (output cached across calls)");
      return "cached-answer";
    }
  }
  double scale = 0, worst = 0;
  bool finite = true;
  for (size_t i = 0; i < count; ++i) {
    const double e = LoadAsDouble(expected.data(), dt, i);
    const double got = LoadAsDouble(at_return.data(), dt, i);
    finite = finite && std::isfinite(got);
    scale = std::max(scale, std::fabs(e));
    worst = std::max(worst, std::fabs(got - e));
  }
  const CompareResult c = CompareOutputs(at_return.data(), dt, expected.data(), dt,
                                         static_cast<int64_t>(count), {}, tol);
  if (finite && scale > 0 && worst <= 0.05 * scale) {
    *why = absl::StrCat("close to the reference but beyond the tolerance (max error ", worst,
                        " of ", scale, "): a lower precision than the correctness rounds saw; ",
                        c.message);
    return "precision-downgrade";
  }
  *why = absl::StrCat("wrong, although the correctness rounds passed: ", c.message);
  return "wrong-while-timed";
}

bool EvaluationPipeline::Check(const Workload& w, const WorkloadRounds& rounds, int r,
                               const Observation& ob, const std::string& ctx, bool timed,
                               CheckedWorkload* cw, PipelineResult* res) {
  auto fail = [&](const std::string& outcome, const std::string& flag, const std::string& msg) {
    cw->correct = false;
    if (!flag.empty()) cw->flags.push_back(flag);
    res->outcome = outcome;
    res->message = flag.empty() ? msg : absl::StrCat(flag, ": ", msg);
    return false;
  };
  switch (ob.end) {
    case Observation::End::kCrashed:
      return fail("crash", "", absl::StrCat(ctx, ": ", ob.detail));
    case Observation::End::kOutOfBounds:
      return fail("out_of_bounds", "", absl::StrCat(ctx, ": ", ob.detail));
    case Observation::End::kHarnessError:
      return fail("harness_error", "", absl::StrCat(ctx, ": ", ob.detail));
    case Observation::End::kReturned:
      break;
  }
  if (ob.rc != 0) return fail("crash", "", absl::StrCat(ctx, ": ratchet_run returned ", ob.rc));
  if (ob.modified_input >= 0)
    return fail("wrong_answer", "modified-inputs",
                absl::StrCat(ctx, ": the candidate modified its inputs (input '",
                             def_.inputs[static_cast<size_t>(ob.modified_input)].name, "')"));
  if (ob.checked) {
    cw->matched_fraction = std::min(cw->matched_fraction, ob.matched_fraction);
    cw->max_abs_error = std::max(cw->max_abs_error, ob.max_abs_error);
    return true;
  }
  // A call the backend failed is looked at in full, whatever its size.
  const bool spot = timed && !ob.failed_where_checked && !FullCheck(ob);
  for (size_t j = 0; j < def_.outputs.size(); ++j) {
    const DType dt = def_.outputs[j].dtype;
    const Tolerance tol = ToleranceFor(w, dt);
    const std::string& got = ob.outputs[j];
    const std::string& ref = rounds.outputs[static_cast<size_t>(r)][j];
    if (got.size() != ref.size())
      return fail("harness_error", "", absl::StrCat(ctx, ": output size mismatch"));
    const std::string out_ctx = absl::StrCat(ctx, ", output '", def_.outputs[j].name, "'");
    if (spot) {
      // Random positions, drawn now: an output left unwritten or computed
      // only in part fails here as surely as in a full check, in expectation.
      const size_t esize = DTypeSize(dt), count = got.size() / esize;
      std::string g, e;
      for (int k = 0; k < o_.spot_elements && count > 0; ++k) {
        const size_t i = audit_rng_() % count;
        g.append(got, i * esize, esize);
        e.append(ref, i * esize, esize);
      }
      const CompareResult c = CompareOutputs(g.data(), dt, e.data(), dt,
                                             static_cast<int64_t>(g.size() / esize), {}, tol);
      if (c.ok) continue;
      // A failed spot check is looked at in full, like any other.
    }
    if (!rounds.decoys.empty() && !rounds.decoys[static_cast<size_t>(r)].empty() &&
        NearerDecoy(got, ref, rounds.decoys[static_cast<size_t>(r)][j], dt))
      return fail("wrong_answer", "read-reference",
                  absl::StrCat(out_ctx, ": nearer, element by element, to the decoy the harness "
                                        "left in the oracle's reference file than to the "
                                        "reference (the candidate read the file)"));
    const CompareResult c = CompareOutputs(got.data(), dt, ref.data(), dt,
                                           static_cast<int64_t>(got.size() / DTypeSize(dt)),
                                           {}, tol);
    cw->matched_fraction = std::min(cw->matched_fraction, c.matched_fraction);
    cw->max_abs_error = std::max(cw->max_abs_error, c.max_abs_error);
    if (c.ok) continue;
    // Late work shows as a change after a short wait; anything else in the
    // correctness rounds is an honest wrong answer, in timed calls a hack.
    std::this_thread::sleep_for(std::chrono::milliseconds(o_.late_work_ms));
    const std::vector<std::string> now = backend_->OutputsNow();
    std::string why;
    const std::string flag =
        Classify(w, rounds, r, j, got, j < now.size() ? now[j] : got, &why);
    if (timed || flag == "work-after-return")
      return fail("wrong_answer", flag, absl::StrCat(out_ctx, ": ", why));
    return fail("wrong_answer", "", absl::StrCat(out_ctx, ": ", c.message));
  }
  return true;
}

void EvaluationPipeline::AddReferences(const Workload& w, const WorkloadRounds& rounds, int r,
                                       CallRequest* req) const {
  const size_t round = static_cast<size_t>(r);
  for (size_t j = 0; j < def_.outputs.size(); ++j) {
    req->references.push_back(&rounds.outputs[round][j]);
    req->tolerances.push_back(ToleranceFor(w, def_.outputs[j].dtype));
    if (round < rounds.decoys.size() && j < rounds.decoys[round].size())
      req->decoys.push_back(&rounds.decoys[round][j]);
  }
  if (req->decoys.size() != req->references.size()) req->decoys.clear();
}

bool EvaluationPipeline::FullCheck(const Observation& ob) {
  int64_t elements = 0;
  for (size_t j = 0; j < def_.outputs.size() && j < ob.outputs.size(); ++j)
    elements += static_cast<int64_t>(ob.outputs[j].size() / DTypeSize(def_.outputs[j].dtype));
  if (elements <= o_.full_check_elements) return true;
  return audit_rng_() % static_cast<uint64_t>(std::max(1, o_.audit_one_in)) == 0;
}

bool EvaluationPipeline::CallRound(const Workload& w, const WorkloadRounds& rounds, int r,
                                   const std::string& ctx, bool timed, CheckedWorkload* cw,
                                   PipelineResult* res, double* ns) {
  const std::vector<Tensor> ins = MakeTensors(def_.inputs, w);
  const std::vector<Tensor> outs = MakeTensors(def_.outputs, w);
  CallRequest req;
  req.ins = &ins;
  req.outs = &outs;
  for (const std::string& s : rounds.inputs[static_cast<size_t>(r)]) req.inputs.push_back(&s);
  AddReferences(w, rounds, r, &req);
  const Observation ob = backend_->Call(req);
  if (!Check(w, rounds, r, ob, ctx, timed, cw, res)) return false;
  if (ns != nullptr) *ns = ob.ns;
  return true;
}

PipelineResult EvaluationPipeline::Screen(const Workload& w, const WorkloadRounds& rounds) {
  PipelineResult res;
  backend_->NewRounds();
  CheckedWorkload cw;
  cw.index = w.index;
  cw.axes = w.axes_label;
  cw.correct = true;
  cw.matched_fraction = 1;
  CallRound(w, rounds, 0, absl::StrCat("screen: ", Describe(w), " round 0"), false, &cw, &res,
            nullptr);
  res.workloads.push_back(cw);
  return res;
}

bool EvaluationPipeline::BackToBack(const Workload& w, const WorkloadRounds& rounds,
                                    CheckedWorkload* cw, PipelineResult* res) {
  const std::vector<Tensor> ins = MakeTensors(def_.inputs, w);
  const std::vector<Tensor> outs = MakeTensors(def_.outputs, w);
  const int first_timed = std::min<int>(o_.correctness_rounds,
                                        static_cast<int>(rounds.inputs.size()) - 1);
  const int pool = static_cast<int>(rounds.inputs.size()) - first_timed;
  int batch = 0;
  bool ok = true;
  // Each batch: a round of its own at a new placement, calls back to back
  // without flushing, and the last call's outputs checked like any other.
  auto calls = RunMarkedBatches(w.index, o_.back_to_back_seconds, 2e-3,
                                [&](int64_t first, int64_t n,
                                    const BatchMarks& marks) -> absl::Status {
    const int r = first_timed + batch++ % pool;
    CallRequest req;
    req.ins = &ins;
    req.outs = &outs;
    req.flush = false;
    req.repeat = n;
    req.on_send = marks.begin;
    req.on_answer = marks.end;
    for (const std::string& s : rounds.inputs[static_cast<size_t>(r)]) req.inputs.push_back(&s);
    AddReferences(w, rounds, r, &req);
    const Observation ob = backend_->Call(req);
    const std::string ctx = absl::StrCat(Describe(w), " back-to-back calls ", first, "..",
                                         first + n - 1);
    // The marks bracket the calls only, so checking every batch would cost
    // only time; one batch in four, drawn after its calls returned, is
    // checked (the first too). A crash or a non-zero return is caught in
    // every batch.
    const bool check = batch == 1 || audit_rng_() % 4 == 0;
    if (!check && ob.end == Observation::End::kReturned && ob.rc == 0) return absl::OkStatus();
    if (!Check(w, rounds, r, ob, ctx, true, cw, res)) {
      ok = false;
      return absl::AbortedError(res->message);
    }
    return absl::OkStatus();
  });
  if (!ok) return false;
  if (!calls.ok()) {
    res->outcome = "harness_error";
    res->message = std::string(calls.status().message());
    return false;
  }
  cw->calls = *calls;
  return true;
}

PipelineResult EvaluationPipeline::Run(const std::vector<Workload>& workloads,
                                       const std::vector<WorkloadRounds>& rounds) {
  PipelineResult res;
  backend_->NewRounds();
  auto stage = [&](const std::string& s) {
    if (o_.stage) o_.stage(s);
  };
  stage("correctness");
  for (size_t k = 0; k < workloads.size(); ++k) {
    const Workload& w = workloads[k];
    CheckedWorkload cw;
    cw.index = w.index;
    cw.axes = w.axes_label;
    cw.correct = true;
    cw.matched_fraction = 1;
    res.workloads.push_back(cw);
    // The last round stays unseen for timing, where there are two or more
    // (the round budget may leave a large workload fewer than the
    // correctness rounds and one).
    const int available = static_cast<int>(rounds[k].inputs.size());
    const int checks = std::min(o_.correctness_rounds, std::max(1, available - 1));
    for (int r = 0; r < checks; ++r) {
      if (!CallRound(w, rounds[k], r, absl::StrCat(Describe(w), " round ", r), false,
                     &res.workloads.back(), &res, nullptr))
        return res;
    }
  }
  for (size_t k = 0; k < workloads.size(); ++k) {
    const Workload& w = workloads[k];
    CheckedWorkload& cw = res.workloads[k];
    stage(absl::StrCat("timing workload ", k + 1, "/", workloads.size()));
    // Warm-ups go round the correctness rounds, already seen; every timed
    // call then gets a round no earlier call saw (at a new placement, as
    // every call), so a cache keyed on the inputs' contents, sampled or
    // whole, never hits while timed. Fewer rounds than repetitions (large
    // tensors, a bounded memory budget) means fewer timed calls, never a
    // repeated one.
    const int available = static_cast<int>(rounds[k].inputs.size());
    const int first_timed = std::min(o_.correctness_rounds, available - 1);
    const int pool = available - first_timed;
    const int timed = std::min(pool, o_.repetitions);
    cw.timed_rounds = timed;
    for (int i = 0; i < o_.warmups; ++i) {
      const int r = first_timed > 0 ? i % first_timed : i % pool;
      if (!CallRound(w, rounds[k], r, absl::StrCat(Describe(w), " timed call ", i), true, &cw,
                     &res, nullptr))
        return res;
    }
    std::vector<double> samples;
    for (int i = 0; i < timed; ++i) {
      double ns = 0;
      if (!CallRound(w, rounds[k], first_timed + i,
                     absl::StrCat(Describe(w), " timed call ", o_.warmups + i), true, &cw, &res,
                     &ns))
        return res;
      samples.push_back(ns);
    }
    const SampleSummary t_k = Summarize(std::move(samples));
    cw.t_k = t_k.median;
    cw.t_k_spread = t_k.spread;
    cw.t_k_p10 = t_k.p10;
    if (o_.back_to_back_seconds > 0 && !BackToBack(w, rounds[k], &cw, &res)) return res;
  }
  return res;
}

}  // namespace ratchet::kernels
