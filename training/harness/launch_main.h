// `ratchet launch`: the launcher (launch.h) as a program of its own, for the
// worker's training sandbox (docs/training.md, "Training jobs on a worker").
// It runs `PYTHON train.py` of the current folder (or --workdir) as --nproc
// ranks with its own environment (less RATCHET_RESULT_NONCE), the ranks' output going to
// --log, and prints one line on stdout at the end:
//
//   ratchet-launch-result NONCE {"outcome": ..., "wall_seconds": ..., ...}
//
// NONCE is the secret the worker gave in $RATCHET_RESULT_NONCE ("-" when
// none), taken and wiped from the environment before anything starts; the
// launcher makes itself non-dumpable first, so that the candidate's
// processes (same uid, same sandbox) can neither read it through /proc nor
// trace the launcher. The worker believes only a line that carries it.
#ifndef RATCHET_TRAINING_HARNESS_LAUNCH_MAIN_H_
#define RATCHET_TRAINING_HARNESS_LAUNCH_MAIN_H_

#include <string>

#include "nlohmann/json.hpp"
#include "training/harness/launch.h"

namespace ratchet::training {

// argv[0] is "launch". Exit 0 whenever the result line was printed (whatever
// the training's outcome), 2 for a usage error (nothing run, no line).
int LaunchMain(int argc, char** argv);

// The prefix of the result line, and the line's JSON (short: no progress
// list, the message cut to 2,000 characters, so that it stays one line well
// under the 8 KiB a sandbox's reader takes as one line).
inline constexpr char kLaunchResultPrefix[] = "ratchet-launch-result";
nlohmann::json LaunchResultJson(const LaunchResult& result);

// While the ranks run, rank 0's progress goes to stdout as well, at most one
// line a second (the latest kept, the last one printed before the result):
//
//   ratchet-launch-progress STEP LOSS TOKENS_PER_S SECONDS
//
// SECONDS by the launcher's clock since the launch. No nonce: progress is
// shown (the campaign's events, `ratchet watch`), never used by a verdict.
inline constexpr char kLaunchProgressPrefix[] = "ratchet-launch-progress";
std::string LaunchProgressLine(const Progress& progress);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_LAUNCH_MAIN_H_
