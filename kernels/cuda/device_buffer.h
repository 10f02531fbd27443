// Device buffers with canary regions on both sides of the data: a candidate
// that writes past either end of a tensor changes a canary byte, which the
// harness checks after every call (out_of_bounds). Writes far beyond the
// canaries usually fault instead (an illegal address: crash).
#ifndef RATCHET_KERNELS_CUDA_DEVICE_BUFFER_H_
#define RATCHET_KERNELS_CUDA_DEVICE_BUFFER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ratchet::kernels {

class DeviceBuffer {
 public:
  static constexpr unsigned char kCanary = 0xA5;
  static constexpr size_t kFrontCanary = 256;  // Keeps data 256-byte aligned.
  static constexpr size_t kBackCanary = 4096;

  // Allocates `bytes` of data (at least one byte) with canaries; `shift`
  // (a multiple of 256) moves the data further into the allocation so that
  // copies of one input sit at different offsets. Canaries are written.
  static absl::StatusOr<std::unique_ptr<DeviceBuffer>> Create(size_t bytes, size_t shift = 0);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return bytes_; }

  absl::Status Upload(const void* host);  // Synchronous, size() bytes.
  absl::Status Download(void* host) const;
  // OK when every canary byte is intact; otherwise FailedPrecondition saying
  // which side and the first changed offset. CUDA errors come back as such.
  absl::Status CheckCanaries() const;

 private:
  DeviceBuffer() = default;
  unsigned char* base_ = nullptr;
  unsigned char* data_ = nullptr;
  size_t front_ = 0;  // Bytes from base_ to data_.
  size_t bytes_ = 0;
  size_t total_ = 0;
};

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_CUDA_DEVICE_BUFFER_H_
