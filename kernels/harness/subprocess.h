// Running a child process with its output captured in a file.
#ifndef RATCHET_KERNELS_HARNESS_SUBPROCESS_H_
#define RATCHET_KERNELS_HARNESS_SUBPROCESS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ratchet::kernels {

// Runs argv[0] (searched on PATH) with stdout and stderr appended to
// `log_path` (or inherited when empty). Returns the exit status, or 128+N
// when killed by signal N. Fails only when the process cannot be started.
absl::StatusOr<int> RunProcess(const std::vector<std::string>& argv,
                               const std::string& log_path);

// Whole file as a string; empty on error.
std::string ReadFileOrEmpty(const std::string& path);
// Last `max_bytes` of `s`, prefixed with "...\n" when cut.
std::string Tail(const std::string& s, size_t max_bytes);

// Removes `dir` (whatever is there under that name) and makes it anew, 0700.
absl::Status FreshDir(const std::string& dir);

// Folder holding the running executable (/proc/self/exe).
std::string SelfExeDir();

// The interpreters to try, in order, for a Python that imports torch:
// `choice` (--python) or $RATCHET_PYTHON as given (then *configured is
// true), else /usr/bin/python3 and every python3 on PATH by its full name (a
// virtual environment's stays one under an environment whose PATH differs).
std::vector<std::string> TorchPythonCandidates(const std::string& choice, bool* configured);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_SUBPROCESS_H_
