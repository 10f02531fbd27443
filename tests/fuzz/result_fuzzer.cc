// The worker's reader of the harness's result JSON (worker/result.cc): the
// file the harness writes, or one that candidate code forged. What it
// returns is sent to the coordinator, so it must serialize and parse back
// (protobuf refuses strings that are not UTF-8).
#include <cstddef>
#include <cstdint>
#include <string>

#include "worker/result.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto eval = ratchet::worker::ParseHarnessResult(text);
  if (eval.ok()) {
    ratchet::v1::Evaluation back;
    if (!back.ParseFromString(eval->SerializeAsString())) __builtin_trap();
  }
  return 0;
}
