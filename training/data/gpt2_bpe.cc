#include "training/data/gpt2_bpe.h"

#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "training/data/files.h"
#include "training/data/unicode_classes.h"

namespace ratchet::training {
namespace {

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct Char {
  size_t offset;
  char32_t value;
  CharClass cls;
};

CharClass Classify(char32_t c) {
  if (c == kNotUtf8) return CharClass::kOther;
  if (IsUnicodeLetter(c)) return CharClass::kLetter;
  if (IsUnicodeNumber(c)) return CharClass::kNumber;
  if (IsUnicodeSpace(c)) return CharClass::kSpace;
  return CharClass::kOther;
}

// The index past the pattern's match at chars[k], trying its alternatives in
// order as the regex engine does.
size_t MatchEnd(const std::vector<Char>& chars, size_t k) {
  const size_t n = chars.size();
  const auto is = [&](size_t j, char c) { return j < n && chars[j].value == char32_t(c); };
  if (is(k, '\'')) {  // 's 't 're 've 'm 'll 'd
    if (is(k + 1, 's') || is(k + 1, 't') || is(k + 1, 'm') || is(k + 1, 'd')) return k + 2;
    if ((is(k + 1, 'r') || is(k + 1, 'v')) && is(k + 2, 'e')) return k + 3;
    if (is(k + 1, 'l') && is(k + 2, 'l')) return k + 3;
  }
  // ` ?X+` for X a letter, a number or anything else but space: one leading
  // U+0020 joins the run that follows it.
  size_t start = k;
  if (is(k, ' ') && k + 1 < n && chars[k + 1].cls != CharClass::kSpace) start = k + 1;
  const CharClass cls = chars[start].cls;
  size_t end = start;
  while (end < n && chars[end].cls == cls) ++end;
  if (cls != CharClass::kSpace) return end;
  // `\s+(?!\S)` leaves the last space of a run before a non-space to the
  // next piece (" world"); `\s+` takes a lone one.
  if (end < n && end - k >= 2) return end - 1;
  return end;
}

// GPT-2's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
// the other 68 for U+0100 onwards. Here inverted: code point -> byte.
std::vector<int> UnicodeToByte() {
  std::vector<int> byte_of(256 + 68, -1);
  int next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    byte_of[printable ? b : next++] = b;
  }
  return byte_of;
}

// A vocabulary string (bytes written as bytes_to_unicode's characters) as
// raw bytes.
absl::StatusOr<std::string> VocabStringToBytes(absl::string_view text,
                                               const std::vector<int>& byte_of) {
  std::string bytes;
  for (size_t i = 0; i < text.size();) {
    size_t length;
    const char32_t c = DecodeUtf8At(text, i, &length);
    if (c == kNotUtf8 || c >= byte_of.size() || byte_of[c] < 0)
      return absl::InvalidArgumentError(
          absl::StrCat("'", text, "' is not written in GPT-2's byte alphabet"));
    bytes.push_back(static_cast<char>(byte_of[c]));
    i += length;
  }
  return bytes;
}

absl::Status VocabError(const std::string& path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

}  // namespace

std::vector<absl::string_view> Gpt2PreTokenize(absl::string_view text) {
  std::vector<Char> chars;
  chars.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    size_t length;
    const char32_t c = DecodeUtf8At(text, i, &length);
    chars.push_back({i, c, Classify(c)});
    i += length;
  }
  std::vector<absl::string_view> pieces;
  for (size_t k = 0; k < chars.size();) {
    const size_t end = MatchEnd(chars, k);
    const size_t to = end < chars.size() ? chars[end].offset : text.size();
    pieces.push_back(text.substr(chars[k].offset, to - chars[k].offset));
    k = end;
  }
  return pieces;
}

absl::StatusOr<std::unique_ptr<Gpt2Bpe>> Gpt2Bpe::Load(const std::string& dir) {
  const std::string encoder_path = dir + "/encoder.json";
  const std::string merges_path = dir + "/vocab.bpe";
  absl::StatusOr<std::string> encoder_text = ReadWholeFile(encoder_path);
  if (!encoder_text.ok()) return encoder_text.status();
  absl::StatusOr<std::string> merges_text = ReadWholeFile(merges_path);
  if (!merges_text.ok()) return merges_text.status();

  const nlohmann::json encoder = nlohmann::json::parse(*encoder_text, nullptr, false);
  if (!encoder.is_object() || encoder.empty())
    return VocabError(encoder_path, "expected a JSON object of token -> id");
  if (encoder.size() > size_t{std::numeric_limits<uint16_t>::max()} + 1)
    return VocabError(encoder_path, "more ids than uint16 tokens can hold");
  std::unique_ptr<Gpt2Bpe> bpe(new Gpt2Bpe());
  bpe->token_bytes_.resize(encoder.size());
  std::vector<bool> seen(encoder.size());
  absl::flat_hash_map<std::string, uint16_t> id_of;
  const std::vector<int> byte_of = UnicodeToByte();
  for (const auto& [token, value] : encoder.items()) {
    if (!value.is_number_unsigned() || value.get<uint64_t>() >= encoder.size())
      return VocabError(encoder_path, absl::StrCat("id of '", token, "' is not in 0..",
                                                   encoder.size() - 1));
    const auto id = value.get<uint16_t>();
    if (seen[id]) return VocabError(encoder_path, absl::StrCat("id ", id, " given twice"));
    seen[id] = true;
    if (token == "<|endoftext|>") {
      if (id != kEndOfText)
        return VocabError(encoder_path, absl::StrCat("<|endoftext|> is ", id, ", not ",
                                                     kEndOfText, ": not GPT-2's vocabulary"));
      bpe->token_bytes_[id] = token;
      continue;
    }
    absl::StatusOr<std::string> bytes = VocabStringToBytes(token, byte_of);
    if (!bytes.ok()) return VocabError(encoder_path, bytes.status().message());
    bpe->token_bytes_[id] = *bytes;
    id_of[*bytes] = id;
  }
  if (bpe->token_bytes_.size() <= kEndOfText || bpe->token_bytes_[kEndOfText] != "<|endoftext|>")
    return VocabError(encoder_path, "no <|endoftext|> token: not GPT-2's vocabulary");
  for (int b = 0; b < 256; ++b) {
    auto it = id_of.find(std::string(1, static_cast<char>(b)));
    if (it == id_of.end())
      return VocabError(encoder_path, absl::StrCat("no token for the byte ", b));
    bpe->byte_token_[b] = it->second;
  }

  int rank = 0;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(*merges_text, '\n')) {
    ++line_number;
    if (line.empty() || (line_number == 1 && absl::StartsWith(line, "#version"))) continue;
    std::vector<absl::string_view> sides = absl::StrSplit(line, ' ');
    const auto where = [&] { return absl::StrCat("line ", line_number, ": "); };
    if (sides.size() != 2) return VocabError(merges_path, absl::StrCat(where(), "expected 'A B'"));
    absl::StatusOr<std::string> left = VocabStringToBytes(sides[0], byte_of);
    absl::StatusOr<std::string> right = VocabStringToBytes(sides[1], byte_of);
    if (!left.ok() || !right.ok())
      return VocabError(merges_path, absl::StrCat(where(), "not GPT-2's byte alphabet"));
    auto l = id_of.find(*left), r = id_of.find(*right), m = id_of.find(*left + *right);
    if (l == id_of.end() || r == id_of.end() || m == id_of.end())
      return VocabError(merges_path,
                        absl::StrCat(where(), "'", line, "' names a token encoder.json lacks"));
    bpe->merges_.try_emplace(PairKey(l->second, r->second), Merge{rank++, m->second});
  }
  if (bpe->merges_.empty()) return VocabError(merges_path, "no merges");
  return bpe;
}

void Gpt2Bpe::EncodePiece(absl::string_view piece, std::vector<uint16_t>* ids) const {
  std::vector<uint16_t> word;
  word.reserve(piece.size());
  for (char c : piece) word.push_back(byte_token_[static_cast<unsigned char>(c)]);
  // Merge the adjacent pair of lowest rank everywhere it occurs, left to
  // right, until no pair has a rank: encoder.py's bpe().
  while (word.size() > 1) {
    const Merge* best = nullptr;
    uint64_t best_key = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto it = merges_.find(PairKey(word[i], word[i + 1]));
      if (it != merges_.end() && (best == nullptr || it->second.rank < best->rank)) {
        best = &it->second;
        best_key = it->first;
      }
    }
    if (best == nullptr) break;
    size_t out = 0;
    for (size_t i = 0; i < word.size(); ++out) {
      if (i + 1 < word.size() && PairKey(word[i], word[i + 1]) == best_key) {
        word[out] = best->merged;
        i += 2;
      } else {
        word[out] = word[i++];
      }
    }
    word.resize(out);
  }
  ids->insert(ids->end(), word.begin(), word.end());
}

void Gpt2Bpe::Encode(absl::string_view text, std::vector<uint16_t>* ids) {
  // Books repeat their words: most pieces are found in the cache. Bounded,
  // so that a stream of distinct pieces cannot grow it without end.
  constexpr size_t kMaxCached = 1 << 20;
  for (absl::string_view piece : Gpt2PreTokenize(text)) {
    auto it = cache_.find(piece);
    if (it == cache_.end()) {
      std::vector<uint16_t> piece_ids;
      EncodePiece(piece, &piece_ids);
      if (cache_.size() >= kMaxCached) cache_.clear();
      it = cache_.emplace(std::string(piece), std::move(piece_ids)).first;
    }
    ids->insert(ids->end(), it->second.begin(), it->second.end());
  }
}

std::vector<uint16_t> Gpt2Bpe::Encode(absl::string_view text) {
  std::vector<uint16_t> ids;
  Encode(text, &ids);
  return ids;
}

std::string Gpt2Bpe::Decode(const std::vector<uint16_t>& ids) const {
  std::string text;
  for (uint16_t id : ids) text += TokenBytes(id);
  return text;
}

std::vector<uint16_t> Gpt2Bpe::TokenByteLengths() const {
  std::vector<uint16_t> lengths(token_bytes_.size());
  for (size_t id = 0; id < token_bytes_.size(); ++id)
    lengths[id] = id == kEndOfText ? 0 : static_cast<uint16_t>(token_bytes_[id].size());
  return lengths;
}

}  // namespace ratchet::training
