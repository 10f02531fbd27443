// The submit-time validator (spec/validation.h) on any
// CampaignSpec that protobuf will parse, as a gRPC client can send it.
#include <cstddef>
#include <cstdint>

#include "spec/validation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ratchet::v1::CampaignSpec spec;
  if (!spec.ParseFromArray(data, static_cast<int>(size))) return 0;
  const absl::Status s = ratchet::spec::ValidateCampaignSpec(spec);
  // Whatever it says must itself be sendable (UTF-8) as a gRPC status.
  if (!s.ok() && !ratchet::spec::IsValidUtf8(s.message())) __builtin_trap();
  return 0;
}
