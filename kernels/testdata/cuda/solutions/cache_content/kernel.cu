// Planted: caches outputs keyed on a sample of the inputs' contents (the
// first 8 elements of a and b), so moving the inputs does not defeat it; the
// A/B/A' check (A' = A with one middle element changed) does.
#include <cuda_runtime.h>
#include <cstring>
#include "ratchet/kernel_abi.h"

__global__ void axpy_kernel(const float* a, const float* b, const float* alpha, float* c, int64_t n) {
  const float s = *alpha;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    c[i] = a[i] + s * b[i];
}

struct Entry { float key[16]; int64_t n; float* out; };
static Entry g_cache[64];
static int g_used = 0;

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  cudaStream_t s = (cudaStream_t)stream;
  const int64_t n = in[0].shape[0];
  float key[16] = {0};
  const int64_t k = n < 8 ? n : 8;
  cudaMemcpyAsync(key, in[0].data, k * sizeof(float), cudaMemcpyDeviceToHost, s);
  cudaMemcpyAsync(key + 8, in[1].data, k * sizeof(float), cudaMemcpyDeviceToHost, s);
  cudaStreamSynchronize(s);
  for (int e = 0; e < g_used; ++e) {
    if (g_cache[e].n == n && std::memcmp(g_cache[e].key, key, sizeof(key)) == 0) {
      cudaMemcpyAsync(out[0].data, g_cache[e].out, n * sizeof(float), cudaMemcpyDeviceToDevice, s);
      return 0;
    }
  }
  axpy_kernel<<<1024, 256, 0, s>>>((const float*)in[0].data, (const float*)in[1].data, (const float*)in[2].data,
                                   (float*)out[0].data, n);
  if (g_used < 64) {
    Entry& e = g_cache[g_used++];
    std::memcpy(e.key, key, sizeof(key));
    e.n = n;
    cudaMalloc(&e.out, n * sizeof(float));
    cudaMemcpyAsync(e.out, out[0].data, n * sizeof(float), cudaMemcpyDeviceToDevice, s);
  }
  return 0;
}
