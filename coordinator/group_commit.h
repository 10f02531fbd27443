// Group commit: state transitions from many concurrent RPCs (AcquireJob,
// CompleteJob, heartbeats) share one store transaction, so one durable
// commit (one fsync) pays for a whole batch instead of one each.
//
// A caller hands Run() a function of store calls; Run() returns only after the
// transaction holding it has committed, so an RPC is still answered only once
// its change is durable. Batches form by themselves: while one batch commits,
// the calls that arrive queue up and become the next batch (plus an optional
// short window to gather more), so an idle coordinator adds no delay.
//
// If any call in a batch fails with a database error (anything but OK,
// NotFound, AlreadyExists, FailedPrecondition), or the commit itself fails,
// the batch is rolled back whole and each function runs again on its own, so
// one bad call never fails the others. Functions must therefore be safe to
// run twice: they read their inputs and overwrite their outputs.
#ifndef RATCHET_COORDINATOR_GROUP_COMMIT_H_
#define RATCHET_COORDINATOR_GROUP_COMMIT_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

#include "absl/status/status.h"
#include "coordinator/store/store.h"

namespace ratchet::coordinator {

struct GroupCommitOptions {
  bool enabled = true;   // false: bodies run unbatched, each store call its own commit
  int max_batch = 256;   // functions per transaction at most
  int window_us = 0;     // extra wait for stragglers before a batch commits
  // Batches committing at once. The stores serialise Transaction() today, so
  // more than 1 only helps a store that does not.
  int committers = 1;
};

class GroupCommit {
 public:
  GroupCommit(store::Store* store, GroupCommitOptions options);
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Runs `body` in a transaction shared with other callers; returns its status
  // once that transaction has committed (or the body's own error).
  absl::Status Run(const std::function<absl::Status()>& body);

  int64_t batches() const;
  int64_t functions() const;

 private:
  struct Pending {
    const std::function<absl::Status()>* body;
    absl::Status status;
    bool done = false;
  };
  void CommitBatch(const std::vector<Pending*>& batch);

  store::Store* const store_;
  const GroupCommitOptions options_;

  mutable std::mutex mu_;
  std::condition_variable changed_;
  std::deque<Pending*> queue_;
  int committing_ = 0;
  int64_t batches_ = 0;
  int64_t functions_ = 0;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_GROUP_COMMIT_H_
