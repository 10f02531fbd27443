#include "coordinator/group_commit.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace ratchet::coordinator {
namespace {

// Errors a store call reports without harming the transaction it ran in.
bool LeavesTransactionUsable(const absl::Status& s) {
  return s.ok() || absl::IsNotFound(s) || absl::IsAlreadyExists(s) ||
         absl::IsFailedPrecondition(s);
}

}  // namespace

GroupCommit::GroupCommit(store::Store* store, GroupCommitOptions options)
    : store_(store), options_(options) {}

absl::Status GroupCommit::Run(const std::function<absl::Status()>& body) {
  if (!options_.enabled) {
    // As without batching: each store call commits on its own.
    absl::Status result = body();
    std::lock_guard<std::mutex> lock(mu_);
    ++batches_;
    ++functions_;
    return result;
  }
  Pending self{&body, absl::OkStatus(), false};
  std::unique_lock<std::mutex> lock(mu_);
  queue_.push_back(&self);
  changed_.notify_all();
  while (!self.done) {
    if (committing_ >= std::max(1, options_.committers) || queue_.empty()) {
      changed_.wait(lock);
      continue;
    }
    // This caller commits the next batch (which usually holds its own body).
    ++committing_;
    if (options_.window_us > 0 && static_cast<int>(queue_.size()) < options_.max_batch) {
      changed_.wait_for(lock, std::chrono::microseconds(options_.window_us), [&] {
        return static_cast<int>(queue_.size()) >= options_.max_batch;
      });
    }
    std::vector<Pending*> batch;
    while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
      batch.push_back(queue_.front());
      queue_.pop_front();
    }
    lock.unlock();
    if (!batch.empty()) CommitBatch(batch);
    lock.lock();
    --committing_;
    for (Pending* p : batch) p->done = true;
    ++batches_;
    functions_ += static_cast<int64_t>(batch.size());
    changed_.notify_all();
  }
  return self.status;
}

void GroupCommit::CommitBatch(const std::vector<Pending*>& batch) {
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    for (Pending* p : batch) {
      p->status = (*p->body)();
      if (!LeavesTransactionUsable(p->status)) return p->status;
    }
    return absl::OkStatus();
  });
  if (s.ok()) return;
  // Nothing of the batch is durable: run each body alone.
  for (Pending* p : batch) {
    absl::Status alone = store_->Transaction([&]() -> absl::Status {
      p->status = (*p->body)();
      return LeavesTransactionUsable(p->status) ? absl::OkStatus() : p->status;
    });
    if (!alone.ok()) p->status = alone;
  }
}

int64_t GroupCommit::batches() const {
  std::lock_guard<std::mutex> lock(mu_);
  return batches_;
}

int64_t GroupCommit::functions() const {
  std::lock_guard<std::mutex> lock(mu_);
  return functions_;
}

}  // namespace ratchet::coordinator
