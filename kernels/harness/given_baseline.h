// T_b as the coordinator stores it (docs/harness.md, "A given baseline"):
// measured once per problem, workload, hardware and software by the oracle,
// handed to the harness with --baseline FILE so that every candidate of a
// workload is scored against the same T_b and no job times the reference.
#ifndef RATCHET_KERNELS_HARNESS_GIVEN_BASELINE_H_
#define RATCHET_KERNELS_HARNESS_GIVEN_BASELINE_H_

#include <map>
#include <string>

namespace ratchet::kernels {

struct GivenBaseline {
  struct Entry {
    double t_b_ns = 0, t_b_spread = 0, t_b_eager_ns = 0, t_b_compile_ns = 0,
           t_ref_kernel_ns = 0;
  };
  std::string software;           // must equal the oracle's (OracleSoftware)
  std::map<int, Entry> workloads;  // by workload index
  bool empty() const { return workloads.empty(); }
};

// Reads FILE ({"software": ..., "workloads": [{"index": i, "t_b_ns": ...}]}).
// Empty when `path` is empty or the file unreadable (said on stderr): T_b is
// then timed as usual.
GivenBaseline LoadGivenBaseline(const std::string& path);

// "torch 2.11.0 / cuda 13.0" from the oracle's manifest text: the software
// part of a stored baseline's key.
std::string OracleSoftware(const std::string& manifest_text);

}  // namespace ratchet::kernels

#endif  // RATCHET_KERNELS_HARNESS_GIVEN_BASELINE_H_
