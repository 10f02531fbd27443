#include "coordinator/coordinator.h"

#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "coordinator/stored_baselines.h"
#include "coordinator/proposers/knob_space.h"
#include "nlohmann/json.hpp"
#include "coordinator/proposers/llm/llm_proposer.h"
#include "coordinator/proposers/proposer.h"
#include "spec/defaults.h"
#include "spec/validation.h"
#include "common/clock.h"
#include "common/names.h"
#include "common/noise_floor.h"

namespace ratchet::coordinator {
namespace {

constexpr size_t kMaxEvents = 10'000;
constexpr int kMaxProposalRetries = 30;  // duplicates before a thread gives up a turn

std::string ShortScore(double s) { return absl::StrFormat("%.4f", s); }

// What lessons are filed under: definition.json's "op_type", so that other
// shapes of the same operation share them; the problem name without one.
std::string OpType(const v1::Problem& problem) {
  auto doc = nlohmann::json::parse(problem.definition_json(), nullptr, false);
  if (doc.is_object() && doc.contains("op_type") && doc["op_type"].is_string() &&
      !doc["op_type"].get<std::string>().empty())
    return doc["op_type"].get<std::string>();
  return problem.name();
}

// The lessons a campaign's proposers read: those of its op type, its own or,
// with `experience: shared`, every campaign's. None from a store that keeps
// no lessons.
absl::StatusOr<std::vector<v1::Lesson>> ReadExperience(store::Store* store,
                                                       const v1::Campaign& campaign) {
  const v1::CampaignSpec& spec = campaign.spec();
  auto lessons = store->ListLessons(OpType(spec.problem()),
                                    spec.experience() == "shared" ? 0 : campaign.id());
  if (absl::IsUnimplemented(lessons.status())) return std::vector<v1::Lesson>();
  return lessons;
}

// When a campaign begins proposing: counts into it the other campaigns'
// lessons its proposers will read and returns the event that says so (or
// says what `experience: campaign` leaves unread).
absl::StatusOr<std::string> NoteExperience(store::Store* store, v1::Campaign* campaign) {
  const std::string op_type = OpType(campaign->spec().problem());
  auto all = store->ListLessons(op_type, 0);
  if (absl::IsUnimplemented(all.status())) all = std::vector<v1::Lesson>();
  if (!all.ok()) return all.status();
  int others = 0;
  std::set<int64_t> sources;
  for (const auto& l : *all) {
    if (l.campaign_id() == campaign->id()) continue;
    ++others;
    sources.insert(l.campaign_id());
  }
  const std::string what = absl::StrCat(others, " lessons of op type ", op_type, " from ",
                                        sources.size(), " other campaign",
                                        sources.size() == 1 ? "" : "s");
  if (campaign->spec().experience() == "shared") {
    campaign->set_lessons_from_other_campaigns(others);
    return absl::StrCat("experience: shared, reading ", what);
  }
  campaign->set_lessons_from_other_campaigns(0);
  return absl::StrCat("experience: this campaign's own lessons only; ", what,
                      " not read (`experience: shared` reads them)");
}

// The cached value for `key`; on a miss, loaded outside the lock and kept. A
// cache at `bound` entries is emptied first (a bound, not an LRU: a miss only
// costs a store read).
template <typename Key, typename Value, typename Load>
absl::StatusOr<Value> FindOrLoad(std::mutex& mu, std::map<Key, Value>& cache, const Key& key,
                                 Load load, size_t bound = SIZE_MAX) {
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
  }
  absl::StatusOr<Value> loaded = load();
  if (!loaded.ok()) return loaded;
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= bound) cache.clear();
  cache[key] = *loaded;
  return loaded;
}

// Other threads' incumbents that have a score, best first: crossover donors,
// inspiration and merge partners for a thread whose incumbent is
// `incumbent_id`.
std::vector<v1::Candidate> OtherIncumbents(const std::vector<v1::ResearchThread>& threads,
                                           int64_t thread_id, int64_t incumbent_id,
                                           const std::vector<v1::Candidate>& history) {
  std::map<int64_t, const v1::Candidate*> by_id;
  for (const auto& c : history) by_id[c.id()] = &c;
  std::vector<v1::Candidate> incumbents;
  for (const auto& t : threads) {
    if (t.id() == thread_id || t.incumbent_candidate_id() == incumbent_id) continue;
    auto it = by_id.find(t.incumbent_candidate_id());
    if (it != by_id.end() && it->second->score() >= 0) incumbents.push_back(*it->second);
  }
  std::sort(incumbents.begin(), incumbents.end(),
            [](const auto& a, const auto& b) { return a.score() > b.score(); });
  return incumbents;
}

bool IsOpen(const v1::Job& job) {
  return job.state() == v1::JOB_QUEUED || job.state() == v1::JOB_LEASED;
}

std::string JobKindName(v1::JobKind kind) {
  return kind == v1::JOB_REPLAY ? "replay" : "evaluate";
}

}  // namespace

Coordinator::Coordinator(store::Store* store, CoordinatorOptions options,
                         std::shared_ptr<prometheus::Registry> registry)
    : store_(store),
      options_(options),
      seed_rng_(std::random_device{}()),
      registry_(std::move(registry)),
      group_commit_(store, options.group_commit) {
  commit_batches_ = &prometheus::BuildCounter()
                         .Name("ratchet_commit_batches_total")
                         .Help("Transactions that committed worker state transitions")
                         .Register(*registry_)
                         .Add({});
  commit_transitions_ = &prometheus::BuildCounter()
                             .Name("ratchet_commit_transitions_total")
                             .Help("Worker state transitions (acquire, complete, heartbeat) "
                                   "committed; divided by batches: the group-commit batch size")
                             .Register(*registry_)
                             .Add({});
  jobs_gauge_ = &prometheus::BuildGauge()
                     .Name("ratchet_jobs")
                     .Help("Jobs by state and kind")
                     .Register(*registry_);
  evaluations_counter_ = &prometheus::BuildCounter()
                              .Name("ratchet_evaluations_total")
                              .Help("Evaluations reported by workers, by outcome and kind")
                              .Register(*registry_);
  verdicts_counter_ = &prometheus::BuildCounter()
                           .Name("ratchet_verdicts_total")
                           .Help("Verifier verdicts by outcome and reason")
                           .Register(*registry_);
  best_score_gauge_ = &prometheus::BuildGauge()
                           .Name("ratchet_campaign_best_score")
                           .Help("Best verified score per campaign")
                           .Register(*registry_);
  workers_connected_ = &prometheus::BuildGauge()
                            .Name("ratchet_workers_connected")
                            .Help("Workers that heartbeated within a lease period")
                            .Register(*registry_)
                            .Add({});
  lease_expiries_ = &prometheus::BuildCounter()
                         .Name("ratchet_lease_expiries_total")
                         .Help("Job leases that lapsed without a report")
                         .Register(*registry_)
                         .Add({});
  llm_tokens_counter_ = &prometheus::BuildCounter()
                             .Name("ratchet_llm_tokens_total")
                             .Help("Tokens the llm proposer used, by campaign and kind")
                             .Register(*registry_);
  llm_cost_counter_ = &prometheus::BuildCounter()
                           .Name("ratchet_llm_cost_usd_total")
                           .Help("What the llm proposer's requests cost, by campaign")
                           .Register(*registry_);
  llm_answers_counter_ = &prometheus::BuildCounter()
                              .Name("ratchet_llm_answers_total")
                              .Help("llm proposals by result (candidate, malformed, "
                                    "duplicate, failed)")
                              .Register(*registry_);
}

Coordinator::~Coordinator() { Stop(); }

void Coordinator::Start() {
  loop_ = std::thread([this] { Loop(); });
}

void Coordinator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (loop_.joinable()) loop_.join();
}

void Coordinator::Wake() { wake_.notify_all(); }

uint64_t Coordinator::FreshSeed() {
  std::lock_guard<std::mutex> lock(mu_);
  return seed_rng_() >> 1;  // positive when read back as a signed integer
}

void Coordinator::Emit(int64_t campaign_id, const std::string& text) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back({next_event_seq_++, campaign_id, NowUnixMs(), text});
    if (events_.size() > kMaxEvents) events_.pop_front();
  }
  std::fprintf(stderr, "[campaign %lld] %s\n", static_cast<long long>(campaign_id),
               text.c_str());
  wake_.notify_all();
}

std::vector<CampaignEventRecord> Coordinator::WaitForEvents(int64_t campaign_id,
                                                            int64_t* cursor, int wait_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  auto collect = [&] {
    std::vector<CampaignEventRecord> out;
    for (const auto& e : events_)
      if (e.seq > *cursor && e.campaign_id == campaign_id) out.push_back(e);
    return out;
  };
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  std::vector<CampaignEventRecord> out = collect();
  while (out.empty() && !stopping_) {
    if (wake_.wait_until(lock, deadline) == std::cv_status::timeout) break;
    out = collect();
  }
  // Skip past events of other campaigns too, so the scan stays short.
  if (!events_.empty()) *cursor = std::max(*cursor, events_.back().seq);
  return out;
}

// ---------------------------------------------------------------------------
// Research loop.

void Coordinator::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stopping_) return;
      wake_.wait_for(lock, std::chrono::milliseconds(options_.tick_ms));
      if (stopping_) return;
    }
    absl::Status status = Tick();
    if (!status.ok())
      std::fprintf(stderr, "coordinator: research loop: %s\n", status.ToString().c_str());
  }
}

absl::Status Coordinator::Tick() {
  std::lock_guard<std::mutex> research(research_mu_);
  if (auto s = ExpireLeases(); !s.ok()) return s;
  auto unprocessed = store_->ListUnprocessedEvaluations();
  if (!unprocessed.ok()) return unprocessed.status();
  auto campaigns = store_->ListCampaigns();
  if (!campaigns.ok()) return campaigns.status();
  RefreshSchedulable(*campaigns);
  std::set<int64_t> sleep_campaigns;
  for (const auto& campaign : *campaigns)
    if (campaign.spec().task() == "sleep") sleep_campaigns.insert(campaign.id());
  std::vector<v1::Evaluation> sleep_evaluations;
  for (const auto& evaluation : *unprocessed) {
    if (sleep_campaigns.count(evaluation.campaign_id())) {
      sleep_evaluations.push_back(evaluation);
      continue;
    }
    if (auto s = ProcessEvaluation(evaluation); !s.ok()) return s;
  }
  if (auto s = ProcessSleepEvaluations(sleep_evaluations); !s.ok()) return s;
  for (const auto& campaign : *campaigns) {
    if (campaign.state() != v1::CAMPAIGN_RUNNING) {
      proposal_pool_.Forget(campaign.id());  // answers no longer wanted
      continue;
    }
    if (campaign.spec().task() == "sleep") {
      if (auto s = AdvanceSleepCampaign(campaign); !s.ok()) return s;
      continue;
    }
    if (auto s = AdvanceCampaign(campaign.id()); !s.ok()) return s;
  }
  // Gauges rescan every job; once a second is fresh enough for a scrape.
  const int64_t now = NowUnixMs();
  if (now - gauges_updated_ms_ >= 1000) {
    gauges_updated_ms_ = now;
    UpdateGauges();
  }
  return absl::OkStatus();
}

absl::Status Coordinator::ExpireLeases() {
  auto changed = store_->ExpireLeases(NowUnixMs(), options_.max_attempts);
  if (!changed.ok()) return changed.status();
  for (const auto& job : *changed) {
    lease_expiries_->Increment();
    if (job.state() == v1::JOB_QUEUED) {
      Emit(job.campaign_id(), absl::StrCat("job ", job.id(), " (", JobKindName(job.kind()),
                                           " of #", job.candidate_id(),
                                           ") lease lapsed; requeued"));
      continue;
    }
    // Attempt cap reached: the job failed; an evaluation counts as spent.
    Emit(job.campaign_id(), absl::StrCat("job ", job.id(), " failed after ", job.attempts(),
                                         " lapsed leases"));
    if (job.kind() != v1::JOB_EVALUATE) continue;
    absl::Status s = store_->Transaction([&]() -> absl::Status {
      auto campaign = store_->GetCampaign(job.campaign_id());
      if (!campaign.ok()) return campaign.status();
      auto candidate = store_->GetCandidate(job.candidate_id());
      if (!candidate.ok()) return candidate.status();
      candidate->set_status("failed");
      candidate->set_score(-1);
      if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
      campaign->set_evaluations(campaign->evaluations() + 1);
      (*campaign->mutable_outcomes())["lease_lapsed"] += 1;
      if (campaign->baseline_candidate_id() == candidate->id()) {
        campaign->set_state(v1::CAMPAIGN_FAILED);
        campaign->set_message("the baseline's job failed: its leases lapsed repeatedly");
        campaign->set_finished_unix_ms(NowUnixMs());
      }
      return store_->UpdateCampaign(*campaign);
    });
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Coordinator::ProcessEvaluation(const v1::Evaluation& evaluation) {
  std::string event;
  std::string experience_event;  // once, when the baseline lets proposing begin
  std::string baseline_event;    // when stored baselines froze
  std::string baselines_changed;  // their cache key, when measurements were added
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    baseline_event.clear();
    baselines_changed.clear();
    auto campaign = store_->GetCampaign(evaluation.campaign_id());
    if (!campaign.ok()) return campaign.status();
    auto candidate = store_->GetCandidate(evaluation.candidate_id());
    if (!candidate.ok()) return candidate.status();
    const std::string outcome = OutcomeName(evaluation.outcome());
    const bool ok = evaluation.outcome() == v1::OUTCOME_OK;
    // Every job's time counts against the GPU-seconds budget, replays too:
    // verification spends the same machines.
    campaign->set_gpu_seconds(campaign->gpu_seconds() + std::max(0.0, evaluation.wall_seconds()));
    if (evaluation.kind() == v1::JOB_REPLAY) {
      event = absl::StrCat("replay of #", candidate->id(), " on ", evaluation.worker_id(),
                           ": ", outcome, ok ? " " + ShortScore(evaluation.score()) : "");
      if (auto s = store_->UpdateCampaign(*campaign); !s.ok()) return s;
      return store_->MarkEvaluationProcessed(evaluation.id());
    }
    // Only evaluations measure baselines: a replay runs against the stored
    // one and never adds to it.
    if (ok)
      if (auto s = RecordBaselines(*campaign, evaluation, &baseline_event, &baselines_changed);
          !s.ok())
        return s;
    campaign->set_evaluations(campaign->evaluations() + 1);
    (*campaign->mutable_outcomes())[outcome] += 1;
    candidate->set_score(ok ? evaluation.score() : -1);
    candidate->set_status(ok ? "evaluated" : "failed");
    auto threads = store_->ListThreads(campaign->id());
    if (!threads.ok()) return threads.status();

    if (candidate->id() == campaign->baseline_candidate_id()) {
      if (!ok) {
        campaign->set_state(v1::CAMPAIGN_FAILED);
        campaign->set_message(absl::StrCat("the baseline did not evaluate: ", outcome, ": ",
                                           evaluation.message().substr(0, 2000)));
        campaign->set_finished_unix_ms(NowUnixMs());
        event = campaign->message();
      } else {
        candidate->set_status("baseline");
        campaign->set_baseline_score(evaluation.score());
        campaign->set_best_candidate_id(candidate->id());
        campaign->set_best_score(evaluation.score());
        campaign->set_best_verified(false);
        for (auto& thread : *threads) {
          thread.set_incumbent_candidate_id(candidate->id());
          thread.set_incumbent_score(evaluation.score());
          if (auto s = store_->UpdateThread(thread); !s.ok()) return s;
        }
        event = absl::StrCat("baseline #", candidate->id(), " evaluated on ",
                             evaluation.worker_id(), ": SOL score ",
                             ShortScore(evaluation.score()));
        auto noted = NoteExperience(store_, &*campaign);
        if (!noted.ok()) return noted.status();
        experience_event = *std::move(noted);
      }
    } else {
      v1::ResearchThread* thread = nullptr;
      for (auto& t : *threads)
        if (t.id() == candidate->thread_id()) thread = &t;
      if (thread == nullptr)
        return absl::InternalError(absl::StrCat("candidate ", candidate->id(),
                                                " names a missing thread"));
      thread->set_evaluations(thread->evaluations() + 1);
      event = absl::StrCat("t", thread->index(), " #", candidate->id(), " [",
                           candidate->description(), "]: ", outcome);
      if (ok) {
        double gain = thread->incumbent_score() > 0
                          ? evaluation.score() / thread->incumbent_score() - 1.0
                          : 1.0;
        absl::StrAppend(&event, " ", ShortScore(evaluation.score()),
                        absl::StrFormat(" (%+.1f%% vs incumbent)", 100.0 * gain));
        if (gain > campaign->spec().verification().min_gain()) {
          v1::Verification v;
          v.set_campaign_id(campaign->id());
          v.set_candidate_id(candidate->id());
          v.set_incumbent_candidate_id(thread->incumbent_candidate_id());
          v.set_thread_id(thread->id());
          v.set_claimed_score(evaluation.score());
          v.set_incumbent_score(thread->incumbent_score());
          v.set_claim_worker_id(evaluation.worker_id());
          v.set_outcome(v1::VERDICT_PENDING);
          v.set_created_unix_ms(NowUnixMs());
          *v.mutable_policy() = campaign->spec().verification();
          auto vid = store_->CreateVerification(v);
          if (!vid.ok()) return vid.status();
          candidate->set_status("verifying");
          absl::StrAppend(&event, " -> verifying (claim ", *vid, ")");
        }
      } else if (!evaluation.message().empty()) {
        std::string first_line = evaluation.message().substr(0, evaluation.message().find('\n'));
        absl::StrAppend(&event, ": ", first_line.substr(0, 160));
      }
      // A claim's lesson waits for its verdict; anything else is learned now.
      if (candidate->status() != "verifying")
        if (auto s = RecordLessons(*campaign, *candidate, ok ? evaluation.score() : -1, outcome,
                                   "");
            !s.ok())
          return s;
      if (auto s = store_->UpdateThread(*thread); !s.ok()) return s;
    }
    if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
    if (auto s = store_->UpdateCampaign(*campaign); !s.ok()) return s;
    return store_->MarkEvaluationProcessed(evaluation.id());
  });
  if (!s.ok()) return s;
  if (!baselines_changed.empty()) {
    // This coordinator's AcquireJob reads the committed state at once.
    std::lock_guard<std::mutex> lock(schedule_mu_);
    stored_baselines_.erase(baselines_changed);
  }
  if (!event.empty()) Emit(evaluation.campaign_id(), event);
  if (!baseline_event.empty()) Emit(evaluation.campaign_id(), baseline_event);
  if (!experience_event.empty()) Emit(evaluation.campaign_id(), experience_event);
  return absl::OkStatus();
}

absl::Status Coordinator::RecordBaselines(const v1::Campaign& campaign,
                                          const v1::Evaluation& evaluation, std::string* event,
                                          std::string* changed) {
  const v1::CampaignSpec& spec = campaign.spec();
  if (spec.task() != "kernel" || evaluation.kind() == v1::JOB_REPLAY ||
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
  const std::string hardware = HardwareKey((*worker)->hardware(), spec.device() == "cuda");
  const std::string problem_key = BaselineProblemKey(spec.problem());
  const std::vector<std::string> workload_keys = BaselineWorkloadKeys(spec.problem());
  auto stored = store_->ListBaselines(problem_key, hardware);
  if (absl::IsUnimplemented(stored.status())) return absl::OkStatus();
  if (!stored.ok()) return stored.status();
  const int64_t now = NowUnixMs();
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

absl::StatusOr<std::vector<v1::Baseline>> Coordinator::BaselinesForJob(
    int64_t campaign_id, const v1::CampaignSpec& spec, const v1::Hardware& hardware,
    const std::string& worker_id) {
  if (spec.task() != "kernel") return std::vector<v1::Baseline>();
  auto keys = FindOrLoad(schedule_mu_, baseline_keys_, campaign_id,
                         [&]() -> absl::StatusOr<std::shared_ptr<const BaselineKeys>> {
                           auto k = std::make_shared<BaselineKeys>();
                           k->problem = BaselineProblemKey(spec.problem());
                           k->workloads = BaselineWorkloadKeys(spec.problem());
                           return std::shared_ptr<const BaselineKeys>(std::move(k));
                         });
  if (!keys.ok()) return keys.status();
  const std::string hardware_key = HardwareKey(hardware, spec.device() == "cuda");
  const std::string cache_key = absl::StrCat((*keys)->problem, "|", hardware_key);
  constexpr int64_t kRereadMs = 5'000;  // another coordinator may have frozen some
  const int64_t now = NowUnixMs();
  std::shared_ptr<const StoredBaselines> stored;
  std::string software;
  {
    std::lock_guard<std::mutex> lock(schedule_mu_);
    auto it = stored_baselines_.find(cache_key);
    if (it != stored_baselines_.end() && now - it->second->loaded_ms < kRereadMs)
      stored = it->second;
    auto sw = worker_software_.find(worker_id);
    if (sw != worker_software_.end()) software = sw->second;
  }
  if (stored == nullptr) {
    auto list = store_->ListBaselines((*keys)->problem, hardware_key);
    if (absl::IsUnimplemented(list.status())) return std::vector<v1::Baseline>();
    if (!list.ok()) return list.status();
    auto fresh = std::make_shared<StoredBaselines>();
    fresh->baselines = *std::move(list);
    fresh->loaded_ms = now;
    stored = fresh;
    std::lock_guard<std::mutex> lock(schedule_mu_);
    if (stored_baselines_.size() >= 4096) stored_baselines_.clear();
    stored_baselines_[cache_key] = stored;
  }
  return PickBaselines(stored->baselines, (*keys)->workloads, software);
}

absl::Status Coordinator::AdvanceCampaign(int64_t campaign_id) {
  auto campaign = store_->GetCampaign(campaign_id);
  if (!campaign.ok()) return campaign.status();
  if (campaign->state() != v1::CAMPAIGN_RUNNING) return absl::OkStatus();
  if (campaign->baseline_score() < 0) return absl::OkStatus();  // baseline still running

  auto jobs = store_->ListJobs(campaign_id);
  if (!jobs.ok()) return jobs.status();
  auto verifications = store_->ListVerifications(campaign_id);
  if (!verifications.ok()) return verifications.status();
  int open_evaluations = 0;
  std::map<int64_t, int> open_by_candidate;
  for (const auto& job : *jobs)
    if (IsOpen(job) && job.kind() == v1::JOB_EVALUATE) {
      ++open_evaluations;
      ++open_by_candidate[job.candidate_id()];
    }
  // A job reported after this tick applied the evaluations is DONE above but
  // not yet in campaign->evaluations(): it is still in flight, or the budget
  // and the per-thread limit would be overspent (and the campaign could end
  // before applying it). Listed after the jobs, so none is missed; one
  // counted twice only delays a proposal to the next tick.
  auto unapplied = store_->ListUnprocessedEvaluations();
  if (!unapplied.ok()) return unapplied.status();
  for (const auto& e : *unapplied)
    if (e.campaign_id() == campaign_id && e.kind() == v1::JOB_EVALUATE) {
      ++open_evaluations;
      ++open_by_candidate[e.candidate_id()];
    }
  int pending_verifications = 0;
  for (const auto& v : *verifications)
    if (v.outcome() == v1::VERDICT_PENDING) ++pending_verifications;

  const auto& spec = campaign->spec();
  const int64_t now = NowUnixMs();
  // Time spent paused is not research time.
  const double elapsed_s =
      (now - campaign->created_unix_ms()) / 1000.0 - campaign->paused_seconds();
  const bool wall_spent = spec.budget().max_wall_seconds() > 0 &&
                          elapsed_s >= spec.budget().max_wall_seconds();
  const bool gpu_spent = spec.budget().max_gpu_seconds() > 0 &&
                         campaign->gpu_seconds() >= spec.budget().max_gpu_seconds();
  // Slow (llm) proposals answer on later ticks: what has arrived becomes
  // candidates now, and the requests still out count against the budget.
  const bool slow_proposer = spec.proposer() == "llm";
  std::string proposing_ended;  // why no more proposals will be made, if so
  bool proposing_failed = false;
  int open_proposals = 0;
  if (slow_proposer) {
    if (auto s = CollectProposals(*campaign, &open_evaluations, &open_by_candidate,
                                  &proposing_ended, &proposing_failed);
        !s.ok())
      return s;
    if (wall_spent || gpu_spent) proposal_pool_.Forget(campaign_id);
    open_proposals = proposal_pool_.InFlight(campaign_id);
  }
  bool evaluations_spent = campaign->evaluations() + open_evaluations + open_proposals >=
                           spec.budget().max_evaluations();

  bool exhausted = false;
  if (!wall_spent && !gpu_spent && !evaluations_spent && proposing_ended.empty()) {
    bool any_proposed = open_proposals > 0;
    auto threads = store_->ListThreads(campaign_id);
    if (!threads.ok()) return threads.status();
    auto history = store_->ListCandidates(campaign_id);
    if (!history.ok()) return history.status();
    std::map<int64_t, int> open_by_thread;
    for (const auto& c : *history)
      if (open_by_candidate.count(c.id())) open_by_thread[c.thread_id()] += 1;
    const int per_thread = std::max(1, spec.in_flight_per_thread());
    // Round-robin over threads so that every thread gets its turn at the budget.
    bool progress = true;
    while (progress && !evaluations_spent) {
      progress = false;
      for (auto& thread : *threads) {
        if (campaign->evaluations() + open_evaluations + open_proposals >=
            spec.budget().max_evaluations()) {
          evaluations_spent = true;
          break;
        }
        if (slow_proposer) {
          if (open_by_thread[thread.id()] + proposal_pool_.InFlight(campaign_id, thread.id()) >=
                  per_thread ||
              open_proposals >= std::max(1, spec.llm().max_concurrency()))
            continue;
          if (auto s = StartProposal(*campaign, thread, *history); !s.ok()) return s;
          any_proposed = true;
          ++open_proposals;
          progress = true;
          continue;
        }
        if (open_by_thread[thread.id()] >= per_thread) continue;
        bool proposed = false;
        if (auto s = ProposeForThread(*campaign, thread, *history, &proposed); !s.ok())
          return s;
        if (proposed) {
          any_proposed = true;
          ++open_evaluations;
          ++open_by_thread[thread.id()];
          progress = true;
          auto refreshed = store_->ListCandidates(campaign_id);
          if (!refreshed.ok()) return refreshed.status();
          *history = std::move(*refreshed);
        }
      }
    }
    if (!evaluations_spent) {
      // Every thread's neighbourhood is exhausted and nothing is in flight:
      // no proposal can ever be made again, so the campaign ends here.
      if (any_proposed || open_evaluations > 0 || pending_verifications > 0)
        return absl::OkStatus();
      exhausted = true;
    }
  }

  // Past the wall budget by a grace period: stop waiting for stragglers.
  const bool overdue = wall_spent && elapsed_s >= spec.budget().max_wall_seconds() * 1.25 + 30;
  if (overdue && (open_evaluations > 0 || pending_verifications > 0)) {
    absl::Status s = store_->Transaction([&]() -> absl::Status {
      if (auto s = store_->FailOpenJobs(campaign_id); !s.ok()) return s;
      for (auto v : *verifications) {
        if (v.outcome() != v1::VERDICT_PENDING) continue;
        // Not replayed to the end: no evidence either way, like a replay
        // that could not run.
        v.set_outcome(v1::VERDICT_REJECTED_FLAKY);
        v.set_reason("budget-ended");
        v.set_detail("the campaign's wall-clock budget ended before replays finished");
        v.mutable_evidence()->set_failed_check("budget-ended");
        v.mutable_evidence()->set_check_detail(v.detail());
        verdicts_counter_->Add({{"outcome", VerdictName(v.outcome())}, {"reason", v.reason()}})
            .Increment();
        v.set_decided_unix_ms(NowUnixMs());
        if (auto s = store_->UpdateVerification(v); !s.ok()) return s;
        auto candidate = store_->GetCandidate(v.candidate_id());
        if (!candidate.ok()) return candidate.status();
        candidate->set_status("rejected");
        if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
    if (!s.ok()) return s;
    Emit(campaign_id, "wall-clock budget overrun: open jobs and claims abandoned");
    open_evaluations = 0;
    pending_verifications = 0;
  }
  if (open_evaluations > 0 || pending_verifications > 0 || open_proposals > 0)
    return absl::OkStatus();

  // Budget spent and the work drained: the campaign is done.
  campaign->set_state(proposing_failed ? v1::CAMPAIGN_FAILED : v1::CAMPAIGN_FINISHED);
  campaign->set_finished_unix_ms(now);
  campaign->set_message(!proposing_ended.empty() ? proposing_ended
                        : exhausted ? "search space exhausted: every reachable candidate was tried"
                        : wall_spent ? "wall-clock budget reached"
                        : gpu_spent  ? absl::StrFormat("GPU-seconds budget reached (%.1f s of %.1f s)",
                                                       campaign->gpu_seconds(),
                                                       spec.budget().max_gpu_seconds())
                                     : absl::StrCat("evaluation budget reached (",
                                                    campaign->evaluations(), ")"));
  // Replays that no longer matter (none should be open) are failed too.
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    if (auto s = store_->FailOpenJobs(campaign_id); !s.ok()) return s;
    return store_->UpdateCampaign(*campaign);
  });
  if (!s.ok()) return s;
  Emit(campaign_id, absl::StrCat("campaign finished: ", campaign->message(), "; best ",
                                 ShortScore(campaign->best_score()), " (#",
                                 campaign->best_candidate_id(),
                                 campaign->best_verified() ? ", verified" : ", baseline",
                                 ") vs baseline ", ShortScore(campaign->baseline_score())));
  return absl::OkStatus();
}

absl::Status Coordinator::ProposeForThread(v1::Campaign& campaign, v1::ResearchThread& thread,
                                           const std::vector<v1::Candidate>& history,
                                           bool* proposed) {
  *proposed = false;
  const v1::CampaignSpec& spec = campaign.spec();
  auto incumbent = store_->GetCandidate(thread.incumbent_candidate_id());
  if (!incumbent.ok()) return incumbent.status();
  auto space = proposers::ParseKnobSpace(incumbent->solution());
  if (!space.ok()) return space.status();
  auto proposer = proposers::MakeProposer(spec);
  if (!proposer.ok()) return proposer.status();
  // Seeded from the campaign, the thread and how far it has got, so that a
  // campaign's sequence of proposals is reproducible.
  std::mt19937_64 rng(spec.seed() * 1000003ULL + thread.index() * 7919ULL + history.size());

  // The thread's archive: what it evaluated and nobody rejected. evolve
  // starts from a tournament winner of it, not always from the incumbent, so
  // a thread can leave a local optimum through a near miss.
  std::vector<const v1::Candidate*> archive;
  int thread_proposals = 0;
  for (const auto& c : history) {
    if (c.thread_id() != thread.id()) continue;
    ++thread_proposals;
    if (c.score() >= 0 && (c.status() == "evaluated" || c.status() == "accepted" ||
                           c.status() == "verifying"))
      archive.push_back(&c);
  }
  auto threads = store_->ListThreads(campaign.id());
  if (!threads.ok()) return threads.status();
  const std::vector<v1::Candidate> inspirations =
      OtherIncumbents(*threads, thread.id(), incumbent->id(), history);
  auto lessons = ReadExperience(store_, campaign);
  if (!lessons.ok()) return lessons.status();

  for (int attempt = 0; attempt < kMaxProposalRetries; ++attempt) {
    const v1::Candidate* parent = &*incumbent;
    if (spec.proposer() == "evolve")
      parent = proposers::SelectParent(archive, parent, spec.tournament_size(), &rng);
    proposers::ProposalContext context;
    context.parent = parent;
    context.space = &*space;
    context.history = &history;
    context.thread_index = thread.index();
    context.rng = &rng;
    context.inspirations = &inspirations;
    context.thread_proposals = thread_proposals;
    context.merge_every = spec.merge_every();
    context.lessons = &*lessons;
    auto proposal = (*proposer)->Propose(context);
    // Nothing new left (grid, replay): the thread has no turn to take.
    if (absl::IsOutOfRange(proposal.status())) return absl::OkStatus();
    if (!proposal.ok()) return proposal.status();
    const int64_t merged_with = proposal->merged_with;
    auto id = AddCandidate(campaign, thread.id(), parent->id(), *std::move(proposal));
    if (!id.ok()) return id.status();
    if (*id == 0) continue;  // never evaluate the same candidate twice
    *proposed = true;
    if (merged_with != 0) {
      campaign.set_merges(campaign.merges() + 1);
      if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;
      Emit(campaign.id(), absl::StrCat("t", thread.index(), " #", *id, ": merge of #",
                                       parent->id(), " and #", merged_with));
    }
    ++thread_proposals;
    if (spec.migrate_every() > 0 && thread_proposals % spec.migrate_every() == 0)
      return Migrate(campaign, thread);
    return absl::OkStatus();
  }
  return absl::OkStatus();  // the neighbourhood is exhausted for now
}

absl::Status Coordinator::RecordLessons(v1::Campaign& campaign, const v1::Candidate& candidate,
                                        double score, const std::string& outcome,
                                        const std::string& verdict) {
  if (candidate.parent_id() == 0) return absl::OkStatus();
  auto parent = store_->GetCandidate(candidate.parent_id());
  if (!parent.ok()) return parent.status();
  v1::Lesson lesson;
  lesson.set_campaign_id(campaign.id());
  lesson.set_candidate_id(candidate.id());
  lesson.set_problem(campaign.spec().problem().name());
  lesson.set_op_type(OpType(campaign.spec().problem()));
  lesson.set_hardware(campaign.spec().device());
  lesson.set_outcome(outcome);
  lesson.set_verdict(verdict);
  lesson.set_created_unix_ms(NowUnixMs());
  // A failure (or a hack) is a lesson too: the worst effect there is.
  lesson.set_effect(score < 0 || parent->score() <= 0 ? -1.0 : score / parent->score() - 1.0);
  std::vector<v1::Lesson> lessons;
  for (const auto& [name, value] : candidate.solution().knobs()) {
    auto was = parent->solution().knobs().find(name);
    if (was != parent->solution().knobs().end() && was->second == value) continue;
    v1::Lesson l = lesson;
    l.set_knob(name);
    l.set_from_value(was == parent->solution().knobs().end() ? "" : was->second);
    l.set_to_value(value);
    lessons.push_back(std::move(l));
  }
  bool code_changed = false;
  for (const auto& [path, content] : candidate.solution().files()) {
    auto was = parent->solution().files().find(path);
    if (was == parent->solution().files().end() || was->second != content) code_changed = true;
  }
  if (code_changed || lessons.empty()) {
    lesson.set_idea(candidate.description().substr(0, 500));
    lessons.push_back(lesson);
  }
  for (const auto& l : lessons) {
    auto id = store_->AddLesson(l);
    if (absl::IsUnimplemented(id.status())) return absl::OkStatus();
    if (!id.ok()) return id.status();
  }
  campaign.set_lessons(campaign.lessons() + static_cast<int>(lessons.size()));
  return store_->UpdateCampaign(campaign);
}

absl::Status Coordinator::Migrate(v1::Campaign& campaign, const v1::ResearchThread& donor) {
  auto threads = store_->ListThreads(campaign.id());
  if (!threads.ok()) return threads.status();
  if (threads->size() < 2) return absl::OkStatus();
  const v1::ResearchThread* from = nullptr;
  for (const auto& t : *threads)
    if (t.id() == donor.id()) from = &t;
  if (from == nullptr) return absl::OkStatus();
  // A ring: thread i offers to thread i+1, so a good incumbent reaches every
  // island in N-1 migrations while the islands stay apart in between.
  v1::ResearchThread to = (*threads)[(from->index() + 1) % threads->size()];
  if (from->incumbent_candidate_id() == to.incumbent_candidate_id() ||
      from->incumbent_score() <= to.incumbent_score())
    return absl::OkStatus();
  const int64_t before = to.incumbent_candidate_id();
  const double before_score = to.incumbent_score();
  to.set_incumbent_candidate_id(from->incumbent_candidate_id());
  to.set_incumbent_score(from->incumbent_score());
  campaign.set_migrations(campaign.migrations() + 1);
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    if (auto s = store_->UpdateThread(to); !s.ok()) return s;
    return store_->UpdateCampaign(campaign);
  });
  if (!s.ok()) return s;
  Emit(campaign.id(), absl::StrCat("migration: t", to.index(), " adopts t", from->index(),
                                   "'s incumbent #", from->incumbent_candidate_id(), " (",
                                   ShortScore(from->incumbent_score()), " over #", before, " ",
                                   ShortScore(before_score), ")"));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Coordinator::AddCandidate(const v1::Campaign& campaign,
                                                  int64_t thread_id, int64_t parent_id,
                                                  proposers::Proposal proposal) {
  auto space = proposers::ParseKnobSpace(proposal.solution);
  if (!space.ok()) return space.status();
  if (auto s = proposers::NormalizeKnobs(*space, &proposal.solution); !s.ok()) return s;
  std::string hash = proposers::ContentHash(proposal.solution);
  auto existing = store_->FindCandidateByHash(campaign.id(), hash);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) return 0;

  v1::Candidate candidate;
  candidate.set_campaign_id(campaign.id());
  candidate.set_thread_id(thread_id);
  candidate.set_parent_id(parent_id);
  *candidate.mutable_solution() = std::move(proposal.solution);
  candidate.set_description(proposal.description);
  candidate.set_content_hash(hash);
  candidate.set_status("proposed");
  candidate.set_score(-1);
  candidate.set_created_unix_ms(NowUnixMs());
  int64_t candidate_id = 0;
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    auto id = store_->CreateCandidate(candidate);
    if (!id.ok()) return id.status();
    candidate_id = *id;
    return EnqueueJob(campaign, *id, v1::JOB_EVALUATE, 0, "").status();
  });
  if (!s.ok()) return s;
  Wake();
  return candidate_id;
}

absl::Status Coordinator::StartProposal(const v1::Campaign& campaign,
                                        const v1::ResearchThread& thread,
                                        const std::vector<v1::Candidate>& history) {
  auto proposer = proposal_pool_.ProposerFor(campaign, options_.llm_endpoints.get());
  if (!proposer.ok()) return proposer.status();
  auto parent = store_->GetCandidate(thread.incumbent_candidate_id());
  if (!parent.ok()) return parent.status();
  auto space = proposers::ParseKnobSpace(parent->solution());
  if (!space.ok()) return space.status();

  ProposalPool::Request request;
  request.campaign_id = campaign.id();
  request.thread_id = thread.id();
  request.thread_index = thread.index();
  // Reproducible from the campaign's seed as far as the model's server is;
  // requests of one thread started together still differ.
  request.seed = campaign.spec().seed() * 1000003ULL + thread.index() * 7919ULL +
                 history.size() * 131ULL + proposal_pool_.InFlight(campaign.id(), thread.id());
  request.parent = *parent;
  request.space = *space;
  request.history = history;
  request.problem = campaign.spec().problem();
  request.device = campaign.spec().device();

  // The thread's latest attempts, with the outcome and error text of their
  // evaluation, so the model can fix what broke.
  constexpr size_t kAttempts = 6;
  std::map<int64_t, const v1::Candidate*> by_id;
  std::vector<const v1::Candidate*> mine;
  for (const auto& c : history) {
    by_id[c.id()] = &c;
    if (c.thread_id() == thread.id()) mine.push_back(&c);
  }
  request.thread_proposals = static_cast<int>(mine.size());
  for (size_t i = mine.size() > kAttempts ? mine.size() - kAttempts : 0; i < mine.size(); ++i) {
    proposers::Attempt attempt;
    attempt.candidate = *mine[i];
    attempt.candidate.clear_solution();  // the prompt shows the parent's files, not these
    auto parent_it = by_id.find(mine[i]->parent_id());
    if (parent_it != by_id.end()) attempt.parent_score = parent_it->second->score();
    auto evaluations = store_->ListEvaluationsForCandidate(mine[i]->id());
    if (!evaluations.ok()) return evaluations.status();
    for (const auto& e : *evaluations) {
      if (e.kind() != v1::JOB_EVALUATE) continue;
      attempt.outcome = OutcomeName(e.outcome());
      attempt.message = e.message();
      break;
    }
    request.attempts.push_back(std::move(attempt));
  }
  auto threads = store_->ListThreads(campaign.id());
  if (!threads.ok()) return threads.status();
  request.inspirations = OtherIncumbents(*threads, thread.id(), parent->id(), history);
  auto lessons = ReadExperience(store_, campaign);
  if (!lessons.ok()) return lessons.status();
  request.lessons = *std::move(lessons);
  proposal_pool_.Start(std::move(request));
  return absl::OkStatus();
}

absl::Status Coordinator::CollectProposals(v1::Campaign& campaign, int* open_evaluations,
                                           std::map<int64_t, int>* open_by_candidate,
                                           std::string* ended, bool* failed) {
  const int64_t id = campaign.id();
  const v1::LlmSettings& settings = campaign.spec().llm();
  const std::string campaign_label = std::to_string(id);
  std::vector<ProposalPool::Finished> finished = proposal_pool_.TakeFinished(id);
  for (auto& f : finished) {
    const std::string who = absl::StrCat("thread ", f.thread_index, ": llm ");
    if (!f.result.ok()) {
      if (absl::IsCancelled(f.result.status())) continue;
      // The proposer could not run at all (not an endpoint failure).
      campaign.set_llm_failed_requests(campaign.llm_failed_requests() + 1);
      proposal_pool_.RecordRequest(id, /*failed=*/true);
      Emit(id, absl::StrCat(who, "proposal failed: ", f.result.status().message()));
      continue;
    }
    proposers::Proposal& p = *f.result;
    campaign.set_llm_prompt_tokens(campaign.llm_prompt_tokens() + p.usage.prompt_tokens);
    campaign.set_llm_completion_tokens(campaign.llm_completion_tokens() +
                                       p.usage.completion_tokens);
    campaign.set_llm_cost_usd(campaign.llm_cost_usd() + p.usage.cost_usd);
    campaign.set_llm_requests(campaign.llm_requests() + p.usage.requests);
    campaign.set_llm_retries(campaign.llm_retries() + p.usage.retries);
    campaign.set_llm_failed_requests(campaign.llm_failed_requests() + p.usage.failed_requests);
    llm_tokens_counter_->Add({{"campaign", campaign_label}, {"kind", "prompt"}})
        .Increment(static_cast<double>(p.usage.prompt_tokens));
    llm_tokens_counter_->Add({{"campaign", campaign_label}, {"kind", "completion"}})
        .Increment(static_cast<double>(p.usage.completion_tokens));
    llm_cost_counter_->Add({{"campaign", campaign_label}}).Increment(p.usage.cost_usd);
    proposal_pool_.RecordRequest(id, p.usage.failed_requests > 0);
    const std::string retried =
        p.usage.retries > 0 ? absl::StrCat(" after ", p.usage.retries, " retries") : "";
    if (!p.answer.ok()) {
      const bool malformed = absl::IsInvalidArgument(p.answer);
      if (malformed) {
        campaign.set_llm_malformed(campaign.llm_malformed() + 1);
        proposal_pool_.SetAnswerProblem(id, f.thread_id, std::string(p.answer.message()));
      }
      llm_answers_counter_->Add({{"result", malformed ? "malformed" : "failed"}}).Increment();
      Emit(id, absl::StrCat(who, malformed ? "answer rejected" : "request failed", retried,
                            " (", p.usage.model, "): ", p.answer.message().substr(0, 300)));
      continue;
    }
    proposal_pool_.SetAnswerProblem(id, f.thread_id, "");
    const std::string description = p.description;
    auto candidate_id = AddCandidate(campaign, f.thread_id, f.parent_id, std::move(p));
    if (!candidate_id.ok()) return candidate_id.status();
    if (*candidate_id == 0) {
      campaign.set_llm_duplicates(campaign.llm_duplicates() + 1);
      proposal_pool_.SetAnswerProblem(
          id, f.thread_id, "It gave a candidate that was already evaluated; try something new.");
      llm_answers_counter_->Add({{"result", "duplicate"}}).Increment();
      Emit(id, absl::StrCat(who, "answer duplicates an earlier candidate", retried, ": ",
                            description));
      continue;
    }
    ++*open_evaluations;
    (*open_by_candidate)[*candidate_id] += 1;
    llm_answers_counter_->Add({{"result", "candidate"}}).Increment();
    Emit(id, absl::StrCat(who, "proposed #", *candidate_id, retried,
                          absl::StrFormat(" in %.1fs: ", f.seconds), description));
  }
  if (!finished.empty())
    if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;

  // Spend and endpoint health decide whether more requests may go out.
  if (settings.max_cost_usd() > 0 && campaign.llm_cost_usd() >= settings.max_cost_usd()) {
    *ended = absl::StrFormat("LLM cost cap reached ($%.4f of $%.4f)", campaign.llm_cost_usd(),
                             settings.max_cost_usd());
    return absl::OkStatus();
  }
  const int max_failures = std::max(5, 2 * std::max(1, settings.max_concurrency()));
  const int failures_in_a_row = proposal_pool_.FailuresInARow(id);
  if (failures_in_a_row >= max_failures) {
    *ended = absl::StrCat("the LLM endpoint failed ", failures_in_a_row,
                          " requests in a row (see the campaign's events)");
    *failed = true;
    return absl::OkStatus();
  }
  auto proposer = proposal_pool_.ProposerFor(campaign, options_.llm_endpoints.get());
  if (!proposer.ok()) {
    *ended = absl::StrCat("the llm proposer cannot run: ", proposer.status().message());
    *failed = true;
  }
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Coordinator::EnqueueJob(const v1::Campaign& campaign,
                                                int64_t candidate_id, v1::JobKind kind,
                                                int64_t verification_id,
                                                const std::string& avoid_worker_id) {
  v1::Job job;
  job.set_campaign_id(campaign.id());
  job.set_candidate_id(candidate_id);
  job.set_kind(kind);
  job.set_verification_id(verification_id);
  job.set_seed(FreshSeed());
  job.set_state(v1::JOB_QUEUED);
  job.set_avoid_worker_id(avoid_worker_id);
  job.set_created_unix_ms(NowUnixMs());
  return store_->CreateJob(job);
}

// ---------------------------------------------------------------------------
// Clients.

absl::StatusOr<v1::Campaign> Coordinator::SubmitCampaign(const v1::CampaignSpec& input) {
  // The spec's rules (spec/): checked as sent, then completed with the
  // defaults that every client gets.
  if (absl::Status s = spec::ValidateCampaignSpec(input); !s.ok()) return s;
  v1::CampaignSpec spec = input;
  spec::ApplyDefaults(&spec);
  if (spec.task() == "sleep") return SubmitSleepCampaign(std::move(spec));
  if (auto p = proposers::MakeProposer(spec, options_.llm_endpoints.get()); !p.ok())
    return p.status();

  v1::Solution baseline = spec.baseline();
  auto space = proposers::ParseKnobSpace(baseline);
  if (!space.ok())
    return absl::InvalidArgumentError(absl::StrCat("baseline: ", space.status().message()));
  if (auto s = proposers::NormalizeKnobs(*space, &baseline); !s.ok())
    return absl::InvalidArgumentError(absl::StrCat("baseline: ", s.message()));
  *spec.mutable_baseline() = baseline;  // knobs explicit, as every candidate's

  std::lock_guard<std::mutex> research(research_mu_);
  v1::Campaign campaign;
  *campaign.mutable_spec() = spec;
  campaign.set_state(v1::CAMPAIGN_RUNNING);
  campaign.set_created_unix_ms(NowUnixMs());
  campaign.set_baseline_score(-1);
  campaign.set_best_score(-1);
  int64_t campaign_id = 0;
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    auto id = store_->CreateCampaign(campaign);
    if (!id.ok()) return id.status();
    campaign_id = *id;
    campaign.set_id(campaign_id);
    for (int i = 0; i < spec.threads(); ++i) {
      v1::ResearchThread thread;
      thread.set_campaign_id(campaign_id);
      thread.set_index(i);
      if (auto t = store_->CreateThread(thread); !t.ok()) return t.status();
    }
    v1::Candidate candidate;
    candidate.set_campaign_id(campaign_id);
    *candidate.mutable_solution() = baseline;
    candidate.set_description("baseline");
    candidate.set_content_hash(proposers::ContentHash(baseline));
    candidate.set_status("proposed");
    candidate.set_score(-1);
    candidate.set_created_unix_ms(NowUnixMs());
    auto cid = store_->CreateCandidate(candidate);
    if (!cid.ok()) return cid.status();
    campaign.set_baseline_candidate_id(*cid);
    if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;
    return EnqueueJob(campaign, *cid, v1::JOB_EVALUATE, 0, "").status();
  });
  if (!s.ok()) return s;
  Emit(campaign_id, absl::StrCat("campaign ", campaign_id, " '", spec.name(), "' submitted: ",
                                 spec.problem().name(), ", ", spec.threads(), " threads, ",
                                 spec.proposer(), ", budget ",
                                 spec.budget().max_evaluations(), " evaluations"));
  Wake();
  return GetCampaign(campaign_id);
}

absl::StatusOr<v1::Campaign> Coordinator::SubmitSleepCampaign(v1::CampaignSpec spec) {
  if (spec.sleep_ms() < 0) return absl::InvalidArgumentError("spec.sleep_ms must be at least 0");
  if (spec.budget().max_evaluations() <= 0) spec.mutable_budget()->set_max_evaluations(20);
  if (spec.budget().max_evaluations() > 1'000'000)
    return absl::InvalidArgumentError("a sleep campaign has at most 1000000 jobs");
  if (spec.device().empty()) spec.set_device("cpu");
  spec.set_threads(0);
  std::lock_guard<std::mutex> research(research_mu_);
  v1::Campaign campaign;
  *campaign.mutable_spec() = spec;
  campaign.set_state(v1::CAMPAIGN_RUNNING);
  campaign.set_created_unix_ms(NowUnixMs());
  campaign.set_baseline_score(-1);
  campaign.set_best_score(-1);
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    auto id = store_->CreateCampaign(campaign);
    if (!id.ok()) return id.status();
    campaign.set_id(*id);
    v1::Candidate candidate;
    candidate.set_campaign_id(*id);
    candidate.set_description("sleep");
    candidate.set_status("proposed");
    candidate.set_score(-1);
    candidate.set_created_unix_ms(NowUnixMs());
    auto cid = store_->CreateCandidate(candidate);
    if (!cid.ok()) return cid.status();
    campaign.set_baseline_candidate_id(*cid);
    if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;
    for (int i = 0; i < spec.budget().max_evaluations(); ++i)
      if (auto j = EnqueueJob(campaign, *cid, v1::JOB_EVALUATE, 0, ""); !j.ok())
        return j.status();
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  Emit(campaign.id(), absl::StrCat("campaign ", campaign.id(), " '", spec.name(),
                                   "' submitted: sleep ", spec.sleep_ms(), " ms x ",
                                   spec.budget().max_evaluations(), " jobs"));
  Wake();
  return GetCampaign(campaign.id());
}

absl::Status Coordinator::ProcessSleepEvaluations(
    const std::vector<v1::Evaluation>& evaluations) {
  // A sleep job's report only counts, so a tick's reports apply in one
  // transaction rather than one each.
  if (evaluations.empty()) return absl::OkStatus();
  return store_->Transaction([&]() -> absl::Status {
    std::map<int64_t, v1::Campaign> campaigns;
    for (const auto& evaluation : evaluations) {
      auto it = campaigns.find(evaluation.campaign_id());
      if (it == campaigns.end()) {
        auto campaign = store_->GetCampaign(evaluation.campaign_id());
        if (!campaign.ok()) return campaign.status();
        it = campaigns.emplace(evaluation.campaign_id(), *std::move(campaign)).first;
      }
      v1::Campaign& campaign = it->second;
      if (evaluation.kind() == v1::JOB_EVALUATE) {
        campaign.set_evaluations(campaign.evaluations() + 1);
        (*campaign.mutable_outcomes())[OutcomeName(evaluation.outcome())] += 1;
      }
      if (auto s = store_->MarkEvaluationProcessed(evaluation.id()); !s.ok()) return s;
    }
    for (const auto& [id, campaign] : campaigns)
      if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;
    return absl::OkStatus();
  });
}

absl::Status Coordinator::AdvanceSleepCampaign(v1::Campaign campaign) {
  const auto& budget = campaign.spec().budget();
  const bool done = campaign.evaluations() >= budget.max_evaluations();
  const bool wall_spent =
      budget.max_wall_seconds() > 0 &&
      (NowUnixMs() - campaign.created_unix_ms()) / 1000.0 >= budget.max_wall_seconds();
  if (!done && !wall_spent) return absl::OkStatus();
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    // Read again: `campaign` was listed before this tick applied its reports,
    // and storing it as it is would drop their counts.
    auto fresh = store_->GetCampaign(campaign.id());
    if (!fresh.ok()) return fresh.status();
    campaign = *std::move(fresh);
    if (!done)
      if (auto s = store_->FailOpenJobs(campaign.id()); !s.ok()) return s;
    campaign.set_state(v1::CAMPAIGN_FINISHED);
    campaign.set_message(done ? "every job done" : "wall-clock budget spent");
    campaign.set_finished_unix_ms(NowUnixMs());
    return store_->UpdateCampaign(campaign);
  });
  if (!s.ok()) return s;
  Emit(campaign.id(), absl::StrCat("campaign ", campaign.id(), " finished: ", campaign.message(),
                                   " (", campaign.evaluations(), " jobs)"));
  return absl::OkStatus();
}

void Coordinator::RefreshSchedulable(const std::vector<v1::Campaign>& campaigns) {
  std::vector<SchedulableCampaign> running;
  for (const auto& c : campaigns)
    if (c.state() == v1::CAMPAIGN_RUNNING) running.push_back(SchedulableFromSpec(c.id(), c.spec()));
  std::lock_guard<std::mutex> lock(schedule_mu_);
  schedulable_ = std::move(running);
  schedulable_loaded_ = true;
}

absl::Status Coordinator::Decorate(v1::Campaign* campaign) {
  auto threads = store_->ListThreads(campaign->id());
  if (!threads.ok()) return threads.status();
  campaign->clear_threads();
  for (const auto& t : *threads) *campaign->add_threads() = t;
  auto jobs = store_->ListJobs(campaign->id());
  if (!jobs.ok()) return jobs.status();
  int queued = 0, running = 0;
  for (const auto& j : *jobs) {
    if (j.state() == v1::JOB_QUEUED) ++queued;
    if (j.state() == v1::JOB_LEASED) ++running;
  }
  campaign->set_jobs_queued(queued);
  campaign->set_jobs_running(running);
  auto verifications = store_->ListVerifications(campaign->id());
  if (!verifications.ok()) return verifications.status();
  std::map<std::pair<std::string, std::string>, int> counts;
  for (const auto& v : *verifications) {
    if (v.outcome() == v1::VERDICT_ACCEPTED) counts[{"accepted", ""}]++;
    if (IsRejected(v.outcome())) counts[{VerdictName(v.outcome()), v.reason()}]++;
    if (v.outcome() == v1::VERDICT_PENDING) counts[{"pending", ""}]++;
  }
  campaign->clear_verdicts();
  for (const auto& [key, n] : counts) {
    auto* vc = campaign->add_verdicts();
    vc->set_outcome(key.first);
    vc->set_reason(key.second);
    vc->set_count(n);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Campaign> Coordinator::GetCampaign(int64_t id) {
  auto campaign = store_->GetCampaign(id);
  if (!campaign.ok()) return campaign.status();
  if (auto s = Decorate(&*campaign); !s.ok()) return s;
  return campaign;
}

absl::StatusOr<std::vector<v1::Campaign>> Coordinator::ListCampaigns() {
  auto campaigns = store_->ListCampaigns();
  if (!campaigns.ok()) return campaigns.status();
  for (auto& c : *campaigns)
    if (auto s = Decorate(&c); !s.ok()) return s;
  return campaigns;
}

absl::StatusOr<v1::Leaderboard> Coordinator::GetLeaderboard(int64_t campaign_id, int limit) {
  if (auto c = store_->GetCampaign(campaign_id); !c.ok()) return c.status();
  auto candidates = store_->ListCandidates(campaign_id);
  if (!candidates.ok()) return candidates.status();
  std::vector<v1::Candidate> ranked;
  for (const auto& c : *candidates)
    if (c.score() >= 0) ranked.push_back(c);
  // Verified first (accepted and the baseline), then by score.
  auto verified = [](const v1::Candidate& c) {
    return c.status() == "accepted" || c.status() == "baseline";
  };
  std::stable_sort(ranked.begin(), ranked.end(), [&](const auto& a, const auto& b) {
    if (verified(a) != verified(b)) return verified(a);
    return a.score() > b.score();
  });
  v1::Leaderboard board;
  board.set_campaign_id(campaign_id);
  for (const auto& c : ranked) {
    if (limit > 0 && board.entries_size() >= limit) break;
    auto* e = board.add_entries();
    *e->mutable_candidate() = c;
    e->mutable_candidate()->mutable_solution()->clear_files();  // keep it small
    e->set_score(c.score());
    e->set_verified(c.status() == "accepted");
  }
  return board;
}

absl::StatusOr<v1::CandidateDetail> Coordinator::GetCandidate(int64_t candidate_id) {
  auto candidate = store_->GetCandidate(candidate_id);
  if (!candidate.ok()) return candidate.status();
  v1::CandidateDetail detail;
  *detail.mutable_candidate() = *candidate;
  auto evaluations = store_->ListEvaluationsForCandidate(candidate_id);
  if (!evaluations.ok()) return evaluations.status();
  for (const auto& e : *evaluations) *detail.add_evaluations() = e;
  auto verifications = store_->ListVerificationsForCandidate(candidate_id);
  if (!verifications.ok()) return verifications.status();
  for (const auto& v : *verifications) *detail.add_verifications() = v;
  return detail;
}

absl::StatusOr<v1::Campaign> Coordinator::ChangeCampaign(
    int64_t campaign_id, const std::string& event,
    const std::function<absl::Status(v1::Campaign&)>& change) {
  {
    std::lock_guard<std::mutex> research(research_mu_);
    absl::Status s = store_->Transaction([&]() -> absl::Status {
      auto campaign = store_->GetCampaign(campaign_id);
      if (!campaign.ok()) return campaign.status();
      if (auto s = change(*campaign); !s.ok()) return s;
      return store_->UpdateCampaign(*campaign);
    });
    if (!s.ok()) return s;
  }
  Emit(campaign_id, event);
  return GetCampaign(campaign_id);
}

absl::StatusOr<v1::Campaign> Coordinator::CancelCampaign(int64_t campaign_id) {
  auto cancel = [&](v1::Campaign& campaign) -> absl::Status {
    if (campaign.state() != v1::CAMPAIGN_RUNNING && campaign.state() != v1::CAMPAIGN_PAUSED)
      return absl::FailedPreconditionError(absl::StrCat(
          "campaign ", campaign_id, " is already ", CampaignStateName(campaign.state())));
    campaign.set_state(v1::CAMPAIGN_CANCELLED);
    campaign.set_message("cancelled by a client");
    campaign.set_finished_unix_ms(NowUnixMs());
    return store_->FailOpenJobs(campaign_id);
  };
  return ChangeCampaign(campaign_id, "campaign cancelled", cancel);
}

absl::StatusOr<v1::Campaign> Coordinator::PauseCampaign(int64_t campaign_id) {
  auto pause = [&](v1::Campaign& campaign) -> absl::Status {
    if (campaign.state() != v1::CAMPAIGN_RUNNING)
      return absl::FailedPreconditionError(absl::StrCat(
          "campaign ", campaign_id, " is ", CampaignStateName(campaign.state()), ", not running"));
    // The store leases jobs of running campaigns only, and the loop advances
    // running campaigns only: the state alone pauses both, and being stored,
    // survives a coordinator restart.
    campaign.set_state(v1::CAMPAIGN_PAUSED);
    campaign.set_paused_unix_ms(NowUnixMs());
    return absl::OkStatus();
  };
  return ChangeCampaign(campaign_id,
                        "campaign paused: no new proposals or leases; running jobs finish", pause);
}

absl::StatusOr<v1::Campaign> Coordinator::ResumeCampaign(int64_t campaign_id) {
  auto resume = [&](v1::Campaign& campaign) -> absl::Status {
    if (campaign.state() != v1::CAMPAIGN_PAUSED)
      return absl::FailedPreconditionError(absl::StrCat(
          "campaign ", campaign_id, " is ", CampaignStateName(campaign.state()), ", not paused"));
    const int64_t paused_ms = std::max<int64_t>(0, NowUnixMs() - campaign.paused_unix_ms());
    campaign.set_paused_seconds(campaign.paused_seconds() + paused_ms / 1000.0);
    campaign.set_paused_unix_ms(0);
    campaign.set_state(v1::CAMPAIGN_RUNNING);
    return absl::OkStatus();
  };
  auto resumed = ChangeCampaign(campaign_id, "campaign resumed", resume);
  if (resumed.ok()) Wake();
  return resumed;
}

absl::StatusOr<std::vector<v1::WorkerInfo>> Coordinator::ListWorkers() {
  auto workers = store_->ListWorkers();
  if (!workers.ok()) return workers.status();
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowUnixMs();
  for (auto& w : *workers) {
    auto it = last_heartbeat_ms_.find(w.id());
    if (it != last_heartbeat_ms_.end()) w.set_last_heartbeat_unix_ms(it->second);
    w.set_connected(now - w.last_heartbeat_unix_ms() < options_.lease_ms);
  }
  return workers;
}

// ---------------------------------------------------------------------------
// Workers.

absl::StatusOr<v1::RegisterWorkerResponse> Coordinator::RegisterWorker(
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
    id = absl::StrFormat("%s-%06x", base, FreshSeed() & 0xffffff);
  }
  info.set_id(id);
  info.set_name(request.name());
  *info.mutable_hardware() = request.hardware();
  info.set_sandbox(request.sandbox());
  if (info.registered_unix_ms() == 0) info.set_registered_unix_ms(NowUnixMs());
  info.set_last_heartbeat_unix_ms(NowUnixMs());
  if (auto s = store_->UpsertWorker(info); !s.ok()) return s;
  {
    std::lock_guard<std::mutex> lock(schedule_mu_);
    worker_hardware_[id] = info.hardware();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_heartbeat_ms_[id] = NowUnixMs();
  }
  std::fprintf(stderr, "coordinator: worker %s registered (%s, %d cores, %.1f GB/s, %.1f GFLOP/s, sandbox %s)\n",
               id.c_str(), request.hardware().cpu_model().c_str(),
               request.hardware().cpu_cores(), request.hardware().peak_gbps(),
               request.hardware().peak_gflops(), request.sandbox().c_str());
  v1::RegisterWorkerResponse response;
  response.set_worker_id(id);
  response.set_lease_seconds(options_.lease_ms / 1000);
  response.set_heartbeat_seconds(std::max<int64_t>(1, options_.heartbeat_ms / 1000));
  return response;
}

absl::StatusOr<v1::HeartbeatResponse> Coordinator::Heartbeat(
    const v1::HeartbeatRequest& request) {
  v1::HeartbeatResponse response;
  const int64_t now = NowUnixMs();
  std::vector<int64_t> ids(request.job_ids().begin(), request.job_ids().end());
  std::vector<int64_t> lost;
  bool known = false;
  // The read joins the batch too: one round of store calls, committed with
  // the other transitions.
  absl::Status s = group_commit_.Run([&]() -> absl::Status {
    lost.clear();
    auto worker = store_->GetWorker(request.worker_id());
    if (!worker.ok()) return worker.status();
    known = worker->has_value();
    if (!known) return absl::OkStatus();
    if (auto s = store_->RenewLeases(request.worker_id(), ids, now + options_.lease_ms, &lost);
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_heartbeat_ms_[request.worker_id()] = now;
  }
  for (int64_t id : lost) response.add_cancelled_job_ids(id);
  return response;
}

bool Coordinator::OtherWorkerConnected(const std::string& worker_id) {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowUnixMs();
  for (const auto& [id, at] : last_heartbeat_ms_)
    if (id != worker_id && now - at < 3 * options_.heartbeat_ms + 1000) return true;
  return false;
}

absl::StatusOr<std::optional<v1::Job>> Coordinator::AcquireJob(const std::string& worker_id,
                                                               int wait_ms) {
  // Read from the store only for a worker not seen since this coordinator started.
  auto found_hardware = FindOrLoad(
      schedule_mu_, worker_hardware_, worker_id, [&]() -> absl::StatusOr<v1::Hardware> {
        auto worker = store_->GetWorker(worker_id);
        if (!worker.ok()) return worker.status();
        if (!worker->has_value())
          return absl::NotFoundError(
              absl::StrCat("unknown worker ", worker_id, "; register first"));
        return (*worker)->hardware();
      });
  if (!found_hardware.ok()) return found_hardware.status();
  const v1::Hardware& hardware = *found_hardware;
  {
    std::lock_guard<std::mutex> lock(mu_);
    last_heartbeat_ms_[worker_id] = NowUnixMs();
  }
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(std::clamp(wait_ms, 0, 30'000));
  while (true) {
    // A replay avoids the worker that produced the claim, unless no other is there.
    bool allow_avoided = !OtherWorkerConnected(worker_id);
    std::vector<int64_t> order;
    {
      std::unique_lock<std::mutex> lock(schedule_mu_);
      if (!schedulable_loaded_) {
        lock.unlock();
        auto campaigns = store_->ListCampaigns();
        if (!campaigns.ok()) return campaigns.status();
        RefreshSchedulable(*campaigns);
        lock.lock();
      }
      order = CampaignOrder(schedulable_, leased_by_campaign_, hardware);
    }
    // The fairest campaign this worker can run that has a job queued.
    std::optional<v1::Job> job;
    auto lease = [&]() -> absl::Status {
      job.reset();
      const int64_t now = NowUnixMs();
      for (int64_t campaign_id : order) {
        auto got = store_->AcquireJob(worker_id, now, options_.lease_ms, allow_avoided,
                                      campaign_id);
        if (!got.ok()) return got.status();
        if (got->has_value()) {
          job = std::move(*got);
          break;
        }
      }
      return absl::OkStatus();
    };
    if (!order.empty())
      if (absl::Status s = group_commit_.Run(lease); !s.ok()) return s;
    if (job.has_value()) {
      {
        std::lock_guard<std::mutex> lock(schedule_mu_);
        leased_by_campaign_[job->campaign_id()] += 1;
      }
      v1::Job full = *job;
      auto spec = FindOrLoad(
          schedule_mu_, specs_, full.campaign_id(),
          [&]() -> absl::StatusOr<std::shared_ptr<const v1::CampaignSpec>> {
            auto campaign = store_->GetCampaign(full.campaign_id());
            if (!campaign.ok()) return campaign.status();
            return std::make_shared<const v1::CampaignSpec>(campaign->spec());
          });
      if (!spec.ok()) return spec.status();
      auto solution = FindOrLoad(
          schedule_mu_, solutions_, full.candidate_id(),
          [&]() -> absl::StatusOr<std::shared_ptr<const v1::Solution>> {
            auto candidate = store_->GetCandidate(full.candidate_id());
            if (!candidate.ok()) return candidate.status();
            return std::make_shared<const v1::Solution>(candidate->solution());
          },
          /*bound=*/4096);
      if (!solution.ok()) return solution.status();
      *full.mutable_problem() = (*spec)->problem();
      *full.mutable_solution() = **solution;
      *full.mutable_harness() = (*spec)->harness();
      full.set_device((*spec)->device());
      full.set_sleep_ms((*spec)->task() == "sleep" ? (*spec)->sleep_ms() : 0);
      // The same T_b for every job of a workload on this hardware, once
      // frozen; replays included, so candidate and incumbent replays compare.
      // (The job is leased already: a store error here only costs it its
      // baselines, and the harness times T_b itself.)
      auto baselines = BaselinesForJob(full.campaign_id(), **spec, hardware, worker_id);
      if (baselines.ok())
        for (auto& b : *baselines) *full.add_baselines() = std::move(b);
      if (full.kind() == v1::JOB_REPLAY) {
        const auto& tiers = (*spec)->verification().tiers();
        auto has = [&](const char* t) {
          return tiers.empty() || std::find(tiers.begin(), tiers.end(), t) != tiers.end();
        };
        full.set_adversarial(has("adversarial"));
        full.set_independent_timing(has("independent-timing"));
      }
      return std::optional<v1::Job>(std::move(full));
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_ || std::chrono::steady_clock::now() >= deadline) break;
    wake_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                  std::chrono::milliseconds(500)));
  }
  return std::optional<v1::Job>();
}

absl::StatusOr<v1::CompleteJobResponse> Coordinator::CompleteJob(
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
    evaluation.set_created_unix_ms(NowUnixMs());
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
    // Its next jobs get the baselines of the software its harness has.
    if (!evaluation.baseline_software().empty())
      worker_software_[request.worker_id()] = evaluation.baseline_software();
  }
  evaluations_counter_
      ->Add({{"outcome", OutcomeName(evaluation.outcome())},
             {"kind", JobKindName(job->kind())}})
      .Increment();
  response.set_accepted(true);
  Wake();
  return response;
}

// ---------------------------------------------------------------------------
// Verifiers.

absl::StatusOr<std::optional<v1::Verification>> Coordinator::AcquireVerification(
    const std::string& verifier_id, int wait_ms) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(std::clamp(wait_ms, 0, 30'000));
  while (true) {
    auto v = store_->AcquireVerification(verifier_id, NowUnixMs(),
                                         options_.verification_lease_ms);
    if (!v.ok() || v->has_value()) return v;
    std::unique_lock<std::mutex> lock(mu_);
    if (stopping_ || std::chrono::steady_clock::now() >= deadline) break;
    wake_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() +
                                                  std::chrono::milliseconds(500)));
  }
  return std::optional<v1::Verification>();
}

absl::StatusOr<std::vector<int64_t>> Coordinator::RequestReplays(
    int64_t verification_id, const std::string& verifier_id, int replays) {
  std::lock_guard<std::mutex> research(research_mu_);
  auto v = store_->GetVerification(verification_id);
  if (!v.ok()) return v.status();
  if (v->outcome() != v1::VERDICT_PENDING)
    return absl::FailedPreconditionError(
        absl::StrCat("verification ", verification_id, " is already decided"));
  if (v->verifier_id() != verifier_id)
    return absl::PermissionDeniedError(absl::StrCat("verification ", verification_id,
                                                    " is leased to '", v->verifier_id(),
                                                    "', not '", verifier_id, "'"));
  if (replays < 1 || replays > 20)
    return absl::InvalidArgumentError("replays must be between 1 and 20");
  // Each request renews the holder's lease: replays of a slow kernel, raised
  // look after look, can outlast one lease.
  v->set_lease_deadline_unix_ms(NowUnixMs() + options_.verification_lease_ms);
  if (auto s = store_->UpdateVerification(*v); !s.ok()) return s;
  auto existing = store_->ListJobsForVerification(verification_id);
  if (!existing.ok()) return existing.status();
  // `replays` is the total a side, so a repeated request (a verifier that
  // restarted, a retry) adds nothing and a larger one (the verifier's next
  // look at a promising claim) adds only the difference.
  std::vector<int64_t> ids;
  int have_candidate = 0, have_incumbent = 0;
  for (const auto& j : *existing) {
    ids.push_back(j.id());
    if (j.candidate_id() == v->candidate_id()) {
      ++have_candidate;
    } else {
      ++have_incumbent;
    }
  }
  if (have_candidate >= replays && have_incumbent >= replays) return ids;
  auto campaign = store_->GetCampaign(v->campaign_id());
  if (!campaign.ok()) return campaign.status();
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    // Interleaved, so that candidate and incumbent see the same conditions.
    for (int i = 0; i < replays; ++i) {
      for (int64_t cid : {v->candidate_id(), v->incumbent_candidate_id()}) {
        // The claim is replayed away from the worker that made it; the
        // incumbent, which claims nothing, may run anywhere.
        const bool is_claim = cid == v->candidate_id();
        if (i < (is_claim ? have_candidate : have_incumbent)) continue;
        auto id = EnqueueJob(*campaign, cid, v1::JOB_REPLAY, verification_id,
                             is_claim ? v->claim_worker_id() : "");
        if (!id.ok()) return id.status();
        ids.push_back(*id);
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  Emit(v->campaign_id(),
       existing->empty()
           ? absl::StrCat("claim ", verification_id, ": ", verifier_id, " replays #",
                          v->candidate_id(), " and incumbent #", v->incumbent_candidate_id(),
                          " ", replays, "x each on fresh inputs")
           : absl::StrCat("claim ", verification_id, ": promising, not yet significant: ",
                          verifier_id, " raises the replays of #", v->candidate_id(),
                          " and incumbent #", v->incumbent_candidate_id(), " to ", replays,
                          "x each"));
  Wake();
  return ids;
}

absl::StatusOr<v1::GetReplaysResponse> Coordinator::GetReplays(int64_t verification_id) {
  v1::GetReplaysResponse response;
  auto jobs = store_->ListJobsForVerification(verification_id);
  if (!jobs.ok()) return jobs.status();
  for (const auto& job : *jobs) {
    *response.add_jobs() = job;
    auto e = store_->GetEvaluationForJob(job.id());
    if (!e.ok()) return e.status();
    if (e->has_value()) *response.add_evaluations() = **e;
  }
  // What the verifier needs to judge noise: each replay worker's hardware
  // and the stored floors of this problem.
  auto v = store_->GetVerification(verification_id);
  if (!v.ok()) return v.status();
  auto campaign = store_->GetCampaign(v->campaign_id());
  if (!campaign.ok()) return campaign.status();
  for (const auto& e : response.evaluations()) {
    if (response.worker_hardware().count(e.worker_id())) continue;
    auto worker = store_->GetWorker(e.worker_id());
    if (!worker.ok()) return worker.status();
    if (worker->has_value())
      (*response.mutable_worker_hardware())[e.worker_id()] =
          HardwareKey((*worker)->hardware(), campaign->spec().device() == "cuda");
  }
  auto floors = store_->ListNoiseFloors(campaign->spec().problem().name());
  if (absl::IsUnimplemented(floors.status())) return response;
  if (!floors.ok()) return floors.status();
  for (const auto& f : *floors) *response.add_noise_floors() = f;
  return response;
}

absl::Status Coordinator::UpdateNoiseFloors(const v1::Verification& v,
                                            const v1::Campaign& campaign) {
  // The incumbent's replays are repeated runs of one unchanged solution:
  // their spread, per workload and hardware, is the noise floor's evidence.
  auto jobs = store_->ListJobsForVerification(v.id());
  if (!jobs.ok()) return jobs.status();
  std::map<std::pair<std::string, std::string>, std::vector<double>> groups;
  for (const auto& job : *jobs) {
    if (job.candidate_id() != v.incumbent_candidate_id()) continue;
    auto e = store_->GetEvaluationForJob(job.id());
    if (!e.ok()) return e.status();
    if (!e->has_value() || (*e)->outcome() != v1::OUTCOME_OK) continue;
    auto worker = store_->GetWorker((*e)->worker_id());
    if (!worker.ok()) return worker.status();
    const std::string hw = worker->has_value()
                               ? HardwareKey((*worker)->hardware(),
                                             campaign.spec().device() == "cuda")
                               : "unknown";
    groups[{"score", hw}].push_back((*e)->score());
    for (const auto& w : (*e)->workloads())
      if (w.t_k_ns() > 0) groups[{w.axes(), hw}].push_back(w.t_k_ns());
  }
  auto floors = store_->ListNoiseFloors(campaign.spec().problem().name());
  if (absl::IsUnimplemented(floors.status())) return absl::OkStatus();
  if (!floors.ok()) return floors.status();
  for (const auto& [key, values] : groups) {
    if (values.size() < 2) continue;
    v1::NoiseFloor floor;
    floor.set_problem(campaign.spec().problem().name());
    floor.set_workload(key.first);
    floor.set_hardware(key.second);
    for (const auto& f : *floors)
      if (f.workload() == key.first && f.hardware() == key.second) floor = f;
    AddNoiseGroup(values, NowUnixMs(), &floor);
    if (auto s = store_->UpsertNoiseFloor(floor); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status Coordinator::VerdictMatchesReplays(const v1::Verification& stored,
                                                const v1::Verification& verdict) {
  auto jobs = store_->ListJobsForVerification(stored.id());
  if (!jobs.ok()) return jobs.status();
  std::vector<double> candidate, incumbent;  // the replays' scores, each usable once
  for (const auto& job : *jobs) {
    auto e = store_->GetEvaluationForJob(job.id());
    if (!e.ok()) return e.status();
    if (!e->has_value()) continue;
    (job.candidate_id() == stored.candidate_id() ? candidate : incumbent)
        .push_back((*e)->score());
  }
  auto match = [&](const google::protobuf::RepeatedField<double>& reported,
                   std::vector<double>* pool, const char* side) -> absl::Status {
    for (double x : reported) {
      auto it = std::find_if(pool->begin(), pool->end(), [x](double y) {
        return std::fabs(x - y) <= 1e-9 * std::max(1.0, std::fabs(y));
      });
      if (it == pool->end())
        return absl::InvalidArgumentError(absl::StrCat(
            "the verdict's ", side, " score ", x, " is not the score of any replay of claim ",
            stored.id(), " that this coordinator handed out (or is counted twice)"));
      pool->erase(it);
    }
    return absl::OkStatus();
  };
  if (auto s = match(verdict.candidate_scores(), &candidate, "candidate"); !s.ok()) return s;
  if (auto s = match(verdict.incumbent_scores(), &incumbent, "incumbent"); !s.ok()) return s;
  if (verdict.outcome() == v1::VERDICT_ACCEPTED &&
      (verdict.candidate_scores().empty() || verdict.incumbent_scores().empty()))
    return absl::InvalidArgumentError(
        "an acceptance rests on replays of both the candidate and the incumbent");
  return absl::OkStatus();
}

absl::StatusOr<v1::ReportVerdictResponse> Coordinator::ReportVerdict(
    const v1::ReportVerdictRequest& request) {
  v1::ReportVerdictResponse response;
  const v1::Verification& verdict = request.verification();
  if (verdict.outcome() != v1::VERDICT_ACCEPTED && !IsRejected(verdict.outcome()))
    return absl::InvalidArgumentError("a verdict must be accepted or one of the rejections");
  std::lock_guard<std::mutex> research(research_mu_);
  std::string event;
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    auto stored = store_->GetVerification(verdict.id());
    if (!stored.ok()) return stored.status();
    if (stored->outcome() != v1::VERDICT_PENDING) {
      response.set_accepted(false);
      response.set_message("already decided");
      return absl::OkStatus();
    }
    // Only the verifier holding the lease decides, and only on the replays
    // this coordinator handed out (docs/security.md).
    if (stored->verifier_id() != request.verifier_id())
      return absl::PermissionDeniedError(absl::StrCat(
          "verification ", stored->id(), " is leased to '", stored->verifier_id(), "', not '",
          request.verifier_id(), "'"));
    if (auto s = VerdictMatchesReplays(*stored, verdict); !s.ok()) return s;
    v1::Verification v = *stored;
    v.set_outcome(verdict.outcome());
    v.set_reason(verdict.reason());
    v.set_detail(verdict.detail());
    *v.mutable_candidate_scores() = verdict.candidate_scores();
    *v.mutable_incumbent_scores() = verdict.incumbent_scores();
    *v.mutable_evidence() = verdict.evidence();
    v.set_verifier_id(request.verifier_id());
    v.set_decided_unix_ms(NowUnixMs());
    if (auto s = store_->UpdateVerification(v); !s.ok()) return s;
    // A verifier that decided early (one replay caught hacking) leaves
    // replays that nobody needs: those still queued are dropped.
    auto replay_jobs = store_->ListJobsForVerification(v.id());
    if (!replay_jobs.ok()) return replay_jobs.status();
    for (v1::Job job : *replay_jobs) {
      if (job.state() != v1::JOB_QUEUED) continue;
      job.set_state(v1::JOB_FAILED);
      if (auto s = store_->UpdateJob(job); !s.ok()) return s;
    }

    auto candidate = store_->GetCandidate(v.candidate_id());
    if (!candidate.ok()) return candidate.status();
    auto campaign = store_->GetCampaign(v.campaign_id());
    if (!campaign.ok()) return campaign.status();
    if (auto s = UpdateNoiseFloors(v, *campaign); !s.ok()) return s;
    const bool accepted = v.outcome() == v1::VERDICT_ACCEPTED;
    candidate->set_status(accepted ? "accepted" : "rejected");
    if (accepted) {
      // The verified score is the replays' median, never the claim.
      std::vector<double> scores(v.candidate_scores().begin(), v.candidate_scores().end());
      std::sort(scores.begin(), scores.end());
      const size_t n = scores.size();
      double verified = n == 0       ? candidate->score()
                        : n % 2 == 1 ? scores[n / 2]
                                     : 0.5 * (scores[n / 2 - 1] + scores[n / 2]);
      candidate->set_score(verified);
      auto threads = store_->ListThreads(v.campaign_id());
      if (!threads.ok()) return threads.status();
      for (auto& thread : *threads) {
        if (thread.id() != v.thread_id()) continue;
        thread.set_accepted(thread.accepted() + 1);
        if (verified > thread.incumbent_score() ||
            thread.incumbent_candidate_id() == v.incumbent_candidate_id()) {
          thread.set_incumbent_candidate_id(candidate->id());
          thread.set_incumbent_score(verified);
        }
        if (auto s = store_->UpdateThread(thread); !s.ok()) return s;
      }
      if (!campaign->best_verified() || verified > campaign->best_score()) {
        campaign->set_best_candidate_id(candidate->id());
        campaign->set_best_score(verified);
        campaign->set_best_verified(true);
        if (auto s = store_->UpdateCampaign(*campaign); !s.ok()) return s;
      }
      event = absl::StrCat("verdict on #", candidate->id(), " [", candidate->description(),
                           "]: ACCEPTED, verified score ", ShortScore(verified), " (",
                           v.detail(), ")");
    } else {
      event = absl::StrCat("verdict on #", candidate->id(), " [", candidate->description(),
                           "]: ", VerdictName(v.outcome()), " (", v.reason(), "): ", v.detail());
    }
    if (auto s = store_->UpdateCandidate(*candidate); !s.ok()) return s;
    // The claim's lesson, with the verified score when it was accepted.
    const bool hack = v.outcome() == v1::VERDICT_REJECTED_HACK ||
                      v.outcome() == v1::VERDICT_REJECTED_WRONG;
    if (auto s = RecordLessons(*campaign, *candidate, hack ? -1 : candidate->score(), "ok",
                               VerdictName(v.outcome()));
        !s.ok())
      return s;
    verdicts_counter_
        ->Add({{"outcome", VerdictName(v.outcome())}, {"reason", v.reason()}})
        .Increment();
    response.set_accepted(true);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!event.empty()) Emit(verdict.campaign_id(), event);
  Wake();
  return response;
}

void Coordinator::UpdateGauges() {
  auto campaigns = store_->ListCampaigns();
  if (!campaigns.ok()) return;
  std::map<std::pair<std::string, std::string>, int> by_state;
  for (const char* st : {"queued", "leased", "done", "failed"})
    for (const char* k : {"evaluate", "replay"}) by_state[{st, k}] = 0;
  for (const auto& c : *campaigns)
    best_score_gauge_->Add({{"campaign", std::to_string(c.id())}, {"name", c.spec().name()}})
        .Set(c.best_score());
  // Counted by the store, not by reading every job: this runs every second.
  auto counts = store_->CountJobs();
  if (!counts.ok()) return;
  std::map<int64_t, int> leased;
  for (const auto& n : *counts) {
    const char* st = n.state == v1::JOB_QUEUED   ? "queued"
                     : n.state == v1::JOB_LEASED ? "leased"
                     : n.state == v1::JOB_DONE   ? "done"
                                                 : "failed";
    by_state[{st, JobKindName(n.kind)}] += static_cast<int>(n.count);
    if (n.state == v1::JOB_LEASED) leased[n.campaign_id] += static_cast<int>(n.count);
  }
  {
    // The recount corrects any drift of the scheduler's running counts.
    std::lock_guard<std::mutex> lock(schedule_mu_);
    leased_by_campaign_ = std::move(leased);
  }
  for (const auto& [key, n] : by_state)
    jobs_gauge_->Add({{"state", key.first}, {"kind", key.second}}).Set(n);
  const int64_t batches = group_commit_.batches(), transitions = group_commit_.functions();
  commit_batches_->Increment(static_cast<double>(batches - counted_batches_));
  commit_transitions_->Increment(static_cast<double>(transitions - counted_transitions_));
  counted_batches_ = batches;
  counted_transitions_ = transitions;
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = NowUnixMs();
  int connected = 0;
  for (const auto& [id, at] : last_heartbeat_ms_)
    if (now - at < options_.lease_ms) ++connected;
  workers_connected_->Set(connected);
}

}  // namespace ratchet::coordinator
