#include "coordinator/stored_baselines.h"

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace ratchet::coordinator {
namespace {

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// The median of one field over `samples` where they know it (> 0); 0 if
// none do.
template <typename Field>
double MedianOf(const std::vector<const v1::BaselineSample*>& samples, Field field) {
  std::vector<double> v;
  for (const v1::BaselineSample* s : samples)
    if (field(*s) > 0) v.push_back(field(*s));
  return Median(std::move(v));
}

double SpreadOf(const std::vector<const v1::BaselineSample*>& samples) {
  if (samples.empty()) return 0;
  const auto [lo, hi] = std::minmax_element(
      samples.begin(), samples.end(),
      [](const auto* a, const auto* b) { return a->t_b_ns() < b->t_b_ns(); });
  const double median = MedianOf(samples, [](const v1::BaselineSample& x) { return x.t_b_ns(); });
  return median > 0 ? ((*hi)->t_b_ns() - (*lo)->t_b_ns()) / median : 0;
}

// The fastest kBaselineMeasurements samples that agree within
// kBaselineSteadySpread (consecutive in T_b order, the lowest such run), or
// none. A busy host only makes the reference slower, so of two steady runs
// the fastest is the measurement.
std::vector<const v1::BaselineSample*> SteadyRun(const v1::Baseline& b) {
  std::vector<const v1::BaselineSample*> sorted;
  for (const auto& s : b.samples()) sorted.push_back(&s);
  std::sort(sorted.begin(), sorted.end(),
            [](const auto* x, const auto* y) { return x->t_b_ns() < y->t_b_ns(); });
  for (size_t i = 0; i + kBaselineMeasurements <= sorted.size(); ++i) {
    std::vector<const v1::BaselineSample*> run(sorted.begin() + i,
                                               sorted.begin() + i + kBaselineMeasurements);
    if (SpreadOf(run) <= kBaselineSteadySpread) return run;
  }
  return {};
}

}  // namespace

std::string Fnv1a64Hex(absl::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return absl::StrFormat("%016x", h);
}

std::string BaselineProblemKey(const v1::Problem& problem) {
  return Fnv1a64Hex(problem.definition_json());
}

std::vector<std::string> BaselineWorkloadKeys(const v1::Problem& problem) {
  std::vector<std::string> keys;
  for (absl::string_view line : absl::StrSplit(problem.workload_jsonl(), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;  // as the harness counts workloads
    keys.push_back(Fnv1a64Hex(line));
  }
  return keys;
}

bool AddBaselineMeasurement(const v1::WorkloadResult& w, int64_t evaluation_id,
                            const std::string& worker_id, int64_t now_unix_ms, v1::Baseline* b) {
  if (b->frozen() || b->samples_size() >= kBaselineMaxMeasurements) return false;
  if (w.t_b_given() || !(w.t_b_ns() > 0)) return false;
  v1::BaselineSample* s = b->add_samples();
  s->set_t_b_ns(w.t_b_ns());
  s->set_t_b_eager_ns(w.t_b_eager_ns());
  s->set_t_b_compile_ns(w.t_b_compile_ns());
  s->set_t_ref_kernel_ns(w.t_ref_kernel_ns());
  s->set_t_b_spread(w.t_b_spread());
  s->set_evaluation_id(evaluation_id);
  s->set_worker_id(worker_id);
  s->set_unix_ms(now_unix_ms);
  if (b->first_unix_ms() == 0) b->set_first_unix_ms(now_unix_ms);
  b->set_updated_unix_ms(now_unix_ms);
  b->set_workload_index(w.index());
  if (!w.axes().empty()) b->set_axes(w.axes());
  b->set_measurements(b->samples_size());
  // Frozen on a steady run (its medians), else at the most measurements (the
  // medians of all); until then the medians of all so far.
  std::vector<const v1::BaselineSample*> used = SteadyRun(*b);
  b->set_frozen(!used.empty() || b->samples_size() >= kBaselineMaxMeasurements);
  if (used.empty())
    for (const auto& x : b->samples()) used.push_back(&x);
  b->set_t_b_ns(MedianOf(used, [](const v1::BaselineSample& x) { return x.t_b_ns(); }));
  b->set_t_b_eager_ns(MedianOf(used, [](const v1::BaselineSample& x) { return x.t_b_eager_ns(); }));
  b->set_t_b_compile_ns(
      MedianOf(used, [](const v1::BaselineSample& x) { return x.t_b_compile_ns(); }));
  b->set_t_ref_kernel_ns(
      MedianOf(used, [](const v1::BaselineSample& x) { return x.t_ref_kernel_ns(); }));
  b->set_t_b_spread(SpreadOf(used));
  return true;
}

std::vector<v1::Baseline> PickBaselines(const std::vector<v1::Baseline>& stored,
                                        const std::vector<std::string>& workload_keys,
                                        const std::string& preferred_software) {
  if (workload_keys.empty()) return {};
  // software -> workload key -> frozen baseline
  std::map<std::string, std::map<std::string, const v1::Baseline*>> by_software;
  for (const auto& b : stored)
    if (b.frozen()) by_software[b.software()][b.workload_key()] = &b;
  const std::string* best = nullptr;
  int64_t best_completed = -1;
  for (const auto& [software, frozen] : by_software) {
    int64_t completed = 0;  // when the last of its workloads froze
    bool all = true;
    for (const auto& key : workload_keys) {
      auto it = frozen.find(key);
      if (it == frozen.end()) {
        all = false;
        break;
      }
      completed = std::max(completed, it->second->updated_unix_ms());
    }
    if (!all) continue;
    if (software == preferred_software) {
      best = &software;
      break;
    }
    if (completed > best_completed) {
      best = &software;
      best_completed = completed;
    }
  }
  if (best == nullptr) return {};
  std::vector<v1::Baseline> out;
  const auto& frozen = by_software[*best];
  for (size_t i = 0; i < workload_keys.size(); ++i) {
    v1::Baseline b = *frozen.at(workload_keys[i]);
    b.clear_samples();
    b.set_workload_index(static_cast<int32_t>(i));
    out.push_back(std::move(b));
  }
  return out;
}

}  // namespace ratchet::coordinator
