// Measured CPU peaks for the roofline: memory bandwidth (GB/s) and fp32
// FLOP rate (GFLOP/s), both using every core the process may run on.
#ifndef RATCHET_KERNELS_SOL_CPU_PEAKS_H_
#define RATCHET_KERNELS_SOL_CPU_PEAKS_H_

namespace ratchet::kernels {

struct CpuPeaks {
  double gbps;
  double gflops;
};

// Takes well under 2 s. Bandwidth: best of a few parallel copies of arrays
// larger than the last-level cache (bytes read + bytes written). FLOPs: best
// of a few runs of independent fp32 FMA chains, 2 flops per FMA.
CpuPeaks MeasureCpuPeaks();

// Last-level cache size in bytes (sysconf, then sysfs); 32 MiB if unknown.
long LastLevelCacheBytes();

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_SOL_CPU_PEAKS_H_
