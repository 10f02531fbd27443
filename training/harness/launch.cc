#include "training/harness/launch.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "training/harness/child_process.h"

namespace ratchet::training {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kControlFd = 3;
constexpr size_t kMaxLine = 4096;  // longer control lines are dropped, not buffered

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// What rank 0 has said so far, stamped with the launcher's clock.
class ControlLog {
 public:
  // Returns "" or why the marks cannot be believed.
  std::string Hear(const std::string& line, double at, LaunchResult* r,
                   const std::function<void(const Progress&)>& on_progress) {
    std::vector<std::string> w = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (w.empty()) return "";
    if (w[0] == "phase" && w.size() == 2 && w[1] == "warmup-begin") {
      if (begin_ >= 0 || !r->progress.empty()) return "warmup-begin repeated or after training began";
      begin_ = at;
    } else if (w[0] == "phase" && w.size() == 2 && w[1] == "warmup-end") {
      if (begin_ < 0 || end_ >= 0) return "warmup-end without a warmup-begin before it, or repeated";
      end_ = at;
    } else if (w[0] == "progress" && w.size() == 4) {
      // Training while the warm-up is open would be training left out of
      // the clock.
      if (begin_ >= 0 && end_ < 0) return "progress reported during the warm-up";
      Progress p;
      p.at_seconds = at;
      if (!absl::SimpleAtoi(w[1], &p.step) || !absl::SimpleAtod(w[2], &p.loss) ||
          !absl::SimpleAtod(w[3], &p.tokens_per_s))
        return "";  // a malformed progress line is shown nowhere, nothing more
      r->progress.push_back(p);
      r->steps = p.step;
      if (on_progress) on_progress(p);
    } else if (w[0] == "done" && w.size() == 2) {
      int64_t steps = 0;
      if (absl::SimpleAtoi(w[1], &steps)) r->steps = steps;
    }
    return "";
  }

  // The warm-up the clock leaves out: launch to warmup-end, at most the
  // allowance; while it is still open, the whole allowance may yet be used.
  double LeftOut(double allowance) const {
    if (end_ >= 0) return std::min(end_, allowance);
    return begin_ >= 0 ? allowance : 0;
  }
  double warmup_seconds() const { return end_ >= 0 ? end_ - begin_ : 0; }
  bool warmup_open() const { return begin_ >= 0 && end_ < 0; }

 private:
  double begin_ = -1, end_ = -1;
};

struct Rank {
  pid_t pid = -1;
  int control = -1;  // read end; rank 0 only
  std::string buffer;
  bool exited = false;
  int code = 0;
};

std::vector<std::string> EnvFor(const LaunchOptions& o, int rank, int port) {
  std::map<std::string, std::string> env = o.env;
  env["RANK"] = std::to_string(rank);
  env["LOCAL_RANK"] = std::to_string(rank);
  env["WORLD_SIZE"] = std::to_string(o.nproc);
  env["LOCAL_WORLD_SIZE"] = std::to_string(o.nproc);
  env["MASTER_ADDR"] = "127.0.0.1";
  env["MASTER_PORT"] = std::to_string(port);
  if (rank == 0) env["RATCHET_CONTROL_FD"] = std::to_string(kControlFd);
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

void SignalAll(pid_t group, int sig) {
  if (group > 0) kill(-group, sig);
}

}  // namespace

int FreeLoopbackPort() {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return 29500;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof(a);
  int port = 29500;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 &&
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(s);
  return port;
}

LaunchResult Launch(const LaunchOptions& o) {
  LaunchResult r;
  if (o.argv.empty() || o.nproc < 1) {
    r.outcome = "error";
    r.message = "nothing to launch (no program, or fewer than one process)";
    return r;
  }
  const int log_fd = AboveStdio(open(o.log_path.empty() ? "/dev/null" : o.log_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (log_fd < 0) {
    r.outcome = "error";
    r.message = absl::StrCat("cannot open the log ", o.log_path, ": ", std::strerror(errno));
    return r;
  }
  const int port = FreeLoopbackPort();
  std::vector<Rank> ranks(static_cast<size_t>(o.nproc));
  pid_t group = 0;
  const Clock::time_point t0 = Clock::now();
  for (int i = 0; i < o.nproc; ++i) {
    int pipe_fds[2] = {-1, -1};
    if (i == 0 && pipe2(pipe_fds, O_CLOEXEC) != 0) pipe_fds[0] = pipe_fds[1] = -1;
    pipe_fds[1] = AboveStdio(pipe_fds[1]);
    const pid_t pid = SpawnChild(o.argv, EnvFor(o, i, port), o.workdir, group, log_fd, pipe_fds[1]);
    if (pid > 0) {
      setpgid(pid, group == 0 ? pid : group);  // also here: no race with the child
      if (group == 0) group = pid;
    }
    if (pipe_fds[1] >= 0) close(pipe_fds[1]);
    ranks[static_cast<size_t>(i)].pid = pid;
    ranks[static_cast<size_t>(i)].control = pipe_fds[0];
    if (pid < 0) {
      ranks[static_cast<size_t>(i)].exited = true;
      ranks[static_cast<size_t>(i)].code = 127;
    }
  }
  close(log_fd);

  ControlLog marks;
  std::string stop_reason, stop_outcome;
  double stop_at = -1;  // when SIGTERM went out
  bool killed = false;
  for (;;) {
    // Control lines, stamped as they arrive.
    Rank& zero = ranks[0];
    if (zero.control >= 0) {
      pollfd p{zero.control, POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        char buf[4096];
        const ssize_t n = read(zero.control, buf, sizeof(buf));
        if (n <= 0) {
          close(zero.control);
          zero.control = -1;
        } else {
          zero.buffer.append(buf, static_cast<size_t>(n));
          size_t nl;
          while ((nl = zero.buffer.find('\n')) != std::string::npos) {
            const std::string line = zero.buffer.substr(0, nl);
            zero.buffer.erase(0, nl + 1);
            const std::string bad = marks.Hear(line, Since(t0), &r, o.on_progress);
            if (!bad.empty() && stop_outcome.empty()) {
              stop_outcome = "bad-marks";
              stop_reason = bad;
            }
          }
          if (zero.buffer.size() > kMaxLine) zero.buffer.clear();
        }
      }
    } else {
      usleep(50 * 1000);
    }
    // Exits.
    bool all_exited = true;
    for (size_t i = 0; i < ranks.size(); ++i) {
      Rank& k = ranks[i];
      if (!k.exited) {
        int status = 0;
        if (waitpid(k.pid, &status, WNOHANG) == k.pid) {
          k.exited = true;
          k.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
          r.wall_seconds = Since(t0);
          if (k.code != 0 && stop_outcome.empty()) {
            stop_outcome = "crash";
            stop_reason = absl::StrCat("rank ", i, " exited with ",
                                       k.code > 128 ? absl::StrCat("signal ", k.code - 128)
                                                    : absl::StrCat("status ", k.code));
          }
        }
      }
      all_exited = all_exited && k.exited;
    }
    if (all_exited) break;
    // The clock: past the budget (and the warm-up it leaves out), or the timeout.
    const double now = Since(t0);
    if (stop_outcome.empty()) {
      if (o.budget_seconds > 0 &&
          now > marks.LeftOut(o.warmup_allowance_seconds) + o.budget_seconds + o.grace_seconds) {
        stop_outcome = "over-budget";
        stop_reason = absl::StrCat("still running ", o.grace_seconds, " s past its budget of ",
                                   o.budget_seconds, " s (warm-up left out: ",
                                   marks.LeftOut(o.warmup_allowance_seconds), " s)");
      } else if (o.budget_seconds <= 0 && now > o.timeout_seconds) {
        stop_outcome = "timeout";
        stop_reason = absl::StrCat("still running after ", o.timeout_seconds, " s");
      }
    }
    if (!stop_outcome.empty() && stop_at < 0) {
      SignalAll(group, SIGTERM);
      stop_at = now;
    } else if (stop_at >= 0 && !killed && now > stop_at + o.grace_seconds) {
      SignalAll(group, SIGKILL);
      killed = true;
    }
  }
  SignalAll(group, SIGKILL);  // anything a rank left behind in its group
  if (ranks[0].control >= 0) close(ranks[0].control);

  for (const Rank& k : ranks) r.exit_codes.push_back(k.code);
  r.warmup_seconds = marks.warmup_seconds();
  r.training_seconds = r.wall_seconds - marks.LeftOut(o.warmup_allowance_seconds);
  if (stop_outcome.empty() && marks.warmup_open()) {
    stop_outcome = "bad-marks";
    stop_reason = "the warm-up never ended";
  }
  r.outcome = stop_outcome.empty() ? "ok" : stop_outcome;
  r.message = stop_reason;
  return r;
}

}  // namespace ratchet::training
