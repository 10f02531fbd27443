#include "kernels/harness/subprocess.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ratchet::kernels {

absl::StatusOr<int> RunProcess(const std::vector<std::string>& argv,
                               const std::string& log_path) {
  if (argv.empty()) return absl::InvalidArgumentError("empty command");
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  int log_fd = -1;
  if (!log_path.empty()) {
    log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
      return absl::InternalError(absl::StrCat("cannot open ", log_path, ": ", strerror(errno)));
    }
  }
  // A pipe with CLOEXEC tells the parent whether exec itself failed.
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    if (log_fd >= 0) close(log_fd);
    return absl::InternalError("pipe failed");
  }
  const pid_t pid = fork();
  if (pid < 0) {
    if (log_fd >= 0) close(log_fd);
    close(err_pipe[0]);
    close(err_pipe[1]);
    return absl::InternalError(absl::StrCat("fork failed: ", strerror(errno)));
  }
  if (pid == 0) {
    if (log_fd >= 0) {
      dup2(log_fd, 1);
      dup2(log_fd, 2);
    }
    execvp(args[0], args.data());
    const int e = errno;
    (void)!write(err_pipe[1], &e, sizeof(e));
    _exit(127);
  }
  close(err_pipe[1]);
  if (log_fd >= 0) close(log_fd);
  int exec_errno = 0;
  const ssize_t got = read(err_pipe[0], &exec_errno, sizeof(exec_errno));
  close(err_pipe[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (got == static_cast<ssize_t>(sizeof(exec_errno))) {
    return absl::NotFoundError(
        absl::StrCat("cannot run ", argv[0], ": ", strerror(exec_errno)));
  }
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

std::string ReadFileOrEmpty(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string Tail(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  return "...\n" + s.substr(s.size() - max_bytes + 4);
}

std::string SelfExeDir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string p(buf, static_cast<size_t>(n));
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

absl::Status FreshDir(const std::string& dir) {
  RunProcess({"rm", "-rf", dir}, "").IgnoreError();
  if (mkdir(dir.c_str(), 0700) != 0)
    return absl::InternalError(absl::StrCat("cannot make ", dir, ": ", strerror(errno)));
  return absl::OkStatus();
}

std::vector<std::string> TorchPythonCandidates(const std::string& choice, bool* configured) {
  *configured = true;
  if (!choice.empty()) return {choice};
  if (const char* env = std::getenv("RATCHET_PYTHON"); env != nullptr && *env) return {env};
  *configured = false;
  std::vector<std::string> out = {"/usr/bin/python3"};
  if (const char* path = std::getenv("PATH")) {
    for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
      std::string py = absl::StrCat(dir, "/python3");
      if (dir[0] == '/' && access(py.c_str(), X_OK) == 0 &&
          std::find(out.begin(), out.end(), py) == out.end())
        out.push_back(std::move(py));
    }
  }
  out.push_back("python3");
  return out;
}

}  // namespace ratchet::kernels
