// Token shards in the modded-nanogpt speedrun's format: a header of 256
// little-endian int32 (magic 20240520, version 1, token count, the rest 0),
// then `count` little-endian uint16 GPT-2 token ids. The speedrun's
// train_gpt.py reads these files as they are.
#ifndef RATCHET_TRAINING_DATA_SHARDS_H_
#define RATCHET_TRAINING_DATA_SHARDS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ratchet::training {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderInts = 256;
inline constexpr size_t kShardHeaderBytes = kShardHeaderInts * 4;

// Fails when the file cannot be written or holds more tokens than an int32
// count can say.
absl::Status WriteShard(const std::string& path, const std::vector<uint16_t>& tokens);

// Checks the magic, the version and that the file holds exactly `count`
// tokens after the header; every error names the file.
absl::StatusOr<std::vector<uint16_t>> ReadShard(const std::string& path);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_DATA_SHARDS_H_
