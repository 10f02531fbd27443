// Runs the PyTorch reference oracle (kernels/oracle/oracle.py, beside the
// harness executable) in a separate process: it writes each round's inputs
// and reference outputs as raw files plus oracle_manifest.json into the
// scratch folder (docs/harness.md, "The oracle request").
#ifndef RATCHET_KERNELS_HARNESS_ORACLE_CLIENT_H_
#define RATCHET_KERNELS_HARNESS_ORACLE_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {

struct OracleOptions {
  uint64_t seed = 1;
  int rounds = 3;
  int warmups = 3;
  int repetitions = 20;
  size_t flush_bytes = 0;
  int threads = 1;
  std::string scratch;  // out_dir; must exist.
  std::string python;   // Explicit interpreter (--python); else $RATCHET_PYTHON, else probed.
  std::string cache_dir;  // T_b cache (--cache-dir); else $RATCHET_TB_CACHE; else none.
  // CUDA only (omitted from the request when empty): "cuda", and the index.
  std::string device;
  int device_index = 0;
  // CUDA only: extra rounds appended after `rounds`, each a copy of round
  // perturb_of[i]'s inputs with one element changed (the A' of the A/B/A'
  // guard), with its own reference outputs.
  std::vector<int> perturb_of;
};

// Writes SCRATCH/oracle_request.json, runs the oracle and returns the
// manifest's text. Every failure (no python that imports torch, the reference
// raising, no manifest) is an error whose message is the harness_error text.
absl::StatusOr<std::string> RunOracle(const Problem& problem, const OracleOptions& options);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_ORACLE_CLIENT_H_
