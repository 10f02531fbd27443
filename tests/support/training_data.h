// Synthetic token data for the training tests: a folder as `ratchet data
// prepare` writes it (train_000000.bin, val_000000.bin, token_bytes.bin and,
// when asked for, manifest.json), from a pattern of random token ids that a
// model learns in a few steps. Every token is one byte of text (end-of-text
// none), so bits per byte are bits per token.
#ifndef RATCHET_TESTS_SUPPORT_TRAINING_DATA_H_
#define RATCHET_TESTS_SUPPORT_TRAINING_DATA_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"

namespace ratchet::testing {

struct SyntheticData {
  int period = 13;             // the pattern's length, its ids drawn from a fixed seed
  bool end_of_text = true;     // every 97th token is end-of-text (50256)
  int noise_one_in = 0;        // 1 token in N replaced by a random one; 0: none
  size_t train_tokens = 30000;
  size_t val_tokens = 4000;
  std::string manifest;        // manifest.json's text; "" writes none
};

absl::Status WriteSyntheticData(const std::string& dir, const SyntheticData& data = {});

}  // namespace ratchet::testing

#endif  // RATCHET_TESTS_SUPPORT_TRAINING_DATA_H_
