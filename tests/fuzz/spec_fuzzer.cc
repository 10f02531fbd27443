// The campaign spec reader (services/cli/spec.cc): YAML text as a user, or
// anyone who hands a user a spec, writes it. Relative folders resolve under
// the repository's tasks/, so `problem: cpu/matmul` reads a real problem and
// the fuzzer reaches the validator behind the reader.
#include <cstddef>
#include <cstdint>
#include <string>

#include "spec/validation.h"
#include "services/cli/spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  // Must return (never throw or abort) whatever the text.
  auto spec = ratchet::cli::ParseCampaignSpec(yaml, RATCHET_SOURCE_DIR "/tasks/fuzz.yaml");
  // What it accepts, the coordinator accepts: the validator ran on it.
  if (spec.ok() && !ratchet::spec::ValidateCampaignSpec(*spec).ok()) __builtin_trap();
  return 0;
}
