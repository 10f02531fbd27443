// The trusted side of the candidate process (ratchet-candidate): starts it
// with a shared memory file and nothing else, asks it to load the compiled
// library and to make calls, times each call with this process's clock, and
// kills it and everything it started before any result is written.
//
// ProcessBackend is the pipeline's backend over it: it places every call's
// tensors at new offsets in the arena between canary bytes, poisons the
// outputs, flushes the caches, and checks canaries and inputs afterwards.
#ifndef RATCHET_KERNELS_HARNESS_CANDIDATE_PROCESS_H_
#define RATCHET_KERNELS_HARNESS_CANDIDATE_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/harness/candidate_channel.h"
#include "kernels/harness/pipeline.h"

namespace ratchet::kernels {

// Call once, first thing in main, in the process that will start candidate
// processes: no process of the same user without CAP_SYS_PTRACE can then read
// its memory, environment or file descriptors, and whatever a candidate
// process leaves behind is reparented to it, so KillAll finds it.
void BecomeTrustedParent();

// Keeps only the environment variables on the allow-list (paths, locale,
// CUDA and ratchet's operator settings); every child inherits the rest.
void ScrubEnvironment();

class CandidateProcess {
 public:
  // Starts `exe` (ratchet-candidate) with an arena of `arena_bytes` and the
  // compiled `library` open on fd 4, in `workdir` (its cwd, HOME and
  // TMPDIR), its output appended to `log`. When this process is root, the
  // candidate process runs as nobody (65534): it cannot signal, trace or
  // read this process, nor open the job's files.
  static absl::StatusOr<std::unique_ptr<CandidateProcess>> Start(const std::string& exe,
                                                                 const std::string& library,
                                                                 size_t arena_bytes,
                                                                 const std::string& workdir,
                                                                 const std::string& log);
  // The same, with `prepare` called on the fresh control block before the
  // process starts: the CUDA backend puts its device arena's handle there.
  static absl::StatusOr<std::unique_ptr<CandidateProcess>> Start(
      const std::string& exe, const std::string& library, size_t arena_bytes,
      const std::string& workdir, const std::string& log,
      const std::function<void(channel::ControlBlock*)>& prepare);
  // The same with `args` after the executable's name: the Python candidate
  // host is `python -I -B /proc/self/fd/4` with the host script as `library`.
  static absl::StatusOr<std::unique_ptr<CandidateProcess>> Start(
      const std::string& exe, const std::vector<std::string>& args, const std::string& library,
      size_t arena_bytes, const std::string& workdir, const std::string& log,
      const std::function<void(channel::ControlBlock*)>& prepare);
  ~CandidateProcess();

  char* arena() const { return arena_; }
  size_t arena_bytes() const { return arena_bytes_; }
  channel::ControlBlock* control() const { return cb_; }

  // The fastest round trip of `n` pings, made before the library is loaded
  // (no candidate code yet): what every call's time has on top of the call.
  absl::StatusOr<double> CalibrateRoundTrip(int n);
  // A ping between kArm and kCall, in the state the call will find the
  // candidate process in. round_trip_ns() is the fastest ping so far: the
  // calibration bounds it from above (candidate code can only slow later
  // pings, never make more of a call disappear), and these lower it when
  // calls are cheaper than calibration saw (on a busy host the two processes
  // shared a core then, not now: a 13 us kernel read 3.9 us).
  void PingBeforeCall();
  double round_trip_ns() const { return round_trip_ns_; }
  // How late after an answer's kernel stamp this process may read it and
  // still take the stamp for the call's end (calibrated; see Send).
  int64_t wake_slack_ns() const { return wake_slack_ns_; }
  // Loads the library given to Start, or `target` (written to the control
  // block's library_path: the Python host's "FILE.py::FUNCTION"); an error
  // carries the loader's message.
  absl::Status Load(const std::string& target = "");
  // "nobody" or "same user": who the candidate process runs as.
  const char* identity() const { return as_nobody_ ? "nobody" : "same user"; }

  struct CallEnd {
    bool returned = false;  // false: the process died (how says why)
    int rc = 0;
    double ns = 0;  // request to answer, by this process's clock
    double woke_ns = -1;  // from the answer's stamp to this process seeing it
    std::string how;
  };
  // Sends the request already described in control() and waits for it.
  CallEnd Send(uint32_t op);

  // SIGKILLs the process and every process it started; returns when none is left.
  void KillAll();
  // The last lines the candidate process wrote (its log), for messages.
  std::string LogTail() const;

 private:
  CandidateProcess() = default;
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  bool as_nobody_ = false;
  channel::ControlBlock* cb_ = nullptr;
  char* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  size_t map_bytes_ = 0;
  uint32_t seq_ = 0;
  double round_trip_ns_ = 0;
  int answer_fd_ = -1;  // our end of the answer datagrams, stamped by the kernel
  int64_t wake_slack_ns_ = kMinWakeSlackNs;
  std::string log_;
  static constexpr int64_t kSpinNs = 5000;
  static constexpr int64_t kMinWakeSlackNs = 10000;
  static constexpr int64_t kMaxWakeSlackNs = 100000;
};

// The arena a problem needs: every workload's tensors with canaries, twice
// over so that placements vary.
size_t ArenaBytesFor(const Problem& problem);

// A new placement of tensors of `bytes[i]` bytes in an arena of
// `arena_bytes`: a random order with random gaps, each tensor at a multiple
// of `align` (`canary` must be one) with `canary` bytes free before and
// after it, so that no
// address (or distance between addresses) repeats from call to call.
// Returns each tensor's offset; every backend places its calls with it.
std::vector<uint64_t> PlaceTensors(const std::vector<size_t>& bytes, size_t arena_bytes,
                                   size_t align, size_t canary, std::mt19937_64* rng);

class ProcessBackend : public CandidateBackend {
 public:
  // The process's round trip is subtracted from every call's time;
  // `flush_bytes` of this process's memory are written before every flushed
  // call.
  ProcessBackend(CandidateProcess* process, size_t flush_bytes, uint64_t seed);
  Observation Call(const CallRequest& request) override;
  std::vector<std::string> OutputsNow() override;

 private:
  CandidateProcess* p_;
  std::vector<char> flush_;
  std::mt19937_64 rng_;
  std::vector<uint64_t> out_offsets_;
  std::vector<size_t> out_bytes_;
  int calls_ = 0;
};

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_CANDIDATE_PROCESS_H_
