#include "kernels/cuda/device_buffer.h"

#include <cuda_runtime_api.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_check.h"

namespace ratchet::kernels {

absl::StatusOr<std::unique_ptr<DeviceBuffer>> DeviceBuffer::Create(size_t bytes, size_t shift) {
  std::unique_ptr<DeviceBuffer> b(new DeviceBuffer());
  b->bytes_ = bytes;
  b->front_ = kFrontCanary + shift;
  b->total_ = b->front_ + bytes + kBackCanary;
  void* p = nullptr;
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMalloc(&p, b->total_));
  b->base_ = static_cast<unsigned char*>(p);
  b->data_ = b->base_ + b->front_;
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMemset(b->base_, kCanary, b->total_));
  return b;
}

DeviceBuffer::~DeviceBuffer() {
  if (base_ != nullptr) (void)cudaFree(base_);
}

absl::Status DeviceBuffer::Upload(const void* host) {
  if (bytes_ == 0) return absl::OkStatus();
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMemcpy(data_, host, bytes_, cudaMemcpyHostToDevice));
  return absl::OkStatus();
}

absl::Status DeviceBuffer::Download(void* host) const {
  if (bytes_ == 0) return absl::OkStatus();
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMemcpy(host, data_, bytes_, cudaMemcpyDeviceToHost));
  return absl::OkStatus();
}

absl::Status DeviceBuffer::CheckCanaries() const {
  std::vector<unsigned char> front(front_), back(kBackCanary);
  RATCHET_CUDA_RETURN_IF_ERROR(cudaMemcpy(front.data(), base_, front_, cudaMemcpyDeviceToHost));
  RATCHET_CUDA_RETURN_IF_ERROR(
      cudaMemcpy(back.data(), data_ + bytes_, kBackCanary, cudaMemcpyDeviceToHost));
  for (size_t i = front.size(); i-- > 0;) {
    if (front[i] != kCanary) {
      return absl::FailedPreconditionError(
          absl::StrCat("wrote ", front.size() - i, " bytes before its start"));
    }
  }
  for (size_t i = 0; i < back.size(); ++i) {
    if (back[i] != kCanary) {
      return absl::FailedPreconditionError(
          absl::StrCat("wrote past its end (byte ", i, " after the last element)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace ratchet::kernels
