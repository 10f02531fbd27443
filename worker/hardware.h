// What a worker tells the coordinator about its machine.
#ifndef RATCHET_WORKER_HARDWARE_H_
#define RATCHET_WORKER_HARDWARE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::worker {

// CPU model, cores, memory and GPU models from /proc (no peaks).
v1::Hardware DescribeHardware();

// Runs ratchet::kernels::MeasureCpuPeaks() and stores the result.
void MeasurePeaks(v1::Hardware* hw);

// Runs the calibration helper `probe_path` (ratchet-gpu-probe, beside the
// ratchet executable; it alone links the CUDA runtime) and fills hw->gpus
// and hw->gpu_info from what it prints. `measure` false passes --no-measure
// (properties only, no calibration). Returns one line for the log that says what
// happened: the GPUs found, or why this worker is CPU-only. Leaves `hw` as
// DescribeHardware made it when the probe is absent or fails.
std::string ProbeGpus(const std::string& probe_path, bool measure, double timeout_seconds,
                      v1::Hardware* hw);

// Parses ratchet-gpu-probe's JSON ({"gpus": [...], "note": ...}) into
// hw->gpus (models) and hw->gpu_info, replacing what was there when at least
// one GPU is listed. *note gets the probe's note (why there is no GPU).
// InvalidArgument on malformed output.
absl::Status ParseGpuProbe(const std::string& json, v1::Hardware* hw, std::string* note);

// One line for logs.
std::string HardwareSummary(const v1::Hardware& hw);
// One line per GPU: "GPU 0 NVIDIA H200 (H200, sm 9.0, 132 SMs, 140.4 GiB):
// copy 4012 GB/s (table 4800), GEMM bf16 731 TFLOP/s (table 989)".
std::string GpuSummary(const v1::GpuInfo& gpu);

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_HARDWARE_H_
