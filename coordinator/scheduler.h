// Which campaign a worker's next job comes from (docs/cluster.md,
// "Scheduling").
//
// Every running campaign has a weight; the scheduler keeps each campaign's
// share of the leased jobs close to its share of the total weight by offering
// the worker's AcquireJob the campaigns it can run in order of
// (leased + 1) / weight, lowest first. A campaign with nothing queued is
// skipped by the store (one index probe), so the next one in order gets the
// worker. Resources decide which campaigns a worker may run at all: a cuda
// campaign needs a worker with enough GPUs of the requested model.
#ifndef RATCHET_COORDINATOR_SCHEDULER_H_
#define RATCHET_COORDINATOR_SCHEDULER_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::coordinator {

namespace v1 = ::ratchet::v1;

// What the scheduler needs of a running campaign (kept in memory, refreshed
// from the store by the research loop).
struct SchedulableCampaign {
  int64_t id = 0;
  double weight = 1;
  v1::Device device = v1::DEVICE_CPU;
  std::string gpu_model;  // "" = any
  int gpus = 0;           // 0 = 1 for cuda
  int nproc = 0;          // a training campaign's processes per job; 0 otherwise
};

SchedulableCampaign SchedulableFromSpec(int64_t id, const v1::CampaignSpec& spec);

// True when a worker with `hardware` can run the campaign's jobs. CPU jobs run
// anywhere; cuda jobs need max(1, gpus) GPUs whose sku or model contains
// gpu_model (case-insensitive; "" matches every GPU).
bool CanRun(const SchedulableCampaign& campaign, const v1::Hardware& hardware);

// The campaigns `hardware` can run, in the order to try them: lowest
// (leased + 1) / weight first, then the one served longest ago, then lowest
// id. `leased` maps campaign id to its jobs leased now (missing = 0);
// `last_served` to the sequence number of its latest lease (missing = never,
// first). Without the second key, campaigns that always have work queued and
// the lowest ids would take every free slot, and a suite with more campaigns
// than slots would never start the rest.
std::vector<int64_t> CampaignOrder(const std::vector<SchedulableCampaign>& campaigns,
                                   const std::map<int64_t, int>& leased,
                                   const v1::Hardware& hardware,
                                   const std::map<int64_t, uint64_t>& last_served = {});

}  // namespace ratchet::coordinator

#endif  // RATCHET_COORDINATOR_SCHEDULER_H_
