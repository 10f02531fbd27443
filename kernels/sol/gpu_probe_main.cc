// ratchet-gpu-probe: prints one JSON object describing and calibrating the
// visible GPUs (kernels/sol/gpu_calibration.h). The worker runs it at start
// instead of linking the CUDA runtime itself, so that `ratchet` loads on
// machines without CUDA. Exit status 0 whenever the JSON was printed, GPUs or
// not; 2 on a bad command line.
//
// Before the per-GPU calibration it measures the NCCL all-reduce bus
// bandwidth over all the GPUs (kernels/sol/nccl_busbw.h), in a child process
// so that NCCL can neither hang nor crash the probe; --no-nccl,
// RATCHET_SKIP_NCCL=1 or --no-measure skip it (the figures are then 0).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "kernels/sol/gpu_calibration.h"

int main(int argc, char** argv) {
  ratchet::kernels::CalibrationOptions options;
  const char* skip_env = std::getenv("RATCHET_SKIP_NCCL");
  bool nccl = !(skip_env != nullptr && *skip_env && std::strcmp(skip_env, "0") != 0);
  std::string nccl_skipped = nccl ? "" : "skipped (RATCHET_SKIP_NCCL)";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--no-measure") {
      options.measure = false;
    } else if (a == "--no-nccl") {
      nccl = false;
      nccl_skipped = "skipped (--no-nccl)";
    } else if (a == "--device" && i + 1 < argc) {
      options.only_device = std::atoi(argv[++i]);
    } else if (a == "--quick") {  // smaller problems, for tests and check scripts
      options.copy_bytes = int64_t{256} << 20;
      options.gemm_n = 4096;
      options.repetitions = 5;
    } else {
      std::fprintf(stderr,
                   "usage: ratchet-gpu-probe [--no-measure] [--no-nccl] [--quick] [--device N]\n"
                   "prints {\"gpus\": [...], \"nccl_ranks\": N, ..., \"note\": \"...\"} on "
                   "stdout\n(RATCHET_SKIP_NCCL=1: no NCCL all-reduce)\n");
      return 2;
    }
  }
  // First, while this process has not touched CUDA (the child forks).
  ratchet::kernels::NcclAllReduceResult all_reduce;
  if (!options.measure) {
    all_reduce.note = "skipped (--no-measure)";
  } else if (!nccl) {
    all_reduce.note = nccl_skipped;
  } else {
#ifdef RATCHET_HAVE_NCCL
    ratchet::kernels::NcclOptions nccl_options;
    nccl_options.only_device = options.only_device;
    if (const char* t = std::getenv("RATCHET_NCCL_TIMEOUT_S"); t != nullptr && std::atof(t) > 0)
      nccl_options.timeout_seconds = std::atof(t);
    all_reduce = ratchet::kernels::MeasureNcclAllReduceIsolated(nccl_options);
#else
    all_reduce.note = "ratchet-gpu-probe was built without NCCL (no nccl.h)";
#endif
    if (!all_reduce.note.empty())
      std::fprintf(stderr, "ratchet-gpu-probe: NCCL all-reduce not measured: %s\n",
                   all_reduce.note.c_str());
  }
  std::string note;
  auto gpus = ratchet::kernels::DescribeAndCalibrateGpus(options, &note);
  std::printf("%s\n", ratchet::kernels::CalibrationJson(gpus, note, all_reduce).c_str());
  return 0;
}
