// The sandbox every untrusted process (the harness, and with it the candidate's
// code) runs in: bubblewrap where it works (no network, read-only system,
// private /tmp, only the scratch folder writable, its own PID namespace), plus
// resource limits set in the child before exec. Where bwrap cannot run, rlimits
// and a process group only, and the caller is told so loudly.
//
// A run always ends with the whole process group (and, under bwrap, the whole
// PID namespace) killed, so nothing the candidate started outlives its job.
#ifndef RATCHET_WORKER_SANDBOX_H_
#define RATCHET_WORKER_SANDBOX_H_

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ratchet::worker {

struct SandboxSpec {
  std::vector<std::string> argv;  // argv[0] is a path (no PATH lookup)
  std::string scratch_dir;        // the only writable folder; must exist
  double wall_seconds = 120;      // wall-clock limit; 0 = none
  double cpu_seconds = 0;         // RLIMIT_CPU per process; 0 = none
  int64_t memory_bytes = 0;       // RLIMIT_DATA; 0 = none
  std::vector<std::string> env;   // the child's whole environment, "K=V"
};

struct RunResult {
  int exit_code = -1;      // valid when signal == 0
  int signal = 0;          // the signal that killed the direct child, or 0
  bool timed_out = false;  // killed because it ran past wall_seconds
  bool cancelled = false;  // killed because RunHooks::cancel was set
  double wall_seconds = 0;
};

struct RunHooks {
  // Called with each line the child writes to stdout or stderr (without the
  // newline). Unset: the child inherits the caller's stderr, stdout goes too.
  std::function<void(const std::string&)> output_line;
  // Polled while the child runs; once true the group is killed at once.
  const std::atomic<bool>* cancel = nullptr;
};

class Sandbox {
 public:
  enum class Mode { kBwrap, kRlimits };

  // `choice` is "auto" (bwrap if the probe passes, else rlimits), "bwrap"
  // (fail if it does not work) or "none" (rlimits only). The probe runs bwrap
  // once with the same isolation flags a job gets. When auto falls back,
  // `*warning` says why.
  static absl::StatusOr<Sandbox> Create(const std::string& choice,
                                        std::string* warning = nullptr);

  Mode mode() const { return mode_; }
  // "bwrap" or "rlimits": the value reported in Hardware registration and in
  // every Evaluation.
  const char* name() const { return mode_ == Mode::kBwrap ? "bwrap" : "rlimits"; }
  const std::string& bwrap_path() const { return bwrap_; }

  // Runs spec.argv to completion inside the sandbox. Errors only when the
  // process could not be started at all; everything the child does is in the
  // RunResult. Thread-safe; several runs may proceed at once.
  absl::StatusOr<RunResult> Run(const SandboxSpec& spec,
                                const RunHooks& hooks = {}) const;

  // The full command line that Run executes for `spec` (bwrap's flags plus
  // spec.argv); exposed for logs and tests.
  std::vector<std::string> CommandLine(const SandboxSpec& spec) const;

 private:
  Sandbox(Mode mode, std::string bwrap) : mode_(mode), bwrap_(std::move(bwrap)) {}

  Mode mode_;
  std::string bwrap_;  // path of the bwrap binary when mode_ == kBwrap
};

// Finds bwrap: beside this executable first (a bundle ships its own), then
// on PATH. Empty when there is none.
std::string FindBwrap();

// "SIGKILL" for 9, etc.
std::string SignalName(int sig);

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_SANDBOX_H_
