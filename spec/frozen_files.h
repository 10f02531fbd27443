// What a training candidate may change: the files its campaign's `editable`
// globs match. Every other file of the baseline project is frozen: hashed at
// submit (the coordinator fills TrainingSettings.frozen) and checked by the
// worker before anything of the candidate runs (docs/training.md,
// "Campaigns"). Pure functions.
#ifndef RATCHET_SPEC_FROZEN_FILES_H_
#define RATCHET_SPEC_FROZEN_FILES_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::spec {

// A relative path against one glob: `*` matches within one name (never '/'),
// `?` one character of a name, `**` as a whole part any number of folders
// (none included); everything else literally. "model.py", "*.py",
// "kernels/**/*.cu".
bool GlobMatches(absl::string_view glob, absl::string_view path);

// True when some glob of `editable` matches `path`.
bool IsEditable(const v1::TrainingSettings& training, absl::string_view path);

// SHA-256 (hex) of every file of `files` (relative path -> content) that no
// editable glob matches.
std::map<std::string, std::string> FrozenHashes(const std::map<std::string, std::string>& files,
                                                const v1::TrainingSettings& training);

// InvalidArgument naming the first file (in path order) where `files`
// breaks training.frozen: a frozen file changed or missing, or a file that
// is neither frozen nor matched by an editable glob. Ok otherwise (so with
// nothing frozen and nothing editable, no file at all passes).
absl::Status CheckFrozenFiles(const std::map<std::string, std::string>& files,
                              const v1::TrainingSettings& training);

}  // namespace ratchet::spec

#endif  // RATCHET_SPEC_FROZEN_FILES_H_
