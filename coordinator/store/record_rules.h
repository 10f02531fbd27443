// What the store backends share: the status macros, and the rules for records
// that do not depend on the database (how a record of an older version is
// read, what is stored of a job, how a job moves between states, what
// CompleteJob checks and stores). Kept in one place so that SQLite and
// PostgreSQL cannot drift apart. Internal to coordinator/store.

#ifndef RATCHET_COORDINATOR_STORE_RECORD_RULES_H_
#define RATCHET_COORDINATOR_STORE_RECORD_RULES_H_

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/job_wall.h"
#include "common/utf8.h"
#include "coordinator/store/store.h"
#include "spec/names.h"

#define RETURN_IF_ERROR(expr)                  \
  do {                                         \
    absl::Status _st = (expr);                 \
    if (!_st.ok()) return _st;                 \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL(var, tmp, expr) \
  auto tmp = (expr);                          \
  if (!tmp.ok()) return tmp.status();         \
  var = std::move(*tmp)
#define STORE_CONCAT_INNER(a, b) a##b
#define STORE_CONCAT(a, b) STORE_CONCAT_INNER(a, b)
#define ASSIGN_OR_RETURN(var, expr) \
  ASSIGN_OR_RETURN_IMPL(var, STORE_CONCAT(_sor_, __LINE__), expr)

namespace ratchet::store::internal {

// Every record a backend reads (campaigns, candidates and jobs) passes
// through here: one written by an older version, with a word where an enum
// is now, reads as if written now (spec::UpgradeLegacyFields).
template <typename T>
void UpgradeRecord(T*) {}
inline void UpgradeRecord(v1::Campaign* campaign) {
  if (campaign->has_spec()) spec::UpgradeLegacyFields(campaign->mutable_spec());
}
inline void UpgradeRecord(v1::Candidate* candidate) { spec::UpgradeLegacyFields(candidate); }
inline void UpgradeRecord(v1::Job* job) { spec::UpgradeLegacyFields(job); }

// What is stored of a job: the coordinator fills the rest in when it hands
// the job out.
inline v1::Job StoredJob(const v1::Job& job) {
  v1::Job j = job;
  j.clear_id();
  j.clear_problem();
  j.clear_solution();
  j.clear_harness();
  j.clear_device();
  return j;
}

// AcquireJob: the queued job becomes `worker_id`'s until now_ms + lease_ms.
inline void LeaseJob(v1::Job* job, const std::string& worker_id, int64_t now_ms,
                     int64_t lease_ms) {
  job->set_state(v1::JOB_LEASED);
  job->set_worker_id(worker_id);
  job->set_lease_deadline_unix_ms(now_ms + lease_ms);
  job->set_leased_unix_ms(now_ms);
  job->set_attempts(job->attempts() + 1);
}

// RenewLeases: heartbeats extend a lease up to the job's wall limit
// (common/job_wall.h: the campaign's harness timeout and the worker's jobs
// sharing a GPU, as `limits` says; a timeout unknown counts 600 s) from
// when it was leased, no further, so that a worker cannot hold a job forever
// by heartbeating. Returns the new deadline; below
// `wanted_ms` means the limit is near and the worker should stop the job.
inline int64_t RenewedDeadline(const v1::Job& job, int64_t wanted_ms,
                               const LeaseLimits& limits = {}) {
  if (job.leased_unix_ms() == 0) return wanted_ms;  // leased before the rule existed
  double timeout = job.harness().timeout_seconds();
  if (timeout <= 0) {
    auto known = limits.timeout_seconds.find(job.campaign_id());
    timeout = known != limits.timeout_seconds.end() && known->second > 0 ? known->second : 600;
  }
  return std::min(wanted_ms,
                  job.leased_unix_ms() + JobWallLimitMs(timeout, limits.jobs_per_gpu));
}

// What a listing shows of a campaign (Store::ListCampaignSummaries): all but
// its problem's files and its baseline, megabytes each, which are read one
// campaign at a time.
inline v1::Campaign CampaignSummary(const v1::Campaign& campaign) {
  v1::Campaign summary = campaign;
  v1::Problem problem;
  problem.set_name(campaign.spec().problem().name());
  *summary.mutable_spec()->mutable_problem() = std::move(problem);
  summary.mutable_spec()->clear_baseline();
  return summary;
}

// The bytes a campaign's spec holds, counted against its owner's limit.
inline int64_t SpecBytes(const v1::Campaign& campaign) {
  return static_cast<int64_t>(campaign.spec().ByteSizeLong());
}

// ExpireLeases: a lapsed lease goes back to the queue, or fails the job once
// it has had max_attempts.
inline void ExpireLease(v1::Job* job, int max_attempts) {
  job->set_state(job->attempts() >= max_attempts ? v1::JOB_FAILED : v1::JOB_QUEUED);
  job->clear_worker_id();
  job->clear_lease_deadline_unix_ms();
}

// CompleteJob on the job as loaded: it must be leased to `worker_id` (a job
// already done gives AlreadyExists). Marks it done and returns the evaluation
// to store, with the fields the caller left unset taken from the job.
inline absl::StatusOr<v1::Evaluation> CompleteLeasedJob(v1::Job* job,
                                                        const std::string& worker_id,
                                                        const v1::Evaluation& evaluation) {
  if (job->state() == v1::JOB_DONE) {
    return absl::AlreadyExistsError(absl::StrCat("job ", job->id(), " is already done"));
  }
  if (job->state() != v1::JOB_LEASED || job->worker_id() != worker_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job->id(), " is not leased to worker '", worker_id, "' (state ",
        v1::JobState_Name(job->state()), ", holder '", job->worker_id(), "')"));
  }
  v1::Evaluation e = evaluation;
  e.clear_id();
  e.set_job_id(job->id());
  if (e.campaign_id() == 0) e.set_campaign_id(job->campaign_id());
  if (e.candidate_id() == 0) e.set_candidate_id(job->candidate_id());
  if (e.worker_id().empty()) e.set_worker_id(worker_id);
  if (e.kind() == v1::JOB_KIND_UNSPECIFIED) e.set_kind(job->kind());
  job->set_state(v1::JOB_DONE);
  job->clear_lease_deadline_unix_ms();
  return e;
}

inline absl::Status DuplicateCandidateError(const v1::Candidate& candidate) {
  return absl::AlreadyExistsError(absl::StrCat("campaign ", candidate.campaign_id(),
                                               " already has a candidate with content hash ",
                                               candidate.content_hash()));
}

// AppendEvent: what is stored of an event's text. Well-formed UTF-8 without
// NUL (PostgreSQL's text refuses both), at most kMaxEventTextBytes, cut
// where a character starts.
inline std::string StoredEventText(absl::string_view text) {
  std::string out = ToValidUtf8(text.substr(0, Store::kMaxEventTextBytes + 4));
  for (char& c : out)
    if (c == '\0') c = ' ';
  if (out.size() > Store::kMaxEventTextBytes) {
    size_t cut = Store::kMaxEventTextBytes;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

// Which AppendEvent calls trim their campaign's old events (store.h): the
// first for each campaign since the store was opened, then every
// kEventTrimInterval-th. Counted in memory: trimming walks the campaign's
// newest kMaxEventsPerCampaign index entries, too much for every append.
class EventTrimSchedule {
 public:
  bool Due(int64_t campaign_id) {
    std::lock_guard<std::mutex> lock(mu_);
    int& left = appends_until_trim_[campaign_id];  // 0 for a campaign not seen yet
    if (left > 0) {
      --left;
      return false;
    }
    left = Store::kEventTrimInterval - 1;
    return true;
  }

 private:
  std::mutex mu_;
  std::unordered_map<int64_t, int> appends_until_trim_;
};

}  // namespace ratchet::store::internal

#endif  // RATCHET_COORDINATOR_STORE_RECORD_RULES_H_
