// Which python runs the training program and the evaluator: one that can
// import torch. The same order as the kernel harness's oracle
// (kernels/harness/oracle_client.cc): an explicit choice alone when given
// (--python, then $RATCHET_PYTHON), else /usr/bin/python3, then python3.
// A small equivalent rather than a shared function: the layers keep
// training/ from including kernels/.
#ifndef RATCHET_TRAINING_HARNESS_TORCH_PYTHON_H_
#define RATCHET_TRAINING_HARNESS_TORCH_PYTHON_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace ratchet::training {

// Probes each candidate under `env` (the environment the runs will have, so
// that a torch found only through our own PATH or HOME does not count) and
// returns the absolute path of the first that imports torch.
absl::StatusOr<std::string> FindTorchPython(const std::string& explicit_choice,
                                            const std::map<std::string, std::string>& env);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_TORCH_PYTHON_H_
