// Planted: writes through a wild device pointer (a CUDA illegal address).
#include <cuda_runtime.h>
#include "ratchet/kernel_abi.h"

__global__ void wild(float* p) { p[threadIdx.x] = 1.0f; }

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  wild<<<1, 32, 0, (cudaStream_t)stream>>>((float*)0x10);
  return 0;
}
