// The NCCL health rule (coordinator/node_health.h): a worker far below its
// peers does not take timing-sensitive (multi-GPU training) jobs.
#include "coordinator/node_health.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace ratchet::coordinator {
namespace {

v1::Hardware Node(const std::string& model, int ranks, double busbw) {
  v1::Hardware h;
  h.set_cpu_cores(64);
  for (int i = 0; i < std::max(ranks, 1); ++i) {
    auto* g = h.add_gpu_info();
    g->set_index(i);
    g->set_model(model);
    h.add_gpus(model);
  }
  h.set_nccl_ranks(ranks);
  h.set_nccl_allreduce_busbw_gbps(busbw);
  return h;
}

const char kH100[] = "NVIDIA H100 80GB HBM3";

TEST(NodeHealthTest, FarBelowThePeersIsUnhealthy) {
  const std::vector<v1::Hardware> nodes = {Node(kH100, 8, 380), Node(kH100, 8, 370),
                                           Node(kH100, 8, 390), Node(kH100, 8, 150)};
  const NcclHealth slow = JudgeNcclHealth(nodes[3], nodes);
  EXPECT_FALSE(slow.healthy);
  EXPECT_TRUE(slow.judged);
  EXPECT_EQ(slow.peers, 4);
  EXPECT_DOUBLE_EQ(slow.peer_median_gbps, 375);  // (370 + 380) / 2
  EXPECT_NE(slow.why.find("150 GB/s"), std::string::npos) << slow.why;
  EXPECT_NE(slow.why.find("375 GB/s"), std::string::npos) << slow.why;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(JudgeNcclHealth(nodes[i], nodes).healthy) << i;
  // Not offered multi-GPU training; everything else still.
  EXPECT_FALSE(MayTakeTrainingJob(slow, 2));
  EXPECT_FALSE(MayTakeTrainingJob(slow, 8));
  EXPECT_TRUE(MayTakeTrainingJob(slow, 1));
  EXPECT_TRUE(MayTakeTrainingJob(slow, 0));
  EXPECT_TRUE(MayTakeTrainingJob(JudgeNcclHealth(nodes[0], nodes), 8));
}

TEST(NodeHealthTest, HalfTheMedianIsStillHealthy) {
  const std::vector<v1::Hardware> nodes = {Node(kH100, 2, 200), Node(kH100, 2, 200),
                                           Node(kH100, 2, 100)};
  EXPECT_TRUE(JudgeNcclHealth(nodes[2], nodes).healthy);  // 100 is not below 100
  const std::vector<v1::Hardware> worse = {Node(kH100, 2, 200), Node(kH100, 2, 200),
                                           Node(kH100, 2, 99.9)};
  EXPECT_FALSE(JudgeNcclHealth(worse[2], worse).healthy);
}

TEST(NodeHealthTest, TooFewPeersJudgeNothing) {
  const std::vector<v1::Hardware> two = {Node(kH100, 8, 380), Node(kH100, 8, 10)};
  const NcclHealth h = JudgeNcclHealth(two[1], two);
  EXPECT_TRUE(h.healthy);
  EXPECT_FALSE(h.judged);
  EXPECT_EQ(h.peers, 2);
}

TEST(NodeHealthTest, PeersShareGpuModelAndRankCount) {
  const std::vector<v1::Hardware> nodes = {
      Node(kH100, 8, 380), Node(kH100, 8, 380), Node(kH100, 8, 380),
      Node(kH100, 4, 100),                        // another rank count
      Node("NVIDIA H200", 8, 100),                // another model
      Node(kH100, 8, 0),                          // not measured: no peer
      Node(kH100, 1, 0), Node(kH100, 0, 0)};      // one GPU, no measurement
  for (size_t i = 3; i < nodes.size(); ++i)
    EXPECT_TRUE(JudgeNcclHealth(nodes[i], nodes).healthy) << i;
  EXPECT_EQ(JudgeNcclHealth(nodes[0], nodes).peers, 3);
  EXPECT_EQ(NcclPeerGroup(nodes[0]), std::string(kH100) + " x8");
  EXPECT_EQ(NcclPeerGroup(nodes[6]), "");
  EXPECT_EQ(NcclPeerGroup(v1::Hardware()), "");
  // A CPU worker is never judged.
  EXPECT_TRUE(JudgeNcclHealth(v1::Hardware(), nodes).healthy);
}

TEST(NodeHealthTest, OnlyConnectedWorkersCount) {
  std::vector<v1::WorkerInfo> workers;
  auto add = [&](const std::string& id, double busbw, bool connected) {
    v1::WorkerInfo w;
    w.set_id(id);
    w.set_connected(connected);
    *w.mutable_hardware() = Node(kH100, 8, busbw);
    workers.push_back(w);
  };
  add("w-1", 380, true);
  add("w-2", 385, true);
  add("w-3", 120, true);
  EXPECT_EQ(UnhealthyNcclWorkers(workers), std::set<std::string>{"w-3"});
  add("w-4", 20, false);  // gone: neither judged nor a peer
  EXPECT_EQ(UnhealthyNcclWorkers(workers), std::set<std::string>{"w-3"});
  workers[0].set_connected(false);  // two left: nothing to judge against
  EXPECT_TRUE(UnhealthyNcclWorkers(workers).empty());
}

}  // namespace
}  // namespace ratchet::coordinator
