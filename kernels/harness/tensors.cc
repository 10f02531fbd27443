#include "kernels/harness/tensors.h"

#include <fstream>

#include "absl/strings/str_cat.h"

namespace ratchet::kernels {

std::vector<Tensor> MakeTensors(const std::vector<TensorSpec>& specs, const Workload& w) {
  std::vector<Tensor> out;
  for (const TensorSpec& s : specs) {
    Tensor t;
    t.name = s.name;
    t.dtype = s.dtype;
    t.scalar = s.scalar;
    t.shape = ResolveShape(s, w);
    t.strides.assign(t.shape.size(), 1);
    for (size_t d = t.shape.size(); d-- > 1;) t.strides[d - 1] = t.strides[d] * t.shape[d];
    t.bytes = static_cast<size_t>(NumElements(t.shape)) * DTypeSize(s.dtype);
    out.push_back(t);
  }
  return out;
}

std::vector<ratchet_tensor> AbiTensors(const std::vector<Tensor>& ts,
                                       const std::vector<void*>& data) {
  std::vector<ratchet_tensor> out;
  for (size_t i = 0; i < ts.size(); ++i) {
    ratchet_tensor r;
    r.data = data[i];
    r.dtype = static_cast<ratchet_dtype>(ts[i].dtype);
    r.ndim = static_cast<int32_t>(ts[i].shape.size());
    r.shape = ts[i].shape.data();
    r.strides = ts[i].strides.data();
    out.push_back(r);
  }
  return out;
}

absl::Status LoadInto(const std::string& path, void* dst, size_t bytes) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::InternalError(absl::StrCat("oracle file missing: ", path));
  f.seekg(0, std::ios::end);
  const size_t got = static_cast<size_t>(f.tellg());
  if (got != bytes) {
    return absl::InternalError(absl::StrCat("oracle file ", path, " has ", got,
                                            " bytes, expected ", bytes));
  }
  f.seekg(0);
  f.read(static_cast<char*>(dst), static_cast<std::streamsize>(bytes));
  return absl::OkStatus();
}

}  // namespace ratchet::kernels
