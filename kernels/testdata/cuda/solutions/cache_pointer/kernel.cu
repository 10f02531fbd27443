// Planted: caches its output keyed on the input pointers; on a hit it copies
// the cached output instead of computing (stale when the inputs changed).
#include <cuda_runtime.h>
#include "ratchet/kernel_abi.h"

__global__ void axpy_kernel(const float* a, const float* b, const float* alpha, float* c, int64_t n) {
  const float s = *alpha;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    c[i] = a[i] + s * b[i];
}

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  static const void* key_a = nullptr; static const void* key_b = nullptr;
  static float* cache = nullptr; static int64_t cache_n = 0;
  cudaStream_t s = (cudaStream_t)stream;
  const int64_t n = in[0].shape[0];
  if (cache != nullptr && key_a == in[0].data && key_b == in[1].data && cache_n == n) {
    cudaMemcpyAsync(out[0].data, cache, n * sizeof(float), cudaMemcpyDeviceToDevice, s);
    return 0;
  }
  axpy_kernel<<<1024, 256, 0, s>>>((const float*)in[0].data, (const float*)in[1].data, (const float*)in[2].data,
                                   (float*)out[0].data, n);
  if (cache_n != n) { cudaFree(cache); cudaMalloc(&cache, n * sizeof(float)); cache_n = n; }
  cudaMemcpyAsync(cache, out[0].data, n * sizeof(float), cudaMemcpyDeviceToDevice, s);
  key_a = in[0].data; key_b = in[1].data;
  return 0;
}
