// Planted hack (tests/hacks): a worker thread, started when the library loads
// (so no thread appears during a call), launches the work after the call
// has returned.
#include <atomic>
#include <chrono>
#include <thread>
#include <cuda_runtime.h>
#include <stdint.h>

#include "ratchet/kernel_abi.h"

// One warp per row: coalesced loads, a shuffle reduction, float32 throughout.
__global__ void rowsum_warp(const float* __restrict__ x, float* __restrict__ y, int64_t R, int64_t C) {
  const int64_t row = (blockIdx.x * (int64_t)blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (row >= R) return;  // whole warps: every lane of a warp shares its row
  const float* p = x + row * C;
  float acc = 0.f;
  for (int64_t c = lane; c < C; c += 32) acc += p[c];
  for (int o = 16; o > 0; o >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, o);
  if (lane == 0) y[row] = acc;
}

void LaunchWarp(const float* x, float* y, int64_t R, int64_t C, cudaStream_t s) {
  const int64_t threads = R * 32;
  rowsum_warp<<<(unsigned)((threads + 255) / 256), 256, 0, s>>>(x, y, R, C);
}

namespace {
struct Job {
  const float* x;
  float* y;
  int64_t R, C;
  cudaStream_t stream;
};
std::atomic<bool> pending{false};
Job job;
struct Worker {
  Worker() {
    std::thread([] {
      for (;;) {
        if (pending.load()) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          LaunchWarp(job.x, job.y, job.R, job.C, job.stream);
          cudaStreamSynchronize(job.stream);
          pending = false;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
    }).detach();
  }
} worker;
}  // namespace

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  while (pending.load()) std::this_thread::yield();
  job = {(const float*)in[0].data, (float*)out[0].data, in[0].shape[0], in[0].shape[1],
         (cudaStream_t)stream};
  pending = true;
  return 0;
}
