// Runs a training program as one process per device, torchrun-style, and
// measures it with the harness's own clock: the trusted half of a training
// job (docs/training.md, "The launcher").
//
// Each rank gets the rendezvous environment (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR on loopback, MASTER_PORT) and a control
// channel on file descriptor 3 (RATCHET_CONTROL_FD): lines `phase
// warmup-begin`, `phase warmup-end`, `progress STEP LOSS TOKENS_PER_S`,
// `done STEPS`. The launcher stamps every line with its own steady clock as
// it arrives: a candidate decides what it says, never when the launcher
// heard it. The marked warm-up is left out of the training time up to a
// fixed allowance, the same for every candidate; past the budget (plus that
// warm-up) every rank is stopped and the run is `over-budget`.
#ifndef RATCHET_TRAINING_HARNESS_LAUNCH_H_
#define RATCHET_TRAINING_HARNESS_LAUNCH_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace ratchet::training {

struct Progress {
  int64_t step = 0;
  double loss = 0;           // as the candidate says: shown, never scored
  double tokens_per_s = 0;   // likewise
  double at_seconds = 0;     // the launcher's clock since the start
};

struct LaunchOptions {
  std::vector<std::string> argv;           // the program, e.g. {python, train.py}
  std::string workdir;                     // every rank starts here
  std::map<std::string, std::string> env;  // the whole environment (built by the caller)
  int nproc = 1;
  double budget_seconds = 0;             // training time, warm-up excluded; 0 = none
  double warmup_allowance_seconds = 0;   // most of a marked warm-up left out
  double timeout_seconds = 3600;         // hard stop for runs without a budget
  double grace_seconds = 5;              // SIGTERM, then SIGKILL after this
  std::string log_path;                  // every rank's stdout and stderr; "" = /dev/null
  std::function<void(const Progress&)> on_progress;
};

struct LaunchResult {
  // "ok", "over-budget", "timeout", "crash" (a rank failed), "bad-marks"
  // (phase marks out of order or repeated), "error" (could not start).
  std::string outcome;
  std::string message;
  double wall_seconds = 0;      // start of the first rank to exit of the last
  double warmup_seconds = 0;    // between the warm-up marks, as heard
  double training_seconds = 0;  // wall less the warm-up left out (capped)
  int64_t steps = 0;            // from `done` or the last `progress`
  std::vector<Progress> progress;
  std::vector<int> exit_codes;  // per rank: exit status, or 128 + signal
};

LaunchResult Launch(const LaunchOptions& options);

// A free TCP port on loopback for MASTER_PORT (bound and released: another
// process may take it in between, which the training program then reports).
int FreeLoopbackPort();

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_LAUNCH_H_
