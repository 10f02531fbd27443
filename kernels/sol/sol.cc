#include "kernels/sol/sol.h"

#include <algorithm>

namespace ratchet::kernels {

double SolTimeNs(double flops, double bytes, double peak_gflops, double peak_gbps) {
  const double compute = peak_gflops > 0 ? flops / peak_gflops : 0;
  const double memory = peak_gbps > 0 ? bytes / peak_gbps : 0;
  return std::max(compute, memory);
}

double SolScore(double t_k, double t_b, double t_sol) {
  if (t_b <= t_sol) return t_k <= t_sol ? 1.0 : 0.0;
  return 1.0 / (1.0 + (t_k - t_sol) / (t_b - t_sol));
}

}  // namespace ratchet::kernels
