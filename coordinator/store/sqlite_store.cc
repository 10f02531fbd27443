// The SQLite backend of the store (embedded default, single host).
//
// One connection, guarded by one recursive mutex: simple, and SQLite serialises
// writers anyway. Every record is a row with the columns we query on plus the
// serialized proto in `data`. The id column is authoritative: the blob is
// written with its id cleared and the id is set from the row when read back.
//
// Durability: WAL with synchronous=FULL, so a COMMIT has reached the disk when
// it returns. Each mutating call runs in its own transaction (or joins the
// caller's Transaction()), so it is durable when it returns OK.

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "coordinator/store/record_rules.h"
#include "coordinator/store/store.h"

namespace ratchet::store {
namespace {

using internal::CompleteLeasedJob;
using internal::DuplicateCandidateError;
using internal::ExpireLease;
using internal::LeaseJob;
using internal::StoredJob;

// ---------------------------------------------------------------------------
// Schema. kMigrations[i] takes the schema from version i to version i + 1;
// adding version 2 means appending one entry. Each step runs in one
// transaction together with the version bump, so a crash mid-migration leaves
// the previous version intact.

constexpr const char* kMigrations[] = {
    // Version 1.
    R"sql(
CREATE TABLE campaigns (
  id    INTEGER PRIMARY KEY AUTOINCREMENT,
  state INTEGER NOT NULL,
  data  BLOB NOT NULL
);
CREATE TABLE threads (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign_id INTEGER NOT NULL,
  idx         INTEGER NOT NULL,
  data        BLOB NOT NULL
);
CREATE INDEX threads_by_campaign ON threads (campaign_id, idx);
CREATE TABLE candidates (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign_id  INTEGER NOT NULL,
  content_hash TEXT,  -- NULL when the candidate has no hash: not a dedup key
  data         BLOB NOT NULL,
  UNIQUE (campaign_id, content_hash)
);
CREATE TABLE jobs (
  id              INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign_id     INTEGER NOT NULL,
  candidate_id    INTEGER NOT NULL,
  kind            INTEGER NOT NULL,
  state           INTEGER NOT NULL,
  verification_id INTEGER NOT NULL,
  worker_id       TEXT NOT NULL,
  lease_deadline  INTEGER NOT NULL,
  attempts        INTEGER NOT NULL,
  avoid_worker_id TEXT NOT NULL,
  data            BLOB NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, kind, id);
CREATE INDEX jobs_by_campaign ON jobs (campaign_id, id);
CREATE INDEX jobs_by_verification ON jobs (verification_id, id);
CREATE TABLE evaluations (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id       INTEGER NOT NULL UNIQUE,
  campaign_id  INTEGER NOT NULL,
  candidate_id INTEGER NOT NULL,
  processed    INTEGER NOT NULL,
  data         BLOB NOT NULL
);
CREATE INDEX evaluations_by_campaign ON evaluations (campaign_id, id);
CREATE INDEX evaluations_by_candidate ON evaluations (candidate_id, id);
CREATE INDEX evaluations_unprocessed ON evaluations (processed, id);
CREATE TABLE verifications (
  id             INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign_id    INTEGER NOT NULL,
  candidate_id   INTEGER NOT NULL,
  outcome        INTEGER NOT NULL,
  verifier_id    TEXT NOT NULL,
  lease_deadline INTEGER NOT NULL,
  data           BLOB NOT NULL
);
CREATE INDEX verifications_by_campaign ON verifications (campaign_id, id);
CREATE INDEX verifications_by_candidate ON verifications (candidate_id, id);
CREATE INDEX verifications_by_outcome ON verifications (outcome, id);
CREATE TABLE workers (
  id   TEXT PRIMARY KEY,
  data BLOB NOT NULL
);
)sql",
    // Version 2: noise floors.
    R"sql(
CREATE TABLE noise_floors (
  problem  TEXT NOT NULL,
  workload TEXT NOT NULL,
  hardware TEXT NOT NULL,
  data     BLOB NOT NULL,
  PRIMARY KEY (problem, workload, hardware)
);
)sql",
    // Version 3: one campaign's queue in acquire order, for the scheduler's
    // per-campaign AcquireJob (an index probe, not a sort of the queue).
    R"sql(
CREATE INDEX jobs_queue_by_campaign ON jobs (campaign_id, state, kind, id);
)sql",
    // Version 4: lessons (experience), read by op type across campaigns.
    R"sql(
CREATE TABLE lessons (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign_id INTEGER NOT NULL,
  op_type     TEXT NOT NULL,
  data        BLOB NOT NULL
);
CREATE INDEX lessons_by_op_type ON lessons (op_type, campaign_id, id);
)sql",
    // Version 5: baselines (T_b per problem, workload, hardware, software).
    R"sql(
CREATE TABLE baselines (
  problem_key  TEXT NOT NULL,
  hardware     TEXT NOT NULL,
  workload_key TEXT NOT NULL,
  software     TEXT NOT NULL,
  data         BLOB NOT NULL,
  PRIMARY KEY (problem_key, hardware, workload_key, software)
);
)sql",
    // Version 6: campaign events (AUTOINCREMENT: a seq is never reused after
    // old events are trimmed, so a reader's after_seq stays meaningful).
    R"sql(
CREATE TABLE events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  campaign_id INTEGER NOT NULL,
  unix_ms     INTEGER NOT NULL,
  text        TEXT NOT NULL
);
CREATE INDEX events_by_campaign ON events (campaign_id, seq);
)sql",
    // Version 7: task, device, proposer, screen and candidate status became
    // proto enums (spec/names.h). No table changes: rows are upgraded as they
    // are read; the bump makes an older binary, which would read the new
    // fields as unset (a cuda campaign as cpu), refuse the database.
    "SELECT 1;",
    // Version 8: what the per-client limits and listings read without the
    // record (the spec's megabytes): the owner, the spec's size and the
    // campaign as listed (CampaignSummary). Filled for older rows by
    // BackfillCampaignColumns.
    R"sql(
ALTER TABLE campaigns ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE campaigns ADD COLUMN spec_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE campaigns ADD COLUMN summary BLOB;
CREATE INDEX campaigns_by_owner ON campaigns (owner, state);
)sql",
};
constexpr int kCampaignColumnsVersion = 8;
constexpr int kSchemaVersion = sizeof(kMigrations) / sizeof(kMigrations[0]);

// ---------------------------------------------------------------------------
// Errors.

absl::Status SqlError(sqlite3* db, int rc, absl::string_view what) {
  std::string msg = absl::StrCat("sqlite store: ", what, ": ",
                                 db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                                 " (code ", rc, ")");
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(msg);
      }
      return absl::FailedPreconditionError(msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_FULL:
      return absl::ResourceExhaustedError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// A recursive mutex that the thread-safety analysis understands, so that the
// transaction can be re-entered by the thread that holds it.
class ABSL_LOCKABLE RecursiveMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  std::recursive_mutex mu_;
};

class ABSL_SCOPED_LOCKABLE Lock {
 public:
  explicit Lock(RecursiveMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~Lock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  Lock(const Lock&) = delete;
  Lock& operator=(const Lock&) = delete;

 private:
  RecursiveMutex* const mu_;
};

// A prepared statement borrowed from the connection's cache; reset (and its
// bindings cleared) when it goes out of scope so that it can be reused.
class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Stmt() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  // Binds parameters 1..n in order.
  template <typename... Args>
  absl::Status Bind(const Args&... args) {
    int index = 0;
    absl::Status status;
    (BindOne(++index, args, &status), ...);
    (void)index;
    return status;
  }

  // Steps once: true when a row is ready, false when done.
  absl::StatusOr<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(db_, rc, absl::StrCat("executing \"", sqlite3_sql(stmt_), "\""));
  }

  // Runs a statement that returns no rows.
  absl::Status Exec() {
    absl::StatusOr<bool> row = Step();
    if (!row.ok()) return row.status();
    return absl::OkStatus();
  }

  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  std::string Text(int col) {
    const unsigned char* p = sqlite3_column_text(stmt_, col);
    return p == nullptr ? std::string()
                        : std::string(reinterpret_cast<const char*>(p),
                                      sqlite3_column_bytes(stmt_, col));
  }
  // Parses the blob in column `col` into `msg`.
  absl::Status Proto(int col, google::protobuf::Message* msg) {
    const void* p = sqlite3_column_blob(stmt_, col);
    int n = sqlite3_column_bytes(stmt_, col);
    if (!msg->ParseFromArray(p, n)) {
      return absl::DataLossError(absl::StrCat("sqlite store: corrupt ",
                                              msg->GetTypeName(), " record"));
    }
    return absl::OkStatus();
  }

 private:
  void Check(int rc, int index, absl::Status* status) {
    if (rc != SQLITE_OK && status->ok()) {
      *status = SqlError(db_, rc, absl::StrCat("binding parameter ", index));
    }
  }
  void BindOne(int i, int64_t v, absl::Status* s) { Check(sqlite3_bind_int64(stmt_, i, v), i, s); }
  void BindOne(int i, int v, absl::Status* s) { Check(sqlite3_bind_int64(stmt_, i, v), i, s); }
  void BindOne(int i, bool v, absl::Status* s) { Check(sqlite3_bind_int(stmt_, i, v ? 1 : 0), i, s); }
  void BindOne(int i, const std::string& v, absl::Status* s) {
    Check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT),
          i, s);
  }
  void BindOne(int i, std::nullptr_t, absl::Status* s) { Check(sqlite3_bind_null(stmt_, i), i, s); }
  void BindOne(int i, const google::protobuf::Message& m, absl::Status* s) {
    std::string bytes;
    if (!m.SerializeToString(&bytes)) {
      if (s->ok()) *s = absl::InternalError(absl::StrCat("serializing ", m.GetTypeName()));
      return;
    }
    Check(sqlite3_bind_blob(stmt_, i, bytes.data(), static_cast<int>(bytes.size()),
                            SQLITE_TRANSIENT),
          i, s);
  }

  sqlite3* const db_;
  sqlite3_stmt* const stmt_;
};

class SqliteStore : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override {
    Lock l(&mu_);
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    cache_.clear();
    sqlite3_close(db_);
  }

  absl::Status Init(const std::string& path);

  absl::Status Transaction(const std::function<absl::Status()>& body) override;

  absl::StatusOr<int64_t> CreateCampaign(const v1::Campaign& campaign) override;
  absl::Status UpdateCampaign(const v1::Campaign& campaign) override;
  absl::StatusOr<v1::Campaign> GetCampaign(int64_t id) override;
  absl::StatusOr<std::vector<v1::Campaign>> ListCampaigns() override;
  absl::StatusOr<std::vector<v1::Campaign>> ListCampaignSummaries() override;
  absl::StatusOr<OwnerUsage> GetOwnerUsage(const std::string& owner) override;

  absl::StatusOr<int64_t> CreateThread(const v1::ResearchThread& thread) override;
  absl::Status UpdateThread(const v1::ResearchThread& thread) override;
  absl::StatusOr<std::vector<v1::ResearchThread>> ListThreads(int64_t campaign_id) override;

  absl::StatusOr<int64_t> CreateCandidate(const v1::Candidate& candidate) override;
  absl::Status UpdateCandidate(const v1::Candidate& candidate) override;
  absl::StatusOr<v1::Candidate> GetCandidate(int64_t id) override;
  absl::StatusOr<std::optional<v1::Candidate>> FindCandidateByHash(
      int64_t campaign_id, const std::string& content_hash) override;
  absl::StatusOr<std::vector<v1::Candidate>> ListCandidates(int64_t campaign_id) override;

  absl::StatusOr<int64_t> CreateJob(const v1::Job& job) override;
  absl::Status UpdateJob(const v1::Job& job) override;
  absl::StatusOr<v1::Job> GetJob(int64_t id) override;
  absl::StatusOr<std::vector<v1::Job>> ListJobs(int64_t campaign_id) override;
  absl::StatusOr<std::vector<v1::Job>> ListJobsForVerification(int64_t verification_id) override;
  absl::StatusOr<std::optional<v1::Job>> AcquireJob(const std::string& worker_id, int64_t now_ms,
                                                    int64_t lease_ms, bool allow_avoided,
                                                    int64_t campaign_id) override;
  absl::Status RenewLeases(const std::string& worker_id, const std::vector<int64_t>& job_ids,
                           int64_t deadline_ms, std::vector<int64_t>* lost,
                           const LeaseLimits& limits) override;
  absl::StatusOr<std::vector<v1::Job>> ExpireLeases(int64_t now_ms, int max_attempts) override;
  absl::StatusOr<int64_t> CompleteJob(int64_t job_id, const std::string& worker_id,
                                      const v1::Evaluation& evaluation) override;
  absl::Status FailOpenJobs(int64_t campaign_id) override;

  absl::StatusOr<std::vector<v1::Evaluation>> ListEvaluations(int64_t campaign_id) override;
  absl::StatusOr<std::vector<v1::Evaluation>> ListEvaluationsForCandidate(
      int64_t candidate_id) override;
  absl::StatusOr<std::optional<v1::Evaluation>> GetEvaluationForJob(int64_t job_id) override;
  absl::StatusOr<std::vector<v1::Evaluation>> ListUnprocessedEvaluations() override;
  absl::Status MarkEvaluationProcessed(int64_t evaluation_id) override;

  absl::StatusOr<int64_t> CreateVerification(const v1::Verification& v) override;
  absl::Status UpdateVerification(const v1::Verification& v) override;
  absl::StatusOr<v1::Verification> GetVerification(int64_t id) override;
  absl::StatusOr<std::vector<v1::Verification>> ListVerifications(int64_t campaign_id) override;
  absl::StatusOr<std::vector<v1::Verification>> ListVerificationsForCandidate(
      int64_t candidate_id) override;
  absl::StatusOr<std::optional<v1::Verification>> AcquireVerification(
      const std::string& verifier_id, int64_t now_ms, int64_t lease_ms) override;
  absl::Status UpsertNoiseFloor(const v1::NoiseFloor& floor) override;
  absl::StatusOr<std::vector<v1::NoiseFloor>> ListNoiseFloors(const std::string& problem) override;
  absl::Status UpsertBaseline(const v1::Baseline& baseline) override;
  absl::StatusOr<std::vector<v1::Baseline>> ListBaselines(const std::string& problem_key,
                                                          const std::string& hardware) override;
  absl::StatusOr<int64_t> AddLesson(const v1::Lesson& lesson) override;
  absl::StatusOr<std::vector<v1::Lesson>> ListLessons(const std::string& op_type,
                                                      int64_t campaign_id) override;

  absl::StatusOr<std::vector<JobCount>> CountJobs() override;

  absl::StatusOr<int64_t> AppendEvent(int64_t campaign_id, int64_t unix_ms,
                                      const std::string& text) override;
  absl::StatusOr<std::vector<Event>> ListEvents(int64_t campaign_id, int64_t after_seq,
                                                int limit) override;

  absl::Status UpsertWorker(const v1::WorkerInfo& worker) override;
  absl::StatusOr<std::optional<v1::WorkerInfo>> GetWorker(const std::string& id) override;
  absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers() override;

 private:
  // Runs `body` atomically: in a new transaction, or in a savepoint when this
  // thread is already inside one (so a failing inner body undoes only its own
  // writes; the outer transaction decides whether anything commits). mu_ is
  // recursive, so this may be called with it held.
  absl::Status Atomically(const std::function<absl::Status()>& body);

  // Runs SQL without parameters or results (schema, pragmas, BEGIN/COMMIT).
  absl::Status ExecRaw(const std::string& sql) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A cached prepared statement for `sql`. A caller must not hold two Stmts
  // for the same SQL at once.
  absl::StatusOr<std::unique_ptr<Stmt>> Prepare(const char* sql)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Runs `sql` with `args`; NotFound (naming `what`) when it changed no row.
  template <typename... Args>
  absl::Status ExecChanging(absl::string_view what, const char* sql, const Args&... args)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Runs an INSERT and returns the new row's id.
  template <typename... Args>
  absl::StatusOr<int64_t> Insert(const char* sql, const Args&... args)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Reads rows of (id, data) into messages of type T, setting each id from the
  // row. For T = WorkerInfo the id column is text.
  template <typename T, typename... Args>
  absl::StatusOr<std::vector<T>> Query(const char* sql, const Args&... args)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  template <typename T, typename... Args>
  absl::StatusOr<std::optional<T>> QueryOne(const char* sql, const Args&... args)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Version 8's columns for every campaign written before it.
  absl::Status BackfillCampaignColumns() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::StatusOr<std::optional<v1::Job>> LoadJob(int64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteJob(const v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteVerification(const v1::Verification& v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  RecursiveMutex mu_;
  sqlite3* const db_ ABSL_PT_GUARDED_BY(mu_);
  // Nesting depth of Atomically() on the thread that holds mu_.
  int depth_ ABSL_GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, sqlite3_stmt*> cache_ ABSL_GUARDED_BY(mu_);
  internal::EventTrimSchedule event_trims_;
};

// ---------------------------------------------------------------------------
// Plumbing.

absl::Status SqliteStore::ExecRaw(const std::string& sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    absl::Status s = SqlError(nullptr, rc, absl::StrCat("executing \"", sql.substr(0, 60), "\""));
    return absl::Status(s.code(), absl::StrCat(s.message(), ": ", msg));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Stmt>> SqliteStore::Prepare(const char* sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      return SqlError(db_, rc, absl::StrCat("preparing \"", sql, "\""));
    }
    it = cache_.emplace(sql, stmt).first;
  }
  return std::make_unique<Stmt>(db_, it->second);
}

template <typename... Args>
absl::Status SqliteStore::ExecChanging(absl::string_view what, const char* sql,
                                       const Args&... args) {
  ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt, Prepare(sql));
  RETURN_IF_ERROR(stmt->Bind(args...));
  RETURN_IF_ERROR(stmt->Exec());
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat(what, " not found"));
  return absl::OkStatus();
}

template <typename... Args>
absl::StatusOr<int64_t> SqliteStore::Insert(const char* sql, const Args&... args) {
  ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt, Prepare(sql));
  RETURN_IF_ERROR(stmt->Bind(args...));
  RETURN_IF_ERROR(stmt->Exec());
  return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
}

template <typename T>
void SetId(Stmt& stmt, T* msg) {
  msg->set_id(stmt.Int(0));
}
template <>
void SetId(Stmt& stmt, v1::WorkerInfo* msg) {
  msg->set_id(stmt.Text(0));
}

template <typename T, typename... Args>
absl::StatusOr<std::vector<T>> SqliteStore::Query(const char* sql, const Args&... args) {
  ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt, Prepare(sql));
  RETURN_IF_ERROR(stmt->Bind(args...));
  std::vector<T> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    T msg;
    RETURN_IF_ERROR(stmt->Proto(1, &msg));
    SetId(*stmt, &msg);
    internal::UpgradeRecord(&msg);
    out.push_back(std::move(msg));
  }
  return out;
}

template <typename T, typename... Args>
absl::StatusOr<std::optional<T>> SqliteStore::QueryOne(const char* sql, const Args&... args) {
  ASSIGN_OR_RETURN(std::vector<T> rows, Query<T>(sql, args...));
  if (rows.empty()) return std::optional<T>();
  return std::optional<T>(std::move(rows.front()));
}

absl::Status SqliteStore::Atomically(const std::function<absl::Status()>& body) {
  Lock l(&mu_);
  const bool outer = depth_ == 0;
  const std::string savepoint = absl::StrCat("sp", depth_);
  RETURN_IF_ERROR(ExecRaw(outer ? "BEGIN IMMEDIATE" : absl::StrCat("SAVEPOINT ", savepoint)));
  ++depth_;
  absl::Status status = body();
  --depth_;
  if (outer) {
    if (status.ok()) {
      status = ExecRaw("COMMIT");
      if (status.ok()) return status;
    }
    // Some errors (e.g. SQLITE_FULL) roll back by themselves; only roll back
    // what is still open.
    if (!sqlite3_get_autocommit(db_)) ExecRaw("ROLLBACK").IgnoreError();
    return status;
  }
  if (!status.ok() && !sqlite3_get_autocommit(db_)) {
    ExecRaw(absl::StrCat("ROLLBACK TO ", savepoint)).IgnoreError();
  }
  if (!sqlite3_get_autocommit(db_)) {
    absl::Status released = ExecRaw(absl::StrCat("RELEASE ", savepoint));
    if (status.ok()) status = released;
  }
  return status;
}

absl::Status SqliteStore::Transaction(const std::function<absl::Status()>& body) {
  return Atomically(body);
}

absl::Status SqliteStore::Init(const std::string& path) {
  Lock l(&mu_);
  const bool in_memory = path.empty() || path == ":memory:";
  RETURN_IF_ERROR(ExecRaw("PRAGMA busy_timeout = 10000"));
  {
    // Switching a fresh file to WAL needs it to itself, and SQLite answers
    // BUSY at once rather than waiting when another opener holds it: retry
    // for as long as busy_timeout would have waited.
    std::string mode;
    for (int attempt = 0;; ++attempt) {
      ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt, Prepare("PRAGMA journal_mode = WAL"));
      absl::StatusOr<bool> row = stmt->Step();
      if (absl::IsUnavailable(row.status()) && attempt < 1000) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      if (!row.ok()) return row.status();
      mode = *row ? stmt->Text(0) : "";
      break;
    }
    if (mode != "wal" && !(in_memory && mode == "memory")) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sqlite store: ", path, ": cannot enable WAL journaling (journal_mode is '", mode,
          "'); is the file on a filesystem without shared memory support?"));
    }
  }
  RETURN_IF_ERROR(ExecRaw("PRAGMA synchronous = FULL"));
  RETURN_IF_ERROR(ExecRaw("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"));

  // Migrate one step at a time, each step atomic with its version bump. The
  // version is read inside the write transaction: another process opening
  // the same file (a CLI reading it while the coordinator starts) may have
  // migrated it since, and must not be migrated twice.
  while (true) {
    int version = 0;
    bool done = false;
    absl::Status status = Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
      bool has_row = false;
      {
        ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                         Prepare("SELECT MAX(version), COUNT(*) FROM schema_version"));
        ASSIGN_OR_RETURN(bool row, stmt->Step());
        if (row) {
          version = static_cast<int>(stmt->Int(0));
          has_row = stmt->Int(1) > 0;
        }
      }
      if (version > kSchemaVersion) {
        return absl::FailedPreconditionError(absl::StrCat(
            "sqlite store: ", path, " has schema version ", version,
            ", newer than the version this build knows (", kSchemaVersion, ")"));
      }
      if (version == kSchemaVersion) {
        done = true;
        return absl::OkStatus();
      }
      RETURN_IF_ERROR(ExecRaw(kMigrations[version]));
      if (version + 1 == kCampaignColumnsVersion) RETURN_IF_ERROR(BackfillCampaignColumns());
      if (has_row) return ExecRaw(absl::StrCat("UPDATE schema_version SET version = ", version + 1));
      return ExecRaw(absl::StrCat("INSERT INTO schema_version (version) VALUES (", version + 1, ")"));
    });
    if (!status.ok() && version > kSchemaVersion) return status;
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("migrating ", path, " to schema version ",
                                                      version + 1, ": ", status.message()));
    }
    if (done) break;
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// Campaigns.

absl::StatusOr<int64_t> SqliteStore::CreateCampaign(const v1::Campaign& campaign) {
  int64_t id = 0;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    v1::Campaign c = campaign;
    c.clear_id();
    ASSIGN_OR_RETURN(id, Insert("INSERT INTO campaigns (state, data, owner, spec_bytes, summary) "
                                "VALUES (?, ?, ?, ?, ?)",
                                static_cast<int>(c.state()), c, c.spec().owner(),
                                internal::SpecBytes(c), internal::CampaignSummary(c)));
    return absl::OkStatus();
  }));
  return id;
}

absl::Status SqliteStore::UpdateCampaign(const v1::Campaign& campaign) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    v1::Campaign c = campaign;
    c.clear_id();
    return ExecChanging(absl::StrCat("campaign ", campaign.id()),
                        "UPDATE campaigns SET state = ?, data = ?, owner = ?, spec_bytes = ?, "
                        "summary = ? WHERE id = ?",
                        static_cast<int>(c.state()), c, c.spec().owner(),
                        internal::SpecBytes(c), internal::CampaignSummary(c), campaign.id());
  });
}

absl::Status SqliteStore::BackfillCampaignColumns() {
  ASSIGN_OR_RETURN(std::vector<v1::Campaign> campaigns,
                   Query<v1::Campaign>("SELECT id, data FROM campaigns ORDER BY id"));
  for (const v1::Campaign& c : campaigns) RETURN_IF_ERROR(UpdateCampaign(c));
  return absl::OkStatus();
}

absl::StatusOr<v1::Campaign> SqliteStore::GetCampaign(int64_t id) {
  Lock l(&mu_);
  ASSIGN_OR_RETURN(std::optional<v1::Campaign> c,
                   QueryOne<v1::Campaign>("SELECT id, data FROM campaigns WHERE id = ?", id));
  if (!c) return absl::NotFoundError(absl::StrCat("campaign ", id, " not found"));
  return *std::move(c);
}

absl::StatusOr<std::vector<v1::Campaign>> SqliteStore::ListCampaigns() {
  Lock l(&mu_);
  return Query<v1::Campaign>("SELECT id, data FROM campaigns ORDER BY id");
}

absl::StatusOr<std::vector<v1::Campaign>> SqliteStore::ListCampaignSummaries() {
  Lock l(&mu_);
  return Query<v1::Campaign>("SELECT id, summary FROM campaigns ORDER BY id");
}

absl::StatusOr<Store::OwnerUsage> SqliteStore::GetOwnerUsage(const std::string& owner) {
  Lock l(&mu_);
  OwnerUsage usage;
  {
    ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                     Prepare("SELECT COUNT(*), COALESCE(SUM(spec_bytes), 0) FROM campaigns "
                             "WHERE owner = ? AND state IN (?, ?)"));
    RETURN_IF_ERROR(stmt->Bind(owner, static_cast<int>(v1::CAMPAIGN_RUNNING),
                               static_cast<int>(v1::CAMPAIGN_PAUSED)));
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (row) {
      usage.active_campaigns = stmt->Int(0);
      usage.spec_bytes = stmt->Int(1);
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                   Prepare("SELECT COUNT(*) FROM jobs j JOIN campaigns c ON c.id = j.campaign_id "
                           "WHERE c.owner = ? AND c.state IN (?, ?) AND j.state IN (?, ?)"));
  RETURN_IF_ERROR(stmt->Bind(owner, static_cast<int>(v1::CAMPAIGN_RUNNING),
                             static_cast<int>(v1::CAMPAIGN_PAUSED),
                             static_cast<int>(v1::JOB_QUEUED), static_cast<int>(v1::JOB_LEASED)));
  ASSIGN_OR_RETURN(bool row, stmt->Step());
  if (row) usage.open_jobs = stmt->Int(0);
  return usage;
}

// ---------------------------------------------------------------------------
// Research threads.

absl::StatusOr<int64_t> SqliteStore::CreateThread(const v1::ResearchThread& thread) {
  int64_t id = 0;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    v1::ResearchThread t = thread;
    t.clear_id();
    ASSIGN_OR_RETURN(id, Insert("INSERT INTO threads (campaign_id, idx, data) VALUES (?, ?, ?)",
                                t.campaign_id(), t.index(), t));
    return absl::OkStatus();
  }));
  return id;
}

absl::Status SqliteStore::UpdateThread(const v1::ResearchThread& thread) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    v1::ResearchThread t = thread;
    t.clear_id();
    return ExecChanging(absl::StrCat("research thread ", thread.id()),
                        "UPDATE threads SET campaign_id = ?, idx = ?, data = ? WHERE id = ?",
                        t.campaign_id(), t.index(), t, thread.id());
  });
}

absl::StatusOr<std::vector<v1::ResearchThread>> SqliteStore::ListThreads(int64_t campaign_id) {
  Lock l(&mu_);
  return Query<v1::ResearchThread>(
      "SELECT id, data FROM threads WHERE campaign_id = ? ORDER BY idx, id", campaign_id);
}

// ---------------------------------------------------------------------------
// Candidates.

// An empty content hash is stored as NULL, which SQLite never treats as a
// duplicate: only real hashes are dedup keys.
absl::StatusOr<int64_t> SqliteStore::CreateCandidate(const v1::Candidate& candidate) {
  int64_t id = 0;
  absl::Status status = Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    v1::Candidate c = candidate;
    c.clear_id();
    const char* sql = "INSERT INTO candidates (campaign_id, content_hash, data) VALUES (?, ?, ?)";
    absl::StatusOr<int64_t> inserted =
        c.content_hash().empty() ? Insert(sql, c.campaign_id(), nullptr, c)
                                 : Insert(sql, c.campaign_id(), c.content_hash(), c);
    if (!inserted.ok()) return inserted.status();
    id = *inserted;
    return absl::OkStatus();
  });
  if (absl::IsAlreadyExists(status)) return DuplicateCandidateError(candidate);
  if (!status.ok()) return status;
  return id;
}

absl::Status SqliteStore::UpdateCandidate(const v1::Candidate& candidate) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    v1::Candidate c = candidate;
    c.clear_id();
    const char* sql =
        "UPDATE candidates SET campaign_id = ?, content_hash = ?, data = ? WHERE id = ?";
    std::string what = absl::StrCat("candidate ", candidate.id());
    return c.content_hash().empty()
               ? ExecChanging(what, sql, c.campaign_id(), nullptr, c, candidate.id())
               : ExecChanging(what, sql, c.campaign_id(), c.content_hash(), c, candidate.id());
  });
}

absl::StatusOr<v1::Candidate> SqliteStore::GetCandidate(int64_t id) {
  Lock l(&mu_);
  ASSIGN_OR_RETURN(std::optional<v1::Candidate> c,
                   QueryOne<v1::Candidate>("SELECT id, data FROM candidates WHERE id = ?", id));
  if (!c) return absl::NotFoundError(absl::StrCat("candidate ", id, " not found"));
  return *std::move(c);
}

absl::StatusOr<std::optional<v1::Candidate>> SqliteStore::FindCandidateByHash(
    int64_t campaign_id, const std::string& content_hash) {
  Lock l(&mu_);
  return QueryOne<v1::Candidate>(
      "SELECT id, data FROM candidates WHERE campaign_id = ? AND content_hash = ?", campaign_id,
      content_hash);
}

absl::StatusOr<std::vector<v1::Candidate>> SqliteStore::ListCandidates(int64_t campaign_id) {
  Lock l(&mu_);
  return Query<v1::Candidate>("SELECT id, data FROM candidates WHERE campaign_id = ? ORDER BY id",
                              campaign_id);
}

// ---------------------------------------------------------------------------
// Jobs.

absl::StatusOr<int64_t> SqliteStore::CreateJob(const v1::Job& job) {
  int64_t id = 0;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    v1::Job j = StoredJob(job);
    ASSIGN_OR_RETURN(
        id, Insert("INSERT INTO jobs (campaign_id, candidate_id, kind, state, verification_id, "
                   "worker_id, lease_deadline, attempts, avoid_worker_id, data) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   j.campaign_id(), j.candidate_id(), static_cast<int>(j.kind()),
                   static_cast<int>(j.state()), j.verification_id(), j.worker_id(),
                   j.lease_deadline_unix_ms(), j.attempts(), j.avoid_worker_id(), j));
    return absl::OkStatus();
  }));
  return id;
}

absl::Status SqliteStore::WriteJob(const v1::Job& job) {
  v1::Job j = StoredJob(job);
  return ExecChanging(absl::StrCat("job ", job.id()),
                      "UPDATE jobs SET campaign_id = ?, candidate_id = ?, kind = ?, state = ?, "
                      "verification_id = ?, worker_id = ?, lease_deadline = ?, attempts = ?, "
                      "avoid_worker_id = ?, data = ? WHERE id = ?",
                      j.campaign_id(), j.candidate_id(), static_cast<int>(j.kind()),
                      static_cast<int>(j.state()), j.verification_id(), j.worker_id(),
                      j.lease_deadline_unix_ms(), j.attempts(), j.avoid_worker_id(), j, job.id());
}

absl::StatusOr<std::optional<v1::Job>> SqliteStore::LoadJob(int64_t id) {
  return QueryOne<v1::Job>("SELECT id, data FROM jobs WHERE id = ?", id);
}

absl::Status SqliteStore::UpdateJob(const v1::Job& job) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return WriteJob(job); });
}

absl::StatusOr<v1::Job> SqliteStore::GetJob(int64_t id) {
  Lock l(&mu_);
  ASSIGN_OR_RETURN(std::optional<v1::Job> j, LoadJob(id));
  if (!j) return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  return *std::move(j);
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::ListJobs(int64_t campaign_id) {
  Lock l(&mu_);
  return Query<v1::Job>("SELECT id, data FROM jobs WHERE campaign_id = ? ORDER BY id",
                        campaign_id);
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::ListJobsForVerification(
    int64_t verification_id) {
  Lock l(&mu_);
  return Query<v1::Job>("SELECT id, data FROM jobs WHERE verification_id = ? ORDER BY id",
                        verification_id);
}

absl::StatusOr<std::optional<v1::Job>> SqliteStore::AcquireJob(const std::string& worker_id,
                                                               int64_t now_ms, int64_t lease_ms,
                                                               bool allow_avoided,
                                                               int64_t campaign_id) {
  std::optional<v1::Job> job;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    if (campaign_id > 0) {
      // Replays first, then evaluations: each an ordered walk of
      // jobs_queue_by_campaign that stops at the first eligible job.
      for (int kind : {static_cast<int>(v1::JOB_REPLAY), static_cast<int>(v1::JOB_EVALUATE)}) {
        ASSIGN_OR_RETURN(
            job, QueryOne<v1::Job>(
                     "SELECT j.id, j.data FROM jobs j JOIN campaigns c ON c.id = j.campaign_id "
                     "WHERE j.campaign_id = ? AND j.state = ? AND j.kind = ? AND c.state = ? "
                     "AND (? OR j.avoid_worker_id = '' OR j.avoid_worker_id <> ?) "
                     "ORDER BY j.id LIMIT 1",
                     campaign_id, static_cast<int>(v1::JOB_QUEUED), kind,
                     static_cast<int>(v1::CAMPAIGN_RUNNING), allow_avoided, worker_id));
        if (job) break;
      }
    } else {
      ASSIGN_OR_RETURN(
          job, QueryOne<v1::Job>(
                   "SELECT j.id, j.data FROM jobs j JOIN campaigns c ON c.id = j.campaign_id "
                   "WHERE j.state = ? AND c.state = ? "
                   "AND (? OR j.avoid_worker_id = '' OR j.avoid_worker_id <> ?) "
                   "ORDER BY (j.kind = ?) DESC, j.id LIMIT 1",
                   static_cast<int>(v1::JOB_QUEUED), static_cast<int>(v1::CAMPAIGN_RUNNING),
                   allow_avoided, worker_id, static_cast<int>(v1::JOB_REPLAY)));
    }
    if (!job) return absl::OkStatus();
    LeaseJob(&*job, worker_id, now_ms, lease_ms);
    return WriteJob(*job);
  }));
  return job;
}

absl::Status SqliteStore::RenewLeases(const std::string& worker_id,
                                      const std::vector<int64_t>& job_ids, int64_t deadline_ms,
                                      std::vector<int64_t>* lost, const LeaseLimits& limits) {
  if (job_ids.empty()) return absl::OkStatus();
  std::vector<int64_t> lost_here;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    lost_here.clear();
    for (int64_t id : job_ids) {
      ASSIGN_OR_RETURN(std::optional<v1::Job> job, LoadJob(id));
      if (!job || job->state() != v1::JOB_LEASED || job->worker_id() != worker_id) {
        lost_here.push_back(id);
        continue;
      }
      const int64_t renewed = internal::RenewedDeadline(*job, deadline_ms, limits);
      job->set_lease_deadline_unix_ms(renewed);
      RETURN_IF_ERROR(WriteJob(*job));
      if (renewed < deadline_ms) lost_here.push_back(id);  // at its wall limit
    }
    return absl::OkStatus();
  }));
  // Only report losses once the renewals are committed.
  if (lost != nullptr) lost->insert(lost->end(), lost_here.begin(), lost_here.end());
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Job>> SqliteStore::ExpireLeases(int64_t now_ms,
                                                               int max_attempts) {
  std::vector<v1::Job> changed;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    ASSIGN_OR_RETURN(changed, Query<v1::Job>("SELECT id, data FROM jobs "
                                             "WHERE state = ? AND lease_deadline < ? ORDER BY id",
                                             static_cast<int>(v1::JOB_LEASED), now_ms));
    for (v1::Job& job : changed) {
      ExpireLease(&job, max_attempts);
      RETURN_IF_ERROR(WriteJob(job));
    }
    return absl::OkStatus();
  }));
  return changed;
}

absl::StatusOr<int64_t> SqliteStore::CompleteJob(int64_t job_id, const std::string& worker_id,
                                                 const v1::Evaluation& evaluation) {
  int64_t id = 0;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    ASSIGN_OR_RETURN(std::optional<v1::Job> job, LoadJob(job_id));
    if (!job) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
    ASSIGN_OR_RETURN(v1::Evaluation e, CompleteLeasedJob(&*job, worker_id, evaluation));
    ASSIGN_OR_RETURN(id, Insert("INSERT INTO evaluations "
                                "(job_id, campaign_id, candidate_id, processed, data) "
                                "VALUES (?, ?, ?, 0, ?)",
                                job_id, e.campaign_id(), e.candidate_id(), e));
    return WriteJob(*job);
  }));
  return id;
}

absl::Status SqliteStore::FailOpenJobs(int64_t campaign_id) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    ASSIGN_OR_RETURN(std::vector<v1::Job> open,
                     Query<v1::Job>("SELECT id, data FROM jobs "
                                    "WHERE campaign_id = ? AND state IN (?, ?) ORDER BY id",
                                    campaign_id, static_cast<int>(v1::JOB_QUEUED),
                                    static_cast<int>(v1::JOB_LEASED)));
    for (v1::Job& job : open) {
      job.set_state(v1::JOB_FAILED);
      job.clear_lease_deadline_unix_ms();
      RETURN_IF_ERROR(WriteJob(job));
    }
    return absl::OkStatus();
  });
}

// ---------------------------------------------------------------------------
// Evaluations.

absl::StatusOr<std::vector<v1::Evaluation>> SqliteStore::ListEvaluations(int64_t campaign_id) {
  Lock l(&mu_);
  return Query<v1::Evaluation>(
      "SELECT id, data FROM evaluations WHERE campaign_id = ? ORDER BY id", campaign_id);
}

absl::StatusOr<std::vector<v1::Evaluation>> SqliteStore::ListEvaluationsForCandidate(
    int64_t candidate_id) {
  Lock l(&mu_);
  return Query<v1::Evaluation>(
      "SELECT id, data FROM evaluations WHERE candidate_id = ? ORDER BY id", candidate_id);
}

absl::StatusOr<std::optional<v1::Evaluation>> SqliteStore::GetEvaluationForJob(int64_t job_id) {
  Lock l(&mu_);
  return QueryOne<v1::Evaluation>("SELECT id, data FROM evaluations WHERE job_id = ?", job_id);
}

absl::StatusOr<std::vector<v1::Evaluation>> SqliteStore::ListUnprocessedEvaluations() {
  Lock l(&mu_);
  return Query<v1::Evaluation>(
      "SELECT id, data FROM evaluations WHERE processed = 0 ORDER BY id");
}

absl::Status SqliteStore::MarkEvaluationProcessed(int64_t evaluation_id) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return ExecChanging(absl::StrCat("evaluation ", evaluation_id),
                        "UPDATE evaluations SET processed = 1 WHERE id = ?", evaluation_id);
  });
}

// ---------------------------------------------------------------------------
// Verifications.

absl::StatusOr<int64_t> SqliteStore::CreateVerification(const v1::Verification& v) {
  int64_t id = 0;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    v1::Verification s = v;
    s.clear_id();
    ASSIGN_OR_RETURN(id, Insert("INSERT INTO verifications (campaign_id, candidate_id, outcome, "
                                "verifier_id, lease_deadline, data) VALUES (?, ?, ?, ?, ?, ?)",
                                s.campaign_id(), s.candidate_id(), static_cast<int>(s.outcome()),
                                s.verifier_id(), s.lease_deadline_unix_ms(), s));
    return absl::OkStatus();
  }));
  return id;
}

absl::Status SqliteStore::WriteVerification(const v1::Verification& v) {
  v1::Verification s = v;
  s.clear_id();
  return ExecChanging(absl::StrCat("verification ", v.id()),
                      "UPDATE verifications SET campaign_id = ?, candidate_id = ?, outcome = ?, "
                      "verifier_id = ?, lease_deadline = ?, data = ? WHERE id = ?",
                      s.campaign_id(), s.candidate_id(), static_cast<int>(s.outcome()),
                      s.verifier_id(), s.lease_deadline_unix_ms(), s, v.id());
}

absl::Status SqliteStore::UpdateVerification(const v1::Verification& v) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return WriteVerification(v); });
}

absl::StatusOr<v1::Verification> SqliteStore::GetVerification(int64_t id) {
  Lock l(&mu_);
  ASSIGN_OR_RETURN(
      std::optional<v1::Verification> v,
      QueryOne<v1::Verification>("SELECT id, data FROM verifications WHERE id = ?", id));
  if (!v) return absl::NotFoundError(absl::StrCat("verification ", id, " not found"));
  return *std::move(v);
}

absl::StatusOr<std::vector<v1::Verification>> SqliteStore::ListVerifications(
    int64_t campaign_id) {
  Lock l(&mu_);
  return Query<v1::Verification>(
      "SELECT id, data FROM verifications WHERE campaign_id = ? ORDER BY id", campaign_id);
}

absl::StatusOr<std::vector<v1::Verification>> SqliteStore::ListVerificationsForCandidate(
    int64_t candidate_id) {
  Lock l(&mu_);
  return Query<v1::Verification>(
      "SELECT id, data FROM verifications WHERE candidate_id = ? ORDER BY id", candidate_id);
}

absl::StatusOr<std::optional<v1::Verification>> SqliteStore::AcquireVerification(
    const std::string& verifier_id, int64_t now_ms, int64_t lease_ms) {
  std::optional<v1::Verification> v;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    ASSIGN_OR_RETURN(
        v, QueryOne<v1::Verification>(
               "SELECT v.id, v.data FROM verifications v JOIN campaigns c "
               "ON c.id = v.campaign_id WHERE v.outcome = ? AND c.state = ? "
               "AND (v.lease_deadline = 0 OR v.lease_deadline < ?) "
               "AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.verification_id = v.id "
               "AND j.state IN (?, ?)) ORDER BY v.id LIMIT 1",
               static_cast<int>(v1::VERDICT_PENDING), static_cast<int>(v1::CAMPAIGN_RUNNING),
               now_ms, static_cast<int>(v1::JOB_QUEUED), static_cast<int>(v1::JOB_LEASED)));
    if (!v) return absl::OkStatus();
    v->set_verifier_id(verifier_id);
    v->set_lease_deadline_unix_ms(now_ms + lease_ms);
    return WriteVerification(*v);
  }));
  return v;
}

// ---------------------------------------------------------------------------
// Noise floors.

absl::Status SqliteStore::UpsertNoiseFloor(const v1::NoiseFloor& floor) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                     Prepare("INSERT INTO noise_floors (problem, workload, hardware, data) "
                             "VALUES (?, ?, ?, ?) ON CONFLICT (problem, workload, hardware) "
                             "DO UPDATE SET data = excluded.data"));
    RETURN_IF_ERROR(stmt->Bind(floor.problem(), floor.workload(), floor.hardware(), floor));
    return stmt->Exec();
  });
}

absl::StatusOr<std::vector<Store::JobCount>> SqliteStore::CountJobs() {
  Lock l(&mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                   Prepare("SELECT campaign_id, state, kind, COUNT(*) FROM jobs "
                           "GROUP BY campaign_id, state, kind ORDER BY campaign_id, state, kind"));
  std::vector<JobCount> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    out.push_back(JobCount{stmt->Int(0), static_cast<v1::JobState>(stmt->Int(1)),
                           static_cast<v1::JobKind>(stmt->Int(2)), stmt->Int(3)});
  }
  return out;
}

absl::StatusOr<std::vector<v1::NoiseFloor>> SqliteStore::ListNoiseFloors(
    const std::string& problem) {
  Lock l(&mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                   Prepare("SELECT data FROM noise_floors WHERE problem = ? "
                           "ORDER BY workload, hardware"));
  RETURN_IF_ERROR(stmt->Bind(problem));
  std::vector<v1::NoiseFloor> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    v1::NoiseFloor f;
    RETURN_IF_ERROR(stmt->Proto(0, &f));
    out.push_back(std::move(f));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Baselines.

absl::Status SqliteStore::UpsertBaseline(const v1::Baseline& baseline) {
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    ASSIGN_OR_RETURN(
        std::unique_ptr<Stmt> stmt,
        Prepare("INSERT INTO baselines (problem_key, hardware, workload_key, software, data) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (problem_key, hardware, workload_key, software) "
                "DO UPDATE SET data = excluded.data"));
    RETURN_IF_ERROR(stmt->Bind(baseline.problem_key(), baseline.hardware(),
                               baseline.workload_key(), baseline.software(), baseline));
    return stmt->Exec();
  });
}

absl::StatusOr<std::vector<v1::Baseline>> SqliteStore::ListBaselines(
    const std::string& problem_key, const std::string& hardware) {
  Lock l(&mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                   Prepare("SELECT data FROM baselines WHERE problem_key = ? "
                           "AND (? = '' OR hardware = ?) "
                           "ORDER BY hardware, workload_key, software"));
  RETURN_IF_ERROR(stmt->Bind(problem_key, hardware, hardware));
  std::vector<v1::Baseline> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    v1::Baseline b;
    RETURN_IF_ERROR(stmt->Proto(0, &b));
    out.push_back(std::move(b));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Lessons.

absl::StatusOr<int64_t> SqliteStore::AddLesson(const v1::Lesson& lesson) {
  int64_t id = 0;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    v1::Lesson s = lesson;
    s.clear_id();
    ASSIGN_OR_RETURN(id, Insert("INSERT INTO lessons (campaign_id, op_type, data) VALUES (?, ?, ?)",
                                s.campaign_id(), s.op_type(), s));
    return absl::OkStatus();
  }));
  return id;
}

absl::StatusOr<std::vector<v1::Lesson>> SqliteStore::ListLessons(const std::string& op_type,
                                                                 int64_t campaign_id) {
  Lock l(&mu_);
  if (campaign_id > 0)
    return Query<v1::Lesson>(
        "SELECT id, data FROM lessons WHERE op_type = ? AND campaign_id = ? ORDER BY id",
        op_type, campaign_id);
  return Query<v1::Lesson>("SELECT id, data FROM lessons WHERE op_type = ? ORDER BY id", op_type);
}

// ---------------------------------------------------------------------------
// Events.

absl::StatusOr<int64_t> SqliteStore::AppendEvent(int64_t campaign_id, int64_t unix_ms,
                                                 const std::string& text) {
  int64_t seq = 0;
  RETURN_IF_ERROR(Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    ASSIGN_OR_RETURN(seq, Insert("INSERT INTO events (campaign_id, unix_ms, text) "
                                 "VALUES (?, ?, ?)",
                                 campaign_id, unix_ms, internal::StoredEventText(text)));
    if (!event_trims_.Due(campaign_id)) return absl::OkStatus();
    ASSIGN_OR_RETURN(std::unique_ptr<Stmt> trim,
                     Prepare("DELETE FROM events WHERE campaign_id = ? AND seq <= "
                             "(SELECT seq FROM events WHERE campaign_id = ? "
                             "ORDER BY seq DESC LIMIT 1 OFFSET ?)"));
    RETURN_IF_ERROR(trim->Bind(campaign_id, campaign_id, kMaxEventsPerCampaign));
    return trim->Exec();
  }));
  return seq;
}

absl::StatusOr<std::vector<Store::Event>> SqliteStore::ListEvents(int64_t campaign_id,
                                                                  int64_t after_seq, int limit) {
  std::vector<Event> out;
  if (limit <= 0) return out;
  Lock l(&mu_);
  ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                   Prepare("SELECT seq, unix_ms, text FROM events "
                           "WHERE campaign_id = ? AND seq > ? ORDER BY seq LIMIT ?"));
  RETURN_IF_ERROR(stmt->Bind(campaign_id, after_seq, limit));
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt->Step());
    if (!row) break;
    out.push_back(Event{stmt->Int(0), stmt->Int(1), stmt->Text(2)});
  }
  return out;
}

// ---------------------------------------------------------------------------
// Workers.

absl::Status SqliteStore::UpsertWorker(const v1::WorkerInfo& worker) {
  if (worker.id().empty()) return absl::InvalidArgumentError("worker has no id");
  return Atomically([&]() ABSL_NO_THREAD_SAFETY_ANALYSIS -> absl::Status {
    v1::WorkerInfo w = worker;
    w.clear_id();
    ASSIGN_OR_RETURN(std::unique_ptr<Stmt> stmt,
                     Prepare("INSERT INTO workers (id, data) VALUES (?, ?) "
                             "ON CONFLICT (id) DO UPDATE SET data = excluded.data"));
    RETURN_IF_ERROR(stmt->Bind(worker.id(), w));
    return stmt->Exec();
  });
}

absl::StatusOr<std::optional<v1::WorkerInfo>> SqliteStore::GetWorker(const std::string& id) {
  Lock l(&mu_);
  return QueryOne<v1::WorkerInfo>("SELECT id, data FROM workers WHERE id = ?", id);
}

absl::StatusOr<std::vector<v1::WorkerInfo>> SqliteStore::ListWorkers() {
  Lock l(&mu_);
  return Query<v1::WorkerInfo>("SELECT id, data FROM workers ORDER BY id");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  // FULLMUTEX is cheap insurance; we serialise access ourselves as well.
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = SqlError(db, rc, absl::StrCat("opening ", path));
    sqlite3_close(db);
    return s;
  }
  sqlite3_extended_result_codes(db, 1);
  auto store = std::make_unique<SqliteStore>(db);
  RETURN_IF_ERROR(store->Init(path));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace ratchet::store
