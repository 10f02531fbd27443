// Whether a GPU worker is fit for timing-sensitive multi-GPU jobs, judged by
// the NCCL all-reduce bus bandwidth it measured at start against its peers'
// (docs/cluster.md, "NCCL bus bandwidth").
//
// Rule: a worker with nccl_ranks >= 2 whose bus bandwidth is below half the
// median of the connected workers with the same GPU model and the same rank
// count (itself included; only measured ones; at least 3 of them to judge) is
// unhealthy: a slow link, a GPU off NVLink, a throttled switch. It still takes
// every other job, but no training job with nproc >= 2, whose time and score
// would be the node's fault rather than the candidate's. Fewer than 3 peers,
// one GPU, or no measurement: healthy (nothing to judge against).
//
// Pure functions over what workers reported at registration; the caller that
// knows the connected workers (the worker gateway, where it offers
// campaigns to a worker) decides with them.
#ifndef RATCHET_COORDINATOR_NODE_HEALTH_H_
#define RATCHET_COORDINATOR_NODE_HEALTH_H_

#include <set>
#include <string>
#include <vector>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

struct NcclHealth {
  bool healthy = true;
  bool judged = false;     // enough peers to judge
  int peers = 0;           // measured workers of its group, itself included
  double busbw_gbps = 0;   // its own
  double peer_median_gbps = 0;
  std::string why;         // for logs and `ratchet workers`: "" when healthy
};

// The group a worker is compared within: GPU model and NCCL rank count
// ("" for a worker without GPUs or without a multi-GPU measurement).
std::string NcclPeerGroup(const v1::Hardware& hardware);

// `worker` against `connected`, the hardware of every connected worker once,
// the judged worker's included.
NcclHealth JudgeNcclHealth(const v1::Hardware& worker,
                           const std::vector<v1::Hardware>& connected);

// The ids of the connected workers in `workers` that are unhealthy
// (disconnected ones neither are judged nor count as peers).
std::set<std::string> UnhealthyNcclWorkers(const std::vector<v1::WorkerInfo>& workers);

// Training jobs on 2 or more processes time collectives across GPUs.
inline bool TimingSensitive(int nproc) { return nproc >= 2; }

// Whether a worker judged `health` may be offered a training job of `nproc`
// processes (Job.training().nproc(), the campaign's spec.training.nproc).
inline bool MayTakeTrainingJob(const NcclHealth& health, int nproc) {
  return health.healthy || !TimingSensitive(nproc);
}

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_NODE_HEALTH_H_
