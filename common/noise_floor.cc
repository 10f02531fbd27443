#include "common/noise_floor.h"

#include <cmath>

namespace ratchet {

void RelativeSpread(const std::vector<double>& values, double* sum_squares, double* df) {
  *sum_squares = 0;
  *df = 0;
  if (values.size() < 2) return;
  double mean = 0;
  for (double v : values) mean += v;
  mean /= static_cast<double>(values.size());
  if (mean <= 0) return;
  for (double v : values) *sum_squares += ((v - mean) / mean) * ((v - mean) / mean);
  *df = static_cast<double>(values.size() - 1);
}

void AddNoiseGroup(const std::vector<double>& values, int64_t now_unix_ms,
                   v1::NoiseFloor* floor) {
  double ss, df;
  RelativeSpread(values, &ss, &df);
  if (df <= 0) return;
  double total_ss = floor->sum_squares() + ss, total_df = floor->degrees_of_freedom() + df;
  if (total_df > kNoiseFloorMaxDf) {  // older groups fade, the mean square stays
    const double keep = kNoiseFloorMaxDf / total_df;
    total_ss *= keep;
    total_df *= keep;
  }
  floor->set_sum_squares(total_ss);
  floor->set_degrees_of_freedom(total_df);
  floor->set_relative_sd(std::sqrt(total_ss / total_df));
  floor->set_groups(floor->groups() + 1);
  floor->set_updated_unix_ms(now_unix_ms);
}

std::string HardwareKey(const v1::Hardware& hardware, bool cuda) {
  if (cuda && hardware.gpus_size() > 0) return hardware.gpus(0);
  return hardware.cpu_model().empty() ? "unknown" : hardware.cpu_model();
}

}  // namespace ratchet
