#include "kernels/sol/gpu_peaks.h"

#include <algorithm>
#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace ratchet::kernels {
namespace {

// Every figure is the vendor datasheet's DENSE rate: datasheets print tensor
// rates "with sparsity" (2:4), which are exactly twice the dense rate; those
// are halved here. Memory bandwidth is the datasheet's peak, in GB/s (1e9).
std::vector<GpuPeaks> BuildTable() {
  std::vector<GpuPeaks> t;
  // NVIDIA H100 Tensor Core GPU datasheet, "H100 SXM" column: GPU memory
  // bandwidth 3.35 TB/s; FP32 67 TFLOPS; TF32 989 TFLOPS*, BF16/FP16
  // 1,979 TFLOPS*, FP8 3,958 TFLOPS*, INT8 3,958 TOPS* (* with sparsity).
  t.push_back({"H100-SXM", 3350, 67.0, 494.7, 989.4, 989.4, 1978.9, 1978.9});
  // Same datasheet, "H100 PCIe" column: 2 TB/s; FP32 51 TFLOPS; TF32 756*,
  // BF16/FP16 1,513*, FP8 3,026*, INT8 3,026* (with sparsity).
  t.push_back({"H100-PCIe", 2000, 51.2, 378.0, 756.0, 756.0, 1513.0, 1513.0});
  // NVIDIA H200 Tensor Core GPU datasheet, "H200 SXM" column: 4.8 TB/s;
  // FP32 67 TFLOPS; TF32 989*, BF16/FP16 1,979*, FP8 3,958*, INT8 3,958*.
  // Same GH100 tensor cores as H100 SXM, faster HBM3e.
  t.push_back({"H200", 4800, 67.0, 494.7, 989.4, 989.4, 1978.9, 1978.9});
  // NVIDIA HGX B200 datasheet, per GPU (1,000 W): 180 GB HBM3E at 7.7 TB/s
  // (earlier material: 8 TB/s); FP32 75 TFLOPS; TF32 2.2 PFLOPS*,
  // FP16/BF16 4.5 PFLOPS*, FP8/FP6 9 PFLOPS*, INT8 9 POPS* (with sparsity).
  t.push_back({"B200", 7700, 75.0, 1100.0, 2250.0, 2250.0, 4500.0, 4500.0});
  // NVIDIA A100 Tensor Core GPU datasheet, "A100 80GB SXM" column: 2,039 GB/s;
  // FP32 19.5 TFLOPS; TF32 156 (312*), BF16/FP16 312 (624*), INT8 624 (1,248*)
  // TOPS. Ampere has no fp8 tensor cores.
  t.push_back({"A100-SXM", 2039, 19.5, 156.0, 312.0, 312.0, 0.0, 624.0});
  // NVIDIA L40S datasheet: 864 GB/s GDDR6; FP32 91.6 TFLOPS; TF32 183 (366*),
  // BF16/FP16 362.05 (733*), FP8 733 (1,466*), INT8 733 (1,466*) TOPS.
  t.push_back({"L40S", 864, 91.6, 183.0, 362.05, 362.05, 733.0, 733.0});
  return t;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

bool Has(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

// The table key for a cudaDeviceProp::name, or "" when unknown. Variants with
// other peaks (H100 NVL, H200 NVL, A100 40GB/PCIe, L40 without S) are
// deliberately unknown: a wrong entry would give a wrong T_sol, so those fall
// back to the worker's calibration instead.
std::string SkuOf(const std::string& device_name) {
  const std::string n = Lower(device_name);
  if (Has(n, "h100")) {
    if (Has(n, "nvl")) return "";
    if (Has(n, "pcie")) return "H100-PCIe";
    if (Has(n, "hbm3") || Has(n, "sxm")) return "H100-SXM";  // "NVIDIA H100 80GB HBM3"
    return "";
  }
  if (Has(n, "h200")) return Has(n, "nvl") ? "" : "H200";
  if (Has(n, "b200")) return Has(n, "gb200") ? "" : "B200";
  if (Has(n, "a100")) return (Has(n, "sxm") && Has(n, "80gb")) ? "A100-SXM" : "";
  if (Has(n, "l40s")) return "L40S";
  return "";
}

}  // namespace

const std::vector<GpuPeaks>& GpuPeakTable() {
  static const std::vector<GpuPeaks>* table = new std::vector<GpuPeaks>(BuildTable());
  return *table;
}

std::optional<GpuPeaks> LookupGpuPeaks(const std::string& device_name) {
  const std::string sku = SkuOf(device_name);
  if (sku.empty()) return std::nullopt;
  for (const GpuPeaks& p : GpuPeakTable())
    if (p.sku == sku) return p;
  return std::nullopt;
}

double PeakTflops(const GpuPeaks& peaks, const std::string& dtype, bool tensor_core) {
  if (!tensor_core) return peaks.fp32_tflops;
  if (dtype == "float32") return peaks.tf32_tflops;
  if (dtype == "float16") return peaks.fp16_tflops;
  if (dtype == "bfloat16") return peaks.bf16_tflops;
  if (dtype == "float8_e4m3fn" || dtype == "float8_e5m2" || dtype == "float8_e4m3") {
    // Without fp8 tensor cores the work runs at the 16-bit rate at best.
    return peaks.fp8_tflops > 0 ? peaks.fp8_tflops : peaks.fp16_tflops;
  }
  if (dtype == "int8" || dtype == "uint8") return peaks.int8_tops;
  // fp64, wider ints, bool: no tensor-core path in the table; SIMT fp32 is
  // the only figure it has.
  return peaks.fp32_tflops;
}

bool TensorCoreRoofline(const std::string& op_type, const std::string& unit,
                        bool flops_from_oracle) {
  if (unit == "tensor") return true;
  if (unit == "simt") return false;
  const std::string t = absl::AsciiStrToLower(op_type);
  for (const char* k : {"matmul", "gemm", "bmm", "attention", "attn", "conv", "mm", "linear"})
    if (absl::StrContains(t, k)) return true;
  return flops_from_oracle;
}

}  // namespace ratchet::kernels
