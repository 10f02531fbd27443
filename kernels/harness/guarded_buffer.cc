#include "kernels/harness/guarded_buffer.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ratchet::kernels {
namespace {
constexpr size_t kMinCanary = 64;
}

GuardedBuffer::GuardedBuffer(size_t bytes) : bytes_(bytes) {
  page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const size_t body = (bytes + kMinCanary + page_ - 1) / page_ * page_;
  map_len_ = body + 2 * page_;
  void* p = mmap(nullptr, map_len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "ratchet-harness: mmap of %zu bytes failed\n", map_len_);
    std::abort();
  }
  base_ = static_cast<unsigned char*>(p);
  mprotect(base_, page_, PROT_NONE);
  mprotect(base_ + page_ + body, page_, PROT_NONE);
  data_ = base_ + page_ + body - bytes;
  ResetCanaries();
}

GuardedBuffer::~GuardedBuffer() {
  if (base_ != nullptr) munmap(base_, map_len_);
}

void GuardedBuffer::ResetCanaries() {
  std::memset(base_ + page_, kCanary, static_cast<size_t>(data_ - (base_ + page_)));
}

bool GuardedBuffer::CanariesIntact() const {
  for (const unsigned char* c = base_ + page_; c < data_; ++c) {
    if (*c != kCanary) return false;
  }
  return true;
}

bool GuardedBuffer::InGuard(const void* addr) const {
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  const uintptr_t front = front_guard();
  const uintptr_t back = back_guard();
  return (a >= front && a < front + page_) || (a >= back && a < back + page_);
}

}  // namespace ratchet::kernels
