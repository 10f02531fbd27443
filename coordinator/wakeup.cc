#include "coordinator/wakeup.h"

#include <algorithm>

namespace ratchet::coordinator {

Wakeup::Deadline Wakeup::In(int64_t ms) {
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
}

uint64_t Wakeup::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

void Wakeup::Notify() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
  }
  changed_.notify_all();
}

void Wakeup::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  changed_.notify_all();
}

bool Wakeup::stopping() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopping_;
}

void Wakeup::WaitFor(int64_t ms) {
  std::unique_lock<std::mutex> lock(mu_);
  const uint64_t seen = generation_;
  changed_.wait_for(lock, std::chrono::milliseconds(ms),
                    [&] { return stopping_ || generation_ != seen; });
}

bool Wakeup::WaitUntil(Deadline deadline, uint64_t seen, int64_t poll_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_ || std::chrono::steady_clock::now() >= deadline) return false;
  changed_.wait_until(lock, std::min(deadline, In(poll_ms)),
                      [&] { return stopping_ || generation_ != seen; });
  return true;
}

}  // namespace ratchet::coordinator
