// The call protocol between the trusted harness and the candidate process
// (docs/verifier.md, "Threat model"). One shared-memory file: a control page
// at offset 0, then the arena where the harness places every call's tensors.
//
// The harness writes a request (an op and, for a call, where each tensor
// lies in the arena), then bumps `request`; the candidate process answers by
// writing `rc` (and `message` for a failed load) and bumping `done`. Both
// counters wake the other side with a futex after a short spin. The answer
// is also sent as a datagram on kAnswerFd: the kernel stamps its arrival, so
// the harness can sleep through a call (leaving every core to a candidate's
// threads) and still know when the answer came.
//
// Everything in this memory is writable by candidate code: the harness reads
// only `done`, `rc` and `message` from it, treats them as claims, and keeps
// its own copy of every input, reference and timestamp elsewhere.
#ifndef RATCHET_KERNELS_HARNESS_CANDIDATE_CHANNEL_H_
#define RATCHET_KERNELS_HARNESS_CANDIDATE_CHANNEL_H_

#include <linux/futex.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ratchet::kernels::channel {

inline constexpr uint32_t kMagic = 0x52434831;  // "RCH1"
inline constexpr int kMaxTensors = 64;
inline constexpr int kMaxDims = 8;
inline constexpr size_t kControlBytes = 16384;  // the arena starts here
// The memory file and the compiled library reach the candidate process as
// these file descriptors (it may not be able to open either by name).
inline constexpr int kMemoryFd = 3;
inline constexpr int kLibraryFd = 4;
// The candidate process's end of a datagram socket pair: every answer's
// request number, sent after `done` is bumped.
inline constexpr int kAnswerFd = 5;
// The unprivileged user a candidate process runs as when the harness is root.
inline constexpr unsigned kNobody = 65534;

enum Op : uint32_t {
  kPing = 1,  // answer at once: the round trip the harness calibrates on
  kLoad = 2,  // dlopen(library_path, or fd kLibraryFd when empty) and find the entry point
  kCall = 3,  // call the entry point on the tensors described
  kArm = 4,   // a call follows shortly: answer, then wait for it awake
  kPingLate = 5,  // answer after about 200 us: calibrates the harness's own wake-up
};

// The rc of a kCall whose CUDA work failed (a launch error, or an error at
// the device-wide synchronisation after the calls): `message` then holds the
// error's name and text. Not a value the entry point's own rc can mean.
inline constexpr int32_t kRcCudaError = -0x43554441;  // "CUDA"

struct TensorSlot {
  uint64_t offset;  // from the arena's start
  int32_t dtype;    // ratchet_dtype
  int32_t ndim;
  int64_t shape[kMaxDims];
  int64_t strides[kMaxDims];
  int32_t scalar;   // 1: "shape": null, a Python number to a Python solution
  int32_t reserved;
  uint64_t scalar_bits;  // a scalar input's value (its dtype's bytes, low first)
};

struct ControlBlock {
  uint32_t magic;
  std::atomic<uint32_t> request;  // bumped by the harness
  std::atomic<uint32_t> done;     // bumped by the candidate process
  uint32_t op;
  uint64_t arena_bytes;
  int32_t num_inputs;
  int32_t num_outputs;
  int64_t repeat;  // kCall: calls back to back (the independent timing), >= 1
  int32_t rc;  // the entry point's return value (load: 0 or -1)
  char library_path[1024];
  char message[2048];  // why a load failed
  TensorSlot tensors[kMaxTensors];  // inputs, then outputs
  // The CUDA candidate process (ratchet-candidate-cuda): the arena is device
  // memory that the harness allocated and exported; offsets are from its
  // start. Written by the harness before the process starts.
  int32_t is_device;     // 1: the arena is `ipc_handle`, not this file
  int32_t device_index;  // cudaSetDevice before opening the handle
  uint64_t device_arena_bytes;
  char ipc_handle[64];   // a cudaIpcMemHandle_t
};
static_assert(sizeof(ControlBlock) <= kControlBytes, "control block too large");
// The Python candidate host (candidate_host.py) reads this layout by offset.
static_assert(offsetof(ControlBlock, request) == 4 && offsetof(ControlBlock, done) == 8 &&
                  offsetof(ControlBlock, op) == 12 && offsetof(ControlBlock, num_inputs) == 24 &&
                  offsetof(ControlBlock, repeat) == 32 && offsetof(ControlBlock, rc) == 40 &&
                  offsetof(ControlBlock, library_path) == 44 &&
                  offsetof(ControlBlock, message) == 1068 &&
                  offsetof(ControlBlock, tensors) == 3120 && sizeof(TensorSlot) == 160 &&
                  offsetof(ControlBlock, is_device) == 13360 &&
                  offsetof(ControlBlock, device_index) == 13364 &&
                  offsetof(ControlBlock, device_arena_bytes) == 13368 &&
                  offsetof(ControlBlock, ipc_handle) == 13376,
              "candidate_host.py's offsets");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "futex words must be plain");

inline uint32_t* FutexWord(std::atomic<uint32_t>* a) { return reinterpret_cast<uint32_t*>(a); }

inline void Wake(std::atomic<uint32_t>* word) {
  syscall(SYS_futex, FutexWord(word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// The candidate process's answer to request `req`: `done` bumped, its
// waiter woken, and the datagram the kernel stamps sent.
inline void Answer(ControlBlock* cb, uint32_t req) {
  cb->done.store(req, std::memory_order_release);
  Wake(&cb->done);
  send(kAnswerFd, &req, sizeof(req), MSG_DONTWAIT | MSG_NOSIGNAL);
}

// kPingLate's delay: long enough that the harness has gone to sleep.
inline void LateAnswerDelay() {
  timespec ts{0, 200000};
  nanosleep(&ts, nullptr);
}

// Waits until *word != seen: spins for `spin_ns`, then spins yielding the
// CPU to anything runnable until `yield_ns` (an answer within it is not
// delayed by a sleep and a wake-up, which take tens to hundreds of
// microseconds on a VM; yielding matters when both sides share one core),
// then sleeps on the futex in slices of `slice_ns`. `give_up()` is asked
// every millisecond or so once spinning is over. Returns the new value, or
// `seen` when give_up() said so.
template <typename GiveUp>
uint32_t WaitChange(std::atomic<uint32_t>* word, uint32_t seen, int64_t spin_ns,
                    int64_t yield_ns, int64_t slice_ns, GiveUp give_up) {
  auto now = [] {
    timespec t{};
    clock_gettime(CLOCK_MONOTONIC, &t);
    return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
  };
  const int64_t start = now();
  int64_t next_check = start + spin_ns + 1000000;
  for (;;) {
    const uint32_t v = word->load(std::memory_order_acquire);
    if (v != seen) return v;
    const int64_t t = now();
    if (t < start + spin_ns) {
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
      continue;
    }
    if (t < start + yield_ns) {
      sched_yield();
      if (t >= next_check) {
        next_check = t + 1000000;
        if (give_up()) return seen;
      }
      continue;
    }
    timespec ts{static_cast<time_t>(slice_ns / 1000000000), static_cast<long>(slice_ns % 1000000000)};
    syscall(SYS_futex, FutexWord(word), FUTEX_WAIT, seen, &ts, nullptr, 0);
    if (word->load(std::memory_order_acquire) != seen) continue;
    if (give_up()) return seen;
  }
}

}  // namespace ratchet::kernels::channel

#endif  // RATCHET_KERNELS_HARNESS_CANDIDATE_CHANNEL_H_
