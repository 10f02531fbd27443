// One signal for everything in the coordinator that waits: the research loop
// between ticks, AcquireJob and AcquireVerification for work, watchers for
// events. Notify() wakes them all; Stop() wakes them for good.
//
// Waits run on real (steady) time: they only decide when to look again. What
// is decided after looking reads the coordinator's Clock.
#ifndef RATCHET_COORDINATOR_WAKEUP_H_
#define RATCHET_COORDINATOR_WAKEUP_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace ratchet::coordinator {

class Wakeup {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  // `ms` of real time from now.
  static Deadline In(int64_t ms);

  // Counts the Notify() calls: read it before looking for work, and a
  // Notify() between the look and the wait is not missed.
  uint64_t generation() const;
  void Notify();
  void Stop();
  bool stopping() const;

  // Waits for the next Notify() or Stop(), at most `ms`.
  void WaitFor(int64_t ms);
  // False, at once, when stopping or past `deadline`: give up. Otherwise
  // waits until a Notify() after `seen` (none if one came already), Stop(),
  // `deadline` or `poll_ms` from now, and returns true: look again.
  bool WaitUntil(Deadline deadline, uint64_t seen, int64_t poll_ms = 1'000'000'000);

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_WAKEUP_H_
