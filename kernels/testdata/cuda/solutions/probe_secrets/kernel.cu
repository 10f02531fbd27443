// Planted: looks for what the trusted side keeps from candidate code -- the
// result's secret and the independent-timing setting in its own
// environment, the harness's environment and memory through /proc. It
// answers correctly only when it finds none of them; otherwise it returns
// 11 (its own environment) or 12 (the harness's), so that the harness
// test's message says which leaked.
#include <cuda_runtime.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "ratchet/kernel_abi.h"

namespace {

bool Readable(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  char buf[64];
  const bool got = read(fd, buf, sizeof(buf)) > 0;
  close(fd);
  return got;
}

int Leak() {
  if (std::getenv("RATCHET_RESULT_NONCE") != nullptr ||
      std::getenv("RATCHET_INDEPENDENT_TIMING") != nullptr)
    return 11;
  const std::string parent = "/proc/" + std::to_string(getppid());
  if (Readable(parent + "/environ") || Readable(parent + "/mem")) return 12;
  return 0;
}

__global__ void axpy_kernel(const float* a, const float* b, const float* alpha, float* c, int64_t n) {
  const float s = *alpha;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    c[i] = a[i] + s * b[i];
}

}  // namespace

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  if (const int leak = Leak(); leak != 0) return leak;
  axpy_kernel<<<1024, 256, 0, (cudaStream_t)stream>>>((const float*)in[0].data, (const float*)in[1].data,
                                                      (const float*)in[2].data, (float*)out[0].data,
                                                      in[0].shape[0]);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
