#include "training/data/shards.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "training/data/files.h"

namespace ratchet::training {
namespace {

// Byte by byte, so that the files are little-endian on any host.
void PutInt32(uint32_t v, char* out) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
}

int32_t GetInt32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
  return static_cast<int32_t>(v);
}

absl::Status FileError(const std::string& path, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

}  // namespace

absl::Status WriteShard(const std::string& path, const std::vector<uint16_t>& tokens) {
  if (tokens.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max()))
    return FileError(path, absl::StrCat(tokens.size(), " tokens do not fit a shard's int32 count"));
  std::string bytes(kShardHeaderBytes + 2 * tokens.size(), '\0');
  PutInt32(kShardMagic, &bytes[0]);
  PutInt32(kShardVersion, &bytes[4]);
  PutInt32(static_cast<uint32_t>(tokens.size()), &bytes[8]);
  char* body = &bytes[kShardHeaderBytes];
  for (size_t i = 0; i < tokens.size(); ++i) {
    body[2 * i] = static_cast<char>(tokens[i] & 0xFF);
    body[2 * i + 1] = static_cast<char>(tokens[i] >> 8);
  }
  return WriteWholeFile(path, bytes);
}

absl::StatusOr<std::vector<uint16_t>> ReadShard(const std::string& path) {
  absl::StatusOr<std::string> read = ReadWholeFile(path);
  if (!read.ok()) return read.status();
  const std::string& bytes = *read;
  if (bytes.size() < kShardHeaderBytes)
    return FileError(path, absl::StrCat("not a token shard: ", bytes.size(),
                                        " bytes, shorter than the 1024-byte header"));
  const int32_t magic = GetInt32(&bytes[0]);
  if (magic != kShardMagic)
    return FileError(path, absl::StrCat("not a token shard: magic ", magic, ", expected ",
                                        kShardMagic));
  const int32_t version = GetInt32(&bytes[4]);
  if (version != kShardVersion)
    return FileError(path, absl::StrCat("shard version ", version, " is not supported (only ",
                                        kShardVersion, ")"));
  const int32_t count = GetInt32(&bytes[8]);
  if (count < 0) return FileError(path, absl::StrCat("negative token count ", count));
  const size_t body = bytes.size() - kShardHeaderBytes;
  if (body != 2 * static_cast<size_t>(count))
    return FileError(path, absl::StrCat("header says ", count, " tokens (", 2 * size_t(count),
                                        " bytes) but ", body, " bytes follow the header",
                                        body < 2 * size_t(count) ? " (truncated?)" : ""));
  std::vector<uint16_t> tokens(static_cast<size_t>(count));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto lo = static_cast<unsigned char>(bytes[kShardHeaderBytes + 2 * i]);
    const auto hi = static_cast<unsigned char>(bytes[kShardHeaderBytes + 2 * i + 1]);
    tokens[i] = static_cast<uint16_t>(lo | (hi << 8));
  }
  return tokens;
}

}  // namespace ratchet::training
