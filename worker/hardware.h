// What a worker tells the coordinator about its machine.
#ifndef RATCHET_WORKER_HARDWARE_H_
#define RATCHET_WORKER_HARDWARE_H_

#include <string>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::worker {

// CPU model, cores, memory and GPU models from /proc (no peaks).
v1::Hardware DescribeHardware();

// Runs ratchet::kernels::MeasureCpuPeaks() and stores the result.
void MeasurePeaks(v1::Hardware* hw);

// One line for logs.
std::string HardwareSummary(const v1::Hardware& hw);

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_HARDWARE_H_
