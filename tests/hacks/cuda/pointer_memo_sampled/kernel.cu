// Planted hack (tests/hacks): outputs memoised, keyed on the exact input and
// output pointers plus 64 sampled input elements; honest on a miss (the CUDA
// form of tests/hacks/matmul/pointer_memo_sampled).
//
// One memo entry per (x, y, R, C): a device copy of the last answer and of
// the 64 sampled elements it was computed from. Each call enqueues, with no
// host synchronisation, a one-block kernel that compares the samples with the
// stored ones (and stores the new ones), then a row kernel that copies the
// memoised answer when they matched and otherwise computes the row sums and
// memoises them. The samples keep it right when a buffer is refilled with new
// data; the harness's timing rotates through a pool of at most 8 input copies
// of one round, each with its own entry, so after the first pass every timed
// call is a copy. A' (one element changed, at A's addresses) has the same
// samples as A unless the changed element is one of them.
#include <cuda_runtime.h>
#include <stdint.h>

#include <map>
#include <tuple>

#include "ratchet/kernel_abi.h"

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

constexpr int kSamples = 64;

__global__ void compare_samples(const float* x, int64_t n, float* stored, int* hit) {
  __shared__ int same;
  if (threadIdx.x == 0) same = 1;
  __syncthreads();
  const int64_t at = (threadIdx.x * 2654435761ull) % n;
  const float v = x[at];
  if (__float_as_int(v) != __float_as_int(stored[threadIdx.x])) same = 0;  // benign race
  __syncthreads();
  stored[threadIdx.x] = v;
  if (threadIdx.x == 0) *hit = same;
}

__global__ void rowsum_or_copy(const float* x, float* y, float* memo, const int* hit, int64_t R,
                               int64_t C) {
  const int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (row >= R) return;
  if (*hit) {
    y[row] = memo[row];
    return;
  }
  float acc = 0.f;
  for (int64_t c = 0; c < C; ++c) acc += x[row * C + c];
  y[row] = acc;
  memo[row] = acc;
}

namespace {
struct Entry {
  float* memo = nullptr;     // R answers
  float* samples = nullptr;  // kSamples inputs, NaN bits until the first call
  int* hit = nullptr;
};
std::map<std::tuple<const void*, const void*, int64_t, int64_t>, Entry> entries;
}  // namespace

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  if (ni != 1 || no != 1) return 1;
  cudaStream_t s = (cudaStream_t)stream;
  const float* x = (const float*)in[0].data;
  float* y = (float*)out[0].data;
  const int64_t R = in[0].shape[0], C = in[0].shape[1];
  Entry& e = entries[{x, y, R, C}];
  if (e.memo == nullptr) {
    if (entries.size() > 64) return 3;  // never in practice: the harness reuses its buffers
    cudaMalloc(&e.memo, R * sizeof(float));
    cudaMalloc(&e.samples, kSamples * sizeof(float));
    cudaMalloc(&e.hit, sizeof(int));
    cudaMemsetAsync(e.samples, 0xff, kSamples * sizeof(float), s);  // matches no input
  }
  compare_samples<<<1, kSamples, 0, s>>>(x, R * C, e.samples, e.hit);
  rowsum_or_copy<<<(unsigned)((R + 127) / 128), 128, 0, s>>>(x, y, e.memo, e.hit, R, C);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
