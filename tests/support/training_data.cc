#include "tests/support/training_data.h"

#include <cstdint>
#include <filesystem>
#include <random>
#include <vector>

#include "training/data/files.h"
#include "training/data/shards.h"

namespace ratchet::testing {
namespace {

constexpr size_t kVocab = 50257;
constexpr uint16_t kEndOfText = 50256;

}  // namespace

absl::Status WriteSyntheticData(const std::string& dir, const SyntheticData& data) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::mt19937 rng(7);
  std::vector<uint16_t> pattern(static_cast<size_t>(std::max(1, data.period)));
  for (uint16_t& t : pattern) t = static_cast<uint16_t>(rng() % (kVocab - 1));
  auto stream = [&](size_t n) {
    std::vector<uint16_t> tokens(n);
    for (size_t i = 0; i < n; ++i) {
      if (data.end_of_text && i % 97 == 0) {
        tokens[i] = kEndOfText;
      } else if (data.noise_one_in > 0 && rng() % data.noise_one_in == 0) {
        tokens[i] = static_cast<uint16_t>(rng() % (kVocab - 1));
      } else {
        tokens[i] = pattern[i % pattern.size()];
      }
    }
    return tokens;
  };
  if (auto s = training::WriteShard(dir + "/train_000000.bin", stream(data.train_tokens)); !s.ok())
    return s;
  if (auto s = training::WriteShard(dir + "/val_000000.bin", stream(data.val_tokens)); !s.ok())
    return s;
  std::string lengths(2 * kVocab, '\0');
  for (size_t id = 0; id < kVocab; ++id) lengths[2 * id] = id == kEndOfText ? 0 : 1;
  if (auto s = training::WriteWholeFile(dir + "/token_bytes.bin", lengths); !s.ok()) return s;
  if (data.manifest.empty()) return absl::OkStatus();
  return training::WriteWholeFile(dir + "/manifest.json", data.manifest);
}

}  // namespace ratchet::testing
