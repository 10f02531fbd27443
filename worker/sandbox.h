// The sandbox every untrusted process (the harness, and with it the candidate's
// code) runs in: bubblewrap where it works (no network, only the system's
// programs and libraries visible and read-only, private /tmp, only the scratch
// folder writable, its own PID namespace), plus resource limits set in the
// child before exec and a watch on how much the scratch folder holds. Where
// bwrap cannot run, rlimits, the scratch watch and a process group only, and
// the caller is told so loudly.
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
  // The most the scratch folder may hold (allocated blocks, whole tree);
  // 0 = no limit. Each file is also capped at it by RLIMIT_FSIZE. Under bwrap
  // it also sizes the private /tmp and /dev/shm (Sandbox::TmpfsBytes), so
  // that all a job can write stays bounded.
  int64_t scratch_bytes = 0;
  std::vector<std::string> env;   // the child's whole environment, "K=V"
  // Absolute folders (or single files) made visible, read-only, at the same path under bwrap
  // besides the system (see CommandLine); missing ones are left out.
  std::vector<std::string> ro_binds;
  // Under bwrap: the scratch folder read-only (--ro-bind) instead of
  // writable; e.g. for a model host that may read a training run's files
  // but leave nothing behind.
  bool scratch_read_only = false;
  // Under bwrap: the command itself is the sandbox's PID 1 (--as-pid-1), so
  // that no bwrap process stays inside: bwrap's own init would keep
  // spec.env (a result nonce, say) readable in /proc/1/environ to every
  // same-uid process of the sandbox. The command then reaps what it starts,
  // and everything in the sandbox dies with it.
  bool as_pid_1 = false;
};

struct RunResult {
  int exit_code = -1;      // valid when signal == 0
  int signal = 0;          // the signal that killed the direct child, or 0
  bool timed_out = false;  // killed because it ran past wall_seconds
  bool cancelled = false;  // killed because RunHooks::cancel was set
  // The scratch folder held more than spec.scratch_bytes (seen while it ran
  // or once it ended), or a file hit that size (SIGXFSZ); the group was
  // killed if it still ran.
  bool scratch_exceeded = false;
  int64_t scratch_used_bytes = 0;  // the scratch folder's size when last measured
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
  // (fail if it does not work) or "rlimits" (also "none": rlimits only). The probe runs bwrap
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
  // spec.argv); exposed for logs and tests. Under bwrap the child sees, read-
  // only: /usr, /opt, /sys, the /bin, /sbin and /lib* folders (or their
  // merged-usr symlinks), the few files of /etc that the dynamic loader,
  // compilers and Python read (not /etc/os-release, not /etc as a whole),
  // spec.ro_binds and the program's own folder; and nothing else of the host:
  // not /home, /root, /var, /srv, /work or any checkout.
  std::vector<std::string> CommandLine(const SandboxSpec& spec) const;

  // The size of each of a job's private tmpfs (/tmp and /dev/shm) under
  // bwrap for a scratch cap of `scratch_bytes` (0 = unsized): a quarter of
  // the cap each, at least 1 MiB, so a job holds at most 1.5x its cap in all.
  // tmpfs is memory: unsized, each would take up to half of the host's RAM.
  static int64_t TmpfsBytes(int64_t scratch_bytes);
  // Whether this bwrap takes --size for a tmpfs (0.7 and later). Without it
  // /tmp and /dev/shm are folders of the scratch folder instead, which the
  // scratch watch counts.
  bool sized_tmpfs() const { return sized_tmpfs_; }

 private:
  Sandbox(Mode mode, std::string bwrap, bool sized_tmpfs = true)
      : mode_(mode), bwrap_(std::move(bwrap)), sized_tmpfs_(sized_tmpfs) {}

  Mode mode_;
  std::string bwrap_;  // path of the bwrap binary when mode_ == kBwrap
  bool sized_tmpfs_;
};

// This process's executable, by /proc/self/exe; "" when unknown. A file
// replaced on disk while the process runs (an upgrade, a rebuild) reads as
// "PATH (deleted)": the file now at PATH is returned, the new build.
std::string SelfExecutable();

// A fresh folder ROOT/NAME-XXXXXX that only this user can enter (ROOT is
// made when missing): a job's scratch, its evaluator's, a worker's root.
absl::StatusOr<std::string> MakePrivateFolder(const std::string& root, const std::string& name);

// Finds bwrap: beside this executable first (a bundle ships its own), then
// on PATH. Empty when there is none.
std::string FindBwrap();

// "SIGKILL" for 9, etc.
std::string SignalName(int sig);

// The variables of `env` (a NULL-terminated "K=V" array such as environ) that
// a harness, and so candidate code, may see: PATH, the locale (LANG,
// LANGUAGE, LC_*, TZ), what CUDA, PyTorch and compilers read (CUDA_*,
// NVIDIA_*, NCCL_*, LD_LIBRARY_PATH, PYTHONPATH, PYTHONHOME, VIRTUAL_ENV,
// PYENV_ROOT, PYENV_VERSION, OMP_NUM_THREADS, TORCHINDUCTOR_*, TRITON_*,
// CUTLASS_DIR) and
// the harness's own knobs (RATCHET_PYTHON, RATCHET_NVCC, RATCHET_FLUSH_MIB,
// RATCHET_KEEP_SCRATCH, RATCHET_TB_*). Never a name that holds KEY, TOKEN,
// SECRET, PASSWORD, PASSWD, CREDENTIAL or AUTH, never PG*, and never what the
// worker sets itself per job (HOME, TMPDIR, XDG_CACHE_HOME,
// RATCHET_RESULT_NONCE, RATCHET_INDEPENDENT_TIMING, RATCHET_JOB_ID): the
// worker's environment holds the store's password and API keys, and
// whatever the harness sees, a candidate can read.
std::vector<std::string> AllowedEnvironment(char** env);

// The folders outside the system ones that the toolchains named in `env`
// (the output of AllowedEnvironment) and the `programs` (e.g. --python) live
// in, for SandboxSpec::ro_binds: the entries of LD_LIBRARY_PATH and
// PYTHONPATH; CUDA_HOME, CUDA_PATH, VIRTUAL_ENV, PYTHONHOME, PYENV_ROOT,
// CUTLASS_DIR (headers for C++ solutions); and
// the install prefix (the folder above bin/ or shims/) of each program, of
// RATCHET_PYTHON, RATCHET_NVCC and of the first python3 on PATH, both as
// named and with links resolved. A prefix that would be a whole top-level
// folder (/root, /home) narrows to the program's own folder.
std::vector<std::string> ToolchainFolders(const std::vector<std::string>& env,
                                          const std::vector<std::string>& programs);

// Bytes allocated under `dir` (st_blocks * 512 of every entry, links not
// followed). A tree nested too deep to walk counts as INT64_MAX: what cannot
// be measured is not allowed.
int64_t ScratchUsage(const std::string& dir);

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_SANDBOX_H_
