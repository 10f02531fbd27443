// What a worker measures about each of its GPUs at start: properties, the
// peak-table entry, a device-to-device copy bandwidth and a cuBLAS bf16 GEMM
// rate. Built only with the CUDA toolkit, into the ratchet-gpu-probe helper,
// so that `ratchet` itself never links the CUDA runtime.
#ifndef RATCHET_KERNELS_SOL_GPU_CALIBRATION_H_
#define RATCHET_KERNELS_SOL_GPU_CALIBRATION_H_

#include <cstdint>
#include <string>
#include <vector>

#include "kernels/sol/nccl_busbw.h"

namespace ratchet::kernels {

struct GpuCalibration {
  int index = 0;
  std::string model;               // cudaDeviceProp::name
  std::string sku;                 // peak-table key; "" when the table lacks it
  std::string compute_capability;  // "9.0"
  int sm_count = 0;
  int64_t memory_bytes = 0;
  int64_t l2_bytes = 0;
  double table_dram_gbps = 0;
  double table_bf16_tflops = 0;
  double measured_copy_gbps = 0;         // (read + written bytes) / median time
  double measured_gemm_bf16_tflops = 0;  // 2*8192^3 / median time
  std::string driver_version;            // "13.0" (CUDA driver API version)
  std::string cuda_version;              // runtime version
  std::string error;                     // why a measurement is missing
};

struct CalibrationOptions {
  bool measure = true;                    // false: properties only
  int only_device = -1;                   // >= 0: just this one
  int64_t copy_bytes = int64_t{1} << 30;  // per buffer
  int gemm_n = 8192;
  int repetitions = 10;
};

// One entry per visible GPU; empty with `*note` set when there is none (no
// driver, no device). Never throws; CUDA failures land in `error` per GPU.
std::vector<GpuCalibration> DescribeAndCalibrateGpus(const CalibrationOptions& options,
                                                     std::string* note);

// {"gpus": [...], "nccl_ranks": N, "nccl_allreduce_busbw_gbps": B,
//  "nccl_allreduce_algbw_gbps": A, "nccl_bytes": S, "nccl_median_ms": T,
//  "nccl_version": "...", "nccl_note": "...", "note": "..."}: what
// ratchet-gpu-probe prints (the NCCL figures: kernels/sol/nccl_busbw.h; all 0
// when not measured, nccl_note saying why).
std::string CalibrationJson(const std::vector<GpuCalibration>& gpus, const std::string& note,
                            const NcclAllReduceResult& nccl = NcclAllReduceResult());

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_SOL_GPU_CALIBRATION_H_
