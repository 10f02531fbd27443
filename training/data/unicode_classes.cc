#include "training/data/unicode_classes.h"

#include <algorithm>
#include <iterator>

#include "common/utf8.h"

namespace ratchet::training {
namespace {

struct CodePointRange {
  char32_t first, last;
};

#include "training/data/unicode_ranges.inc"

template <size_t N>
bool InRanges(const CodePointRange (&ranges)[N], char32_t c) {
  auto it = std::upper_bound(std::begin(ranges), std::end(ranges), c,
                             [](char32_t v, const CodePointRange& r) { return v < r.first; });
  return it != std::begin(ranges) && c <= std::prev(it)->last;
}

}  // namespace

bool IsUnicodeLetter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return InRanges(kLetterRanges, c);
}

bool IsUnicodeNumber(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return InRanges(kNumberRanges, c);
}

bool IsUnicodeSpace(char32_t c) {
  switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return c >= 0x2000 && c <= 0x200A;
  }
}

char32_t DecodeUtf8At(absl::string_view text, size_t i, size_t* length) {
  const size_t n = Utf8SequenceLength(text, i);
  if (n == 0) {
    *length = 1;
    return kNotUtf8;
  }
  *length = n;
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[i + k]); };
  if (n == 1) return byte(0);
  // The lead byte keeps 7 - n payload bits; each continuation byte 6.
  char32_t c = byte(0) & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (byte(k) & 0x3F);
  return c;
}

}  // namespace ratchet::training
