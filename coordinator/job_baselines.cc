#include "coordinator/job_baselines.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/noise_floor.h"
#include "coordinator/find_or_load.h"
#include "coordinator/stored_baselines.h"

namespace ratchet::coordinator {

JobBaselines::JobBaselines(store::Store* store, const Clock* clock)
    : store_(store), clock_(clock) {}

absl::Status JobBaselines::Record(const v1::Campaign& campaign,
                                  const v1::Evaluation& evaluation, std::string* event,
                                  std::string* changed) {
  const v1::CampaignSpec& spec = campaign.spec();
  if (spec.task() != v1::TASK_KERNEL || evaluation.kind() == v1::JOB_REPLAY ||
      evaluation.outcome() != v1::OUTCOME_OK)
    return absl::OkStatus();
  // No software string, no key: a harness that does not say what timed T_b
  // contributes nothing (and is never handed a baseline it could not check).
  const std::string& software = evaluation.baseline_software();
  if (software.empty()) return absl::OkStatus();
  bool measured = false;
  for (const auto& w : evaluation.workloads()) measured |= !w.t_b_given() && w.t_b_ns() > 0;
  if (!measured) return absl::OkStatus();
  auto worker = store_->GetWorker(evaluation.worker_id());
  if (!worker.ok()) return worker.status();
  if (!worker->has_value()) return absl::OkStatus();  // unknown hardware: not keyed
  const std::string hardware = HardwareKey((*worker)->hardware(), spec.device() == v1::DEVICE_CUDA);
  const std::string problem_key = BaselineProblemKey(spec.problem());
  const std::vector<std::string> workload_keys = BaselineWorkloadKeys(spec.problem());
  auto stored = store_->ListBaselines(problem_key, hardware);
  if (absl::IsUnimplemented(stored.status())) return absl::OkStatus();
  if (!stored.ok()) return stored.status();
  const int64_t now = clock_->NowUnixMs();
  std::vector<std::string> froze;
  std::set<std::string> done;  // a workload line listed twice counts once
  for (const auto& w : evaluation.workloads()) {
    if (w.index() < 0 || w.index() >= static_cast<int>(workload_keys.size())) continue;
    if (!done.insert(workload_keys[w.index()]).second) continue;
    v1::Baseline b;
    bool found = false;
    for (const auto& x : *stored) {
      if (x.workload_key() == workload_keys[w.index()] && x.software() == software) {
        b = x;
        found = true;
        break;
      }
    }
    if (!found) {
      b.set_problem_key(problem_key);
      b.set_workload_key(workload_keys[w.index()]);
      b.set_hardware(hardware);
      b.set_software(software);
      b.set_problem(spec.problem().name());
    }
    if (!AddBaselineMeasurement(w, evaluation.id(), evaluation.worker_id(), now, &b)) continue;
    if (auto s = store_->UpsertBaseline(b); !s.ok()) return s;
    *changed = absl::StrCat(problem_key, "|", hardware);
    if (b.frozen())
      froze.push_back(absl::StrCat(
          w.index(), w.axes().empty() ? "" : " (" + w.axes() + ")", " ",
          b.t_b_ns() >= 1e6 ? absl::StrFormat("%.3f ms", b.t_b_ns() / 1e6)
                            : absl::StrFormat("%.2f us", b.t_b_ns() / 1e3),
          absl::StrFormat(" spread %.1f%%", 100 * b.t_b_spread())));
  }
  if (!froze.empty())
    *event = absl::StrCat("T_b frozen on ",
                          hardware, " (", software, "): workload ", absl::StrJoin(froze, "; "));
  return absl::OkStatus();
}

void JobBaselines::Forget(const std::string& changed) {
  // This coordinator's AcquireJob reads the committed state at once.
  std::lock_guard<std::mutex> lock(mu_);
  stored_.erase(changed);
}

void JobBaselines::NoteSoftware(const std::string& worker_id, const std::string& software) {
  std::lock_guard<std::mutex> lock(mu_);
  worker_software_[worker_id] = software;
}

absl::StatusOr<std::vector<v1::Baseline>> JobBaselines::ForJob(int64_t campaign_id,
                                                               const v1::CampaignSpec& spec,
                                                               const v1::Hardware& hardware,
                                                               const std::string& worker_id) {
  if (spec.task() != v1::TASK_KERNEL) return std::vector<v1::Baseline>();
  auto keys = FindOrLoad(mu_, keys_, campaign_id,
                         [&]() -> absl::StatusOr<std::shared_ptr<const Keys>> {
                           auto k = std::make_shared<Keys>();
                           k->problem = BaselineProblemKey(spec.problem());
                           k->workloads = BaselineWorkloadKeys(spec.problem());
                           return std::shared_ptr<const Keys>(std::move(k));
                         });
  if (!keys.ok()) return keys.status();
  const std::string hardware_key = HardwareKey(hardware, spec.device() == v1::DEVICE_CUDA);
  const std::string cache_key = absl::StrCat((*keys)->problem, "|", hardware_key);
  constexpr int64_t kRereadMs = 5'000;  // another coordinator may have frozen some
  const int64_t now = clock_->NowUnixMs();
  std::shared_ptr<const Stored> stored;
  std::string software;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stored_.find(cache_key);
    if (it != stored_.end() && now - it->second->loaded_ms < kRereadMs) stored = it->second;
    auto sw = worker_software_.find(worker_id);
    if (sw != worker_software_.end()) software = sw->second;
  }
  if (stored == nullptr) {
    auto list = store_->ListBaselines((*keys)->problem, hardware_key);
    if (absl::IsUnimplemented(list.status())) return std::vector<v1::Baseline>();
    if (!list.ok()) return list.status();
    auto fresh = std::make_shared<Stored>();
    fresh->baselines = *std::move(list);
    fresh->loaded_ms = now;
    stored = fresh;
    std::lock_guard<std::mutex> lock(mu_);
    if (stored_.size() >= 4096) stored_.clear();
    stored_[cache_key] = stored;
  }
  return PickBaselines(stored->baselines, (*keys)->workloads, software);
}

}  // namespace ratchet::coordinator
