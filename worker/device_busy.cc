#include "worker/device_busy.h"

#include <utility>

namespace ratchet::worker {

DeviceBusy::Hold::Hold(DeviceBusy* busy, std::string device)
    : busy_(busy), device_(std::move(device)) {
  if (busy_ != nullptr) busy_->Begin(device_);
}

DeviceBusy::Hold::~Hold() {
  if (busy_ != nullptr) busy_->End(device_);
}

void DeviceBusy::AddLocked(const std::string& device, Held* held, Clock::time_point now) {
  // Several jobs on one device (CPU slots) each count: the sum is job-seconds.
  if (family_ != nullptr && held->jobs > 0)
    family_->Add({{"device", device}})
        .Increment(held->jobs * std::chrono::duration<double>(now - held->since).count());
  held->since = now;
}

void DeviceBusy::Begin(const std::string& device) {
  std::lock_guard<std::mutex> lock(mu_);
  Held& held = held_[device];
  AddLocked(device, &held, Clock::now());
  ++held.jobs;
}

void DeviceBusy::End(const std::string& device) {
  std::lock_guard<std::mutex> lock(mu_);
  Held& held = held_[device];
  AddLocked(device, &held, Clock::now());
  --held.jobs;
}

void DeviceBusy::Flush() {
  std::lock_guard<std::mutex> lock(mu_);
  const Clock::time_point now = Clock::now();
  for (auto& [device, held] : held_) AddLocked(device, &held, now);
}

}  // namespace ratchet::worker
