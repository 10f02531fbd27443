#include "training/harness/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ratchet::training {
namespace {

constexpr size_t kMaxOutput = 64 * 1024;

// execve needs a path; a bare name is found in the child's PATH, not ours.
std::string Resolve(const std::string& name, const std::map<std::string, std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  auto path = env.find("PATH");
  if (path == env.end()) return name;
  for (absl::string_view dir : absl::StrSplit(path->second, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

}  // namespace

int AboveStdio(int fd) {
  if (fd < 0 || fd >= 10) return fd;
  const int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  close(fd);
  return high;
}

pid_t SpawnChild(const std::vector<std::string>& args, const std::vector<std::string>& env,
                 const std::string& workdir, pid_t group, int out_fd, int control_fd) {
  // Built before fork: after it, only async-signal-safe calls.
  std::vector<char*> argv, envp;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const char* dir = workdir.empty() ? nullptr : workdir.c_str();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  setpgid(0, group);
  // out_fd and control_fd sit at 10 and above, so these dup2 calls never
  // meet their own source (which would leave close-on-exec set).
  const int null_fd = open("/dev/null", O_RDONLY);
  dup2(null_fd, 0);
  dup2(out_fd, 1);
  dup2(out_fd, 2);
  if (control_fd >= 0) {
    dup2(control_fd, 3);
  } else {
    close(3);
  }
  close_range(4, ~0U, 0);  // nothing else of ours reaches the program
  if (dir != nullptr && chdir(dir) != 0) _exit(126);
  execve(argv[0], argv.data(), envp.data());
  _exit(127);
}

absl::StatusOr<ChildResult> RunChild(const ChildOptions& o) {
  if (o.argv.empty()) return absl::InvalidArgumentError("no program to run");
  const std::string program = Resolve(o.argv[0], o.env);
  int out_fd = -1, read_fd = -1;
  if (!o.log_path.empty()) {
    out_fd = open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (out_fd < 0)
      return absl::InternalError(absl::StrCat("cannot open ", o.log_path, ": ", std::strerror(errno)));
  } else {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
      return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    read_fd = fds[0];
    out_fd = fds[1];
  }
  out_fd = AboveStdio(out_fd);
  read_fd = AboveStdio(read_fd);
  std::vector<std::string> args = o.argv, env;
  args[0] = program;
  for (const auto& [k, v] : o.env) env.push_back(k + "=" + v);
  const pid_t pid = SpawnChild(args, env, o.workdir, 0, out_fd, -1);
  if (pid < 0) {
    close(out_fd);
    if (read_fd >= 0) close(read_fd);
    return absl::InternalError(absl::StrCat("fork: ", std::strerror(errno)));
  }
  setpgid(pid, pid);  // also here: no race with the child
  close(out_fd);

  ChildResult r;
  const auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  for (;;) {
    if (read_fd >= 0) {
      pollfd p{read_fd, POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        char buf[4096];
        const ssize_t n = read(read_fd, buf, sizeof(buf));
        if (n <= 0) {
          close(read_fd);
          read_fd = -1;
        } else if (r.output.size() < kMaxOutput) {
          r.output.append(buf, static_cast<size_t>(n));
        }
      }
    } else {
      usleep(50 * 1000);
    }
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!r.timed_out && elapsed > o.timeout_seconds) {
      r.timed_out = true;
      kill(-pid, SIGKILL);
    }
  }
  kill(-pid, SIGKILL);  // anything it left behind in its group
  if (read_fd >= 0) {
    // What is left in the pipe, without waiting on a descendant in another
    // session that may still hold it open.
    fcntl(read_fd, F_SETFL, O_NONBLOCK);
    char buf[4096];
    ssize_t n;
    while ((n = read(read_fd, buf, sizeof(buf))) > 0)
      if (r.output.size() < kMaxOutput) r.output.append(buf, static_cast<size_t>(n));
    close(read_fd);
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

}  // namespace ratchet::training
