// Buffers that sit against PROT_NONE guard pages, with canary bytes before
// the first element: the byte after the last element is unmapped, so a write
// (or read) past the end faults at once, and a write just before the start
// changes a canary.
#ifndef RATCHET_KERNELS_HARNESS_GUARDED_BUFFER_H_
#define RATCHET_KERNELS_HARNESS_GUARDED_BUFFER_H_

#include <cstddef>
#include <cstdint>

namespace ratchet::kernels {

class GuardedBuffer {
 public:
  static constexpr unsigned char kCanary = 0xA5;

  // Maps [guard][canaries ... data][guard]. Aborts when mmap fails (out of
  // memory is not a candidate's fault).
  explicit GuardedBuffer(size_t bytes);
  ~GuardedBuffer();
  GuardedBuffer(const GuardedBuffer&) = delete;
  GuardedBuffer& operator=(const GuardedBuffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return bytes_; }
  // Every byte between the front guard and data() still holds kCanary.
  bool CanariesIntact() const;
  void ResetCanaries();
  // True when `addr` lies in either guard page.
  bool InGuard(const void* addr) const;
  uintptr_t front_guard() const { return reinterpret_cast<uintptr_t>(base_); }
  uintptr_t back_guard() const { return reinterpret_cast<uintptr_t>(data_) + bytes_; }
  size_t page() const { return page_; }

 private:
  unsigned char* base_ = nullptr;  // Front guard page.
  size_t map_len_ = 0;
  unsigned char* data_ = nullptr;
  size_t bytes_ = 0;
  size_t page_ = 4096;
};

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_GUARDED_BUFFER_H_
