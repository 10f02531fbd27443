// The coordinator's durable state behind one interface (docs/architecture.md, "Store").
//
// Records are the API's own protobuf messages; a backend stores each one whole
// (serialized) beside the columns it needs to query on. Every mutating call is
// durable when it returns OK (SQLite: WAL with synchronous=FULL). Calls made
// inside Transaction() join that transaction and become durable together.
//
// Thread safety: a Store may be called from many threads at once.
#ifndef RATCHET_COORDINATOR_STORE_STORE_H_
#define RATCHET_COORDINATOR_STORE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::store {

namespace v1 = ::ratchet::v1;

// What a job's wall limit depends on beyond the job record, which keeps no
// harness settings (common/job_wall.h; Store::RenewLeases).
struct LeaseLimits {
  int jobs_per_gpu = 1;  // the worker's jobs sharing one GPU
  // Harness timeout by campaign; a campaign not here counts 600 s.
  std::map<int64_t, double> timeout_seconds;
};

class Store {
 public:
  virtual ~Store() = default;

  // Runs `body` in one transaction: everything it writes through this store
  // commits together when it returns OK and is rolled back otherwise (the
  // body's status is returned). Nested calls join the outer transaction.
  // Other threads' calls wait until the transaction ends.
  virtual absl::Status Transaction(const std::function<absl::Status()>& body) = 0;

  // ---- Campaigns. Create* ignore the id in the message and return the new one.
  virtual absl::StatusOr<int64_t> CreateCampaign(const v1::Campaign& campaign) = 0;
  virtual absl::Status UpdateCampaign(const v1::Campaign& campaign) = 0;  // NotFound
  virtual absl::StatusOr<v1::Campaign> GetCampaign(int64_t id) = 0;       // NotFound
  virtual absl::StatusOr<std::vector<v1::Campaign>> ListCampaigns() = 0;  // by id
  // Every campaign as a listing shows it, by id: without its problem's files
  // and its baseline (megabytes each), which this does not read.
  virtual absl::StatusOr<std::vector<v1::Campaign>> ListCampaignSummaries() = 0;

  // What one client's RUNNING or PAUSED campaigns hold, for the per-client
  // limits (docs/security.md); read from columns and counts, no records.
  struct OwnerUsage {
    int64_t active_campaigns = 0;
    int64_t spec_bytes = 0;  // their specs, serialized
    int64_t open_jobs = 0;   // their QUEUED or LEASED jobs
  };
  virtual absl::StatusOr<OwnerUsage> GetOwnerUsage(const std::string& owner) = 0;

  // ---- Research threads.
  virtual absl::StatusOr<int64_t> CreateThread(const v1::ResearchThread& thread) = 0;
  virtual absl::Status UpdateThread(const v1::ResearchThread& thread) = 0;
  virtual absl::StatusOr<std::vector<v1::ResearchThread>> ListThreads(
      int64_t campaign_id) = 0;  // by index

  // ---- Candidates. (campaign_id, content_hash) is unique: CreateCandidate
  // returns AlreadyExists for a duplicate.
  virtual absl::StatusOr<int64_t> CreateCandidate(const v1::Candidate& candidate) = 0;
  virtual absl::Status UpdateCandidate(const v1::Candidate& candidate) = 0;
  virtual absl::StatusOr<v1::Candidate> GetCandidate(int64_t id) = 0;
  virtual absl::StatusOr<std::optional<v1::Candidate>> FindCandidateByHash(
      int64_t campaign_id, const std::string& content_hash) = 0;
  virtual absl::StatusOr<std::vector<v1::Candidate>> ListCandidates(
      int64_t campaign_id) = 0;  // by id

  // ---- Jobs. Stored without `problem`, `solution`, `harness`, `device`
  // (the coordinator fills those in from the campaign and candidate).
  virtual absl::StatusOr<int64_t> CreateJob(const v1::Job& job) = 0;
  virtual absl::Status UpdateJob(const v1::Job& job) = 0;
  virtual absl::StatusOr<v1::Job> GetJob(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<v1::Job>> ListJobs(int64_t campaign_id) = 0;
  virtual absl::StatusOr<std::vector<v1::Job>> ListJobsForVerification(
      int64_t verification_id) = 0;

  // Atomically leases one QUEUED job of a RUNNING campaign to `worker_id`:
  // state LEASED, worker_id set, lease deadline now_ms + lease_ms, attempts+1.
  // Replays go before evaluations, then oldest first. A job whose
  // avoid_worker_id equals worker_id is skipped unless allow_avoided.
  // campaign_id > 0 takes the job from that campaign only (the coordinator's
  // scheduler picks the campaign; an index on (campaign, queue order) keeps
  // this one index probe however long the queue). Returns nullopt when there
  // is none.
  virtual absl::StatusOr<std::optional<v1::Job>> AcquireJob(
      const std::string& worker_id, int64_t now_ms, int64_t lease_ms,
      bool allow_avoided, int64_t campaign_id = 0) = 0;

  // Moves the deadline of each listed job still LEASED to `worker_id` to
  // `deadline_ms`, but never past the job's wall limit (record_rules.h,
  // RenewedDeadline). Ids that are not (any more) leased to it, or are at
  // their limit, are appended to `lost`.
  virtual absl::Status RenewLeases(const std::string& worker_id,
                                   const std::vector<int64_t>& job_ids,
                                   int64_t deadline_ms,
                                   std::vector<int64_t>* lost,
                                   const LeaseLimits& limits = {}) = 0;

  // Every LEASED job whose deadline is before now_ms goes back to QUEUED
  // (worker cleared) or, if it already had max_attempts attempts, to FAILED.
  // Returns the jobs it changed, in their new state.
  virtual absl::StatusOr<std::vector<v1::Job>> ExpireLeases(int64_t now_ms,
                                                            int max_attempts) = 0;

  // Atomically records the evaluation of a job LEASED to `worker_id` and marks
  // the job DONE; returns the evaluation's id. The evaluation is stored
  // unprocessed. FailedPrecondition when the job is not leased to that worker
  // (lease lapsed, job requeued or failed); AlreadyExists when it is already
  // DONE (a duplicate report: nothing changes).
  virtual absl::StatusOr<int64_t> CompleteJob(int64_t job_id, const std::string& worker_id,
                                              const v1::Evaluation& evaluation) = 0;

  // Jobs per (campaign, state, kind), without reading the records: for
  // gauges and the scheduler's leased counts.
  struct JobCount {
    int64_t campaign_id = 0;
    v1::JobState state = v1::JOB_STATE_UNSPECIFIED;
    v1::JobKind kind = v1::JOB_KIND_UNSPECIFIED;
    int64_t count = 0;
  };
  virtual absl::StatusOr<std::vector<JobCount>> CountJobs() = 0;

  // Every QUEUED or LEASED job of the campaign becomes FAILED.
  virtual absl::Status FailOpenJobs(int64_t campaign_id) = 0;

  // ---- Evaluations.
  virtual absl::StatusOr<std::vector<v1::Evaluation>> ListEvaluations(
      int64_t campaign_id) = 0;  // by id
  virtual absl::StatusOr<std::vector<v1::Evaluation>> ListEvaluationsForCandidate(
      int64_t candidate_id) = 0;
  virtual absl::StatusOr<std::optional<v1::Evaluation>> GetEvaluationForJob(
      int64_t job_id) = 0;
  // Evaluations the coordinator has not yet applied to its research state.
  virtual absl::StatusOr<std::vector<v1::Evaluation>> ListUnprocessedEvaluations() = 0;
  virtual absl::Status MarkEvaluationProcessed(int64_t evaluation_id) = 0;

  // ---- Verifications.
  virtual absl::StatusOr<int64_t> CreateVerification(const v1::Verification& v) = 0;
  virtual absl::Status UpdateVerification(const v1::Verification& v) = 0;
  virtual absl::StatusOr<v1::Verification> GetVerification(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<v1::Verification>> ListVerifications(
      int64_t campaign_id) = 0;
  virtual absl::StatusOr<std::vector<v1::Verification>> ListVerificationsForCandidate(
      int64_t candidate_id) = 0;
  // Atomically hands one PENDING verification of a RUNNING campaign whose
  // verifier lease is unset or lapsed (before now_ms) and none of whose
  // replay jobs (jobs naming it) is still queued or leased, to `verifier_id`,
  // with deadline now_ms + lease_ms. Oldest first. nullopt when there is none.
  // A claim waiting for its replays is thus state of the jobs table alone and
  // survives a restart.
  virtual absl::StatusOr<std::optional<v1::Verification>> AcquireVerification(
      const std::string& verifier_id, int64_t now_ms, int64_t lease_ms) = 0;

  // ---- Noise floors, one per (problem, workload, hardware) (noise_floor.h).
  // Upsert replaces the record with the same key. A backend without them
  // answers Unimplemented and the coordinator judges without stored floors.
  virtual absl::Status UpsertNoiseFloor(const v1::NoiseFloor& floor) {
    return absl::UnimplementedError("this store keeps no noise floors");
  }
  // Every floor of `problem`, by workload then hardware.
  virtual absl::StatusOr<std::vector<v1::NoiseFloor>> ListNoiseFloors(
      const std::string& problem) {
    return absl::UnimplementedError("this store keeps no noise floors");
  }

  // ---- Baselines: T_b per (problem_key, workload_key, hardware, software)
  // (docs/cluster.md, "Baselines"). Upsert replaces the record with the same
  // key. A backend without them answers Unimplemented and every harness run
  // times the reference itself.
  virtual absl::Status UpsertBaseline(const v1::Baseline& baseline) {
    return absl::UnimplementedError("this store keeps no baselines");
  }
  // Every baseline of `problem_key` on `hardware` ("" = on any hardware), by
  // hardware, workload_key, then software. Inside Transaction() the rows read
  // stay locked until it ends (PostgreSQL), as records read there do.
  virtual absl::StatusOr<std::vector<v1::Baseline>> ListBaselines(
      const std::string& problem_key, const std::string& hardware) {
    return absl::UnimplementedError("this store keeps no baselines");
  }

  // ---- Lessons: what the research learned, kept beyond their campaign so
  // later campaigns of the same op type can start from them. A backend
  // without them answers Unimplemented and proposers go without.
  virtual absl::StatusOr<int64_t> AddLesson(const v1::Lesson& lesson) {
    return absl::UnimplementedError("this store keeps no lessons");
  }
  // Lessons of `op_type` by id; campaign_id > 0 keeps that campaign's only.
  virtual absl::StatusOr<std::vector<v1::Lesson>> ListLessons(const std::string& op_type,
                                                              int64_t campaign_id) {
    return absl::UnimplementedError("this store keeps no lessons");
  }

  // ---- Events: a campaign's log, one line each (docs/cluster.md, "Events").
  struct Event {
    int64_t seq = 0;
    int64_t unix_ms = 0;
    std::string text;
  };
  // Appends an event and returns its seq, which grows with every append to
  // the store, whatever the campaign. The text is kept as well-formed UTF-8
  // of at most kMaxEventTextBytes (cut at a character boundary). Old events
  // go: the first append to a campaign after opening, and every
  // kEventTrimInterval-th after it, deletes all but its newest
  // kMaxEventsPerCampaign, so a campaign never holds more than
  // kMaxEventsPerCampaign + kEventTrimInterval.
  virtual absl::StatusOr<int64_t> AppendEvent(int64_t campaign_id, int64_t unix_ms,
                                              const std::string& text) = 0;
  // The campaign's events with seq > after_seq, by seq, at most `limit`
  // (none when limit <= 0). An unknown campaign has none.
  virtual absl::StatusOr<std::vector<Event>> ListEvents(int64_t campaign_id, int64_t after_seq,
                                                        int limit) = 0;
  static constexpr size_t kMaxEventTextBytes = 2'000;
  static constexpr int kMaxEventsPerCampaign = 20'000;
  static constexpr int kEventTrimInterval = 1'000;

  // ---- Workers.
  virtual absl::Status UpsertWorker(const v1::WorkerInfo& worker) = 0;
  virtual absl::StatusOr<std::optional<v1::WorkerInfo>> GetWorker(const std::string& id) = 0;
  virtual absl::StatusOr<std::vector<v1::WorkerInfo>> ListWorkers() = 0;
};

// Opens (creating if needed) an SQLite store at `path` and migrates its schema
// to the current version. ":memory:" gives a private in-memory store.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

struct PostgresOptions {
  // At most this many connections (opened as concurrent calls need them).
  int connections = 8;
  // How long one call keeps reconnecting to a lost server before it gives up
  // with Unavailable (opening waits as long for the server to come up).
  int reconnect_timeout_ms = 30'000;
};

// Opens a PostgreSQL store at a libpq connection URL or keyword/value string
// (e.g. "postgresql://user@host:5432/ratchet",
// "postgresql:///ratchet?host=/run/postgresql") and migrates its schema to the
// current version. The database must exist.
//
// Calls that lose the connection reconnect with backoff and run again when
// nothing of them can have committed; inside Transaction() a lost connection
// (or a deadlock) fails the transaction with Unavailable, to be retried by
// the caller. Any database error inside Transaction() fails the whole
// transaction (PostgreSQL aborts it); errors a call finds itself (NotFound,
// AlreadyExists, FailedPrecondition) leave it usable, as with SQLite.
absl::StatusOr<std::unique_ptr<Store>> OpenPostgresStore(const std::string& url,
                                                         const PostgresOptions& options = {});

// Opens the store `url` names: "postgresql://..." or "postgres://..." opens
// PostgreSQL (as OpenPostgresStore), "sqlite:PATH" or a plain PATH opens
// SQLite. InvalidArgument for any other "scheme://".
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url);

// `url` with any password replaced by "***", for logs and messages.
std::string RedactStoreUrl(const std::string& url);

}  // namespace ratchet::store

#endif  // RATCHET_COORDINATOR_STORE_STORE_H_
