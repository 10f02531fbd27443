// Planted: compiles, but exports the CPU entry point instead of ratchet_run_cuda.
#include "ratchet/kernel_abi.h"
extern "C" int ratchet_run(const ratchet_tensor*, int32_t, ratchet_tensor*, int32_t) { return 0; }
