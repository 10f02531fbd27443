// Does not compile: undeclared identifier.
#include "ratchet/kernel_abi.h"

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t, ratchet_tensor* out, int32_t) {
  return undeclared_thing;
}
