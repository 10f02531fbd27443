#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ratchet::testing {
namespace {

namespace fs = std::filesystem;

bool IsExecutable(const fs::path& p) { return access(p.c_str(), X_OK) == 0; }

bool HasServerPrograms(const fs::path& dir) {
  return IsExecutable(dir / "initdb") && IsExecutable(dir / "postgres");
}

// The directory holding initdb and postgres, or "".
std::string FindBinDir() {
  if (const char* env = std::getenv("RATCHET_PG_BIN"); env != nullptr && *env != '\0') {
    return HasServerPrograms(env) ? env : "";
  }
  // Debian keeps the server programs out of $PATH, one folder per version;
  // take the newest.
  std::error_code ec;
  std::string best;
  double best_version = -1;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    const fs::path bin = entry.path() / "bin";
    double version = std::atof(entry.path().filename().c_str());
    if (HasServerPrograms(bin) && version > best_version) {
      best = bin.string();
      best_version = version;
    }
  }
  if (!best.empty()) return best;
  if (const char* path = std::getenv("PATH"); path != nullptr) {
    for (absl::string_view dir : absl::StrSplit(path, ':')) {
      if (!dir.empty() && HasServerPrograms(fs::path(std::string(dir)))) return std::string(dir);
    }
  }
  return "";
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A TCP port nobody listens on right now (the kernel's choice).
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string Tail(const std::string& text, size_t n = 2000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

// Forks and execs `argv` as uid/gid (when switch_user), output appended to
// `log`. Only async-signal-safe calls happen between fork and exec.
pid_t Spawn(const std::vector<std::string>& argv, const std::string& log, bool switch_user,
            uid_t uid, gid_t gid, bool die_with_parent) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid != 0) return pid;
  int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (fd >= 0) {
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
  }
  int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, 0);
  if (switch_user) {
    if (setgroups(0, nullptr) != 0 || setgid(gid) != 0 || setuid(uid) != 0) _exit(126);
  }
  // After the uid switch, which would clear it.
  if (die_with_parent) prctl(PR_SET_PDEATHSIG, SIGQUIT);
  execv(args[0], args.data());
  _exit(127);
}

// Waits for `pid` up to timeout_ms; its wait status, or -1 on timeout.
int WaitPid(pid_t pid, int timeout_ms) {
  const int64_t deadline = NowMs() + timeout_ms;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0) return 0;  // not our child any more
    if (NowMs() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

bool PostgresServer::Available(std::string* why) {
  if (!FindBinDir().empty()) return true;
  if (why != nullptr) {
    *why = "PostgreSQL server programs (initdb, postgres) not found in $RATCHET_PG_BIN, "
           "/usr/lib/postgresql/*/bin or $PATH; install the 'postgresql' package "
           "(scripts/install-deps.sh)";
  }
  return false;
}

absl::StatusOr<std::unique_ptr<PostgresServer>> PostgresServer::Start(const Options& options) {
  std::unique_ptr<PostgresServer> server(new PostgresServer());
  server->bin_dir_ = FindBinDir();
  if (server->bin_dir_.empty()) {
    std::string why;
    Available(&why);
    return absl::FailedPreconditionError(why);
  }
  if (geteuid() == 0) {
    const passwd* nobody = getpwnam("nobody");
    if (nobody == nullptr) {
      return absl::FailedPreconditionError(
          "running as root and there is no user 'nobody' to run PostgreSQL as");
    }
    server->switch_user_ = true;
    server->run_uid_ = nobody->pw_uid;
    server->run_gid_ = nobody->pw_gid;
  }
  // Under /tmp rather than $TMPDIR: the socket path must stay short (about
  // 100 bytes) and the directory must be reachable by the server's user.
  std::string tmpl = "/tmp/ratchet_pg_XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp: ", strerror(errno)));
  }
  server->dir_ = tmpl;
  if (server->switch_user_ &&
      chown(server->dir_.c_str(), server->run_uid_, server->run_gid_) != 0) {
    return absl::InternalError(absl::StrCat("chown ", server->dir_, ": ", strerror(errno)));
  }
  server->tcp_ = options.tcp;
  if (options.tcp) {
    server->port_ = FreePort();
    if (server->port_ == 0) return absl::InternalError("no free TCP port");
  }

  // --no-sync only skips flushing the freshly created files of this throwaway
  // cluster; the running server keeps fsync on, so commits are durable.
  const std::string log = server->dir_ + "/initdb.log";
  pid_t pid = Spawn({server->bin_dir_ + "/initdb", "-D", server->dir_ + "/data", "-A", "trust",
                     "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"},
                    log, server->switch_user_, server->run_uid_, server->run_gid_, false);
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  int status = WaitPid(pid, 120'000);
  if (status == -1) {
    kill(pid, SIGKILL);
    WaitPid(pid, 5000);
  }
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    return absl::InternalError(absl::StrCat("initdb failed (wait status ", status, "): ",
                                            Tail(text.str())));
  }
  absl::Status started = server->Launch();
  if (!started.ok()) return started;
  return server;
}

PostgresServer::~PostgresServer() {
  if (pid_ > 0) {
    // Immediate shutdown: nothing to keep.
    kill(pid_, SIGQUIT);
    if (WaitPid(pid_, 10'000) == -1) {
      kill(pid_, SIGKILL);
      WaitPid(pid_, 5'000);
    }
    pid_ = -1;
  }
  if (!dir_.empty()) {
    // Backends orphaned by a Kill(SIGKILL) may still be deleting their files
    // for a moment, which makes remove_all stop early; try again.
    for (int attempt = 0; attempt < 50; ++attempt) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      if (!fs::exists(dir_, ec)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
}

std::string PostgresServer::Url(const std::string& database) const {
  return absl::StrCat("postgresql:///", database, "?host=", dir_, "&port=", port_,
                      "&user=postgres");
}

std::string PostgresServer::TcpUrl(const std::string& database) const {
  if (!tcp_) return "";
  return absl::StrCat("postgresql://postgres@127.0.0.1:", port_, "/", database);
}

std::string PostgresServer::Log() const {
  std::ifstream in(dir_ + "/postgres.log");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::Status PostgresServer::Launch() {
  std::vector<std::string> argv = {
      bin_dir_ + "/postgres", "-D", dir_ + "/data", "-k", dir_, "-p", std::to_string(port_),
      "-c", tcp_ ? "listen_addresses=127.0.0.1" : "listen_addresses=",
      // Small and quick to start; durability settings stay at their defaults
      // (fsync, synchronous_commit and full_page_writes on).
      "-c", "shared_buffers=16MB", "-c", "max_connections=200",
      "-c", "logging_collector=off", "-c", "log_min_messages=warning"};
  // After a kill -9 the old backends may hold the shared memory for a moment;
  // the postmaster refuses to start until they are gone, so try again.
  const int64_t deadline = NowMs() + 30'000;
  absl::Status last;
  while (true) {
    pid_ = Spawn(argv, dir_ + "/postgres.log", switch_user_, run_uid_, run_gid_, true);
    if (pid_ < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
    last = WaitUntilReady(30'000);
    if (last.ok()) return last;
    if (pid_ > 0) {  // still running but not answering
      kill(pid_, SIGKILL);
      WaitPid(pid_, 5000);
      pid_ = -1;
    }
    if (NowMs() >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

absl::Status PostgresServer::WaitUntilReady(int timeout_ms) {
  const std::string conninfo =
      absl::StrCat("host=", dir_, " port=", port_, " user=postgres dbname=postgres");
  const int64_t deadline = NowMs() + timeout_ms;
  while (true) {
    if (PQping(conninfo.c_str()) == PQPING_OK) return absl::OkStatus();
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::UnavailableError(absl::StrCat("postgres exited (wait status ", status,
                                                 ") before accepting connections: ",
                                                 Tail(Log())));
    }
    if (NowMs() >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "postgres did not accept connections within ", timeout_ms, " ms: ", Tail(Log())));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

absl::Status PostgresServer::WaitForExit(int timeout_ms) {
  if (pid_ <= 0) return absl::OkStatus();
  if (WaitPid(pid_, timeout_ms) == -1) {
    return absl::DeadlineExceededError(
        absl::StrCat("postgres (pid ", pid_, ") did not exit within ", timeout_ms, " ms"));
  }
  pid_ = -1;
  return absl::OkStatus();
}

absl::Status PostgresServer::Stop() {
  if (pid_ <= 0) return absl::OkStatus();
  if (kill(pid_, SIGINT) != 0) return absl::InternalError(strerror(errno));
  return WaitForExit(60'000);
}

absl::Status PostgresServer::Restart() {
  if (absl::Status s = Stop(); !s.ok()) return s;
  return Launch();
}

absl::Status PostgresServer::Kill(int signal) {
  if (pid_ <= 0) return absl::FailedPreconditionError("postgres is not running");
  if (kill(pid_, signal) != 0) return absl::InternalError(strerror(errno));
  return WaitForExit(60'000);
}

absl::StatusOr<std::string> PostgresServer::Query(const std::string& database,
                                                   const std::string& sql) {
  const std::string conninfo =
      absl::StrCat("host=", dir_, " port=", port_, " user=postgres dbname=", database);
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string why = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("connecting to ", database, ": ", why));
  }
  PGresult* result = PQexec(conn, sql.c_str());
  ExecStatusType status = PQresultStatus(result);
  absl::StatusOr<std::string> out;
  if (status == PGRES_TUPLES_OK) {
    out = PQntuples(result) > 0 && PQnfields(result) > 0 ? PQgetvalue(result, 0, 0) : "";
  } else if (status == PGRES_COMMAND_OK) {
    out = "";
  } else {
    out = absl::InternalError(absl::StrCat(sql, ": ", PQerrorMessage(conn)));
  }
  PQclear(result);
  PQfinish(conn);
  return out;
}

absl::Status PostgresServer::CreateDatabase(const std::string& name) {
  return Query("postgres", absl::StrCat("CREATE DATABASE \"", name, "\"")).status();
}

}  // namespace ratchet::testing
