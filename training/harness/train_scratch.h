// The folder one `ratchet train` run works in, so that the run never edits
// the user's files and the training processes are given the training shards
// only:
//   project/      a copy of the training project (the ranks' working folder)
//   train-data/   links to (or copies of) the train_*.bin shards, nothing else
//   home/, tmp/   the ranks' HOME and TMPDIR
//   checkpoint.pt, train.log, eval.json, eval.log   written by the run
#ifndef RATCHET_TRAINING_HARNESS_TRAIN_SCRATCH_H_
#define RATCHET_TRAINING_HARNESS_TRAIN_SCRATCH_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ratchet::training {

struct TrainScratch {
  std::string root, project, train_data, home, tmp;
  std::string checkpoint, train_log, eval_out, eval_log;
};

// `requested` = "": a fresh folder under $TMPDIR (or /tmp); otherwise that
// folder, made if missing and refused unless empty (nothing of an earlier
// run is ever mistaken for this one's).
absl::StatusOr<TrainScratch> MakeTrainScratch(const std::string& requested,
                                              const std::string& project_dir,
                                              const std::vector<std::string>& train_shards);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_TRAIN_SCRATCH_H_
