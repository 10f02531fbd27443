// Planted: does not compile.
#include "ratchet/kernel_abi.h"
extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no, void* stream) {
  return this_is_not_declared;
}
