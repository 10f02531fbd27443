// ratchet-candidate-cuda: the process that hosts a CUDA candidate's code
// (ratchet-candidate's twin for the GPU). The trusted harness starts it with
// the control page on fd 3 and the compiled library on fd 4; the arena is
// device memory the harness allocated and exported (cudaIpcGetMemHandle),
// named in the control block. It opens that memory, loads the library, and
// makes each call the harness describes on its own stream, then waits for
// the whole device before answering, so that work left on any stream of
// this process is inside the call's round trip.
//
// Nothing this process does or reports is evidence: once the library is
// loaded, the candidate controls it entirely. The harness times every call
// by its own clock and checks every output in its own memory.
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <cstring>

#include "kernels/harness/candidate_channel.h"
#include "kernels/include/ratchet/kernel_abi.h"

namespace ch = ratchet::kernels::channel;

namespace {

// Set-up failures end the process with this status; the harness reports
// the message this process wrote to its log.
constexpr int kSetupFailed = 4;

int SetupError(const char* what, cudaError_t e) {
  std::fprintf(stderr, "ratchet-candidate-cuda: %s: %s: %s\n", what, cudaGetErrorName(e),
               cudaGetErrorString(e));
  return kSetupFailed;
}

// The first CUDA error of the calls just made, or cudaSuccess: a launch
// error, then whatever the device-wide synchronisation reports.
cudaError_t FinishCalls() {
  const cudaError_t launch = cudaGetLastError();
  const cudaError_t sync = cudaDeviceSynchronize();
  return launch != cudaSuccess ? launch : sync;
}

void SetCudaError(ch::ControlBlock* cb, cudaError_t e) {
  cb->rc = ch::kRcCudaError;
  std::snprintf(cb->message, sizeof(cb->message), "CUDA error %s: %s%s", cudaGetErrorName(e),
                cudaGetErrorString(e),
                e == cudaErrorIllegalAddress
                    ? " (an access outside any allocation: out of bounds?)"
                    : "");
}

}  // namespace

int main() {
  // Dies with the harness, whatever the candidate does to its own handlers.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The harness: this process's parent. Not "parent is 1": under bwrap the
  // harness is the sandbox's PID 1. The harness set the death signal before
  // exec and saw itself still the parent, so a parent gone in between is seen.
  const pid_t harness = getppid();
  struct stat st {};
  if (fstat(ch::kMemoryFd, &st) != 0 || static_cast<size_t>(st.st_size) < ch::kControlBytes) {
    std::fprintf(stderr, "ratchet-candidate-cuda: no control page on fd %d\n", ch::kMemoryFd);
    return 2;
  }
  void* base = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED,
                    ch::kMemoryFd, 0);
  if (base == MAP_FAILED) return 2;
  auto* cb = static_cast<ch::ControlBlock*>(base);
  if (cb->magic != ch::kMagic || cb->is_device != 1) {
    std::fprintf(stderr, "ratchet-candidate-cuda: the control block names no device arena\n");
    return 2;
  }
  // Copies: the block is writable by the candidate once it runs, and these
  // must keep describing the arena the harness exported.
  const uint64_t arena_bytes = cb->device_arena_bytes;
  cudaIpcMemHandle_t handle;
  static_assert(sizeof(handle) <= sizeof(cb->ipc_handle), "ipc handle does not fit");
  std::memcpy(&handle, cb->ipc_handle, sizeof(handle));

  // Device, arena and stream before any candidate code: the calibration's
  // pings then pay the same fixed costs (a context, a device-wide
  // synchronisation) as every call.
  if (cudaError_t e = cudaSetDevice(cb->device_index); e != cudaSuccess)
    return SetupError("cudaSetDevice", e);
  void* dev = nullptr;
  if (cudaError_t e = cudaIpcOpenMemHandle(&dev, handle, cudaIpcMemLazyEnablePeerAccess);
      e != cudaSuccess)
    return SetupError("cudaIpcOpenMemHandle (the harness's device arena)", e);
  cudaStream_t stream = nullptr;
  if (cudaError_t e = cudaStreamCreate(&stream); e != cudaSuccess)
    return SetupError("cudaStreamCreate", e);
  // A few bytes of this process's own for kArm's warm-up.
  void* warm = nullptr;
  if (cudaError_t e = cudaMalloc(&warm, 256); e != cudaSuccess) return SetupError("cudaMalloc", e);
  if (cudaError_t e = cudaDeviceSynchronize(); e != cudaSuccess)
    return SetupError("cudaDeviceSynchronize", e);
  char* arena = static_cast<char*>(dev);

  ratchet_run_cuda_fn run = nullptr;
  ratchet_tensor tensors[ch::kMaxTensors];
  uint32_t seen = 0;
  bool armed = false;
  for (;;) {
    // Between calls the harness prepares the next one (copies, an L2
    // flush) for a while: sleep then. After kArm the call follows at once:
    // stay awake for it, so that no wake-up lands inside the timed round trip.
    const uint32_t req = ch::WaitChange(&cb->request, seen, 5000, armed ? 50000000 : 5000,
                                        100000000, [harness] { return getppid() != harness; });
    armed = false;
    if (req == seen) return 0;  // the harness is gone
    seen = req;
    switch (cb->op) {
      case ch::kPing: {
        // As a call ends: a device-wide synchronisation (nothing pending).
        const cudaError_t e = cudaDeviceSynchronize();
        cb->rc = 0;
        if (e != cudaSuccess) SetCudaError(cb, e);
        break;
      }
      case ch::kArm: {
        // The GPU last ran the harness's context (copies, the L2 flush):
        // switching it to this process's context costs tens to hundreds of
        // microseconds, which belong to no call. A tiny operation here, before
        // the timed request, pays for the switch; skipping it only makes the
        // candidate's own call slower.
        cudaError_t e = cudaMemsetAsync(warm, 0, 256, stream);
        if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
        cb->rc = 0;
        if (e != cudaSuccess) SetCudaError(cb, e);
        armed = true;
        break;
      }
      case ch::kPingLate:
        ch::LateAnswerDelay();
        cb->rc = 0;
        break;
      case ch::kLoad: {
        cb->library_path[sizeof(cb->library_path) - 1] = '\0';
        char by_fd[64];
        std::snprintf(by_fd, sizeof(by_fd), "/proc/self/fd/%d", ch::kLibraryFd);
        void* h = dlopen(cb->library_path[0] ? cb->library_path : by_fd, RTLD_NOW | RTLD_LOCAL);
        if (h != nullptr) run = reinterpret_cast<ratchet_run_cuda_fn>(dlsym(h, "ratchet_run_cuda"));
        cb->rc = run != nullptr ? 0 : -1;
        std::snprintf(cb->message, sizeof(cb->message), "%s",
                      h == nullptr ? dlerror()
                      : run == nullptr
                          ? "the library exports no ratchet_run_cuda (declare it extern \"C\"; "
                            "include \"ratchet/kernel_abi.h\")"
                          : "");
        break;
      }
      case ch::kCall: {
        const int ni = cb->num_inputs, no = cb->num_outputs;
        if (run == nullptr || ni < 0 || no < 0 || ni + no > ch::kMaxTensors) {
          cb->rc = -1;
          break;
        }
        bool ok = true;
        for (int i = 0; i < ni + no; ++i) {
          const ch::TensorSlot& s = cb->tensors[i];
          ok = ok && s.offset < arena_bytes && s.ndim >= 0 && s.ndim <= ch::kMaxDims;
          tensors[i].data = arena + s.offset;
          tensors[i].dtype = static_cast<ratchet_dtype>(s.dtype);
          tensors[i].ndim = s.ndim;
          tensors[i].shape = s.shape;
          tensors[i].strides = s.strides;
        }
        int rc = ok ? 0 : -1;
        for (int64_t k = 0; ok && rc == 0 && k < cb->repeat; ++k)
          rc = run(tensors, ni, tensors + ni, no, stream);
        // Every stream of this process, not only the one handed over: work
        // left on a private stream finishes inside the round trip.
        const cudaError_t e = FinishCalls();
        cb->rc = rc;
        if (e != cudaSuccess) SetCudaError(cb, e);
        break;
      }
      default:
        cb->rc = -1;
    }
    ch::Answer(cb, req);
  }
}
