// Well-formed UTF-8 (RFC 3629; table 3-7 of the Unicode standard: no
// overlong forms, surrogates or code points past U+10FFFF). Protobuf strings,
// gRPC status messages and the harness's JSON result must be UTF-8, and much
// of what reaches them (specs, problem files, candidate output) is any bytes.
// Header-only, so that the harness uses it without the services' libraries.
#ifndef RATCHET_COMMON_UTF8_H_
#define RATCHET_COMMON_UTF8_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace ratchet {

// Length of the well-formed sequence that starts at text[i], 0 when none does.
inline size_t Utf8SequenceLength(absl::string_view text, size_t i) {
  const auto c = static_cast<unsigned char>(text[i]);
  if (c < 0x80) return 1;
  // The second byte's range depends on the first.
  size_t extra;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) extra = 1;
  else if (c == 0xE0) extra = 2, lo = 0xA0;
  else if (c == 0xED) extra = 2, hi = 0x9F;
  else if (c >= 0xE1 && c <= 0xEF) extra = 2;
  else if (c == 0xF0) extra = 3, lo = 0x90;
  else if (c >= 0xF1 && c <= 0xF3) extra = 3;
  else if (c == 0xF4) extra = 3, hi = 0x8F;
  else return 0;
  if (i + extra >= text.size()) return 0;
  const auto c1 = static_cast<unsigned char>(text[i + 1]);
  if (c1 < lo || c1 > hi) return 0;
  for (size_t k = 2; k <= extra; ++k)
    if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) return 0;
  return extra + 1;
}

// The offset of the first byte that does not start a well-formed sequence,
// or npos when all of `text` is well-formed.
inline size_t InvalidUtf8Offset(absl::string_view text) {
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) return i;
    i += n;
  }
  return absl::string_view::npos;
}

inline bool IsValidUtf8(absl::string_view text) {
  return InvalidUtf8Offset(text) == absl::string_view::npos;
}

// `text` with each byte that does not start a well-formed sequence replaced
// by U+FFFD.
inline std::string ToValidUtf8(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.data() + i, n);
      i += n;
    }
  }
  return out;
}

}  // namespace ratchet

#endif  // RATCHET_COMMON_UTF8_H_
