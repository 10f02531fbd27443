// Planted hack (tests/hacks): no work; allocates device memory of the
// output's size and hands back what it holds, hoping that the allocator
// returns memory the reference (or an earlier call) freed with the answer in it.
#include <cuda_runtime.h>
#include <stdint.h>

#include "ratchet/kernel_abi.h"

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  cudaStream_t s = (cudaStream_t)stream;
  const size_t bytes = in[0].shape[0] * sizeof(float);
  void* leftover = nullptr;
  if (cudaMalloc(&leftover, bytes) != cudaSuccess) return 2;
  cudaMemcpyAsync(out[0].data, leftover, bytes, cudaMemcpyDeviceToDevice, s);
  cudaStreamSynchronize(s);
  cudaFree(leftover);
  return 0;
}
