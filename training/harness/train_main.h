// `ratchet train PROJECT --data=DIR ...`: the training bench. Trains a
// training project under the launcher (launch.h) on the training shards
// only, then scores its checkpoint with ratchet's evaluator
// (training/eval/evaluate.py) in a fresh process (docs/training.md,
// "Running a training project").
#ifndef RATCHET_TRAINING_HARNESS_TRAIN_MAIN_H_
#define RATCHET_TRAINING_HARNESS_TRAIN_MAIN_H_

namespace ratchet::training {

// argv[0] is "train". Exit 0 when training and evaluation both ended ok, 1
// when either did not, 2 for a usage or setup error (nothing was run).
int TrainMain(int argc, char** argv);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_TRAIN_MAIN_H_
