// Baseline solution for tasks/kernels/gemm_bf16 (gemm_bf16_linear):
//   y[m, n] = sum_k x[m, k] * weight[n, k]      (y = x @ weight^T, an nn.Linear)
// bfloat16 operands and result, float32 accumulation, everything row-major.
//
// Knobs (compile-time macros, every combination is correct for any M, N, K):
//   VARIANT  0: hand-written shared-memory tiled kernel on the SIMT cores (fp32 FMA)
//            1: hand-written tiled kernel on the tensor cores (WMMA 16x16x16 bf16)
//            2: cuBLAS  cublasGemmEx (library "cublas")
//            3: cuBLASLt cublasLtMatmul with its heuristic's first algorithm ("cublasLt")
//   BLOCK_M, BLOCK_N  output tile per thread block (32, 64, 128)   [VARIANT 0, 1]
//   BLOCK_K  depth of the shared-memory K slice (16, 32)            [VARIANT 0, 1]
//   WARPS    warps per block (4, 8)                                 [VARIANT 0, 1]
// VARIANT 0 lays the threads out as 16 columns x (32*WARPS/16) rows, each thread owning
// a strided (BLOCK_M / rows) x (BLOCK_N / 16) micro-tile (bank-conflict-free smem reads).
// VARIANT 1 hands the (BLOCK_M/16) x (BLOCK_N/16) fragments round-robin to the warps.
// Tiles past the matrix edge are zero-filled on load and masked on store.
#include <ratchet/kernel_abi.h>

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>
#include <stdint.h>
#include <stdio.h>

#ifndef VARIANT
#define VARIANT 0
#endif
#ifndef BLOCK_M
#define BLOCK_M 64
#endif
#ifndef BLOCK_N
#define BLOCK_N 64
#endif
#ifndef BLOCK_K
#define BLOCK_K 16
#endif
#ifndef WARPS
#define WARPS 4
#endif

#if VARIANT < 0 || VARIANT > 3
#error "VARIANT must be 0 (SIMT tiled), 1 (WMMA tiled), 2 (cuBLAS) or 3 (cuBLASLt)"
#endif
#if BLOCK_M != 32 && BLOCK_M != 64 && BLOCK_M != 128
#error "BLOCK_M must be 32, 64 or 128"
#endif
#if BLOCK_N != 32 && BLOCK_N != 64 && BLOCK_N != 128
#error "BLOCK_N must be 32, 64 or 128"
#endif
#if BLOCK_K != 16 && BLOCK_K != 32
#error "BLOCK_K must be 16 or 32"
#endif
#if WARPS != 4 && WARPS != 8
#error "WARPS must be 4 or 8"
#endif

typedef __nv_bfloat16 bf16;
static constexpr int kThreads = WARPS * 32;

// ---------------------------------------------------------------- VARIANT 0: SIMT
static constexpr int kTX = 16;               // thread columns
static constexpr int kTY = kThreads / kTX;   // thread rows: 8 or 16
static constexpr int kRM = BLOCK_M / kTY;    // rows per thread (>= 2)
static constexpr int kCN = BLOCK_N / kTX;    // columns per thread (>= 2)
static_assert(BLOCK_M % kTY == 0 && BLOCK_N % kTX == 0, "tile must cover the threads");

__global__ void __launch_bounds__(kThreads)
gemm_simt_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w, bf16* __restrict__ y,
                 int M, int N, int K) {
  // k-major tiles in fp32; +1 column avoids bank conflicts on the transposing store.
  __shared__ float As[BLOCK_K][BLOCK_M + 1];
  __shared__ float Bs[BLOCK_K][BLOCK_N + 1];
  const int tid = threadIdx.x, tx = tid % kTX, ty = tid / kTX;
  const int m0 = blockIdx.y * BLOCK_M, n0 = blockIdx.x * BLOCK_N;
  float acc[kRM][kCN] = {};

  for (int k0 = 0; k0 < K; k0 += BLOCK_K) {
    for (int idx = tid; idx < BLOCK_M * BLOCK_K; idx += kThreads) {
      const int r = idx / BLOCK_K, kk = idx % BLOCK_K;
      const int gm = m0 + r, gk = k0 + kk;
      As[kk][r] = (gm < M && gk < K) ? __bfloat162float(x[int64_t(gm) * K + gk]) : 0.f;
    }
    for (int idx = tid; idx < BLOCK_N * BLOCK_K; idx += kThreads) {
      const int c = idx / BLOCK_K, kk = idx % BLOCK_K;
      const int gn = n0 + c, gk = k0 + kk;
      Bs[kk][c] = (gn < N && gk < K) ? __bfloat162float(w[int64_t(gn) * K + gk]) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BLOCK_K; ++kk) {
      float a[kRM], b[kCN];
#pragma unroll
      for (int i = 0; i < kRM; ++i) a[i] = As[kk][ty + i * kTY];
#pragma unroll
      for (int j = 0; j < kCN; ++j) b[j] = Bs[kk][tx + j * kTX];
#pragma unroll
      for (int i = 0; i < kRM; ++i)
#pragma unroll
        for (int j = 0; j < kCN; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < kRM; ++i) {
    const int gm = m0 + ty + i * kTY;
    if (gm >= M) continue;
#pragma unroll
    for (int j = 0; j < kCN; ++j) {
      const int gn = n0 + tx + j * kTX;
      if (gn < N) y[int64_t(gm) * N + gn] = __float2bfloat16(acc[i][j]);
    }
  }
}

// ---------------------------------------------------------------- VARIANT 1: WMMA
static constexpr int kFM = BLOCK_M / 16, kFN = BLOCK_N / 16;
static constexpr int kFragsPerWarp = (kFM * kFN + WARPS - 1) / WARPS;
static constexpr int kLd = BLOCK_K + 8;  // bf16 row pitch: multiple of 8, 32-byte steps

__global__ void __launch_bounds__(kThreads)
gemm_wmma_kernel(const bf16* __restrict__ x, const bf16* __restrict__ w, bf16* __restrict__ y,
                 int M, int N, int K) {
  using namespace nvcuda;
  __shared__ __align__(32) bf16 As[BLOCK_M][kLd];  // As[m][k]: row-major A tile
  __shared__ __align__(32) bf16 Bs[BLOCK_N][kLd];  // Bs[n][k]: column-major B (= W) tile
  __shared__ __align__(32) float Cs[WARPS][16 * 16];
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int m0 = blockIdx.y * BLOCK_M, n0 = blockIdx.x * BLOCK_N;
  const bf16 zero = __float2bfloat16(0.f);

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[kFragsPerWarp];
#pragma unroll
  for (int f = 0; f < kFragsPerWarp; ++f) wmma::fill_fragment(acc[f], 0.f);

  for (int k0 = 0; k0 < K; k0 += BLOCK_K) {
    for (int idx = tid; idx < BLOCK_M * BLOCK_K; idx += kThreads) {
      const int r = idx / BLOCK_K, kk = idx % BLOCK_K;
      const int gm = m0 + r, gk = k0 + kk;
      As[r][kk] = (gm < M && gk < K) ? x[int64_t(gm) * K + gk] : zero;
    }
    for (int idx = tid; idx < BLOCK_N * BLOCK_K; idx += kThreads) {
      const int c = idx / BLOCK_K, kk = idx % BLOCK_K;
      const int gn = n0 + c, gk = k0 + kk;
      Bs[c][kk] = (gn < N && gk < K) ? w[int64_t(gn) * K + gk] : zero;
    }
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BLOCK_K; kk += 16) {
#pragma unroll
      for (int f = 0; f < kFragsPerWarp; ++f) {
        const int fi = warp + f * WARPS;
        if (fi >= kFM * kFN) break;
        const int fm = fi / kFN, fn = fi % kFN;
        wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> af;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> bfr;
        wmma::load_matrix_sync(af, &As[fm * 16][kk], kLd);
        wmma::load_matrix_sync(bfr, &Bs[fn * 16][kk], kLd);
        wmma::mma_sync(acc[f], af, bfr, acc[f]);
      }
    }
    __syncthreads();
  }
#pragma unroll
  for (int f = 0; f < kFragsPerWarp; ++f) {
    const int fi = warp + f * WARPS;
    if (fi >= kFM * kFN) break;
    const int fm = fi / kFN, fn = fi % kFN;
    wmma::store_matrix_sync(Cs[warp], acc[f], 16, wmma::mem_row_major);
    __syncwarp();
    for (int e = lane; e < 256; e += 32) {
      const int gm = m0 + fm * 16 + e / 16, gn = n0 + fn * 16 + e % 16;
      if (gm < M && gn < N) y[int64_t(gm) * N + gn] = __float2bfloat16(Cs[warp][e]);
    }
    __syncwarp();
  }
}

// ---------------------------------------------------------------- VARIANT 2/3: libraries
// Row-major y[M,N] = x[M,K] w[N,K]^T, seen column-major, is y^T[N,M] = w[N,K] x^T[K,M]:
// C(NxM) = op_T(A = w as KxN, ld K) * op_N(B = x as KxM, ld K), ld C = N.
#if VARIANT == 2
static int run_cublas(const bf16* x, const bf16* w, bf16* y, int M, int N, int K,
                      cudaStream_t stream) {
  static cublasHandle_t handle = nullptr;  // created once; cheap to reuse
  if (handle == nullptr && cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    handle = nullptr;
    fprintf(stderr, "gemm_bf16: cublasCreate failed\n");
    return 101;
  }
  const float alpha = 1.f, beta = 0.f;
  cublasStatus_t st = cublasSetStream(handle, stream);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, CUDA_R_16BF, K, x,
                      CUDA_R_16BF, K, &beta, y, CUDA_R_16BF, N, CUBLAS_COMPUTE_32F,
                      CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS) {
    fprintf(stderr, "gemm_bf16: cublasGemmEx failed: %s\n", cublasGetStatusString(st));
    return 101;
  }
  return 0;
}
#endif  // VARIANT == 2

#if VARIANT == 3
static int run_cublaslt(const bf16* x, const bf16* w, bf16* y, int M, int N, int K,
                        cudaStream_t stream) {
  static cublasLtHandle_t handle = nullptr;
  static void* workspace = nullptr;
  static const size_t kWorkspace = 32u << 20;
  if (handle == nullptr) {
    if (cublasLtCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
      handle = nullptr;
      fprintf(stderr, "gemm_bf16: cublasLtCreate failed\n");
      return 101;
    }
  }
  if (workspace == nullptr) {
    cudaError_t e = cudaMalloc(&workspace, kWorkspace);
    if (e != cudaSuccess) {
      workspace = nullptr;
      fprintf(stderr, "gemm_bf16: workspace cudaMalloc failed: %s\n", cudaGetErrorString(e));
      return 100;
    }
  }
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  cublasLtMatmulHeuristicResult_t heur = {};
  int found = 0;
  const cublasOperation_t trans_a = CUBLAS_OP_T, trans_b = CUBLAS_OP_N;
  const float alpha = 1.f, beta = 0.f;
  cublasStatus_t st = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &trans_a,
                                        sizeof(trans_a));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &trans_b,
                                        sizeof(trans_b));
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, K, N, K);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, K, M, K);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&c, CUDA_R_16BF, N, M, N);
  if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceCreate(&pref);
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                              &kWorkspace, sizeof(kWorkspace));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmulAlgoGetHeuristic(handle, op, a, b, c, c, pref, 1, &heur, &found);
  if (st == CUBLAS_STATUS_SUCCESS && found == 0) st = CUBLAS_STATUS_NOT_SUPPORTED;
  if (st == CUBLAS_STATUS_SUCCESS)
    st = cublasLtMatmul(handle, op, &alpha, w, a, x, b, &beta, y, c, y, c, &heur.algo, workspace,
                        kWorkspace, stream);
  if (pref) cublasLtMatmulPreferenceDestroy(pref);
  if (c) cublasLtMatrixLayoutDestroy(c);
  if (b) cublasLtMatrixLayoutDestroy(b);
  if (a) cublasLtMatrixLayoutDestroy(a);
  if (op) cublasLtMatmulDescDestroy(op);
  if (st != CUBLAS_STATUS_SUCCESS) {
    fprintf(stderr, "gemm_bf16: cublasLt failed: %s\n", cublasGetStatusString(st));
    return 101;
  }
  return 0;
}
#endif  // VARIANT == 3

extern "C" int ratchet_run_cuda(const ratchet_tensor* inputs, int32_t num_inputs,
                                ratchet_tensor* outputs, int32_t num_outputs, void* stream) {
  if (num_inputs != 2 || num_outputs != 1) return 1;
  const ratchet_tensor& X = inputs[0];
  const ratchet_tensor& W = inputs[1];
  ratchet_tensor& Y = outputs[0];
  if (X.dtype != RATCHET_BFLOAT16 || W.dtype != RATCHET_BFLOAT16 || Y.dtype != RATCHET_BFLOAT16)
    return 2;
  if (X.ndim != 2 || W.ndim != 2 || Y.ndim != 2) return 3;
  const int64_t M = X.shape[0], K = X.shape[1], N = W.shape[0];
  if (W.shape[1] != K || Y.shape[0] != M || Y.shape[1] != N) return 3;
  if (M > INT32_MAX || N > INT32_MAX || K > INT32_MAX) return 3;
  if (M == 0 || N == 0) return 0;
  const bf16* x = static_cast<const bf16*>(X.data);
  const bf16* w = static_cast<const bf16*>(W.data);
  bf16* y = static_cast<bf16*>(Y.data);
  cudaStream_t s = static_cast<cudaStream_t>(stream);
  if (K == 0) return cudaMemsetAsync(y, 0, sizeof(bf16) * M * N, s) == cudaSuccess ? 0 : 100;

#if VARIANT == 2
  return run_cublas(x, w, y, (int)M, (int)N, (int)K, s);
#elif VARIANT == 3
  return run_cublaslt(x, w, y, (int)M, (int)N, (int)K, s);
#else
  dim3 grid((unsigned)((N + BLOCK_N - 1) / BLOCK_N), (unsigned)((M + BLOCK_M - 1) / BLOCK_M));
  if (grid.y > 65535) return 3;
#if VARIANT == 0
  gemm_simt_kernel<<<grid, kThreads, 0, s>>>(x, w, y, (int)M, (int)N, (int)K);
#else
  gemm_wmma_kernel<<<grid, kThreads, 0, s>>>(x, w, y, (int)M, (int)N, (int)K);
#endif
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) {
    fprintf(stderr, "gemm_bf16: launch failed: %s\n", cudaGetErrorString(err));
    return 100;
  }
  return 0;
#endif
}
