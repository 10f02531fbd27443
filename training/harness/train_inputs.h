// The inputs of `ratchet train`, checked before anything runs: a training
// project (train.py, model.py) and a data folder as `ratchet data prepare`
// writes it. Shards are checked by their headers and sizes only, so that a
// folder of gigabytes is checked at once.
#ifndef RATCHET_TRAINING_HARNESS_TRAIN_INPUTS_H_
#define RATCHET_TRAINING_HARNESS_TRAIN_INPUTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ratchet::training {

struct DataFolder {
  std::vector<std::string> train_shards;  // absolute paths, name order
  std::vector<std::string> val_shards;
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
};

// Token ids the evaluator prices: token_bytes.bin holds at least this many.
inline constexpr int64_t kGpt2VocabSize = 50257;

absl::Status CheckProject(const std::string& dir);

// train_*.bin and val_*.bin (at least one each, every header valid and the
// size matching its count) and token_bytes.bin (>= kGpt2VocabSize entries).
absl::StatusOr<DataFolder> CheckData(const std::string& dir);

// One shard's token count from its header, checked against the file size.
absl::StatusOr<int64_t> ShardTokenCount(const std::string& path);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_TRAIN_INPUTS_H_
