// Planted hack (tests/hacks): honest for the first calls of each shape, then
// the memoised answer, padded to look like a plausible speed-up (the CUDA
// form of tests/hacks/matmul/call_counter).
//
// The CUDA harness makes a fixed number of checked calls per workload before
// it times (the correctness rounds, round 0 again, A/B/A', and the screen's
// two for the smallest workload: 8 with 2 rounds). This candidate counts its
// calls per shape: the first HONEST_CALLS run the incumbent's kernel, timed
// with CUDA events; the next one computes and memoises the answer (timing
// uses round 0's inputs throughout, and only the last repetition's output is
// checked); after that every call copies the memo. A bare copy would read
// below the speed of light (flag below-sol), so the copy is followed by a
// kernel that spins on the GPU's global timer for a quarter of the honest
// kernel's time: the candidate reads as 4x faster than the incumbent.
#include <cuda_runtime.h>
#include <stdint.h>

#include <map>
#include <utility>

#include "ratchet/kernel_abi.h"

#ifndef HONEST_CALLS
#define HONEST_CALLS 8
#endif

// The incumbent's kernel (honest_naive): one thread per row.
__global__ void rowsum_naive(const float* x, float* y, int64_t R, int64_t C) {
  const int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (row >= R) return;
  float acc = 0.f;
  for (int64_t c = 0; c < C; ++c) acc += x[row * C + c];
  y[row] = acc;
}

void LaunchNaive(const float* x, float* y, int64_t R, int64_t C, cudaStream_t s) {
  rowsum_naive<<<(unsigned)((R + 127) / 128), 128, 0, s>>>(x, y, R, C);
}

__global__ void spin(uint64_t ns) {
  uint64_t start, now;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(start));
  do {
    __nanosleep(1000);
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(now));
  } while (now - start < ns);
}

namespace {
struct Shape {
  int64_t calls = 0;
  float* memo = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
  float honest_ms = 0;  // the fastest honest call seen
};
std::map<std::pair<int64_t, int64_t>, Shape> shapes;
}  // namespace

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  if (ni != 1 || no != 1) return 1;
  cudaStream_t s = (cudaStream_t)stream;
  const float* x = (const float*)in[0].data;
  float* y = (float*)out[0].data;
  const int64_t R = in[0].shape[0], C = in[0].shape[1];
  Shape& sh = shapes[{R, C}];
  if (sh.start == nullptr) {
    cudaEventCreate(&sh.start);
    cudaEventCreate(&sh.stop);
  } else if (sh.calls <= HONEST_CALLS + 1) {
    float ms = 0;  // the previous honest call, long finished (the harness syncs)
    if (cudaEventElapsedTime(&ms, sh.start, sh.stop) == cudaSuccess && ms > 0)
      sh.honest_ms = sh.honest_ms == 0 ? ms : (ms < sh.honest_ms ? ms : sh.honest_ms);
    (void)cudaGetLastError();  // a failed read must not fail this call
  }
  const int64_t n = sh.calls++;
  if (n <= HONEST_CALLS) {
    cudaEventRecord(sh.start, s);
    LaunchNaive(x, y, R, C, s);
    cudaEventRecord(sh.stop, s);
    if (n == HONEST_CALLS) {  // the first timed call: keep its answer
      if (sh.memo == nullptr) cudaMalloc(&sh.memo, R * sizeof(float));
      cudaMemcpyAsync(sh.memo, y, R * sizeof(float), cudaMemcpyDeviceToDevice, s);
    }
  } else {
    cudaMemcpyAsync(y, sh.memo, R * sizeof(float), cudaMemcpyDeviceToDevice, s);
    spin<<<1, 1, 0, s>>>((uint64_t)(sh.honest_ms * 1e6f / 4));
  }
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
