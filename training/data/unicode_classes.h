// The character classes of GPT-2's pre-tokenizer pattern: \p{L}, \p{N} and \s
// as Python's `regex` module reads them. Tables rather than iswalpha(): the
// C library's classes depend on the locale and its version (glibc files
// other scripts' digits under "alpha"), and the tokens must not.
#ifndef RATCHET_TRAINING_DATA_UNICODE_CLASSES_H_
#define RATCHET_TRAINING_DATA_UNICODE_CLASSES_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace ratchet::training {

bool IsUnicodeLetter(char32_t c);   // \p{L}
bool IsUnicodeNumber(char32_t c);   // \p{N}
bool IsUnicodeSpace(char32_t c);    // \s: the White_Space property

// The code point of the well-formed UTF-8 sequence at text[i] and its length
// in *length; kNotUtf8 and *length = 1 where none starts there.
inline constexpr char32_t kNotUtf8 = 0xFFFFFFFF;
char32_t DecodeUtf8At(absl::string_view text, size_t i, size_t* length);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_DATA_UNICODE_CLASSES_H_
