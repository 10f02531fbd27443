// A real PostgreSQL server for tests: a fresh cluster (initdb, trust auth) in a
// temporary directory, listening on a Unix socket there and optionally on a
// loopback TCP port; stopped, restarted or killed on demand; everything is
// removed when the object goes away.
//
// PostgreSQL refuses to run as root, so when the test runs as root (as in CI)
// the server runs as the unprivileged user "nobody" and owns the directory.
//
// Usage:
//   std::string why;
//   if (!PostgresServer::Available(&why)) GTEST_SKIP() << why;
//   auto server = PostgresServer::Start();
//   ASSERT_TRUE(server.ok()) << server.status();
//   ASSERT_TRUE((*server)->CreateDatabase("t1").ok());
//   OpenPostgresStore((*server)->Url("t1"));
#ifndef RATCHET_TESTS_SUPPORT_POSTGRES_SERVER_H_
#define RATCHET_TESTS_SUPPORT_POSTGRES_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ratchet::testing {

class PostgresServer {
 public:
  struct Options {
    // Also listen on 127.0.0.1 at a free port (TcpUrl()).
    bool tcp = false;
  };

  // Whether the PostgreSQL server programs (initdb, postgres) are installed,
  // looked for in $RATCHET_PG_BIN, /usr/lib/postgresql/*/bin and $PATH. When
  // not, `why` says what is missing.
  static bool Available(std::string* why);

  // Creates the cluster and starts the server; returns once it accepts
  // connections. The postmaster gets SIGQUIT if the thread that called this
  // exits first (so a test killed by a timeout leaves no server behind): call
  // it from a thread that outlives the server.
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start(const Options& options);
  static absl::StatusOr<std::unique_ptr<PostgresServer>> Start() { return Start(Options()); }

  ~PostgresServer();  // immediate shutdown, then the directory is removed
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // libpq URLs of `database`, over the Unix socket and (with Options::tcp)
  // over loopback TCP.
  std::string Url(const std::string& database) const;
  std::string TcpUrl(const std::string& database) const;

  absl::Status CreateDatabase(const std::string& name);
  // Runs `sql` in `database`; the first column of the first row ("" if none).
  absl::StatusOr<std::string> Query(const std::string& database, const std::string& sql);

  // Fast shutdown (what `pg_ctl stop -m fast` does: sessions are ended, the
  // server checkpoints and exits); waits for the exit.
  absl::Status Stop();
  // Starts the server again on the same cluster and port (stopping it first
  // if it runs); returns once it accepts connections. After a Kill() the
  // server recovers from its WAL first.
  absl::Status Restart();
  // Sends `signal` to the postmaster and waits until it has exited (use a
  // signal that ends it: SIGKILL, SIGQUIT, SIGINT, SIGTERM).
  absl::Status Kill(int signal);

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_; }
  int port() const { return port_; }
  // The server's log so far.
  std::string Log() const;

 private:
  PostgresServer() = default;
  absl::Status Launch();
  absl::Status WaitUntilReady(int timeout_ms);
  absl::Status WaitForExit(int timeout_ms);

  std::string bin_dir_;
  std::string dir_;        // socket directory; the cluster is in dir_/data
  bool tcp_ = false;
  int port_ = 5432;        // also names the socket file
  uid_t run_uid_ = 0;      // who the server runs as
  gid_t run_gid_ = 0;
  bool switch_user_ = false;
  pid_t pid_ = -1;
};

}  // namespace ratchet::testing

#endif  // RATCHET_TESTS_SUPPORT_POSTGRES_SERVER_H_
