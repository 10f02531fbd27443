// What `ratchet train` prints: one object with the launcher's result, the
// evaluator's result and the run's settings (--json), or a table of them.
#ifndef RATCHET_TRAINING_HARNESS_TRAIN_REPORT_H_
#define RATCHET_TRAINING_HARNESS_TRAIN_REPORT_H_

#include <cstdint>
#include <map>
#include <string>

#include "nlohmann/json.hpp"
#include "training/harness/launch.h"

namespace ratchet::training {

struct TrainReport {
  // "ok" when training and evaluation both ended ok; else the training's
  // outcome (over-budget, timeout, crash, bad-marks, error), "no-checkpoint",
  // or the evaluator's outcome (non-finite, causal-leak, collapsed,
  // bad-output, error).
  std::string outcome;
  std::string message;
  std::string project, data, scratch, python, device;
  int nproc = 0;
  double budget_seconds = 0;  // 0: none
  int64_t max_steps = 0;      // 0: none
  int64_t run_seed = -1;      // RATCHET_SEED given to the ranks; -1: none
  std::map<std::string, std::string> knobs;
  LaunchResult training;
  bool evaluated = false;
  nlohmann::json evaluation;  // the evaluator's result file, as it wrote it
};

nlohmann::json ReportJson(const TrainReport& report);
std::string ReportTable(const TrainReport& report);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_TRAIN_REPORT_H_
