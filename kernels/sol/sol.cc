#include "kernels/sol/sol.h"

#include <algorithm>

namespace ratchet::kernels {

double SolTimeNs(double flops, double bytes, double peak_gflops, double peak_gbps) {
  const double compute = peak_gflops > 0 ? flops / peak_gflops : 0;
  const double memory = peak_gbps > 0 ? bytes / peak_gbps : 0;
  return std::max(compute, memory);
}

double SolScore(double t_k, double t_b, double t_sol) {
  // At or below the speed of light the score is 1: the formula would exceed
  // 1 there and even turn negative once T_k undershoots T_sol by more than
  // T_b overshoots it. Such a time is impossible; the CUDA harness flags it
  // ("below-sol") and the verifier rejects it.
  if (t_k <= t_sol) return 1.0;
  if (t_b <= t_sol) return 0.0;
  return 1.0 / (1.0 + (t_k - t_sol) / (t_b - t_sol));
}

}  // namespace ratchet::kernels
