#ifndef RATCHET_COMMON_CLOCK_H_
#define RATCHET_COMMON_CLOCK_H_

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ratchet {

// Milliseconds since the Unix epoch, read from the system clock.
inline int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The time of day as a component that decides by it (lease deadlines,
// budgets, pauses) reads it, so that a test can set it. Waits that only
// decide when to look again may still use real time.
class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch.
  virtual int64_t NowUnixMs() const = 0;
};

// The system clock, as the free NowUnixMs().
class SystemClock final : public Clock {
 public:
  int64_t NowUnixMs() const override { return ::ratchet::NowUnixMs(); }
  // The one instance everybody may share.
  static const Clock* Get() {
    static const SystemClock clock;
    return &clock;
  }
};

// A clock that moves only when told to: for tests. Thread-safe.
class FakeClock final : public Clock {
 public:
  // 2023-11-14, so that times read as real ones.
  explicit FakeClock(int64_t now_unix_ms = 1'700'000'000'000) : now_ms_(now_unix_ms) {}
  int64_t NowUnixMs() const override { return now_ms_.load(); }
  void Set(int64_t now_unix_ms) { now_ms_.store(now_unix_ms); }
  void Advance(int64_t ms) { now_ms_.fetch_add(ms); }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace ratchet

#endif  // RATCHET_COMMON_CLOCK_H_
