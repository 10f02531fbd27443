#include "kernels/sol/gpu_peaks.h"

#include <set>

#include "gtest/gtest.h"

namespace ratchet::kernels {
namespace {

TEST(GpuPeaksTest, EveryDriverNameFindsItsEntry) {
  const std::pair<const char*, const char*> names[] = {
      {"NVIDIA H100 80GB HBM3", "H100-SXM"},
      {"NVIDIA H100 PCIe", "H100-PCIe"},
      {"NVIDIA H200", "H200"},
      {"NVIDIA B200", "B200"},
      {"NVIDIA A100-SXM4-80GB", "A100-SXM"},
      {"NVIDIA L40S", "L40S"},
  };
  for (const auto& [name, sku] : names) {
    auto p = LookupGpuPeaks(name);
    ASSERT_TRUE(p.has_value()) << name;
    EXPECT_EQ(p->sku, sku) << name;
  }
}

TEST(GpuPeaksTest, UnknownOrDifferentVariantsAreNullopt) {
  for (const char* name : {"", "NVIDIA GeForce RTX 4090", "NVIDIA H100 NVL", "NVIDIA H200 NVL",
                           "NVIDIA A100-SXM4-40GB", "NVIDIA A100 80GB PCIe", "NVIDIA L40",
                           "Tesla V100-SXM2-16GB"}) {
    EXPECT_FALSE(LookupGpuPeaks(name).has_value()) << name;
  }
}

TEST(GpuPeaksTest, TableIsCompleteAndDense) {
  std::set<std::string> skus;
  for (const GpuPeaks& p : GpuPeakTable()) {
    skus.insert(p.sku);
    EXPECT_GT(p.dram_gbps, 500) << p.sku;
    EXPECT_GT(p.fp32_tflops, 10) << p.sku;
    // Dense tensor-core ladder: tf32 = bf16/2, fp16 = bf16, fp8 = 2*bf16.
    EXPECT_NEAR(p.tf32_tflops * 2, p.bf16_tflops, 0.03 * p.bf16_tflops) << p.sku;
    EXPECT_EQ(p.fp16_tflops, p.bf16_tflops) << p.sku;
    if (p.fp8_tflops > 0) EXPECT_NEAR(p.fp8_tflops, 2 * p.bf16_tflops, 0.03 * p.fp8_tflops);
    EXPECT_NEAR(p.int8_tops, 2 * p.bf16_tflops, 0.03 * p.int8_tops) << p.sku;
  }
  EXPECT_EQ(skus, (std::set<std::string>{"H100-SXM", "H100-PCIe", "H200", "B200", "A100-SXM",
                                         "L40S"}));
  // Dense, not sparse: H100 SXM bf16 is ~989, not 1979.
  EXPECT_NEAR(LookupGpuPeaks("NVIDIA H100 80GB HBM3")->bf16_tflops, 989.4, 1);
  EXPECT_EQ(LookupGpuPeaks("NVIDIA H200")->dram_gbps, 4800);
}

TEST(GpuPeaksTest, TheRooflineUnitFollowsTheDefinitionThenTheOpTypeThenTheFlopsSource) {
  // The definition's ratchet.unit wins either way.
  EXPECT_TRUE(TensorCoreRoofline("rmsnorm", "tensor", false));
  EXPECT_FALSE(TensorCoreRoofline("gemm", "simt", true));
  // A matmul-like op_type, whoever counted the flops.
  EXPECT_TRUE(TensorCoreRoofline("GEMM", "", false));
  EXPECT_TRUE(TensorCoreRoofline("attention_output_projection", "", false));
  // No op_type (SOL-ExecBench's jamba_attn_proj, gemma3_swiglu) or another
  // (linear_backward's "backward"): the oracle's FlopCounterMode counts only
  // matmul-like flops, so their roofline is the tensor cores'.
  EXPECT_TRUE(TensorCoreRoofline("", "", true));
  EXPECT_TRUE(TensorCoreRoofline("backward", "", true));
  // The definition's own flops for an op that is not a matmul: SIMT.
  EXPECT_FALSE(TensorCoreRoofline("rmsnorm", "", false));
  EXPECT_FALSE(TensorCoreRoofline("", "", false));
}

TEST(GpuPeaksTest, PeakTflopsPicksTheUnit) {
  GpuPeaks h = *LookupGpuPeaks("NVIDIA H100 80GB HBM3");
  EXPECT_DOUBLE_EQ(PeakTflops(h, "float32", true), h.tf32_tflops);
  EXPECT_DOUBLE_EQ(PeakTflops(h, "float16", true), h.fp16_tflops);
  EXPECT_DOUBLE_EQ(PeakTflops(h, "bfloat16", true), h.bf16_tflops);
  EXPECT_DOUBLE_EQ(PeakTflops(h, "float8_e4m3fn", true), h.fp8_tflops);
  EXPECT_DOUBLE_EQ(PeakTflops(h, "float8_e5m2", true), h.fp8_tflops);
  EXPECT_DOUBLE_EQ(PeakTflops(h, "int8", true), h.int8_tops);
  EXPECT_DOUBLE_EQ(PeakTflops(h, "float64", true), h.fp32_tflops);
  for (const char* dt : {"float32", "float16", "bfloat16", "float8_e4m3fn", "int8"})
    EXPECT_DOUBLE_EQ(PeakTflops(h, dt, false), h.fp32_tflops) << dt;
  // A100 has no fp8 tensor cores: fp8 work runs at the 16-bit rate at best.
  GpuPeaks a = *LookupGpuPeaks("NVIDIA A100-SXM4-80GB");
  EXPECT_EQ(a.fp8_tflops, 0);
  EXPECT_DOUBLE_EQ(PeakTflops(a, "float8_e4m3fn", true), a.bf16_tflops);
}

}  // namespace
}  // namespace ratchet::kernels
