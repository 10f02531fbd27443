// Whole-file reads and writes whose errors name the file.
#ifndef RATCHET_TRAINING_DATA_FILES_H_
#define RATCHET_TRAINING_DATA_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ratchet::training {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path);
absl::Status WriteWholeFile(const std::string& path, absl::string_view bytes);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_DATA_FILES_H_
