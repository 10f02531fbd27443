#include "coordinator/scheduler.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace ratchet::coordinator {

SchedulableCampaign SchedulableFromSpec(int64_t id, const v1::CampaignSpec& spec) {
  SchedulableCampaign c;
  c.id = id;
  c.weight = spec.weight() > 0 ? spec.weight() : 1;
  c.device = spec.device() == v1::DEVICE_UNSPECIFIED ? v1::DEVICE_CPU : spec.device();
  c.gpu_model = spec.gpu_model();
  c.gpus = spec.gpus();
  if (spec.has_training()) c.nproc = spec.training().nproc();
  return c;
}

bool CanRun(const SchedulableCampaign& campaign, const v1::Hardware& hardware) {
  if (campaign.device == v1::DEVICE_CPU) return true;
  if (campaign.device != v1::DEVICE_CUDA) return false;
  const std::string wanted = absl::AsciiStrToLower(campaign.gpu_model);
  auto matches = [&](const std::string& name) {
    return wanted.empty() || absl::StrContains(absl::AsciiStrToLower(name), wanted);
  };
  int usable = 0;
  if (hardware.gpu_info_size() > 0) {
    for (const auto& gpu : hardware.gpu_info())
      if (matches(gpu.sku()) || matches(gpu.model())) ++usable;
  } else {
    // Older workers list only model names.
    for (const auto& name : hardware.gpus())
      if (matches(name)) ++usable;
  }
  return usable >= std::max(1, campaign.gpus);
}

std::vector<int64_t> CampaignOrder(const std::vector<SchedulableCampaign>& campaigns,
                                   const std::map<int64_t, int>& leased,
                                   const v1::Hardware& hardware,
                                   const std::map<int64_t, uint64_t>& last_served) {
  struct Entry {
    double load;
    uint64_t served;
    int64_t id;
  };
  std::vector<Entry> entries;
  for (const auto& c : campaigns) {
    if (!CanRun(c, hardware)) continue;
    auto it = leased.find(c.id);
    const int n = it == leased.end() ? 0 : it->second;
    auto s = last_served.find(c.id);
    entries.push_back({(n + 1) / c.weight, s == last_served.end() ? 0 : s->second, c.id});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.load != b.load) return a.load < b.load;
    if (a.served != b.served) return a.served < b.served;
    return a.id < b.id;
  });
  std::vector<int64_t> order;
  order.reserve(entries.size());
  for (const auto& e : entries) order.push_back(e.id);
  return order;
}

}  // namespace ratchet::coordinator
