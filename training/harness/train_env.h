// The environment of `ratchet train`'s processes, built from an allow-list:
// nothing else of the caller's environment reaches the training program or
// the evaluator.
#ifndef RATCHET_TRAINING_HARNESS_TRAIN_ENV_H_
#define RATCHET_TRAINING_HARNESS_TRAIN_ENV_H_

#include <map>
#include <string>

#include "training/harness/train_scratch.h"

namespace ratchet::training {

// PATH, HOME and TMPDIR in the scratch folder, LANG, OMP_NUM_THREADS =
// `threads`, CUDA_VISIBLE_DEVICES when the caller has it, NCCL_NVLS_ENABLE=0
// (NVLink multicast off, as tests/bench/gpu_suite.sh runs GPUs) and
// PYTHONUNBUFFERED=1.
std::map<std::string, std::string> BaseEnvironment(const TrainScratch& scratch, int threads);

// RATCHET_KNOB_<NAME> names a knob with upper-case letters, digits and '_'.
bool IsKnobName(const std::string& name);

// The evaluator's scripts (training/eval; the build copies them).
inline constexpr const char* kEvaluatorFiles[] = {"evaluate.py", "model_host.py", "pinned.py",
                                                  "shards.py"};

// Where the evaluator's scripts are: $RATCHET_TRAINING_EVAL when set, else
// training_eval/ beside this executable (the build copies them there, and
// deploy/bundle.sh carries them). "" when neither has them all.
std::string FindEvaluatorDir(std::string* tried);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_TRAIN_ENV_H_
