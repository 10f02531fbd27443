#include "coordinator/worker_gateway.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/names.h"
#include "coordinator/find_or_load.h"
#include "coordinator/node_health.h"
#include "spec/defaults.h"
#include "spec/names.h"

namespace ratchet::coordinator {
namespace {

// Training progress in a campaign's events (NoteProgress): one event per job
// per 10 s of the coordinator's clock at most, so that a run's progress does
// not push the campaign's other events out of the 20,000 kept.
constexpr int64_t kProgressEventMs = 10'000;
constexpr int64_t kProgressForgetMs = 600'000;

// A figure the candidate's program reported, fit to print: nullopt when not a
// finite number of at least 0, else at most `max`.
std::optional<double> Bounded(double value, double max) {
  if (!std::isfinite(value) || value < 0) return std::nullopt;
  return std::min(value, max);
}

// "step 120, loss 3.412, 1830 tokens/s, 61 s": numbers only, formatted here,
// "n/a" for one that is not a finite number of at least 0.
std::string ProgressFigures(const v1::JobProgress& p) {
  const std::optional<double> loss = Bounded(p.loss(), 1e9);
  const std::optional<double> rate = Bounded(p.tokens_per_s(), 1e15);
  const std::optional<double> seconds = Bounded(p.seconds(), 1e9);
  return absl::StrCat(
      p.step() >= 0 ? absl::StrCat("step ", std::min<int64_t>(p.step(), int64_t{1} << 53))
                    : "step n/a",
      loss ? absl::StrFormat(", loss %.4g", *loss) : ", loss n/a",
      rate ? absl::StrFormat(", %.0f tokens/s", *rate) : ", n/a tokens/s",
      seconds ? absl::StrFormat(", %.0f s", *seconds) : ", n/a s");
}

// The first line of `text`, control characters blanked, cut to about `max`
// bytes on a UTF-8 character's boundary.
std::string OneLine(const std::string& text, size_t max) {
  std::string out = text.substr(0, text.find_first_of("\r\n"));
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  if (out.size() > max) {
    size_t cut = max;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out = out.substr(0, cut) + "...";
  }
  return out;
}

}  // namespace

WorkerGateway::WorkerGateway(store::Store* store, const CoordinatorOptions& options,
                             Wakeup* wakeup, EventLog* events, CoordinatorMetrics* metrics,
                             JobBaselines* baselines)
    : store_(store),
      clock_(options.clock),
      lease_ms_(options.lease_ms),
      heartbeat_ms_(options.heartbeat_ms),
      max_attempts_(options.max_attempts),
      wakeup_(wakeup),
      events_(events),
      metrics_(metrics),
      baselines_(baselines),
      group_commit_(store, options.group_commit),
      id_rng_(std::random_device{}()) {}

void WorkerGateway::Heard(const std::string& worker_id, int64_t now) {
  std::lock_guard<std::mutex> lock(heard_mu_);
  last_heartbeat_ms_[worker_id] = now;
}

absl::StatusOr<v1::RegisterWorkerResponse> WorkerGateway::RegisterWorker(
    const v1::RegisterWorkerRequest& request) {
  v1::WorkerInfo info;
  std::string id = request.worker_id();
  if (!id.empty()) {
    auto existing = store_->GetWorker(id);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) info = **existing;
  }
  if (id.empty()) {
    std::string base = request.name().empty() ? "worker" : request.name();
    uint64_t suffix;
    {
      std::lock_guard<std::mutex> lock(heard_mu_);
      suffix = id_rng_() & 0xffffff;
    }
    id = absl::StrFormat("%s-%06x", base, suffix);
  }
  const int64_t now = clock_->NowUnixMs();
  info.set_id(id);
  info.set_name(request.name());
  *info.mutable_hardware() = request.hardware();
  info.set_sandbox(request.sandbox());
  if (info.registered_unix_ms() == 0) info.set_registered_unix_ms(now);
  info.set_last_heartbeat_unix_ms(now);
  if (auto s = store_->UpsertWorker(info); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(schedule_mu_);
    worker_hardware_[id] = info.hardware();
  }
  Heard(id, now);
  std::fprintf(stderr,
               "coordinator: worker %s registered (%s, %d cores, %.1f GB/s, %.1f GFLOP/s, "
               "sandbox %s)\n",
               id.c_str(), request.hardware().cpu_model().c_str(),
               request.hardware().cpu_cores(), request.hardware().peak_gbps(),
               request.hardware().peak_gflops(), request.sandbox().c_str());
  v1::RegisterWorkerResponse response;
  response.set_worker_id(id);
  response.set_lease_seconds(lease_ms_ / 1000);
  response.set_heartbeat_seconds(std::max<int64_t>(1, heartbeat_ms_ / 1000));
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> WorkerGateway::Heartbeat(
    const v1::HeartbeatRequest& request) {
  v1::HeartbeatResponse response;
  const int64_t now = clock_->NowUnixMs();
  std::vector<int64_t> ids(request.job_ids().begin(), request.job_ids().end());
  std::vector<int64_t> lost;
  bool known = false;
  // The harness timeouts of the campaigns whose jobs this coordinator handed
  // out (Fill keeps their specs): a job's wall limit depends on its own.
  store::LeaseLimits limits;
  {
    std::lock_guard<std::mutex> lock(schedule_mu_);
    for (const auto& [campaign_id, spec] : specs_)
      limits.timeout_seconds[campaign_id] = spec->harness().timeout_seconds();
  }
  // The read joins the batch too: one round of store calls, committed with
  // the other transitions.
  absl::Status s = group_commit_.Run([&]() -> absl::Status {
    lost.clear();
    auto worker = store_->GetWorker(request.worker_id());
    if (!worker.ok()) return worker.status();
    known = worker->has_value();
    if (!known) return absl::OkStatus();
    // Jobs sharing a GPU wait for each other: their wall limit is longer.
    limits.jobs_per_gpu = (*worker)->hardware().jobs_per_gpu();
    if (auto s = store_->RenewLeases(request.worker_id(), ids, now + lease_ms_, &lost, limits);
        !s.ok())
      return s;
    v1::WorkerInfo info = **worker;
    info.set_last_heartbeat_unix_ms(now);
    info.clear_job_ids();
    for (int64_t id : ids)
      if (std::find(lost.begin(), lost.end(), id) == lost.end()) info.add_job_ids(id);
    return store_->UpsertWorker(info);
  });
  if (!s.ok()) return s;
  if (!known) {
    response.set_reregister(true);
    return response;
  }
  Heard(request.worker_id(), now);
  for (int64_t id : lost) response.add_cancelled_job_ids(id);
  // Progress of the jobs it still holds (the last entry of each); any other
  // job's is ignored.
  if (request.progress_size() > 0) {
    std::set<int64_t> held(ids.begin(), ids.end());
    for (int64_t id : lost) held.erase(id);
    std::map<int64_t, const v1::JobProgress*> progress;
    for (const v1::JobProgress& p : request.progress())
      if (held.count(p.job_id())) progress[p.job_id()] = &p;
    if (!progress.empty()) NoteProgress(progress, now);
  }
  return response;
}

void WorkerGateway::NoteProgress(const std::map<int64_t, const v1::JobProgress*>& latest,
                                 int64_t now) {
  for (const auto& [job_id, progress] : latest) {
    ProgressNote note;
    {
      std::lock_guard<std::mutex> lock(progress_mu_);
      // Jobs quiet for long (ended, or their lease gone) are forgotten.
      for (auto it = progress_.begin(); it != progress_.end();)
        it = now - it->second.emitted_ms > kProgressForgetMs ? progress_.erase(it) : ++it;
      auto it = progress_.find(job_id);
      if (it != progress_.end() && now - it->second.emitted_ms < kProgressEventMs) continue;
      ProgressNote& kept = progress_[job_id];
      kept.emitted_ms = now;  // taken now: a concurrent heartbeat does not emit it twice
      note = kept;
    }
    if (note.campaign_id == 0) {
      auto job = store_->GetJob(job_id);
      if (!job.ok()) continue;
      auto spec = FindOrLoad(schedule_mu_, specs_, job->campaign_id(),
                             [&]() -> absl::StatusOr<std::shared_ptr<const v1::CampaignSpec>> {
                               auto campaign = store_->GetCampaign(job->campaign_id());
                               if (!campaign.ok()) return campaign.status();
                               return std::make_shared<const v1::CampaignSpec>(campaign->spec());
                             });
      if (!spec.ok()) continue;
      note.campaign_id = spec::IsTraining((*spec)->task()) ? job->campaign_id() : -1;
      auto candidate = store_->GetCandidate(job->candidate_id());
      note.label = absl::StrCat("#", job->candidate_id());
      if (candidate.ok() && !candidate->description().empty())
        absl::StrAppend(&note.label, " [", OneLine(candidate->description(), 80), "]");
      std::lock_guard<std::mutex> lock(progress_mu_);
      auto it = progress_.find(job_id);
      if (it != progress_.end()) {
        it->second.campaign_id = note.campaign_id;
        it->second.label = note.label;
      }
    }
    if (note.campaign_id <= 0) continue;
    events_->Emit(note.campaign_id, absl::StrCat("job ", job_id, " (", note.label,
                                                 ") training: ", ProgressFigures(*progress)));
  }
}

absl::StatusOr<std::vector<v1::WorkerInfo>> WorkerGateway::ListWorkers() {
  auto workers = store_->ListWorkers();
  if (!workers.ok()) return workers.status();
  const int64_t now = clock_->NowUnixMs();
  std::lock_guard<std::mutex> lock(heard_mu_);
  for (auto& w : *workers) {
    auto it = last_heartbeat_ms_.find(w.id());
    if (it != last_heartbeat_ms_.end()) w.set_last_heartbeat_unix_ms(it->second);
    w.set_connected(now - w.last_heartbeat_unix_ms() < lease_ms_);
  }
  return workers;
}

int WorkerGateway::ConnectedWorkers() {
  const int64_t now = clock_->NowUnixMs();
  std::lock_guard<std::mutex> lock(heard_mu_);
  int connected = 0;
  for (const auto& [id, at] : last_heartbeat_ms_)
    if (now - at < lease_ms_) ++connected;
  return connected;
}

bool WorkerGateway::OtherWorkerConnected(const std::string& worker_id) {
  const int64_t now = clock_->NowUnixMs();
  std::lock_guard<std::mutex> lock(heard_mu_);
  for (const auto& [id, at] : last_heartbeat_ms_)
    if (id != worker_id && now - at < 3 * heartbeat_ms_ + 1000) return true;
  return false;
}

void WorkerGateway::RefreshSchedulable(const std::vector<v1::Campaign>& campaigns) {
  std::vector<SchedulableCampaign> running;
  for (const auto& c : campaigns)
    if (c.state() == v1::CAMPAIGN_RUNNING) running.push_back(SchedulableFromSpec(c.id(), c.spec()));
  std::lock_guard<std::mutex> lock(schedule_mu_);
  schedulable_ = std::move(running);
  schedulable_loaded_ = true;
}

void WorkerGateway::SetLeasedCounts(std::map<int64_t, int> leased) {
  std::lock_guard<std::mutex> lock(schedule_mu_);
  leased_by_campaign_ = std::move(leased);
}

absl::StatusOr<std::vector<int64_t>> WorkerGateway::CampaignsFor(const std::string& worker_id,
                                                                  const v1::Hardware& hardware) {
  // The connected workers' hardware (this one's included), to judge its
  // NCCL bus bandwidth against its peers'.
  std::set<std::string> connected;
  {
    const int64_t now = clock_->NowUnixMs();
    std::lock_guard<std::mutex> lock(heard_mu_);
    for (const auto& [id, at] : last_heartbeat_ms_)
      if (id == worker_id || now - at < 3 * heartbeat_ms_ + 1000) connected.insert(id);
  }
  std::unique_lock<std::mutex> lock(schedule_mu_);
  if (!schedulable_loaded_) {
    lock.unlock();
    auto campaigns = store_->ListCampaignSummaries();  // the settings, not the files
    if (!campaigns.ok()) return campaigns.status();
    RefreshSchedulable(*campaigns);
    lock.lock();
  }
  std::vector<v1::Hardware> peers;
  for (const auto& [id, hw] : worker_hardware_)
    if (connected.count(id)) peers.push_back(hw);
  const NcclHealth health = JudgeNcclHealth(hardware, peers);
  std::vector<int64_t> order =
      CampaignOrder(schedulable_, leased_by_campaign_, hardware, last_served_);
  if (health.healthy) return order;
  std::vector<int64_t> fit;
  for (int64_t id : order)
    for (const auto& c : schedulable_)
      if (c.id == id && MayTakeTrainingJob(health, c.nproc)) fit.push_back(id);
  return fit;
}

absl::StatusOr<std::optional<v1::Job>> WorkerGateway::AcquireJob(const std::string& worker_id,
                                                                 int wait_ms) {
  // Read from the store only for a worker not seen since this coordinator started.
  auto hardware = FindOrLoad(
      schedule_mu_, worker_hardware_, worker_id, [&]() -> absl::StatusOr<v1::Hardware> {
        auto worker = store_->GetWorker(worker_id);
        if (!worker.ok()) return worker.status();
        if (!worker->has_value())
          return absl::NotFoundError(
              absl::StrCat("unknown worker ", worker_id, "; register first"));
        return (*worker)->hardware();
      });
  if (!hardware.ok()) return hardware.status();
  Heard(worker_id, clock_->NowUnixMs());
  const Wakeup::Deadline deadline = Wakeup::In(std::clamp(wait_ms, 0, 30'000));
  while (true) {
    const uint64_t seen = wakeup_->generation();
    const bool allow_avoided = !OtherWorkerConnected(worker_id);
    auto order = CampaignsFor(worker_id, *hardware);
    if (!order.ok()) return order.status();
    // The fairest campaign this worker can run that has a job queued.
    std::optional<v1::Job> job;
    auto lease = [&]() -> absl::Status {
      job.reset();
      const int64_t now = clock_->NowUnixMs();
      for (int64_t campaign_id : *order) {
        auto got = store_->AcquireJob(worker_id, now, lease_ms_, allow_avoided, campaign_id);
        if (!got.ok()) return got.status();
        if (got->has_value()) {
          job = std::move(*got);
          break;
        }
      }
      return absl::OkStatus();
    };
    if (!order->empty())
      if (absl::Status s = group_commit_.Run(lease); !s.ok()) return s;
    if (job.has_value()) {
      {
        std::lock_guard<std::mutex> lock(schedule_mu_);
        leased_by_campaign_[job->campaign_id()] += 1;
        last_served_[job->campaign_id()] = ++leases_;
      }
      auto full = Fill(*std::move(job), *hardware, worker_id);
      if (!full.ok()) return full.status();
      return std::optional<v1::Job>(*std::move(full));
    }
    if (!wakeup_->WaitUntil(deadline, seen, /*poll_ms=*/500)) break;
  }
  return std::optional<v1::Job>();
}

absl::StatusOr<v1::Job> WorkerGateway::Fill(v1::Job job, const v1::Hardware& hardware,
                                            const std::string& worker_id) {
  auto spec = FindOrLoad(schedule_mu_, specs_, job.campaign_id(),
                         [&]() -> absl::StatusOr<std::shared_ptr<const v1::CampaignSpec>> {
                           auto campaign = store_->GetCampaign(job.campaign_id());
                           if (!campaign.ok()) return campaign.status();
                           return std::make_shared<const v1::CampaignSpec>(campaign->spec());
                         });
  if (!spec.ok()) return spec.status();
  auto solution = FindOrLoad(
      schedule_mu_, solutions_, job.candidate_id(),
      [&]() -> absl::StatusOr<std::shared_ptr<const v1::Solution>> {
        auto candidate = store_->GetCandidate(job.candidate_id());
        if (!candidate.ok()) return candidate.status();
        return std::make_shared<const v1::Solution>(candidate->solution());
      },
      /*bound=*/4096);
  if (!solution.ok()) return solution.status();
  *job.mutable_problem() = (*spec)->problem();
  *job.mutable_solution() = **solution;
  *job.mutable_harness() = (*spec)->harness();
  job.set_device((*spec)->device());
  // Workers may be upgraded after the coordinator (docs/operations.md).
  spec::AddLegacyWords(&job);
  job.set_sleep_ms((*spec)->task() == v1::TASK_SLEEP ? (*spec)->sleep_ms() : 0);
  if (spec::IsTraining((*spec)->task())) {
    // A training run: the job's seed is its training seed; no T_b, tiers or
    // kernel harness settings apply (docs/training.md, "Campaigns").
    job.set_task((*spec)->task());
    *job.mutable_training() = (*spec)->training();
    return job;
  }
  // The same T_b for every job of a workload on this hardware, once frozen;
  // replays included, so candidate and incumbent replays compare. (The job
  // is leased already: a store error here only costs it its baselines, and
  // the harness times T_b itself.)
  auto baselines = baselines_->ForJob(job.campaign_id(), **spec, hardware, worker_id);
  if (baselines.ok())
    for (auto& b : *baselines) *job.add_baselines() = std::move(b);
  if (job.kind() == v1::JOB_REPLAY) {
    const v1::VerificationPolicy& policy = (*spec)->verification();
    job.set_adversarial(spec::TierEnabled(policy, spec::kTierAdversarial));
    job.set_independent_timing(spec::TierEnabled(policy, spec::kTierIndependentTiming));
  }
  return job;
}

absl::StatusOr<v1::CompleteJobResponse> WorkerGateway::CompleteJob(
    const v1::CompleteJobRequest& request) {
  v1::CompleteJobResponse response;
  absl::StatusOr<v1::Job> job;
  v1::Evaluation evaluation;
  absl::StatusOr<int64_t> id;
  absl::Status committed = group_commit_.Run([&]() -> absl::Status {
    job = store_->GetJob(request.job_id());
    if (!job.ok()) return job.status();
    evaluation = request.evaluation();
    evaluation.set_job_id(job->id());
    evaluation.set_campaign_id(job->campaign_id());
    evaluation.set_candidate_id(job->candidate_id());
    evaluation.set_worker_id(request.worker_id());
    evaluation.set_kind(job->kind());
    evaluation.set_created_unix_ms(clock_->NowUnixMs());
    if (evaluation.outcome() != v1::OUTCOME_OK) evaluation.set_score(0);
    id = store_->CompleteJob(job->id(), request.worker_id(), evaluation);
    return id.status();
  });
  if (!job.ok()) return job.status();
  if (!committed.ok() && id.ok()) id = committed;  // the batch failed after the call
  if (absl::IsAlreadyExists(id.status())) {
    // Done already. Our own report again (a retry) was applied once; a report
    // from a worker whose lease lapsed before another worker completed the
    // job is refused, so that worker learns its result was not used.
    auto done = store_->GetEvaluationForJob(job->id());
    if (!done.ok()) return done.status();
    if (done->has_value() && (*done)->worker_id() != request.worker_id()) {
      response.set_accepted(false);
      response.set_message(absl::StrCat("job ", job->id(), " was completed by ",
                                        (*done)->worker_id(), " after this worker's lease lapsed"));
      return response;
    }
    response.set_accepted(true);
    response.set_message("already recorded");
    return response;
  }
  if (absl::IsFailedPrecondition(id.status())) {
    response.set_accepted(false);
    response.set_message(std::string(id.status().message()));
    return response;
  }
  if (!id.ok()) return id.status();
  {
    std::lock_guard<std::mutex> lock(schedule_mu_);
    auto& leased = leased_by_campaign_[job->campaign_id()];
    if (leased > 0) --leased;
  }
  // Its next jobs get the baselines of the software its harness has.
  if (!evaluation.baseline_software().empty())
    baselines_->NoteSoftware(request.worker_id(), evaluation.baseline_software());
  metrics_->EvaluationReported(evaluation.outcome(), job->kind());
  response.set_accepted(true);
  wakeup_->Notify();
  return response;
}

absl::StatusOr<std::vector<v1::Job>> WorkerGateway::ExpireLeases() {
  auto changed = store_->ExpireLeases(clock_->NowUnixMs(), max_attempts_);
  if (!changed.ok()) return changed.status();
  std::vector<v1::Job> failed;
  for (const auto& job : *changed) {
    metrics_->LeaseExpired();
    if (job.state() == v1::JOB_QUEUED) {
      events_->Emit(job.campaign_id(),
                    absl::StrCat("job ", job.id(), " (", JobKindName(job.kind()), " of #",
                                 job.candidate_id(), ") lease lapsed; requeued"));
      continue;
    }
    // Attempt cap reached: the job failed.
    events_->Emit(job.campaign_id(), absl::StrCat("job ", job.id(), " failed after ",
                                                  job.attempts(), " lapsed leases"));
    failed.push_back(job);
  }
  return failed;
}

}  // namespace ratchet::coordinator
