#include "coordinator/multi_fidelity.h"

#include <algorithm>

#include "spec/defaults.h"

namespace ratchet::coordinator {

std::vector<double> LowFidelities(const v1::CampaignSpec& spec) {
  std::vector<double> low;
  if (!spec::IsTraining(spec.task())) return low;
  for (double f : spec.training().fidelities())
    if (f > 0 && f < 1) low.push_back(f);
  return low;
}

double FirstFidelity(const v1::CampaignSpec& spec) {
  const std::vector<double> low = LowFidelities(spec);
  return low.empty() ? 0 : low.front();
}

double NextFidelity(const v1::CampaignSpec& spec, double fidelity) {
  for (double f : LowFidelities(spec))
    if (f > fidelity) return f;
  return 0;
}

v1::Rung* RungOf(v1::Campaign* campaign, double fidelity) {
  for (auto& rung : *campaign->mutable_rungs())
    if (rung.fidelity() == fidelity) return &rung;
  v1::Rung* rung = campaign->add_rungs();
  rung->set_fidelity(fidelity);
  return rung;
}

bool Promote(const v1::Rung& rung, double score, int halving) {
  const int n = rung.scores_size();
  if (n == 0) return true;
  const int keep = (n + std::max(1, halving) - 1) / std::max(1, halving);
  const int better = static_cast<int>(
      std::count_if(rung.scores().begin(), rung.scores().end(), [&](double s) { return s > score; }));
  return better < keep;
}

}  // namespace ratchet::coordinator
