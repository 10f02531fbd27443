// A training job (train-budget, train-target) on a worker, with the trust
// boundary drawn so that no number the verdict uses is produced where the
// candidate's code runs (docs/training.md, "Training jobs on a worker"):
//
//   worker ──(bwrap, as its PID 1)──► ratchet launch ──► PYTHON train.py × nproc
//     │        sees: the project and scratch (writable), each train_*.bin
//     │        file, the toolchain; never the data folder, never val_*.bin
//     │
//     ├─ times the sandbox from outside: training seconds are its clock's
//     │
//     └─(rlimits, trusted)──► evaluate.py ──(bwrap, scratch read-only)──► model hosts
//              reads val_*.bin itself           the candidate's model.py
//
// The launcher's word (its result line, matched by a nonce) is believed for
// how the ranks ended and what warm-up they marked, the latter capped by the
// campaign's allowance; the time and the loss are the worker's and the
// evaluator's.
#ifndef RATCHET_WORKER_TRAINING_JOB_H_
#define RATCHET_WORKER_TRAINING_JOB_H_

#include <atomic>
#include <functional>
#include <optional>
#include <string>

#include "ratchet/v1/ratchet.pb.h"
#include "worker/sandbox.h"
#include "worker/worker.h"

namespace ratchet::worker {

// Runs one training job to an evaluation: outcome, message, score,
// wall_seconds and Evaluation.training; `finish` fills the ids (and the
// sandbox) as Worker::RunJob does for kernel jobs. Never fails: every
// failure is an outcome (OUTCOME_HARNESS_ERROR for the worker's or the
// campaign's, OUTCOME_FROZEN_EDIT, OUTCOME_CRASH, OUTCOME_TIMEOUT,
// OUTCOME_WRONG_ANSWER for the candidate's). Sets *cancelled when `cancel`
// (may be null) stopped it. `on_progress` (may be empty) hears each progress
// line of the launcher while the ranks run, with the job's id filled in: the
// program's own word, for the campaign's events only.
v1::Evaluation RunTrainingJob(const v1::Job& job, const WorkerOptions& options,
                              const Sandbox& sandbox, const v1::Hardware& hardware,
                              const std::atomic<bool>* cancel, bool* cancelled,
                              const std::function<v1::Evaluation(v1::Evaluation)>& finish,
                              const std::function<void(const v1::JobProgress&)>& on_progress =
                                  nullptr);

// `word` quoted for a POSIX shell (and Python's shlex.split): in single
// quotes, each ' written as '\''.
std::string ShellQuote(const std::string& word);

// The JSON of a `ratchet launch` result line ("ratchet-launch-result NONCE
// {...}") when `line` is one and carries `nonce` (not empty); else "". A
// line with another nonce is not the launcher's.
std::string LaunchResultOf(const std::string& line, const std::string& nonce);

// A `ratchet launch` progress line ("ratchet-launch-progress STEP LOSS
// TOKENS_PER_S SECONDS") as step, loss, tokens_per_s and seconds (job_id
// unset); nullopt for any other line or one malformed. The numbers are the
// candidate's, taken as written (NaN, huge, negative alike): the coordinator
// bounds them where it prints them.
std::optional<v1::JobProgress> LaunchProgressOf(const std::string& line);

// Where an evaluation's seconds went, for the worker's log, from the
// evaluator's result JSON: "evaluation 17.3 s (start 4.1, answers 9.0, copies
// 2.2, scoring 1.5; logits page-locked)". Missing parts are left out; "" for
// text that is not an evaluator's result.
std::string EvaluatorTimesOf(const std::string& result_json);

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_TRAINING_JOB_H_
