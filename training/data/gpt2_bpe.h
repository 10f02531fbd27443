// GPT-2's byte-level BPE tokenizer (OpenAI's encoder.py), from its own
// encoder.json and vocab.bpe. Any bytes encode, valid UTF-8 or not, and
// decoding the ids gives the same bytes back.
#ifndef RATCHET_TRAINING_DATA_GPT2_BPE_H_
#define RATCHET_TRAINING_DATA_GPT2_BPE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ratchet::training {

// The pieces GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// cuts `text` into; BPE never merges across them. A byte that starts no
// well-formed UTF-8 sequence counts as one character of none of the classes.
std::vector<absl::string_view> Gpt2PreTokenize(absl::string_view text);

class Gpt2Bpe {
 public:
  // The separator the speedrun's data puts before every document.
  static constexpr uint16_t kEndOfText = 50256;

  // Reads DIR/encoder.json and DIR/vocab.bpe.
  static absl::StatusOr<std::unique_ptr<Gpt2Bpe>> Load(const std::string& dir);

  // Appends the ids of `text` to *ids. Never yields kEndOfText: the text
  // "<|endoftext|>" is ordinary text here, as in encoder.py.
  void Encode(absl::string_view text, std::vector<uint16_t>* ids);
  std::vector<uint16_t> Encode(absl::string_view text);

  // The raw bytes of one id ("<|endoftext|>" for kEndOfText); of many.
  const std::string& TokenBytes(uint16_t id) const { return token_bytes_.at(id); }
  std::string Decode(const std::vector<uint16_t>& ids) const;

  // The byte length of each id's text, 0 for kEndOfText: what bits per byte
  // divides by.
  std::vector<uint16_t> TokenByteLengths() const;

  size_t vocab_size() const { return token_bytes_.size(); }

 private:
  struct Merge {
    int rank;
    uint16_t merged;
  };
  Gpt2Bpe() = default;
  static uint64_t PairKey(uint16_t left, uint16_t right) { return (uint64_t{left} << 16) | right; }
  void EncodePiece(absl::string_view piece, std::vector<uint16_t>* ids) const;

  std::vector<std::string> token_bytes_;                  // id -> raw bytes
  uint16_t byte_token_[256] = {};                         // byte -> its one-byte id
  absl::flat_hash_map<uint64_t, Merge> merges_;           // (left, right) -> rank, result
  absl::flat_hash_map<std::string, std::vector<uint16_t>> cache_;  // piece -> ids
};

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_DATA_GPT2_BPE_H_
