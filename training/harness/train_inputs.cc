#include "training/harness/train_inputs.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "training/data/shards.h"

namespace ratchet::training {
namespace {

namespace fs = std::filesystem;

int32_t LittleEndianInt32(const unsigned char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{in[i]} << (8 * i);
  return static_cast<int32_t>(v);
}

}  // namespace

absl::Status CheckProject(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return absl::InvalidArgumentError(absl::StrCat("project ", dir, " is not a folder"));
  for (const char* file : {"train.py", "model.py"})
    if (!fs::is_regular_file(fs::path(dir) / file, ec))
      return absl::InvalidArgumentError(
          absl::StrCat("project ", dir, " has no ", file, " (a training project holds train.py "
                       "and model.py; see tasks/train/gpt_tiny)"));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> ShardTokenCount(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char header[12];
  if (!in.read(reinterpret_cast<char*>(header), sizeof(header)))
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a token shard (shorter than its header)"));
  const int32_t magic = LittleEndianInt32(header);
  const int32_t version = LittleEndianInt32(header + 4);
  const int32_t count = LittleEndianInt32(header + 8);
  if (magic != kShardMagic)
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a token shard: magic ", magic, ", expected ", kShardMagic));
  if (version != kShardVersion)
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": shard version ", version, " is not supported (only ", kShardVersion, ")"));
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  const uintmax_t expected = kShardHeaderBytes + 2 * static_cast<uintmax_t>(std::max(count, 0));
  if (count < 0 || ec || size != expected)
    return absl::InvalidArgumentError(absl::StrCat(path, ": header says ", count, " tokens (",
                                                   expected, " bytes with the header) but the file has ",
                                                   size, " bytes"));
  return int64_t{count};
}

absl::StatusOr<DataFolder> CheckData(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    return absl::InvalidArgumentError(absl::StrCat("--data=", dir, " is not a folder"));
  DataFolder data;
  for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (!absl::EndsWith(name, ".bin")) continue;
    if (absl::StartsWith(name, "train_")) data.train_shards.push_back(fs::absolute(e.path()).string());
    if (absl::StartsWith(name, "val_")) data.val_shards.push_back(fs::absolute(e.path()).string());
  }
  if (ec) return absl::InvalidArgumentError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  const char* hint = " (ratchet data prepare writes train_*.bin, val_*.bin and token_bytes.bin)";
  if (data.train_shards.empty())
    return absl::InvalidArgumentError(absl::StrCat("--data=", dir, " holds no train_*.bin", hint));
  if (data.val_shards.empty())
    return absl::InvalidArgumentError(absl::StrCat("--data=", dir, " holds no val_*.bin", hint));
  std::sort(data.train_shards.begin(), data.train_shards.end());
  std::sort(data.val_shards.begin(), data.val_shards.end());
  for (auto [shards, total] : {std::pair{&data.train_shards, &data.train_tokens},
                               std::pair{&data.val_shards, &data.val_tokens}}) {
    for (const std::string& path : *shards) {
      absl::StatusOr<int64_t> count = ShardTokenCount(path);
      if (!count.ok()) return count.status();
      *total += *count;
    }
  }
  const fs::path lengths = fs::path(dir) / "token_bytes.bin";
  const uintmax_t size = fs::file_size(lengths, ec);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("--data=", dir, " holds no token_bytes.bin", hint));
  if (size % 2 != 0 || size < 2 * static_cast<uintmax_t>(kGpt2VocabSize))
    return absl::InvalidArgumentError(absl::StrCat(lengths.string(), ": ", size, " bytes, expected ",
                                                   kGpt2VocabSize, " uint16 entries at least"));
  return data;
}

}  // namespace ratchet::training
