// The trusted evaluation pipeline, written once for every backend: it calls
// a candidate through a CandidateBackend, checks every call's outputs
// against references it holds in its own memory, and times every call by the
// backend's trusted clock (docs/verifier.md, "Threat model").
//
// Every call looks the same to the candidate: caches flushed, inputs it has
// never seen (a round of their own for each timed call) at addresses no
// earlier call used, outputs poisoned. Correctness rounds, warm-ups and timed
// repetitions differ only in which round's data they get; every one of them
// is checked.
#ifndef RATCHET_KERNELS_HARNESS_PIPELINE_H_
#define RATCHET_KERNELS_HARNESS_PIPELINE_H_

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "kernels/correctness/compare.h"
#include "kernels/harness/contract.h"
#include "kernels/harness/tensors.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {

// One call as the trusted side saw it.
struct Observation {
  enum class End { kReturned, kCrashed, kOutOfBounds, kHarnessError };
  End end = End::kReturned;
  std::string detail;  // how it crashed, which canary changed, what failed
  int rc = 0;          // the entry point's return value (kReturned)
  double ns = 0;       // per call, by the trusted clock, round-trip cost removed
  std::vector<std::string> outputs;  // the bytes of each output when the call returned
  int modified_input = -1;           // the first input whose bytes changed, or -1
  // Set by a backend that checked the outputs where they are (CallRequest's
  // references): every output passed, `outputs` is empty, and the figures
  // are its. A call that failed there comes with its outputs and
  // `failed_where_checked`, to be looked at in full here.
  bool checked = false;
  bool failed_where_checked = false;
  double matched_fraction = 1, max_abs_error = 0;
};

struct CallRequest {
  const std::vector<Tensor>* ins = nullptr;
  const std::vector<Tensor>* outs = nullptr;
  std::vector<const std::string*> inputs;  // bytes of each input
  bool flush = true;   // evict caches before the call
  int64_t repeat = 1;  // > 1: calls back to back on the same placement
  // When set: called right before the call is sent to the candidate and
  // right after its answer arrived (the independent timing's marks).
  std::function<void()> on_send, on_answer;
  // The round's reference outputs, the decoys where the round has them (else
  // empty) and each output's tolerance: what a backend needs to check a
  // call where its outputs are (the device), so that only a call that fails
  // comes back to the host. A backend may ignore them.
  std::vector<const std::string*> references;
  std::vector<const std::string*> decoys;
  std::vector<Tolerance> tolerances;
};

// Where candidate code runs. Implementations: the candidate process over
// shared memory (CPU), and fakes in tests.
class CandidateBackend {
 public:
  virtual ~CandidateBackend() = default;
  // Places the inputs where no earlier call put them, poisons the outputs,
  // and calls the candidate (`repeat` times); observes the result.
  virtual Observation Call(const CallRequest& request) = 0;
  // The last call's outputs as they are now: a change since the call
  // returned is work left running.
  virtual std::vector<std::string> OutputsNow() = 0;
  // The pipeline starts on other rounds (a screen, a run): a backend that
  // keeps copies of round data by address drops them.
  virtual void NewRounds() {}
};

// One workload's oracle data, held by the trusted side only.
struct WorkloadRounds {
  std::vector<std::vector<std::string>> inputs;   // [round][input]
  std::vector<std::vector<std::string>> outputs;  // [round][output]
  // [round][output]: what the oracle's reference files hold now (the
  // reference moved by a fraction of the tolerance); empty when none.
  std::vector<std::vector<std::string>> decoys;
};

struct PipelineOptions {
  // rounds 0..R-1; timed calls use the rounds after them
  int correctness_rounds = kCpuHarnessDefaults.rounds;
  int warmups = kCpuHarnessDefaults.warmups;
  int repetitions = kCpuHarnessDefaults.repetitions;
  // > 0: after timing, calls back to back for this many seconds per
  // workload with a mark per batch (the independent timing); see
  // back_to_back.h.
  double back_to_back_seconds = 0;
  // Wait before looking again at an output that failed its check.
  int late_work_ms = 30;
  // Progress ("correctness", "timing workload 2/4"), one line each.
  std::function<void(const std::string&)> stage;
  // Timed calls whose outputs hold more elements than this are checked in
  // full only at random (one in `audit_one_in`, drawn after the call has
  // returned, so the candidate cannot know), and otherwise at
  // `spot_elements` random positions; smaller outputs are always checked in
  // full. Correctness rounds are always checked in full.
  int64_t full_check_elements = 1 << 20;
  int audit_one_in = 8;
  int spot_elements = 4096;
};

struct CheckedWorkload {
  int index = 0;
  std::string axes;
  bool correct = false;
  double matched_fraction = 0, max_abs_error = 0;
  double t_k = 0, t_k_spread = 0, t_k_p10 = 0;
  std::vector<std::string> flags;  // the check that caught a hack
  int64_t calls = 0;               // back-to-back calls made
  int timed_rounds = 0;            // distinct rounds the timed calls used
};

struct PipelineResult {
  // ok | wrong_answer | crash | out_of_bounds | harness_error
  std::string outcome = "ok";
  std::string message;
  std::vector<CheckedWorkload> workloads;
};

class EvaluationPipeline {
 public:
  EvaluationPipeline(const Definition& def, CandidateBackend* backend, PipelineOptions options)
      : def_(def), backend_(backend), o_(options) {}

  // The cascade's screen: round 0 of one workload, checked like correctness.
  PipelineResult Screen(const Workload& w, const WorkloadRounds& rounds);
  // Correctness on every workload, then timing, then (optionally) the
  // back-to-back phase. rounds[i] belongs to workloads[i].
  PipelineResult Run(const std::vector<Workload>& workloads,
                     const std::vector<WorkloadRounds>& rounds);

 private:
  // Checks one call's observation against round `r`; false when the run
  // ends (res->outcome set). `timed`: a failure is evidence of a hack.
  bool Check(const Workload& w, const WorkloadRounds& rounds, int r, const Observation& ob,
             const std::string& ctx, bool timed, CheckedWorkload* cw, PipelineResult* res);
  // Whether a timed call's outputs are checked in full (else at random
  // positions): decided after the call returned.
  bool FullCheck(const Observation& ob);
  // Round r's references, decoys and tolerances into the request.
  void AddReferences(const Workload& w, const WorkloadRounds& rounds, int r,
                     CallRequest* req) const;
  // Names the hack behind a timed output that failed its check.
  std::string Classify(const Workload& w, const WorkloadRounds& rounds, int r, size_t out,
                       const std::string& at_return, const std::string& now,
                       std::string* why);
  bool CallRound(const Workload& w, const WorkloadRounds& rounds, int r,
                 const std::string& ctx, bool timed, CheckedWorkload* cw, PipelineResult* res,
                 double* ns);
  bool BackToBack(const Workload& w, const WorkloadRounds& rounds, CheckedWorkload* cw,
                  PipelineResult* res);

  const Definition& def_;
  CandidateBackend* backend_;
  PipelineOptions o_;
  std::mt19937_64 audit_rng_{std::random_device{}()};  // never seeded from the job
};

// True when `out` was copied from `decoy` rather than computed: at >= 90% of
// the elements where decoy and reference differ, it is nearer the decoy.
// Flipping low bits of a copy does not move it nearer the reference.
bool NearerDecoy(const std::string& out, const std::string& ref, const std::string& decoy,
                 DType dtype);

// The reference moved by half the tolerance in a pattern that depends on
// the element: within tolerance, so that a copy passes correctness, and
// recognisable by NearerDecoy.
std::string MakeDecoy(const std::string& ref, DType dtype, double atol, double rtol);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_PIPELINE_H_
