// NCCL all-reduce bus bandwidth over every GPU of this machine, measured by
// ratchet-gpu-probe at worker start (docs/cluster.md, "NCCL bus bandwidth").
//
// One process, one communicator over the GPUs (ncclCommInitAll; one GPU goes
// the same way), float buffers of 256 MiB per GPU filled with random non-zero
// values, out of place (sums never grow), 5 warm-up all-reduces, then 20 timed
// ones: each after a device-wide sync of every GPU, timed with CUDA events on
// every GPU's stream, the iteration's time being its slowest GPU's; the median
// of those is the time. algbw = bytes / time; busbw = algbw * 2(n-1)/n, the
// definition of nccl-tests (the bytes each GPU must move over its links in a
// ring, so that busbw compares across GPU counts with the links' speed). For
// n = 1 that is 0: nothing crosses a link; algbw is still reported.
//
// The struct and the formula need nothing. The measurement is compiled only
// where CMake found nccl.h (RATCHET_HAVE_NCCL); libnccl is loaded at run time
// (dlopen), so that the probe starts on a GPU machine without NCCL and says
// so instead of failing to load, which would leave the worker CPU-only.
#ifndef RATCHET_KERNELS_SOL_NCCL_BUSBW_H_
#define RATCHET_KERNELS_SOL_NCCL_BUSBW_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

namespace ratchet::kernels {

struct NcclAllReduceResult {
  int ranks = 0;            // GPUs in the communicator; 0 = not measured
  int64_t bytes = 0;        // per GPU and all-reduce
  double median_ms = 0;     // median over the timed all-reduces
  double algbw_gbps = 0;    // bytes / median time, GB/s (1e9 bytes/s)
  double busbw_gbps = 0;    // algbw * 2(n-1)/n; 0 for one GPU
  std::string nccl_version; // of the library loaded, "2.28.9"
  std::string note;         // why nothing was measured (skipped, no NCCL, an error); "" when ok
};

struct NcclOptions {
  int64_t bytes = int64_t{256} << 20;  // per GPU
  int warmups = 5;
  int iterations = 20;
  int only_device = -1;                // >= 0: just this GPU (n = 1); else every visible GPU
  double timeout_seconds = 90;         // MeasureNcclAllReduceIsolated: then the child is killed
};

// nccl-tests' bus bandwidth of an all-reduce over `ranks` GPUs.
inline double AllReduceBusBandwidth(double algbw_gbps, int ranks) {
  return ranks > 1 ? algbw_gbps * 2.0 * (ranks - 1) / ranks : 0.0;
}

// The median, 0 for none.
inline double MedianOf(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Fills median_ms, algbw_gbps and busbw_gbps from the timed iterations (ms)
// of `result->bytes` over `result->ranks` GPUs; false, with the figures 0 and
// `note` set, when there is no positive time.
inline bool FinishNcclResult(const std::vector<double>& iteration_ms,
                             NcclAllReduceResult* result) {
  result->median_ms = MedianOf(iteration_ms);
  if (!(result->median_ms > 0) || result->ranks < 1 || result->bytes <= 0) {
    result->median_ms = result->algbw_gbps = result->busbw_gbps = 0;
    result->note = "no usable all-reduce time";
    return false;
  }
  result->algbw_gbps = double(result->bytes) / (result->median_ms * 1e-3) / 1e9;
  result->busbw_gbps = AllReduceBusBandwidth(result->algbw_gbps, result->ranks);
  return true;
}

#ifdef RATCHET_HAVE_NCCL
// In this process. Never throws: every CUDA and NCCL call is checked, and a
// failure gives ranks/bandwidths 0 with the call and its message in `note`.
NcclAllReduceResult MeasureNcclAllReduce(const NcclOptions& options);

// The same in a child process (fork), so that a hang or a crash inside NCCL
// or the driver costs only this figure: the child is killed after
// `options.timeout_seconds`. Call it before this process uses CUDA (a forked
// child cannot use a CUDA context it inherited).
NcclAllReduceResult MeasureNcclAllReduceIsolated(const NcclOptions& options);
#endif

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_SOL_NCCL_BUSBW_H_
