// Speed-of-light peaks per GPU model: the datasheet table that T_sol is
// computed from, optionally refined by a calibration on the device.
#ifndef RATCHET_KERNELS_SOL_GPU_PEAKS_H_
#define RATCHET_KERNELS_SOL_GPU_PEAKS_H_

#include <optional>
#include <string>
#include <vector>

namespace ratchet::kernels {

// Dense (no sparsity) rates.
struct GpuPeaks {
  std::string sku;           // "H100-SXM", "H100-PCIe", "H200", "B200", "A100-SXM", "L40S"
  double dram_gbps = 0;      // HBM/GDDR bandwidth, GB/s
  double fp32_tflops = 0;    // SIMT fp32 (FMA = 2 flops)
  double tf32_tflops = 0;    // tensor cores
  double fp16_tflops = 0;
  double bf16_tflops = 0;
  double fp8_tflops = 0;     // 0 where the GPU has no fp8 tensor cores
  double int8_tops = 0;
};

// The whole table, for `ratchet workers` and docs.
const std::vector<GpuPeaks>& GpuPeakTable();

// Matches a CUDA device name (cudaDeviceProp::name, e.g. "NVIDIA H100 80GB
// HBM3") to a table entry; nullopt for a GPU the table does not know.
std::optional<GpuPeaks> LookupGpuPeaks(const std::string& device_name);

// The compute peak (TFLOP/s) for a problem computing in `dtype` ("bfloat16",
// "float8_e4m3fn", ...): the tensor-core rate when `tensor_core`, else SIMT
// fp32 (which is also what half types get off the tensor cores).
double PeakTflops(const GpuPeaks& peaks, const std::string& dtype, bool tensor_core);

// Whether T_sol's compute peak is the tensor cores' rate. The definition's
// `ratchet.unit` decides when it says "tensor" or "simt"; else an op_type
// that names a matmul-like op (matmul, gemm, bmm, attention, conv, mm,
// linear); else flops counted by the oracle (the definition gives no
// `ratchet.flops`), since FlopCounterMode counts only matmul-like ops. Public
// definitions often have no op_type: a bf16 projection judged on SIMT fp32
// had a T_sol several times its reference's time.
bool TensorCoreRoofline(const std::string& op_type, const std::string& unit,
                        bool flops_from_oracle);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_SOL_GPU_PEAKS_H_
