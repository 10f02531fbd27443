// The speed-of-light model and the SOL score (brief §1).
#ifndef RATCHET_KERNELS_SOL_SOL_H_
#define RATCHET_KERNELS_SOL_SOL_H_

namespace ratchet::kernels {

// Roofline time in ns: max(flops / peak_flops, bytes / peak_bw).
// gflops/gbps are 1e9 units per second, so flops / gflops is already ns.
double SolTimeNs(double flops, double bytes, double peak_gflops, double peak_gbps);

// S = 1 / (1 + (T_k - T_sol) / (T_b - T_sol)). When T_b <= T_sol the
// baseline is already at the limit: S = 1 if T_k <= T_sol, else 0.
double SolScore(double t_k, double t_b, double t_sol);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_SOL_SOL_H_
