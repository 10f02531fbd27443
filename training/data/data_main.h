// `ratchet data ...`: the training targets' data commands.
#ifndef RATCHET_TRAINING_DATA_DATA_MAIN_H_
#define RATCHET_TRAINING_DATA_DATA_MAIN_H_

namespace ratchet::training {

// argv[0] is "data". Returns 0, 1 on failure, 2 on a usage error.
int DataMain(int argc, char** argv);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_DATA_DATA_MAIN_H_
