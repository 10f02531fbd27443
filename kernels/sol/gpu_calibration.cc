#include "kernels/sol/gpu_calibration.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "kernels/sol/gpu_peaks.h"

namespace ratchet::kernels {
namespace {

// Every CUDA call is checked; a failure aborts this GPU's measurement (not the
// process) with the call and its message.
struct CudaFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess)
    throw CudaFailure(std::string(what) + ": " + cudaGetErrorString(e));
}
void Check(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw CudaFailure(std::string(what) + ": cuBLAS status " + std::to_string(int(s)));
}
#define CUDA_CHECK(call) Check((call), #call)

std::string Version(int v) {  // 13000 -> "13.0"
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

double Median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  if (n == 0) return 0;
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Owns device memory, so that an exception frees it.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t bytes) { CUDA_CHECK(cudaMalloc(&p, bytes)); }
  ~DeviceBuffer() { if (p) cudaFree(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

struct Events {
  cudaEvent_t start = nullptr, stop = nullptr;
  Events() {
    CUDA_CHECK(cudaEventCreate(&start));
    CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~Events() {
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
  }
};

// Device-to-device copy of `bytes`; counts bytes read + bytes written, as a
// roofline does for a copy kernel.
double MeasureCopyGbps(int64_t bytes, int reps) {
  DeviceBuffer a(bytes), b(bytes);
  CUDA_CHECK(cudaMemset(a.p, 1, bytes));
  CUDA_CHECK(cudaMemset(b.p, 0, bytes));
  Events ev;
  std::vector<float> ms;
  for (int i = 0; i < reps + 2; ++i) {
    CUDA_CHECK(cudaEventRecord(ev.start));
    CUDA_CHECK(cudaMemcpyAsync(b.p, a.p, bytes, cudaMemcpyDeviceToDevice));
    CUDA_CHECK(cudaEventRecord(ev.stop));
    CUDA_CHECK(cudaEventSynchronize(ev.stop));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, ev.start, ev.stop));
    if (i >= 2) ms.push_back(t);  // two warm-ups
  }
  double med = Median(ms);
  return med > 0 ? 2.0 * bytes / (med * 1e-3) / 1e9 : 0;
}

// C = A * B in bf16 with fp32 accumulation, n^3, on random data (zeros would
// let the tensor cores draw less power and clock higher than real work does).
double MeasureGemmTflops(int n, int reps) {
  const size_t elems = size_t(n) * n;
  std::vector<__nv_bfloat16> host(elems);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i < elems; ++i) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;  // xorshift64
    host[i] = __float2bfloat16(float(int64_t(s >> 40) - (int64_t(1) << 23)) / float(1 << 23));
  }
  DeviceBuffer a(elems * 2), b(elems * 2), c(elems * 2);
  CUDA_CHECK(cudaMemcpy(a.p, host.data(), elems * 2, cudaMemcpyHostToDevice));
  // B: the same values in reverse order, so that A != B.
  std::reverse(host.begin(), host.end());
  CUDA_CHECK(cudaMemcpy(b.p, host.data(), elems * 2, cudaMemcpyHostToDevice));
  cublasHandle_t h = nullptr;
  CUDA_CHECK(cublasCreate(&h));
  struct HandleGuard {
    cublasHandle_t h;
    ~HandleGuard() { cublasDestroy(h); }
  } guard{h};
  const float alpha = 1.0f, beta = 0.0f;
  Events ev;
  std::vector<float> ms;
  for (int i = 0; i < reps + 3; ++i) {
    CUDA_CHECK(cudaEventRecord(ev.start));
    CUDA_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.p, CUDA_R_16BF, n,
                            b.p, CUDA_R_16BF, n, &beta, c.p, CUDA_R_16BF, n,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    CUDA_CHECK(cudaEventRecord(ev.stop));
    CUDA_CHECK(cudaEventSynchronize(ev.stop));
    float t = 0;
    CUDA_CHECK(cudaEventElapsedTime(&t, ev.start, ev.stop));
    if (i >= 3) ms.push_back(t);  // three warm-ups (cuBLAS heuristics, clocks)
  }
  CUDA_CHECK(cudaGetLastError());
  double med = Median(ms);
  return med > 0 ? 2.0 * double(n) * n * n / (med * 1e-3) / 1e12 : 0;
}

}  // namespace

std::vector<GpuCalibration> DescribeAndCalibrateGpus(const CalibrationOptions& options,
                                                     std::string* note) {
  std::vector<GpuCalibration> out;
  int count = 0;
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    *note = std::string("no usable GPU: cudaGetDeviceCount: ") + cudaGetErrorString(e);
    return out;
  }
  if (count == 0) {
    *note = "no GPU visible";
    return out;
  }
  int driver = 0, runtime = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  for (int i = 0; i < count; ++i) {
    if (options.only_device >= 0 && i != options.only_device) continue;
    GpuCalibration g;
    g.index = i;
    g.driver_version = Version(driver);
    g.cuda_version = Version(runtime);
    try {
      CUDA_CHECK(cudaSetDevice(i));
      cudaDeviceProp prop;
      CUDA_CHECK(cudaGetDeviceProperties(&prop, i));
      g.model = prop.name;
      g.compute_capability = std::to_string(prop.major) + "." + std::to_string(prop.minor);
      g.sm_count = prop.multiProcessorCount;
      g.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
      g.l2_bytes = prop.l2CacheSize;
      if (auto peaks = LookupGpuPeaks(g.model)) {
        g.sku = peaks->sku;
        g.table_dram_gbps = peaks->dram_gbps;
        g.table_bf16_tflops = peaks->bf16_tflops;
      }
      if (options.measure) {
        // Two buffers must fit with room to spare.
        int64_t bytes = std::min<int64_t>(options.copy_bytes, g.memory_bytes / 8);
        g.measured_copy_gbps = MeasureCopyGbps(bytes, options.repetitions);
        g.measured_gemm_bf16_tflops = MeasureGemmTflops(options.gemm_n, options.repetitions);
      }
    } catch (const CudaFailure& f) {
      g.error = f.what();
      cudaGetLastError();  // clear a sticky-free error so the next GPU starts clean
    }
    out.push_back(g);
  }
  return out;
}

// Hand-written JSON, so that the probe builds with nothing but the CUDA
// toolkit (gpu_check.sh builds it on GPU machines that lack other packages).
std::string CalibrationJson(const std::vector<GpuCalibration>& gpus, const std::string& note,
                            const NcclAllReduceResult& nccl) {
  auto str = [](const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += static_cast<char>(c);
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        out += buf;
      } else {
        out += static_cast<char>(c);
      }
    }
    return out + "\"";
  };
  auto num = [](double v) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.6g", v);
    return std::string(buf);
  };
  std::ostringstream o;
  o << "{\"gpus\": [";
  for (size_t i = 0; i < gpus.size(); ++i) {
    const GpuCalibration& g = gpus[i];
    o << (i ? ", " : "") << "{\"index\": " << g.index << ", \"model\": " << str(g.model)
      << ", \"sku\": " << str(g.sku) << ", \"compute_capability\": " << str(g.compute_capability)
      << ", \"sm_count\": " << g.sm_count << ", \"memory_bytes\": " << g.memory_bytes
      << ", \"l2_bytes\": " << g.l2_bytes << ", \"table_dram_gbps\": " << num(g.table_dram_gbps)
      << ", \"table_bf16_tflops\": " << num(g.table_bf16_tflops)
      << ", \"measured_copy_gbps\": " << num(g.measured_copy_gbps)
      << ", \"measured_gemm_bf16_tflops\": " << num(g.measured_gemm_bf16_tflops)
      << ", \"driver_version\": " << str(g.driver_version)
      << ", \"cuda_version\": " << str(g.cuda_version) << ", \"error\": " << str(g.error) << "}";
  }
  o << "], \"nccl_ranks\": " << nccl.ranks
    << ", \"nccl_allreduce_busbw_gbps\": " << num(nccl.busbw_gbps)
    << ", \"nccl_allreduce_algbw_gbps\": " << num(nccl.algbw_gbps)
    << ", \"nccl_bytes\": " << nccl.bytes << ", \"nccl_median_ms\": " << num(nccl.median_ms)
    << ", \"nccl_version\": " << str(nccl.nccl_version) << ", \"nccl_note\": " << str(nccl.note);
  o << ", \"note\": " << str(note) << "}";
  return o.str();
}

}  // namespace ratchet::kernels
