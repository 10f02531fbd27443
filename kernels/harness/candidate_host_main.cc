// ratchet-candidate: the process that hosts a candidate's code. The trusted
// harness starts it with the shared memory file on fd 3 and nothing else of
// its own (no references, no result file, no secrets in the environment),
// asks it to load the compiled library and to make calls on tensors it
// placed in the arena, and times and checks every call from outside.
//
// Nothing this process does or reports is evidence: once the library is
// loaded, the candidate controls it entirely.
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

int main() {
  // Dies with the harness, whatever the candidate does to its own handlers.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The harness: this process's parent. Not "parent is 1": under bwrap the
  // harness is the sandbox's PID 1. The harness set the death signal before
  // exec and saw itself still the parent, so a parent gone in between is seen.
  const pid_t harness = getppid();
  struct stat st {};
  if (fstat(ch::kMemoryFd, &st) != 0 || static_cast<size_t>(st.st_size) <= ch::kControlBytes) {
    std::fprintf(stderr, "ratchet-candidate: no shared memory on fd %d\n", ch::kMemoryFd);
    return 2;
  }
  void* base = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED,
                    ch::kMemoryFd, 0);
  if (base == MAP_FAILED) return 2;
  auto* cb = static_cast<ch::ControlBlock*>(base);
  if (cb->magic != ch::kMagic) return 2;
  char* arena = static_cast<char*>(base) + ch::kControlBytes;
  const uint64_t arena_bytes = static_cast<uint64_t>(st.st_size) - ch::kControlBytes;

  ratchet_run_fn run = nullptr;
  ratchet_tensor tensors[ch::kMaxTensors];
  uint32_t seen = 0;
  bool armed = false;
  for (;;) {
    // Between calls the harness flushes caches for milliseconds: sleep then.
    // After kArm the call follows as soon as its inputs are written: stay
    // awake for it, so that no wake-up lands inside the timed round trip.
    const uint32_t req = ch::WaitChange(&cb->request, seen, 5000, armed ? 50000000 : 5000,
                                        100000000, [harness] { return getppid() != harness; });
    const bool was_armed = armed;
    armed = false;
    if (req == seen) return 0;  // the harness is gone
    seen = req;
    switch (cb->op) {
      case ch::kPing:
        cb->rc = 0;
        armed = was_armed;  // a ping between kArm and kCall keeps it awake
        break;
      case ch::kArm:
        cb->rc = 0;
        armed = true;
        break;
      case ch::kPingLate:
        ch::LateAnswerDelay();
        cb->rc = 0;
        break;
      case ch::kLoad: {
        cb->library_path[sizeof(cb->library_path) - 1] = '\0';
        char by_fd[64];
        std::snprintf(by_fd, sizeof(by_fd), "/proc/self/fd/%d", ch::kLibraryFd);
        void* h = dlopen(cb->library_path[0] ? cb->library_path : by_fd, RTLD_NOW | RTLD_LOCAL);
        if (h != nullptr) run = reinterpret_cast<ratchet_run_fn>(dlsym(h, "ratchet_run"));
        cb->rc = run != nullptr ? 0 : -1;
        std::snprintf(cb->message, sizeof(cb->message), "%s",
                      h == nullptr ? dlerror()
                      : run == nullptr
                          ? "the library exports no ratchet_run (declare it extern \"C\"; "
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
          rc = run(tensors, ni, tensors + ni, no);
        cb->rc = rc;
        break;
      }
      default:
        cb->rc = -1;
    }
    ch::Answer(cb, req);
  }
}
