// Honest improvement: i-k-j over 32-column blocks, two rows of C per pass.
#include <ratchet/kernel_abi.h>

#include <stdint.h>

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  if (ni != 2 || no != 1) return 1;
  const float* A = static_cast<const float*>(in[0].data);
  const float* B = static_cast<const float*>(in[1].data);
  float* C = static_cast<float*>(out[0].data);
  const int64_t M = in[0].shape[0], K = in[0].shape[1], N = in[1].shape[1];
  for (int64_t x = 0; x < M * N; ++x) C[x] = 0;
  for (int64_t j0 = 0; j0 < N; j0 += 32) {
    const int64_t j1 = j0 + 32 < N ? j0 + 32 : N;
    int64_t i = 0;
    for (; i + 2 <= M; i += 2) {
      float* c0 = C + i * N;
      float* c1 = c0 + N;
      for (int64_t k = 0; k < K; ++k) {
        const float a0 = A[i * K + k], a1 = A[(i + 1) * K + k];
        const float* b = B + k * N;
        for (int64_t j = j0; j < j1; ++j) {
          c0[j] += a0 * b[j];
          c1[j] += a1 * b[j];
        }
      }
    }
    for (; i < M; ++i)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t j = j0; j < j1; ++j) C[i * N + j] += A[i * K + k] * B[k * N + j];
  }
  return 0;
}
