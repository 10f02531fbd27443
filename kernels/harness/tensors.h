// Concrete tensors of one workload and their C ABI view.
#ifndef RATCHET_KERNELS_HARNESS_TENSORS_H_
#define RATCHET_KERNELS_HARNESS_TENSORS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kernels/include/ratchet/kernel_abi.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {

struct Tensor {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;    // Empty for scalars.
  std::vector<int64_t> strides;  // Row-major contiguous, in elements.
  size_t bytes = 0;              // One element for scalars.
  bool scalar = false;           // "shape": null (not a 0-d tensor)
};

// The tensors of `specs` under workload `w`.
std::vector<Tensor> MakeTensors(const std::vector<TensorSpec>& specs, const Workload& w);

// ABI descriptors pointing at `data[i]`; they borrow shape/strides from `ts`,
// which must outlive them.
std::vector<ratchet_tensor> AbiTensors(const std::vector<Tensor>& ts,
                                       const std::vector<void*>& data);

// Reads exactly `bytes` bytes of `path` into `dst` (an oracle file).
absl::Status LoadInto(const std::string& path, void* dst, size_t bytes);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_TENSORS_H_
