// Runs the PyTorch reference oracle (kernels/oracle/oracle.py, beside the
// harness executable) in a separate process: it writes each round's inputs
// and reference outputs as raw files plus oracle_manifest.json into the
// scratch folder (docs/harness.md, "The oracle request").
#ifndef RATCHET_KERNELS_HARNESS_ORACLE_CLIENT_H_
#define RATCHET_KERNELS_HARNESS_ORACLE_CLIENT_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/harness/contract.h"
#include "kernels/harness/pipeline.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {

struct OracleOptions {
  uint64_t seed = 1;
  int rounds = kCpuHarnessDefaults.rounds;
  // Per workload (in the problem's order), the rounds it gets when fewer
  // than `rounds` (a large workload's share of the round budget); empty:
  // `rounds` for every workload.
  std::vector<int> rounds_by_workload;
  int warmups = kCpuHarnessDefaults.warmups;
  int repetitions = kCpuHarnessDefaults.repetitions;
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
  // False: no T_b (nor flop count) in the manifest, only inputs and references.
  bool time_reference = true;
  // True: HOME, TMPDIR and caches inside `scratch`, and `python -I`, so that
  // files left by candidate code cannot reach the reference (the CPU harness,
  // which starts the oracle in a folder made after every candidate process
  // is gone).
  bool isolated = false;
  // A folder where an --oracle-only run left its output for this request
  // (--given-rounds): when its request is this one (the folders and the T_b
  // cache aside) its files move into `scratch` and no oracle runs.
  std::string reuse_dir;
  bool reuse_only = false;  // and where they are not, an error, no oracle
  bool* reused = nullptr;   // set to whether they did
};

// Writes SCRATCH/oracle_request.json, runs the oracle and returns the
// manifest's text. Every failure (no python that imports torch, the reference
// raising, no manifest) is an error whose message is the harness_error text.
absl::StatusOr<std::string> RunOracle(const Problem& problem, const OracleOptions& options);

// The cascade's screen (docs/harness.md, "The screen"): after compilation,
// one round of the smallest workload, without timing the reference, checked
// like the correctness stage; a wrong candidate ends there, before the full
// oracle (every round of every workload, and T_b) costs anything.
enum class ScreenMode { kAuto, kOn, kOff };

// "auto", "on" or "off"; false for anything else.
bool ParseScreenMode(const std::string& text, ScreenMode* mode);

// Under auto the screen runs when the largest workload's tensors (inputs and
// outputs of one round) take at least this many bytes; below that the
// screen's own oracle start (about a second of Python and torch imports)
// costs more than the full oracle it can save.
inline constexpr double kScreenAutoBytes = 16 << 20;

// The workload the screen checks, the one with the fewest bytes of inputs and
// outputs; nullopt when there is no screen (off, fewer than two workloads, or
// auto below kScreenAutoBytes).
std::optional<Workload> ScreenWorkload(const Problem& problem, ScreenMode mode);

// Runs the oracle for the screen: `full` (the options of the full run) for
// workload `w` alone, one round, no A' rounds, no T_b, and another seed so
// that the full run's correctness rounds use inputs the candidate has not
// seen. Writes into the same scratch; the full run overwrites it.
absl::StatusOr<std::string> RunScreenOracle(const Problem& problem, const Workload& w,
                                            OracleOptions full);

// Reads every round the oracle wrote into `dir` (its manifest's text given)
// for `workloads` into trusted memory, and overwrites each reference file
// with a decoy (pipeline.h, MakeDecoy): a candidate that reads the file copies
// that. Errors are the harness_error text.
absl::Status ReadOracleRounds(const Definition& def, const std::string& dir,
                              const std::string& manifest_text,
                              const std::vector<Workload>& workloads,
                              std::vector<WorkloadRounds>* rounds);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_ORACLE_CLIENT_H_
