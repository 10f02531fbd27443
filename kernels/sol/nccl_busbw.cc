// NCCL all-reduce bus bandwidth (kernels/sol/nccl_busbw.h). Compiled only
// where CMake found nccl.h; libnccl itself is opened with dlopen.
#include "kernels/sol/nccl_busbw.h"

#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <type_traits>

namespace ratchet::kernels {
namespace {

struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The NCCL entry points used, from the library dlopen found.
struct NcclApi {
  void* handle = nullptr;
  std::string path;
  decltype(&ncclGetVersion) GetVersion = nullptr;
  decltype(&ncclGetErrorString) GetErrorString = nullptr;
  decltype(&ncclGetLastError) GetLastError = nullptr;  // optional (NCCL >= 2.13)
  decltype(&ncclCommInitAll) CommInitAll = nullptr;
  decltype(&ncclCommDestroy) CommDestroy = nullptr;
  decltype(&ncclCommAbort) CommAbort = nullptr;
  decltype(&ncclCommGetAsyncError) CommGetAsyncError = nullptr;
  decltype(&ncclGroupStart) GroupStart = nullptr;
  decltype(&ncclGroupEnd) GroupEnd = nullptr;
  decltype(&ncclAllReduce) AllReduce = nullptr;
};

// $RATCHET_NCCL_LIBRARY, then the loader's search (LD_LIBRARY_PATH, ld.so
// cache), then the library CMake found beside the CUDA toolkit.
bool LoadNccl(NcclApi* api, std::string* why) {
  std::vector<std::string> candidates;
  if (const char* e = std::getenv("RATCHET_NCCL_LIBRARY"); e != nullptr && *e)
    candidates.push_back(e);
  candidates.push_back("libnccl.so.2");
#ifdef RATCHET_NCCL_LIBRARY_PATH
  candidates.push_back(RATCHET_NCCL_LIBRARY_PATH);
#endif
  std::string tried;
  for (const auto& c : candidates) {
    dlerror();
    api->handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (api->handle != nullptr) {
      api->path = c;
      break;
    }
    const char* err = dlerror();
    tried += (tried.empty() ? "" : "; ") + std::string(err ? err : c.c_str());
  }
  if (api->handle == nullptr) {
    *why = "libnccl not found (" + tried + "; set RATCHET_NCCL_LIBRARY)";
    return false;
  }
  auto sym = [&](auto* fn, const char* name, bool required) {
    *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(dlsym(api->handle, name));
    if (*fn == nullptr && required) {
      *why = api->path + " lacks " + name;
      return false;
    }
    return true;
  };
  return sym(&api->GetVersion, "ncclGetVersion", true) &&
         sym(&api->GetErrorString, "ncclGetErrorString", true) &&
         sym(&api->GetLastError, "ncclGetLastError", false) &&
         sym(&api->CommInitAll, "ncclCommInitAll", true) &&
         sym(&api->CommDestroy, "ncclCommDestroy", true) &&
         sym(&api->CommAbort, "ncclCommAbort", true) &&
         sym(&api->CommGetAsyncError, "ncclCommGetAsyncError", true) &&
         sym(&api->GroupStart, "ncclGroupStart", true) &&
         sym(&api->GroupEnd, "ncclGroupEnd", true) &&
         sym(&api->AllReduce, "ncclAllReduce", true);
}

void Check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Failure(std::string(what) + ": " + cudaGetErrorString(e));
}

// One GPU of the communicator and what it holds; freed by Ranks.
struct Rank {
  int device = 0;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  float* send = nullptr;
  float* recv = nullptr;
  cudaEvent_t start = nullptr, stop = nullptr;
};

struct Ranks {
  const NcclApi* api = nullptr;
  std::vector<Rank> r;
  bool failed = false;  // abort the communicators instead of destroying them
  bool release = true;  // false: leave everything to process exit (the forked child)
  ~Ranks() {
    if (!release) return;
    for (auto& x : r) {
      if (x.comm != nullptr) (failed ? api->CommAbort : api->CommDestroy)(x.comm);
    }
    for (auto& x : r) {
      if (cudaSetDevice(x.device) != cudaSuccess) continue;
      if (x.start) cudaEventDestroy(x.start);
      if (x.stop) cudaEventDestroy(x.stop);
      if (x.send) cudaFree(x.send);
      if (x.recv) cudaFree(x.recv);
      if (x.stream) cudaStreamDestroy(x.stream);
    }
  }
};

std::string NcclMessage(const NcclApi& api, ncclResult_t r, ncclComm_t comm) {
  std::string m = api.GetErrorString(r);
  if (api.GetLastError != nullptr) {
    const char* last = api.GetLastError(comm);
    if (last != nullptr && *last) m += std::string(" (") + last + ")";
  }
  return m;
}

std::string VersionString(int v) {  // 22809 -> "2.28.9" (2.9+ encoding)
  if (v >= 10000) return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) +
                         "." + std::to_string(v % 100);
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 100) + "." +
         std::to_string(v % 100);
}

#define CUDA_OK(call) Check((call), #call)
#define NCCL_OK(call, comm)                                                          \
  do {                                                                               \
    ncclResult_t _r = (call);                                                        \
    if (_r != ncclSuccess) throw Failure(std::string(#call) + ": " +                 \
                                         NcclMessage(api, _r, (comm)));              \
  } while (0)

// The measurement; every failure throws Failure. `ranks` owns what it makes.
NcclAllReduceResult Run(const NcclOptions& o, const NcclApi& api, Ranks* ranks) {
  NcclAllReduceResult res;
  int version = 0;
  NCCL_OK(api.GetVersion(&version), nullptr);
  res.nccl_version = VersionString(version);
  int count = 0;
  CUDA_OK(cudaGetDeviceCount(&count));
  if (count == 0) throw Failure("no GPU visible");
  std::vector<int> devices;
  if (o.only_device >= 0) {
    if (o.only_device >= count)
      throw Failure("no GPU " + std::to_string(o.only_device) + " (" + std::to_string(count) +
                    " visible)");
    devices.push_back(o.only_device);
  } else {
    for (int d = 0; d < count; ++d) devices.push_back(d);
  }
  const int n = static_cast<int>(devices.size());
  const size_t elems = static_cast<size_t>(std::max<int64_t>(o.bytes, 4096) / 4);
  res.bytes = static_cast<int64_t>(elems * sizeof(float));

  // Random values in [0.5, 1.5): never zeros. Each GPU gets the same values
  // rotated by its own offset, so that the sum checks the reduction.
  std::vector<float> host(elems);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (auto& v : host) {
    s ^= s << 13; s ^= s >> 7; s ^= s << 17;  // xorshift64
    v = 0.5f + float(s >> 40) / float(1 << 24);
  }
  auto offset = [&](int i) { return (size_t(i) * 4099) % elems; };

  ranks->r.resize(n);
  for (int i = 0; i < n; ++i) {
    Rank& x = ranks->r[i];
    x.device = devices[i];
    CUDA_OK(cudaSetDevice(x.device));
    CUDA_OK(cudaStreamCreateWithFlags(&x.stream, cudaStreamNonBlocking));
    CUDA_OK(cudaEventCreate(&x.start));
    CUDA_OK(cudaEventCreate(&x.stop));
    CUDA_OK(cudaMalloc(&x.send, res.bytes));
    CUDA_OK(cudaMalloc(&x.recv, res.bytes));
    const size_t off = offset(i);
    CUDA_OK(cudaMemcpy(x.send, host.data() + off, (elems - off) * sizeof(float),
                       cudaMemcpyHostToDevice));
    if (off > 0)
      CUDA_OK(cudaMemcpy(x.send + (elems - off), host.data(), off * sizeof(float),
                         cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(x.recv, 0, res.bytes));
  }
  std::vector<ncclComm_t> comms(n, nullptr);
  NCCL_OK(api.CommInitAll(comms.data(), n, devices.data()), nullptr);
  for (int i = 0; i < n; ++i) ranks->r[i].comm = comms[i];

  auto sync_all = [&] {
    for (const Rank& x : ranks->r) {
      CUDA_OK(cudaSetDevice(x.device));
      CUDA_OK(cudaDeviceSynchronize());
    }
  };
  std::vector<double> times;
  for (int it = 0; it < o.warmups + o.iterations; ++it) {
    sync_all();
    for (const Rank& x : ranks->r) {
      CUDA_OK(cudaSetDevice(x.device));
      CUDA_OK(cudaEventRecord(x.start, x.stream));
    }
    NCCL_OK(api.GroupStart(), nullptr);
    for (const Rank& x : ranks->r)
      NCCL_OK(api.AllReduce(x.send, x.recv, elems, ncclFloat, ncclSum, x.comm, x.stream), x.comm);
    NCCL_OK(api.GroupEnd(), nullptr);
    for (const Rank& x : ranks->r) {
      CUDA_OK(cudaSetDevice(x.device));
      CUDA_OK(cudaEventRecord(x.stop, x.stream));
    }
    // The all-reduce is done when its slowest GPU is.
    double slowest = 0;
    for (const Rank& x : ranks->r) {
      CUDA_OK(cudaEventSynchronize(x.stop));
      float ms = 0;
      CUDA_OK(cudaEventElapsedTime(&ms, x.start, x.stop));
      slowest = std::max(slowest, double(ms));
    }
    if (it >= o.warmups) times.push_back(slowest);
  }
  for (const Rank& x : ranks->r) {
    ncclResult_t async = ncclSuccess;
    NCCL_OK(api.CommGetAsyncError(x.comm, &async), x.comm);
    if (async != ncclSuccess)
      throw Failure("NCCL asynchronous error: " + NcclMessage(api, async, x.comm));
  }
  // A fast but wrong all-reduce measures nothing: check a few sums.
  for (const Rank& x : ranks->r) {
    for (size_t j : {size_t(0), size_t(1), elems / 2, elems - 1}) {
      float got = 0;
      CUDA_OK(cudaSetDevice(x.device));
      CUDA_OK(cudaMemcpy(&got, x.recv + j, sizeof(float), cudaMemcpyDeviceToHost));
      double want = 0;
      for (int i = 0; i < n; ++i) want += host[(j + offset(i)) % elems];
      if (std::fabs(got - want) > 1e-4 * want)
        throw Failure("wrong all-reduce result on GPU " + std::to_string(x.device) + " at " +
                      std::to_string(j) + ": " + std::to_string(got) + ", want " +
                      std::to_string(want));
    }
  }
  res.ranks = n;
  if (!FinishNcclResult(times, &res)) res.ranks = 0;
  return res;
}

NcclAllReduceResult Measure(const NcclOptions& options, bool release) {
  NcclAllReduceResult res;
  NcclApi api;
  std::string why;
  if (!LoadNccl(&api, &why)) {
    res.note = why;
    return res;
  }
  Ranks ranks;
  ranks.api = &api;
  ranks.release = release;
  try {
    res = Run(options, api, &ranks);
  } catch (const std::exception& e) {  // a Failure, or std::bad_alloc of the host buffer
    ranks.failed = true;
    res = NcclAllReduceResult();
    res.note = e.what();
  }
  if (res.nccl_version.empty()) {
    int version = 0;
    if (api.GetVersion(&version) == ncclSuccess) res.nccl_version = VersionString(version);
  }
  return res;
}

std::string OneLine(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

NcclAllReduceResult MeasureNcclAllReduce(const NcclOptions& options) {
  return Measure(options, /*release=*/true);
}

NcclAllReduceResult MeasureNcclAllReduceIsolated(const NcclOptions& options) {
  NcclAllReduceResult res;
  int fds[2];
  if (pipe(fds) != 0) {
    res.note = std::string("pipe: ") + std::strerror(errno);
    return res;
  }
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    res.note = std::string("fork: ") + std::strerror(errno);
    close(fds[0]);
    close(fds[1]);
    return res;
  }
  if (pid == 0) {
    // The child: nothing of it may reach the caller's stdout (NCCL_DEBUG
    // prints there), and it dies with its parent.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(fds[0]);
    dup2(2, 1);
    NcclAllReduceResult r = Measure(options, /*release=*/false);
    char head[256];
    std::snprintf(head, sizeof(head), "%d %lld %.17g %.17g %.17g\n", r.ranks,
                  static_cast<long long>(r.bytes), r.median_ms, r.algbw_gbps, r.busbw_gbps);
    std::string msg = std::string(head) + OneLine(r.nccl_version) + "\n" + OneLine(r.note);
    const char* p = msg.data();
    size_t left = msg.size();
    while (left > 0) {
      ssize_t w = write(fds[1], p, left);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) break;
      p += w;
      left -= static_cast<size_t>(w);
    }
    close(fds[1]);
    // The process's exit frees the GPUs: no communicator teardown to hang in.
    _exit(0);
  }
  close(fds[1]);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(int64_t(options.timeout_seconds * 1000));
  std::string out;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    struct pollfd pfd = {fds[0], POLLIN, 0};
    const int r = poll(&pfd, 1, int(std::min<int64_t>(left, 1000)));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    const ssize_t got = read(fds[0], buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    out.append(buf, size_t(got));
  }
  close(fds[0]);
  // The child exits right after it wrote; give it a little, then kill it,
  // so that the caller's own GPU work never overlaps it.
  int status = 0;
  bool reaped = false;
  for (int i = 0; i < 100 && !timed_out; ++i) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid || (w < 0 && errno != EINTR)) {
      reaped = w == pid;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (!reaped) {
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  if (timed_out) {
    res.note = "NCCL all-reduce: no answer within " + std::to_string(int(options.timeout_seconds)) +
               "s (killed)";
    return res;
  }
  std::istringstream in(out);
  long long bytes = 0;
  if (!(in >> res.ranks >> bytes >> res.median_ms >> res.algbw_gbps >> res.busbw_gbps)) {
    res = NcclAllReduceResult();
    res.note = WIFSIGNALED(status)
                   ? "NCCL all-reduce: the measuring process died of signal " +
                         std::to_string(WTERMSIG(status))
                   : "NCCL all-reduce: the measuring process said nothing";
    return res;
  }
  res.bytes = bytes;
  std::string line;
  std::getline(in, line);  // the rest of the numbers' line
  std::getline(in, res.nccl_version);
  std::getline(in, res.note);
  return res;
}

}  // namespace ratchet::kernels
