// ratchet_worker_device_busy_seconds_total{device}: seconds jobs held a
// device, counted while they hold it. Flush (every heartbeat) adds what
// running jobs have held so far, so rate() over a short window does not wait
// for a job's end (counted only at the end, a two-minute job read as idle,
// then as 150% busy).
#ifndef RATCHET_WORKER_DEVICE_BUSY_H_
#define RATCHET_WORKER_DEVICE_BUSY_H_

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "prometheus/counter.h"
#include "prometheus/family.h"

namespace ratchet::worker {

class DeviceBusy {
 public:
  // `family` may be null: a worker without metrics counts nothing.
  explicit DeviceBusy(prometheus::Family<prometheus::Counter>* family) : family_(family) {}

  // A job holds `device` for the life of this object.
  class Hold {
   public:
    Hold(DeviceBusy* busy, std::string device);
    ~Hold();
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;

   private:
    DeviceBusy* const busy_;
    const std::string device_;
  };

  // Adds the seconds held since the last flush by every job holding a device.
  void Flush();

 private:
  using Clock = std::chrono::steady_clock;
  struct Held {
    int jobs = 0;
    Clock::time_point since;
  };
  void Begin(const std::string& device);
  void End(const std::string& device);
  void AddLocked(const std::string& device, Held* held, Clock::time_point now);

  prometheus::Family<prometheus::Counter>* const family_;
  std::mutex mu_;
  std::map<std::string, Held> held_;
};

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_DEVICE_BUSY_H_
