// ratchet-gpu-probe: prints one JSON object describing and calibrating the
// visible GPUs (kernels/sol/gpu_calibration.h). The worker runs it at start
// instead of linking the CUDA runtime itself, so that `ratchet` loads on
// machines without CUDA. Exit status 0 whenever the JSON was printed, GPUs or
// not; 2 on a bad command line.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/sol/gpu_calibration.h"

int main(int argc, char** argv) {
  ratchet::kernels::CalibrationOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-measure") {
      options.measure = false;
    } else if (a == "--device" && i + 1 < argc) {
      options.only_device = std::atoi(argv[++i]);
    } else if (a == "--quick") {  // smaller problems, for tests and check scripts
      options.copy_bytes = int64_t{256} << 20;
      options.gemm_n = 4096;
      options.repetitions = 5;
    } else {
      std::fprintf(stderr,
                   "usage: ratchet-gpu-probe [--no-measure] [--quick] [--device N]\n"
                   "prints {\"gpus\": [...], \"note\": \"...\"} on stdout\n");
      return 2;
    }
  }
  std::string note;
  auto gpus = ratchet::kernels::DescribeAndCalibrateGpus(options, &note);
  std::printf("%s\n", ratchet::kernels::CalibrationJson(gpus, note).c_str());
  return 0;
}
