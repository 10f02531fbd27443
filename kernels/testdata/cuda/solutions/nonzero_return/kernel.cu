// Planted: reports failure.
#include "ratchet/kernel_abi.h"
extern "C" int ratchet_run_cuda(const ratchet_tensor*, int32_t, ratchet_tensor*, int32_t, void*) { return 7; }
