// Real child processes for end-to-end tests: started with fork/exec, output
// to a log file, stopped with real signals.
#ifndef RATCHET_TESTS_SUPPORT_PROCESS_H_
#define RATCHET_TESTS_SUPPORT_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ratchet::testing {

class Process {
 public:
  // Starts argv[0] with stdout and stderr appended to `log_path`.
  Process(const std::vector<std::string>& argv, const std::string& log_path);
  ~Process();  // SIGKILL if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  // Sends `signal` and waits up to timeout_ms; returns the wait status or -1.
  int Stop(int signal, int timeout_ms = 10'000);
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or timed out
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs argv to completion (killed after timeout_ms), capturing its output.
CommandResult RunCommand(const std::vector<std::string>& argv, int timeout_ms = 120'000);

std::string ReadFile(const std::string& path);
// A fresh directory under $TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);
// Waits until `path` exists and is non-empty; false after timeout_ms.
bool WaitForFile(const std::string& path, int timeout_ms);

// Milliseconds on the steady clock.
int64_t NowMs();
// Polls `done` every 100 ms until it holds or timeout_ms passes.
bool PollUntil(const std::function<bool()>& done, int timeout_ms);

// Whether /usr/bin/python3 can import torch (the oracle needs it); asked once.
bool PythonWithTorch();

// GET http://127.0.0.1:port/path; the body, or "" on any failure.
std::string HttpGet(int port, const std::string& path);

// The N in the last "metrics on port N" line of a service's log; 0 if none.
int MetricsPortFromLog(const std::string& log_path);

}  // namespace ratchet::testing

#endif  // RATCHET_TESTS_SUPPORT_PROCESS_H_
