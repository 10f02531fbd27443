// Planted: dereferences a null host pointer.
#include "ratchet/kernel_abi.h"
extern "C" int ratchet_run_cuda(const ratchet_tensor*, int32_t, ratchet_tensor*, int32_t, void*) {
  volatile int* p = nullptr;
  *p = 1;
  return 0;
}
