// The noise floor: how much repeated measurements of one unchanged solution
// (the incumbent, replayed for every verification) spread, per problem,
// workload and hardware model. Pooled over verifications as a within-group
// variance of relative deviations, so that incumbents of different speeds
// share one figure; old groups decay so that the floor follows the machine.
#ifndef RATCHET_COMMON_NOISE_FLOOR_H_
#define RATCHET_COMMON_NOISE_FLOOR_H_

#include <string>
#include <vector>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet {

// Degrees of freedom kept: older evidence is scaled down past this.
inline constexpr double kNoiseFloorMaxDf = 60;

// Adds one group of repeated measurements (two or more positive values) to
// `floor`: its relative deviations from the group mean join the pooled sum of
// squares. Groups of fewer than two values change nothing.
void AddNoiseGroup(const std::vector<double>& values, int64_t now_unix_ms,
                   v1::NoiseFloor* floor);

// Sum of squared relative deviations from the mean, and n - 1.
void RelativeSpread(const std::vector<double>& values, double* sum_squares, double* df);

// The key of a worker's hardware for noise floors: the first GPU's model
// for CUDA work, else the CPU model ("unknown" when empty).
std::string HardwareKey(const v1::Hardware& hardware, bool cuda);

}  // namespace ratchet

#endif  // RATCHET_COMMON_NOISE_FLOOR_H_
