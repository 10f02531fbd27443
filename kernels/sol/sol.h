// The speed-of-light model and the SOL score (docs/harness.md, "Speed of light").
#ifndef RATCHET_KERNELS_SOL_SOL_H_
#define RATCHET_KERNELS_SOL_SOL_H_

namespace ratchet::kernels {

// Roofline time in ns: max(flops / peak_flops, bytes / peak_bw).
// gflops/gbps are 1e9 units per second, so flops / gflops is already ns.
double SolTimeNs(double flops, double bytes, double peak_gflops, double peak_gbps);

// S = 1 / (1 + (T_k - T_sol) / (T_b - T_sol)), in [0, 1]: S = 1 whenever
// T_k <= T_sol (the limit; below it is impossible and flagged elsewhere), and
// when T_b <= T_sol the baseline is already at the limit: S = 0 if T_k > T_sol.
double SolScore(double t_k, double t_b, double t_sol);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_SOL_SOL_H_
