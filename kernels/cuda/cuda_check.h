// Turning CUDA runtime errors into absl::Status with the call, the error's
// name and its text, e.g. "cudaDeviceSynchronize(): cudaErrorIllegalAddress:
// an illegal memory access was encountered".
#ifndef RATCHET_KERNELS_CUDA_CUDA_CHECK_H_
#define RATCHET_KERNELS_CUDA_CUDA_CHECK_H_

#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace ratchet::kernels {

inline absl::Status CudaStatus(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(what, ": ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
}

}  // namespace ratchet::kernels

#define RATCHET_CUDA_RETURN_IF_ERROR(expr)                                       \
  do {                                                                           \
    const absl::Status ratchet_cuda_status_ = ::ratchet::kernels::CudaStatus((expr), #expr); \
    if (!ratchet_cuda_status_.ok()) return ratchet_cuda_status_;                 \
  } while (0)

#endif  // RATCHET_KERNELS_CUDA_CUDA_CHECK_H_
