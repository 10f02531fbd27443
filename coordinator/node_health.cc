#include "coordinator/node_health.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ratchet::coordinator {

std::string NcclPeerGroup(const v1::Hardware& hardware) {
  if (hardware.nccl_ranks() < 2 || hardware.nccl_allreduce_busbw_gbps() <= 0) return "";
  std::string model = hardware.gpu_info_size() > 0 ? hardware.gpu_info(0).model()
                      : hardware.gpus_size() > 0   ? hardware.gpus(0)
                                                   : "";
  if (model.empty()) return "";
  return absl::StrCat(model, " x", hardware.nccl_ranks());
}

NcclHealth JudgeNcclHealth(const v1::Hardware& worker,
                           const std::vector<v1::Hardware>& connected) {
  NcclHealth h;
  h.busbw_gbps = worker.nccl_allreduce_busbw_gbps();
  const std::string group = NcclPeerGroup(worker);
  if (group.empty()) return h;
  std::vector<double> peers;
  for (const auto& other : connected)
    if (NcclPeerGroup(other) == group) peers.push_back(other.nccl_allreduce_busbw_gbps());
  h.peers = static_cast<int>(peers.size());
  if (h.peers < 3) return h;
  std::sort(peers.begin(), peers.end());
  const size_t n = peers.size();
  h.peer_median_gbps = n % 2 ? peers[n / 2] : 0.5 * (peers[n / 2 - 1] + peers[n / 2]);
  h.judged = true;
  if (h.busbw_gbps < 0.5 * h.peer_median_gbps) {
    h.healthy = false;
    h.why = absl::StrFormat(
        "NCCL all-reduce bus bandwidth %.0f GB/s is below half the median %.0f GB/s of %d "
        "workers with %s",
        h.busbw_gbps, h.peer_median_gbps, h.peers, group);
  }
  return h;
}

std::set<std::string> UnhealthyNcclWorkers(const std::vector<v1::WorkerInfo>& workers) {
  std::vector<v1::Hardware> connected;
  for (const auto& w : workers)
    if (w.connected()) connected.push_back(w.hardware());
  std::set<std::string> out;
  for (const auto& w : workers)
    if (w.connected() && !JudgeNcclHealth(w.hardware(), connected).healthy) out.insert(w.id());
  return out;
}

}  // namespace ratchet::coordinator
