// Honest, through cuBLAS: c = a, then c += alpha * b (alpha read on the device).
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include "ratchet/kernel_abi.h"

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  static cublasHandle_t handle = nullptr;
  if (handle == nullptr && cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) return 3;
  const int n = (int)in[0].shape[0];
  cudaStream_t s = (cudaStream_t)stream;
  if (cublasSetStream(handle, s) != CUBLAS_STATUS_SUCCESS) return 4;
  cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_DEVICE);
  if (cudaMemcpyAsync(out[0].data, in[0].data, n * sizeof(float), cudaMemcpyDeviceToDevice, s) != cudaSuccess) return 5;
  if (cublasSaxpy(handle, n, (const float*)in[2].data, (const float*)in[1].data, 1, (float*)out[0].data, 1) !=
      CUBLAS_STATUS_SUCCESS) return 6;
  return 0;
}
