// The pipeline's backend for CUDA candidates: the candidate runs in its own
// process (ratchet-candidate-cuda) on a device arena that this process
// allocates and exports, and never sees anything else of the harness.
//
// Every call, as ProcessBackend does on the CPU: a new placement of the
// tensors in the arena between canary bytes, inputs copied in, outputs
// poisoned, the L2 flushed and the device idle before the candidate process
// is armed; then the call, timed by this process's clock from request to
// answer (the candidate process answers after a device-wide
// synchronisation), minus a round trip calibrated before the library was
// loaded. Afterwards the outputs, the inputs and the canaries are checked
// on the device (device_check.h) against round data kept there across
// calls: only a call that fails comes back to the host, outputs and all, to
// be judged and named by the pipeline's own code. Where the round data does
// not fit (or RATCHET_DEVICE_CHECK=0), every call is copied back and checked
// on the host.
#ifndef RATCHET_KERNELS_CUDA_CUDA_BACKEND_H_
#define RATCHET_KERNELS_CUDA_CUDA_BACKEND_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/harness/candidate_channel.h"
#include "kernels/harness/candidate_process.h"
#include "kernels/harness/pipeline.h"

namespace ratchet::kernels {

class CudaProcessBackend : public CandidateBackend {
 public:
  // Allocates an arena of `arena_bytes` and an L2 flush buffer of
  // `flush_bytes` on `device_index` (made the current device), and exports
  // the arena. No candidate process exists yet.
  static absl::StatusOr<std::unique_ptr<CudaProcessBackend>> Create(int device_index,
                                                                    size_t arena_bytes,
                                                                    size_t flush_bytes,
                                                                    uint64_t seed);
  // Frees the device memory: kill the candidate process first.
  ~CudaProcessBackend() override;
  CudaProcessBackend(const CudaProcessBackend&) = delete;
  CudaProcessBackend& operator=(const CudaProcessBackend&) = delete;

  // Writes the arena's handle, size and device into a candidate process's
  // control block (CandidateProcess::Start's `prepare`).
  void Prepare(channel::ControlBlock* cb) const;
  // The candidate process (started with Prepare) that Call talks to; its
  // round trip is subtracted from every call's time.
  void Attach(CandidateProcess* process);

  Observation Call(const CallRequest& request) override;
  std::vector<std::string> OutputsNow() override;
  void NewRounds() override;

 private:
  CudaProcessBackend() = default;
  // The device copy of round data `host` (made on first use), or null when
  // it does not fit in what is left of the resident budget.
  const char* Resident(const std::string* host);
  // A call's round data on the device: inputs, references, decoys (null:
  // none), one per tensor.
  struct RoundOnDevice {
    std::vector<const char*> inputs, references, decoys;
  };
  // Whether the call can be checked on the device: its round is all there
  // (copied now where it was not yet) and its tensors are few enough.
  bool OnDevice(const CallRequest& req, RoundOnDevice* round);
  // After the call: snapshots the outputs, checks everything on the device.
  // Fills `ob` (out of bounds, a modified input, or `checked`); false when
  // the outputs must go to the host. `offset` as placed for this call.
  absl::StatusOr<bool> CheckOnDevice(const CallRequest& req, const std::vector<uint64_t>& offset,
                                     const RoundOnDevice& round, Observation* ob);
  // Fills `dst` with what Poison() writes for `n` bytes of `dtype`, copied
  // from a device template made once per dtype (no host copy per call).
  absl::Status PoisonOnDevice(char* dst, DType dtype, size_t n);

  int device_ = 0;
  char* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  char ipc_handle_[64] = {};
  void* flush_ = nullptr;
  size_t flush_bytes_ = 0;
  struct Template {
    char* data = nullptr;
    size_t bytes = 0;
  };
  std::map<int, Template> poison_;  // by dtype
  CandidateProcess* p_ = nullptr;
  std::mt19937_64 rng_;
  std::vector<uint64_t> out_offsets_;
  std::vector<size_t> out_bytes_;
  int calls_ = 0;

  // Round data on the device, by the address of its host bytes (stable
  // while the pipeline runs on one set of rounds; NewRounds drops it).
  struct DeviceBuffer {
    char* data = nullptr;
    size_t bytes = 0;
  };
  bool device_check_ = true;
  std::map<const std::string*, DeviceBuffer> resident_;
  size_t resident_bytes_ = 0, resident_limit_ = 0;
  std::vector<DeviceBuffer> snapshots_;  // per output: the outputs as answered
  void* checks_ = nullptr;               // device: the checks' counters
  // Calls checked on the device, and calls copied back to the host (said on
  // stderr at the end).
  int64_t device_checked_calls_ = 0, host_checked_calls_ = 0;
};

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_CUDA_CUDA_BACKEND_H_
