// The contract between a harness (ratchet-harness, ratchet-harness-cuda) and
// whoever runs it (the worker, `ratchet bench`) and reads what it leaves
// (the worker, bench, --print): the command line, the settings that travel
// in the environment, and the result file (docs/harness.md). Writers and
// readers share this one definition of each, in the manner of LevelDB's
// db/log_format.h, so that the two sides cannot drift apart:
//
//   worker, bench:  HarnessArgs --ToArgv-->  argv  --ParseArgv-->  harness
//   harness:  HarnessResult --ToJson-->  result file  --FromJson-->  worker, bench
#ifndef RATCHET_KERNELS_HARNESS_CONTRACT_H_
#define RATCHET_KERNELS_HARNESS_CONTRACT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ratchet::kernels {

// Which harness: the flags each takes and the keys of its result differ.
enum class HarnessKind { kCpu, kCuda };

// "ratchet-harness" or "ratchet-harness-cuda": the executable's name (beside
// `ratchet`), and the prefix of the harness's own messages.
const char* HarnessName(HarnessKind kind);

// Exit status: 0 when the --out file holds a result, whatever its outcome;
// 2 when there is none (a bad command line, an unwritable file).
inline constexpr int kHarnessExitResult = 0;
inline constexpr int kHarnessExitNoResult = 2;

// ---------------------------------------------------------------------------
// The command line (docs/harness.md, "Command line"). ParseArgv(kind,
// ToArgv(a)) == a for every `a` that ParseArgv accepts.

struct HarnessArgs {
  HarnessKind kind = HarnessKind::kCpu;  // which harness the flags are for
  std::string problem;                   // --problem DIR (required)
  std::string solution;                  // --solution DIR (required)
  std::string out;                       // --out FILE (required)
  std::string scratch;                   // --scratch DIR; empty: a new folder in /tmp
  uint64_t seed = 1;                     // --seed N
  // Unset: the harness's default (HarnessDefaults).
  std::optional<int> warmups;      // --warmups N, N >= 0
  std::optional<int> repetitions;  // --repetitions N, N >= 1
  std::optional<int> rounds;       // --rounds N, N >= 1 (correctness rounds)
  std::string screen;              // --screen auto|on|off; empty: auto
  double peak_gbps = 0;            // --peak-gbps X, with the compute peak; 0: none
  double peak_gflops = 0;          // --peak-gflops Y (CPU only)
  double peak_tflops = 0;          // --peak-tflops Y (CUDA only)
  std::vector<std::pair<std::string, std::string>> knobs;  // --knob NAME=VALUE, in order
  std::string python;               // --python PATH: the oracle's interpreter
  std::string baseline;             // --baseline FILE: T_b as stored by the coordinator
  // --oracle-only: no candidate; the oracle's rounds (screen and full) for
  // this seed in SCRATCH/oracle-screen and SCRATCH/oracle, for a worker to
  // keep and give to the evaluations that share the seed (--given-rounds).
  bool oracle_only = false;
  // --given-rounds DIR: an --oracle-only run's folders, used where their
  // request is this run's (docs/harness.md, "Rounds given by the worker").
  std::string given_rounds;
  // --device-lock FILE: held (flock) from the device's first use to the end,
  // so that jobs sharing a device overlap only in what uses no device:
  // start, reading given rounds, compiling (docs/harness.md).
  std::string device_lock;
  double back_to_back = 0;          // --back-to-back S, 0 < S <= 60; 0: none
  bool print = false;               // --print: a table on stdout too
  // CUDA only.
  int device_index = 0;       // --device-index N (always written)
  std::string arch;           // --arch sm_XX; empty: from the device
  std::string cache_dir;      // --cache-dir DIR: the T_b cache
  bool compile_only = false;  // --compile-only (needs --arch)
};
bool operator==(const HarnessArgs& a, const HarnessArgs& b);
inline bool operator!=(const HarnessArgs& a, const HarnessArgs& b) { return !(a == b); }

// The counts a harness uses where its command line gives none: written
// here only (the pipeline's and the oracle's options start from the CPU's).
struct HarnessDefaults {
  int warmups, repetitions, rounds;
};
inline constexpr HarnessDefaults kCpuHarnessDefaults = {3, 20, 3};
inline constexpr HarnessDefaults kCudaHarnessDefaults = {10, 50, 3};
HarnessDefaults DefaultsFor(HarnessKind kind);

// The arguments after the program's name, "--flag value" each, the fields
// that are set (and, for CUDA, --device-index). Fields of the other kind
// are not written.
std::vector<std::string> ToArgv(const HarnessArgs& args);

// Whether `flag` stands alone on a harness's command line (--print,
// --oracle-only, --verify, CUDA's --compile-only); every other flag takes a
// value. For a caller that passes flags through to ParseArgv before it
// knows the kind (`ratchet bench`).
bool IsHarnessSwitch(std::string_view flag);

// Reads the arguments after the program's name ("--flag value" or
// "--flag=value"; --verify, which changes nothing, is accepted and
// dropped). An error's message says what is wrong ("--rounds needs an
// integer >= 1", "unknown argument --x"; "help" for -h and --help).
absl::StatusOr<HarnessArgs> ParseArgv(HarnessKind kind, const std::vector<std::string>& args);

// The usage lines for `kind` (after "NAME: why").
std::string HarnessUsage(HarnessKind kind);

// Settings that candidate code must not read, so they never go on the
// command line (public in /proc): they travel in the harness's environment,
// which it reads and clears before starting any process.
inline constexpr char kNonceEnv[] = "RATCHET_RESULT_NONCE";
inline constexpr char kIndependentTimingEnv[] = "RATCHET_INDEPENDENT_TIMING";
struct HarnessSecrets {
  // Echoed as the result's "nonce": the worker's proof that the file is the
  // harness's and not the candidate's.
  std::string nonce;
  // The verifier's independent timing: as --back-to-back S, (0, 60].
  double independent_timing = 0;
};
// "NAME=value" entries for the set fields.
std::vector<std::string> ToEnvironment(const HarnessSecrets& secrets);
// From this process's environment; an out-of-range timing is none.
HarnessSecrets SecretsFromEnvironment();

// ---------------------------------------------------------------------------
// The result file (docs/harness.md, "Result"). Both harnesses write the
// common keys; the CUDA harness adds its own (written when `kind` is kCuda,
// marked "CUDA" below). FromJson(ToJson(r)) == r for every `r` whose
// message fits in kMaxResultMessage and whose fields of the other kind are
// left at their defaults.

// The outcomes ("ok", "compile_error", "wrong_answer", "timeout", "crash",
// "out_of_bounds", "harness_error"); any other is an unreadable result.
bool IsHarnessOutcome(std::string_view outcome);
inline constexpr char kOutcomeOk[] = "ok";
inline constexpr char kOutcomeHarnessError[] = "harness_error";
inline constexpr char kOutcomeCompileError[] = "compile_error";

// The file keeps a longer message's last this many bytes.
inline constexpr size_t kMaxResultMessage = 16 * 1024;

struct WorkloadResult {
  int index = 0;     // the workload's line in workload.jsonl
  std::string axes;  // "M=256,N=1024"
  bool correct = false;
  double matched_fraction = 0, max_abs_error = 0;
  double t_k_ns = 0, t_k_spread = 0;  // the candidate: median, (p90 - p10) / median
  double t_k_p10_ns = 0;  // its fastest tenth, what the independent timing is held to
  double t_b_ns = 0, t_b_spread = 0;  // the baseline the score uses
  bool t_b_given = false;             // T_b from --baseline, not timed in this run
  double t_sol_ns = 0, score = 0;
  int timed_rounds = 0;             // distinct rounds the timed calls used (written when > 0)
  int64_t calls = 0;                // back-to-back calls made (written when > 0)
  std::vector<std::string> flags;   // the check that caught a hack; CPU: written when any
  // CUDA.
  double atol = 0, rtol = 0;        // the tolerance applied
  double t_b_eager_ns = 0, t_b_compile_ns = 0, t_ref_kernel_ns = 0;
  double flops = 0, bytes = 0;      // T_sol's inputs
  int repetitions = 0;
  std::vector<std::string> baseline_notes;  // the oracle's (written when any)
  // Only older CUDA harnesses wrote it (CUDA events): read, and written when > 0.
  double t_k_events_ns = 0;
};

struct HarnessResult {
  // Which keys ToJson writes; FromJson reads kCuda when there is a "device".
  HarnessKind kind = HarnessKind::kCpu;
  std::string outcome = kOutcomeHarnessError;
  std::string message;  // compiler output, the first mismatch, ...
  double score = 0;     // the mean of the workloads' scores; 0 unless ok
  std::vector<WorkloadResult> workloads;
  double peak_gbps = 0, peak_gflops = 0;  // "peaks"; CUDA: gflops = tflops x 1000
  double compile_seconds = 0;
  double round_trip_ns = 0;  // a call's cost besides the call, removed from T_k
  double wall_seconds = 0;
  std::string software;  // the oracle's torch (and CUDA) version (written when set)
  std::string nonce;     // $RATCHET_RESULT_NONCE (written when set; read only as a string)
  // CUDA.
  std::vector<std::string> flags;  // every workload's, and "no-peaks"
  std::string device_name, compute_capability = "0.0", arch;  // "device"
  double peak_tflops = 0;
  std::string peak_sku, peak_source = "none", peak_unit = "simt", peak_dtype;
  bool build_reused = false;   // the scratch folder's earlier build was used
  std::string candidate_user;  // who the candidate process ran as (written when set)
  bool rounds_given = false;   // the oracle's rounds came from --given-rounds (written when true)
  // Seconds per stage in the order the stages ran ("stage_seconds", written
  // when any): compile, screen, oracle, correctness, timing, ...
  std::vector<std::pair<std::string, double>> stage_seconds;
};
bool operator==(const WorkloadResult& a, const WorkloadResult& b);
bool operator==(const HarnessResult& a, const HarnessResult& b);
inline bool operator!=(const HarnessResult& a, const HarnessResult& b) { return !(a == b); }

// The file's text: JSON, two-space indent, a newline at the end. Bytes that
// are not UTF-8 (a message may quote candidate output) become U+FFFD.
std::string ToJson(const HarnessResult& result);

// Reads a result file. Unknown keys are ignored and a null is an absent key;
// malformed JSON, a missing or unknown outcome, a workload without an index,
// or a key of the wrong type is an InvalidArgument that names the key. A
// "nonce" that is not a string reads as none. Never throws.
absl::StatusOr<HarnessResult> FromJson(std::string_view text);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_CONTRACT_H_
