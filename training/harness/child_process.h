// One child process with an environment built by the caller (nothing of
// ours leaks through), in its own process group so that whatever it starts
// is stopped with it: for the torch probe and the evaluator of `ratchet train`.
#ifndef RATCHET_TRAINING_HARNESS_CHILD_PROCESS_H_
#define RATCHET_TRAINING_HARNESS_CHILD_PROCESS_H_

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ratchet::training {

struct ChildOptions {
  std::vector<std::string> argv;           // argv[0] without a '/' is looked up in env's PATH
  std::map<std::string, std::string> env;  // the whole environment
  std::string workdir;                     // "" = ours
  double timeout_seconds = 600;            // then the group gets SIGKILL
  std::string log_path;                    // stdout and stderr; "" = kept in `output`
};

struct ChildResult {
  int status = 0;           // exit status, or 128 + signal
  bool timed_out = false;
  std::string output;       // the first 64 KiB of stdout and stderr when no log_path
};

// Fails only when the process cannot be started at all.
absl::StatusOr<ChildResult> RunChild(const ChildOptions& options);

// Forks and runs argv (argv[0] a path) with exactly `env` ("K=V"), in
// process group `group` (0: a group of its own), in `workdir` ("" = ours):
// stdin /dev/null, stdout and stderr to `out_fd`, `control_fd` as descriptor
// 3 (or none when < 0), and no other descriptor of ours. Both descriptors
// must be 10 or above (AboveStdio). Returns the pid, or -1.
pid_t SpawnChild(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                 const std::string& workdir, pid_t group, int out_fd, int control_fd);

// Moves a descriptor to 10 or above (close-on-exec), out of the way of the
// 0-3 a child is given; returns the new one (or fd itself when < 0).
int AboveStdio(int fd);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_HARNESS_CHILD_PROCESS_H_
