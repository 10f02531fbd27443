#include "worker/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace ratchet::worker {
namespace {

namespace fs = std::filesystem;

// Where /tmp or /dev/shm lives when bwrap cannot size a tmpfs: a folder of
// the scratch folder, so that the scratch watch counts what is written there.
std::string TmpFolderInScratch(const std::string& scratch_dir, const char* tmp) {
  return scratch_dir + (std::string(tmp) == "/tmp" ? "/.sandbox-tmp" : "/.sandbox-shm");
}

bool IsExecutable(const std::string& path) {
  return !path.empty() && access(path.c_str(), X_OK) == 0;
}

std::string SelfDir() {
  const std::string self = SelfExecutable();
  return self.empty() ? "" : fs::path(self).parent_path().string();
}

// Where a kernel refuses a limit above the hard maximum, keep the hard one.
void SetLimit(int resource, rlim_t soft, rlim_t hard) {
  struct rlimit rl;
  if (getrlimit(resource, &rl) == 0 && rl.rlim_max != RLIM_INFINITY) {
    if (hard > rl.rlim_max) hard = rl.rlim_max;
    if (soft > hard) soft = hard;
  }
  rl.rlim_cur = soft;
  rl.rlim_max = hard;
  setrlimit(resource, &rl);
}

// Closes every descriptor above stderr in the child: gRPC's sockets and other
// jobs' pipes must not leak into a candidate.
void CloseFrom(int lowfd) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, lowfd, ~0U, 0) == 0) return;
#endif
  for (int fd = lowfd; fd < 65536; ++fd) close(fd);
}

// Everything the child needs, prepared before fork: after fork in a
// multithreaded process only async-signal-safe calls are allowed.
struct ChildPlan {
  std::vector<std::string> args;
  std::vector<std::string> envs;
  std::vector<char*> argv;
  std::vector<char*> envp;
  std::string chdir_to;
  rlim_t cpu = 0;
  rlim_t data = 0;
  rlim_t file_size = 0;
  int out_fd = -1;     // write end of the output pipe, or -1 to inherit
  int status_fd = -1;  // CLOEXEC pipe; the child writes errno if exec fails
};

[[noreturn]] void ChildMain(const ChildPlan& plan) {
  // Own session and so own process group: the parent kills the group.
  setsid();
  // If the worker dies (even kill -9), the child dies with it.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof(dfl));
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGXCPU,
                  SIGXFSZ, SIGUSR1, SIGUSR2, SIGALRM})
    sigaction(sig, &dfl, nullptr);

  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, 0);
  if (plan.out_fd >= 0) {
    dup2(plan.out_fd, 1);
    dup2(plan.out_fd, 2);
  }
  int status_fd = plan.status_fd;
  if (status_fd < 3) status_fd = dup(status_fd);
  // Keep the status pipe (CLOEXEC) above 2; close the rest.
  if (status_fd != 3) {
    dup3(status_fd, 3, O_CLOEXEC);
    status_fd = 3;
  }
  CloseFrom(4);

  if (plan.cpu > 0) SetLimit(RLIMIT_CPU, plan.cpu, plan.cpu + 1);
  // RLIMIT_DATA, not RLIMIT_AS: CUDA reserves terabytes of address space
  // that RLIMIT_AS would refuse, while DATA counts only memory actually mapped
  // writable.
  if (plan.data > 0) SetLimit(RLIMIT_DATA, plan.data, plan.data);
  SetLimit(RLIMIT_NOFILE, 4096, 4096);
  SetLimit(RLIMIT_CORE, 0, 0);
  // One file may not fill the disk: at most the scratch limit, else 16 GiB.
  SetLimit(RLIMIT_FSIZE, plan.file_size, plan.file_size);

  if (!plan.chdir_to.empty() && chdir(plan.chdir_to.c_str()) != 0) {
    int err = errno;
    (void)!write(status_fd, &err, sizeof(err));
    _exit(127);
  }
  execve(plan.argv[0], plan.argv.data(), plan.envp.data());
  int err = errno;
  (void)!write(status_fd, &err, sizeof(err));
  _exit(127);
}

// What every sandboxed program sees of the host's system, read-only, at the
// same path: its programs and libraries. On merged-usr systems /bin, /sbin
// and /lib* are symlinks into /usr and are recreated as such. /sys stays for
// CUDA and NVML, which read the PCI and NUMA topology there.
constexpr const char* kSystemFolders[] = {"/usr", "/opt", "/sys", "/bin", "/sbin",
                                          "/lib", "/lib32", "/lib64", "/libx32"};

// The only parts of /etc a sandboxed program sees: what the dynamic loader
// (ld.so.*), Debian's alternatives (/usr/bin/c++ and friends point there) and
// user and time look-ups (getpwuid, Python's getpass, localtime) read.
constexpr const char* kEtcEntries[] = {"/etc/ld.so.cache",     "/etc/ld.so.conf",
                                       "/etc/ld.so.conf.d",    "/etc/alternatives",
                                       "/etc/passwd",          "/etc/group",
                                       "/etc/nsswitch.conf",   "/etc/localtime"};

bool IsSymlink(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

// Whether `path` (made canonical) is already visible through one of the
// system folders bound above; binding it again could not add anything, and
// binding through a merged-usr symlink would fail.
bool UnderSystemFolder(const std::string& path) {
  std::error_code ec;
  const std::string canonical = fs::weakly_canonical(path, ec).string();
  if (ec) return false;
  for (const char* folder : kSystemFolders) {
    if (IsSymlink(folder)) continue;
    if (canonical == folder || absl::StartsWith(canonical, absl::StrCat(folder, "/")))
      return true;
  }
  return false;
}

// The number of components below / ("/root" is 1, "/root/.pyenv" 2).
int Depth(const fs::path& path) {
  int depth = 0;
  for (const auto& part : path.relative_path()) depth += part.empty() ? 0 : 1;
  return depth;
}

// The folder a program is installed under: the one above its bin/ (or a
// pyenv shims/) folder, which also holds its libraries (a venv's
// lib/python3.x/site-packages, pyenv's versions/). Never a whole top-level
// folder such as /root: then the program's own folder. "" for none.
std::string InstallPrefix(const fs::path& program) {
  const fs::path dir = program.parent_path();
  const std::string name = dir.filename().string();
  if ((name == "bin" || name == "shims") && Depth(dir.parent_path()) >= 2)
    return dir.parent_path().string();
  return Depth(dir) >= 1 ? dir.string() : "";
}

std::string EnvValue(const std::vector<std::string>& env, absl::string_view name) {
  std::string value;
  const std::string prefix = absl::StrCat(name, "=");
  for (const auto& kv : env)
    if (absl::StartsWith(kv, prefix)) value = kv.substr(prefix.size());
  return value;
}

// Folders deeper than this make a scratch tree unmeasurable (ScratchUsage).
constexpr int kMaxScratchDepth = 128;

// Adds the blocks of everything in the open folder `dir_fd` (closed here) to
// `*total`. False when the tree goes deeper than kMaxScratchDepth.
bool AddScratchUsage(int dir_fd, int depth, int64_t* total) {
  DIR* dir = fdopendir(dir_fd);
  if (dir == nullptr) {
    close(dir_fd);
    return true;
  }
  bool measurable = true;
  while (measurable) {
    const dirent* entry = readdir(dir);
    if (entry == nullptr) break;
    if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
    struct stat st;
    // Gone since readdir: the candidate is still writing; the next look counts it.
    if (fstatat(dirfd(dir), entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    *total += static_cast<int64_t>(st.st_blocks) * 512;
    if (!S_ISDIR(st.st_mode)) continue;
    if (depth >= kMaxScratchDepth) {
      measurable = false;
      break;
    }
    const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int child = openat(dirfd(dir), entry->d_name, flags);
    if (child < 0 && errno == EACCES) {
      // A folder the candidate (running as this user) closed to its owner:
      // reopen it; the scratch folder is the worker's to measure.
      fchmodat(dirfd(dir), entry->d_name, (st.st_mode & 07777) | S_IRWXU, 0);
      child = openat(dirfd(dir), entry->d_name, flags);
    }
    if (child >= 0) measurable = AddScratchUsage(child, depth + 1, total);
  }
  closedir(dir);
  return measurable;
}

std::string FindTrue() {
  for (const char* p : {"/bin/true", "/usr/bin/true"})
    if (IsExecutable(p)) return p;
  return "/bin/true";
}

}  // namespace

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  if (abbrev != nullptr) return absl::StrCat("SIG", abbrev);
  return absl::StrCat("signal ", sig);
}

std::vector<std::string> AllowedEnvironment(char** env) {
  static constexpr absl::string_view kNames[] = {
      "PATH",           "LANG",           "LANGUAGE",      "TZ",
      "LD_LIBRARY_PATH", "PYTHONPATH",    "PYTHONHOME",    "VIRTUAL_ENV",
      "PYENV_ROOT",     "PYENV_VERSION",  "OMP_NUM_THREADS", "CUTLASS_DIR",
      // The harness's own knobs (kernels/harness, kernels/cuda).
      "RATCHET_PYTHON", "RATCHET_NVCC",   "RATCHET_FLUSH_MIB", "RATCHET_KEEP_SCRATCH"};
  static constexpr absl::string_view kPrefixes[] = {
      "LC_", "CUDA_", "NVIDIA_", "NCCL_", "TORCHINDUCTOR_", "TRITON_", "RATCHET_TB_"};
  static constexpr absl::string_view kSecretWords[] = {
      "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH"};
  std::vector<std::string> allowed;
  for (char** e = env; e != nullptr && *e != nullptr; ++e) {
    const absl::string_view kv = *e;
    const size_t eq = kv.find('=');
    if (eq == absl::string_view::npos || eq == 0) continue;
    const absl::string_view name = kv.substr(0, eq);
    bool allow = false;
    for (absl::string_view n : kNames) allow = allow || name == n;
    for (absl::string_view p : kPrefixes) allow = allow || absl::StartsWith(name, p);
    // Whatever the allow-list says, a name that looks like a credential stays
    // out (NVIDIA_API_KEY, CUDA_..._TOKEN), and so does PostgreSQL's PG*.
    const std::string upper = absl::AsciiStrToUpper(name);
    for (absl::string_view w : kSecretWords) allow = allow && !absl::StrContains(upper, w);
    allow = allow && !absl::StartsWith(upper, "PG");
    if (allow) allowed.emplace_back(kv);
  }
  return allowed;
}

std::vector<std::string> ToolchainFolders(const std::vector<std::string>& env,
                                          const std::vector<std::string>& programs) {
  std::vector<std::string> folders;
  auto add = [&folders](const std::string& path) {
    const fs::path p = fs::path(path).lexically_normal();
    std::error_code ec;
    if (p.is_absolute() && Depth(p) >= 1 && fs::is_directory(p, ec))
      folders.push_back(p.string());
  };
  for (const char* list : {"LD_LIBRARY_PATH", "PYTHONPATH"})
    for (absl::string_view dir : absl::StrSplit(EnvValue(env, list), ':', absl::SkipEmpty()))
      add(std::string(dir));
  for (const char* name :
       {"CUDA_HOME", "CUDA_PATH", "VIRTUAL_ENV", "PYTHONHOME", "PYENV_ROOT", "CUTLASS_DIR"}) {
    const std::string dir = EnvValue(env, name);
    // A whole top-level folder (PYENV_ROOT=/root, say) is too much to show.
    if (!dir.empty() && Depth(fs::path(dir).lexically_normal()) >= 2) add(dir);
  }
  std::vector<std::string> named = programs;
  named.push_back(EnvValue(env, "RATCHET_PYTHON"));
  const bool python_chosen =
      std::any_of(named.begin(), named.end(), [](const std::string& p) { return !p.empty(); });
  named.push_back(EnvValue(env, "RATCHET_NVCC"));
  std::vector<std::string> path_dirs =
      absl::StrSplit(EnvValue(env, "PATH"), ':', absl::SkipEmpty());
  // Without an explicit choice the harness falls back to python3 on PATH.
  if (!python_chosen) named.push_back("python3");
  for (std::string program : named) {
    if (program.empty()) continue;
    if (program.find('/') == std::string::npos) {
      std::string found;
      for (const auto& dir : path_dirs) {
        const std::string candidate = absl::StrCat(dir, "/", program);
        if (IsExecutable(candidate)) {
          found = candidate;
          break;
        }
      }
      program = found;
    }
    if (!fs::path(program).is_absolute()) continue;
    add(InstallPrefix(program));
    std::error_code ec;
    const fs::path resolved = fs::canonical(program, ec);
    if (!ec) add(InstallPrefix(resolved));
  }
  std::sort(folders.begin(), folders.end());
  folders.erase(std::unique(folders.begin(), folders.end()), folders.end());
  return folders;
}

int64_t ScratchUsage(const std::string& dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) != 0) return 0;
  int64_t total = static_cast<int64_t>(st.st_blocks) * 512;
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return total;
  if (!AddScratchUsage(fd, 1, &total)) return INT64_MAX;
  return total;
}

absl::StatusOr<std::string> MakePrivateFolder(const std::string& root, const std::string& name) {
  std::error_code ec;
  std::filesystem::create_directories(root, ec);
  std::string tmpl = absl::StrCat(root, "/", name, "-XXXXXX");
  if (mkdtemp(tmpl.data()) == nullptr)
    return absl::InternalError(
        absl::StrCat("cannot make a scratch folder under ", root, ": ", strerror(errno)));
  return tmpl;
}

std::string SelfExecutable() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  buf[n] = '\0';
  std::string path = buf;
  constexpr absl::string_view kDeleted = " (deleted)";
  if (absl::EndsWith(path, kDeleted)) path.resize(path.size() - kDeleted.size());
  return path;
}

std::string FindBwrap() {
  std::string beside = SelfDir() + "/bwrap";
  if (IsExecutable(beside)) return beside;
  const char* path = getenv("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path ? path : "/usr/bin:/bin", ':', absl::SkipEmpty())) {
    std::string candidate = absl::StrCat(dir, "/bwrap");
    if (IsExecutable(candidate)) return candidate;
  }
  return "";
}

absl::StatusOr<Sandbox> Sandbox::Create(const std::string& choice,
                                        std::string* warning) {
  if (choice == "none" || choice == "rlimits") return Sandbox(Mode::kRlimits, "");
  if (choice != "auto" && choice != "bwrap")
    return absl::InvalidArgumentError(
        absl::StrCat("--sandbox must be auto, bwrap or rlimits (none), not '", choice, "'"));

  std::string why;
  std::string bwrap = FindBwrap();
  if (bwrap.empty()) {
    why = "bwrap not found beside the executable or on PATH";
  } else {
    // Probe with the exact flags a job gets, on a throwaway scratch folder.
    char tmpl[] = "/tmp/ratchet-bwrap-probe-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      why = absl::StrCat("cannot make a probe folder: ", strerror(errno));
    } else {
      // With sized tmpfs first; a bwrap older than 0.7 knows no --size and
      // gets /tmp and /dev/shm in the scratch folder instead.
      for (bool sized : {true, false}) {
        Sandbox candidate(Mode::kBwrap, bwrap, sized);
        SandboxSpec spec;
        spec.argv = {FindTrue()};
        spec.scratch_dir = tmpl;
        spec.wall_seconds = 20;
        spec.scratch_bytes = 64 << 20;
        std::vector<std::string> output;
        RunHooks hooks;
        hooks.output_line = [&output](const std::string& line) {
          if (output.size() < 5) output.push_back(line);
        };
        auto result = candidate.Run(spec, hooks);
        if (!result.ok()) {
          why = std::string(result.status().message());
        } else if (result->exit_code != 0) {
          why = absl::StrCat(bwrap, " probe failed (exit ", result->exit_code,
                             result->signal ? ", " + SignalName(result->signal) : "",
                             "): ", absl::StrJoin(output, " | "));
        } else {
          fs::remove_all(tmpl);
          return candidate;
        }
      }
      fs::remove_all(tmpl);
    }
  }
  if (choice == "bwrap")
    return absl::FailedPreconditionError(
        absl::StrCat("--sandbox=bwrap, but bwrap cannot run: ", why));
  if (warning != nullptr) *warning = why;
  return Sandbox(Mode::kRlimits, "");
}

int64_t Sandbox::TmpfsBytes(int64_t scratch_bytes) {
  if (scratch_bytes <= 0) return 0;
  return std::max<int64_t>(scratch_bytes / 4, int64_t{1} << 20);
}

std::vector<std::string> Sandbox::CommandLine(const SandboxSpec& spec) const {
  if (mode_ != Mode::kBwrap) return spec.argv;
  std::vector<std::string> cmd = {bwrap_};
  // Only the system's programs and libraries, read-only; not the host's
  // root, where a compile error can print any file it can open (it printed
  // /etc/os-release back to a client).
  for (const char* folder : kSystemFolders) {
    char target[PATH_MAX];
    const ssize_t n = readlink(folder, target, sizeof(target) - 1);
    if (n > 0) {
      cmd.insert(cmd.end(), {"--symlink", std::string(target, n), folder});
    } else if (fs::is_directory(folder)) {
      cmd.insert(cmd.end(), {"--ro-bind", folder, folder});
    }
  }
  for (const char* entry : kEtcEntries) {
    std::error_code ec;
    if (fs::exists(entry, ec)) cmd.insert(cmd.end(), {"--ro-bind", entry, entry});
  }
  // Fresh /dev and /proc, a private /tmp and /dev/shm. Both are sized from
  // the scratch cap: the scratch watch sees only the scratch folder, and an
  // unsized tmpfs holds up to half of the host's RAM.
  cmd.insert(cmd.end(), {"--dev", "/dev", "--proc", "/proc"});
  for (const char* tmp : {"/dev/shm", "/tmp"}) {
    if (spec.scratch_bytes > 0 && !sized_tmpfs_ && !spec.scratch_read_only) {
      cmd.insert(cmd.end(), {"--bind", TmpFolderInScratch(spec.scratch_dir, tmp), tmp});
      continue;
    }
    if (spec.scratch_bytes > 0 && sized_tmpfs_)
      cmd.insert(cmd.end(), {"--size", std::to_string(TmpfsBytes(spec.scratch_bytes))});
    cmd.insert(cmd.end(), {"--tmpfs", tmp});
  }
  // The caller's extra folders and the program's own folder, read-only
  // (a build under /tmp or a checkout, say); parents before their children.
  std::vector<std::string> extra = spec.ro_binds;
  if (!spec.argv.empty()) extra.push_back(fs::path(spec.argv[0]).parent_path().string());
  std::sort(extra.begin(), extra.end());
  extra.erase(std::unique(extra.begin(), extra.end()), extra.end());
  for (const std::string& dir : extra) {
    std::error_code ec;
    if (!fs::path(dir).is_absolute() || Depth(dir) < 1 || !fs::exists(dir, ec) ||
        UnderSystemFolder(dir))
      continue;
    cmd.insert(cmd.end(), {"--ro-bind", dir, dir});
  }
  // The GPUs (and their control nodes) stay reachable; a fresh /dev lacks them.
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/dev", ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("nvidia", 0) == 0) {
      cmd.insert(cmd.end(), {"--dev-bind", entry.path().string(), entry.path().string()});
    }
  }
  cmd.insert(cmd.end(), {
      // The scratch folder is the one writable place.
      spec.scratch_read_only ? "--ro-bind" : "--bind", spec.scratch_dir, spec.scratch_dir,
      "--chdir", spec.scratch_dir,
      "--unshare-net", "--unshare-pid", "--unshare-ipc",
      "--die-with-parent", "--new-session",
  });
  // Real root keeps every capability inside bwrap unless told otherwise, and
  // CAP_SYS_ADMIN could remount / read-write.
  if (geteuid() == 0) cmd.insert(cmd.end(), {"--cap-drop", "ALL"});
  if (spec.as_pid_1) cmd.push_back("--as-pid-1");
  cmd.push_back("--");
  cmd.insert(cmd.end(), spec.argv.begin(), spec.argv.end());
  return cmd;
}

absl::StatusOr<RunResult> Sandbox::Run(const SandboxSpec& spec,
                                       const RunHooks& hooks) const {
  if (spec.argv.empty()) return absl::InvalidArgumentError("empty argv");
  if (spec.scratch_dir.empty() || !fs::is_directory(spec.scratch_dir))
    return absl::InvalidArgumentError(
        absl::StrCat("scratch folder '", spec.scratch_dir, "' does not exist"));

  if (mode_ == Mode::kBwrap && !sized_tmpfs_ && spec.scratch_bytes > 0 &&
      !spec.scratch_read_only) {
    for (const char* tmp : {"/dev/shm", "/tmp"}) {
      std::error_code ec;
      fs::create_directories(TmpFolderInScratch(spec.scratch_dir, tmp), ec);
    }
  }
  ChildPlan plan;
  plan.args = CommandLine(spec);
  plan.envs = spec.env;
  for (auto& a : plan.args) plan.argv.push_back(a.data());
  plan.argv.push_back(nullptr);
  for (auto& e : plan.envs) plan.envp.push_back(e.data());
  plan.envp.push_back(nullptr);
  plan.chdir_to = spec.scratch_dir;
  if (spec.cpu_seconds > 0) plan.cpu = static_cast<rlim_t>(std::ceil(spec.cpu_seconds));
  if (spec.memory_bytes > 0) plan.data = static_cast<rlim_t>(spec.memory_bytes);
  plan.file_size = spec.scratch_bytes > 0 ? static_cast<rlim_t>(spec.scratch_bytes)
                                          : rlim_t{16} << 30;

  int out_pipe[2] = {-1, -1};
  if (hooks.output_line && pipe2(out_pipe, O_CLOEXEC) != 0)
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  int status_pipe[2];
  if (pipe2(status_pipe, O_CLOEXEC) != 0) {
    if (out_pipe[0] >= 0) close(out_pipe[0]), close(out_pipe[1]);
    return absl::InternalError(absl::StrCat("pipe: ", strerror(errno)));
  }
  plan.out_fd = out_pipe[1];
  plan.status_fd = status_pipe[1];

  auto start = std::chrono::steady_clock::now();
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    if (out_pipe[0] >= 0) close(out_pipe[0]), close(out_pipe[1]);
    close(status_pipe[0]);
    close(status_pipe[1]);
    return absl::ResourceExhaustedError(absl::StrCat("fork: ", strerror(err)));
  }
  if (pid == 0) ChildMain(plan);

  close(status_pipe[1]);
  if (out_pipe[1] >= 0) close(out_pipe[1]);
  int exec_errno = 0;
  ssize_t got;
  do {
    got = read(status_pipe[0], &exec_errno, sizeof(exec_errno));
  } while (got < 0 && errno == EINTR);
  close(status_pipe[0]);
  if (got == sizeof(exec_errno)) {
    if (out_pipe[0] >= 0) close(out_pipe[0]);
    waitpid(pid, nullptr, 0);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start ", plan.args[0], ": ", strerror(exec_errno)));
  }

  RunResult result;
  int out_fd = out_pipe[0];
  std::string pending;
  auto flush_lines = [&](bool all) {
    size_t pos;
    while ((pos = pending.find('\n')) != std::string::npos) {
      hooks.output_line(pending.substr(0, pos));
      pending.erase(0, pos + 1);
    }
    // A runaway line without newlines must not grow without bound.
    if (pending.size() > 8192 || (all && !pending.empty())) {
      hooks.output_line(pending);
      pending.clear();
    }
  };
  auto read_output = [&](int timeout_ms) {
    if (out_fd < 0) {
      if (timeout_ms > 0) poll(nullptr, 0, timeout_ms);
      return;
    }
    struct pollfd pfd = {out_fd, POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0) return;
    char buf[8192];
    ssize_t n = read(out_fd, buf, sizeof(buf));
    if (n > 0) {
      pending.append(buf, n);
      flush_lines(false);
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
      close(out_fd);  // EOF: every writer has gone
      out_fd = -1;
    }
  };
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
        .count();
  };

  // The scratch watch: a whole tree's size, which no rlimit bounds, looked at
  // every quarter second while the child runs and once more after it ends.
  constexpr auto kScratchInterval = std::chrono::milliseconds(250);
  auto next_scratch_look = std::chrono::steady_clock::now() + kScratchInterval;
  auto scratch_over = [&] {
    if (spec.scratch_bytes <= 0) return false;
    result.scratch_used_bytes = ScratchUsage(spec.scratch_dir);
    return result.scratch_used_bytes > spec.scratch_bytes;
  };

  bool killed = false;
  for (;;) {
    read_output(20);
    // WNOWAIT leaves the child a zombie, so its pid (= the group id) cannot
    // be reused before the group is killed below.
    siginfo_t info;
    memset(&info, 0, sizeof(info));
    if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid)
      break;
    if (killed) continue;
    if (hooks.cancel != nullptr && hooks.cancel->load()) {
      result.cancelled = true;
      killpg(pid, SIGKILL);
      killed = true;
    } else if (spec.wall_seconds > 0 && elapsed() > spec.wall_seconds) {
      result.timed_out = true;
      killpg(pid, SIGKILL);
      killed = true;
    } else if (spec.scratch_bytes > 0 &&
               std::chrono::steady_clock::now() >= next_scratch_look) {
      if (scratch_over()) {
        result.scratch_exceeded = true;
        killpg(pid, SIGKILL);
        killed = true;
      }
      next_scratch_look = std::chrono::steady_clock::now() + kScratchInterval;
    }
  }
  result.wall_seconds = elapsed();
  // Whatever the child left behind in its group goes too.
  killpg(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  } else if (WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
    // bwrap reports a command killed by signal N as exit 128+N.
    if (mode_ == Mode::kBwrap && result.exit_code > 128 && result.exit_code < 128 + 65) {
      result.signal = result.exit_code - 128;
    }
  }
  // A burst written between two looks, or a file stopped at the limit by
  // RLIMIT_FSIZE, counts as much as one the watch caught.
  if (spec.scratch_bytes > 0 && !result.scratch_exceeded)
    result.scratch_exceeded = result.signal == SIGXFSZ || scratch_over();
  // Drain what is left; an escaped writer must not keep us here.
  auto drain_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
  while (out_fd >= 0 && std::chrono::steady_clock::now() < drain_until) read_output(10);
  if (out_fd >= 0) close(out_fd);
  if (hooks.output_line) flush_lines(true);
  return result;
}

}  // namespace ratchet::worker
