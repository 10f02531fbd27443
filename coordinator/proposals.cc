#include "coordinator/proposals.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/names.h"
#include "coordinator/multi_fidelity.h"
#include "coordinator/proposers/knob_space.h"
#include "coordinator/proposers/proposer.h"
#include "spec/defaults.h"
#include "spec/names.h"

namespace ratchet::coordinator {
namespace {

constexpr int kMaxProposalRetries = 30;  // duplicates before a thread gives up a turn

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

}  // namespace

Proposals::Proposals(store::Store* store, const Clock* clock,
                     std::shared_ptr<const llm::LlmEndpoints> llm_endpoints, Wakeup* wakeup,
                     EventLog* events, CoordinatorMetrics* metrics, JobQueue* jobs,
                     Experience* experience)
    : store_(store),
      clock_(clock),
      llm_endpoints_(std::move(llm_endpoints)),
      wakeup_(wakeup),
      events_(events),
      metrics_(metrics),
      jobs_(jobs),
      experience_(experience) {}

absl::Status Proposals::ProposeForThread(v1::Campaign& campaign, v1::ResearchThread& thread,
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
    if (c.score() >= 0 && (c.status() == v1::CANDIDATE_EVALUATED ||
                           c.status() == v1::CANDIDATE_ACCEPTED ||
                           c.status() == v1::CANDIDATE_VERIFYING))
      archive.push_back(&c);
  }
  auto threads = store_->ListThreads(campaign.id());
  if (!threads.ok()) return threads.status();
  const std::vector<v1::Candidate> inspirations =
      OtherIncumbents(*threads, thread.id(), incumbent->id(), history);
  auto lessons = experience_->Read(campaign);
  if (!lessons.ok()) return lessons.status();

  for (int attempt = 0; attempt < kMaxProposalRetries; ++attempt) {
    const v1::Candidate* parent = &*incumbent;
    if (spec.proposer() == v1::PROPOSER_EVOLVE)
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
    context.costly_evaluations = spec::IsTraining(spec.task());
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
      events_->Emit(campaign.id(), absl::StrCat("t", thread.index(), " #", *id, ": merge of #",
                                                parent->id(), " and #", merged_with));
    }
    ++thread_proposals;
    if (spec.migrate_every() > 0 && thread_proposals % spec.migrate_every() == 0)
      return experience_->Migrate(campaign, thread);
    return absl::OkStatus();
  }
  return absl::OkStatus();  // the neighbourhood is exhausted for now
}

absl::StatusOr<int64_t> Proposals::AddCandidate(const v1::Campaign& campaign, int64_t thread_id,
                                                int64_t parent_id,
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
  candidate.set_status(v1::CANDIDATE_PROPOSED);
  candidate.set_score(-1);
  candidate.set_created_unix_ms(clock_->NowUnixMs());
  int64_t candidate_id = 0;
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    auto id = store_->CreateCandidate(candidate);
    if (!id.ok()) return id.status();
    candidate_id = *id;
    const v1::Task task = campaign.spec().task();
    return jobs_->EnqueueEvaluation(campaign.id(), *id, FirstFidelity(campaign.spec()),
                                    task == v1::TASK_KERNEL || task == v1::TASK_UNSPECIFIED)
        .status();
  });
  if (!s.ok()) return s;
  wakeup_->Notify();
  return candidate_id;
}

absl::Status Proposals::StartProposal(const v1::Campaign& campaign,
                                      const v1::ResearchThread& thread,
                                      const std::vector<v1::Candidate>& history) {
  auto proposer = pool_.ProposerFor(campaign, llm_endpoints_.get());
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
                 history.size() * 131ULL + pool_.InFlight(campaign.id(), thread.id());
  request.parent = *parent;
  request.space = *space;
  request.history = history;
  request.problem = campaign.spec().problem();
  request.device = spec::Name(campaign.spec().device());
  request.thread_proposals = static_cast<int>(
      std::count_if(history.begin(), history.end(),
                    [&](const v1::Candidate& c) { return c.thread_id() == thread.id(); }));
  auto attempts = LatestAttempts(thread, history);
  if (!attempts.ok()) return attempts.status();
  request.attempts = *std::move(attempts);
  auto threads = store_->ListThreads(campaign.id());
  if (!threads.ok()) return threads.status();
  request.inspirations = OtherIncumbents(*threads, thread.id(), parent->id(), history);
  auto lessons = experience_->Read(campaign);
  if (!lessons.ok()) return lessons.status();
  request.lessons = *std::move(lessons);
  pool_.Start(std::move(request));
  return absl::OkStatus();
}

absl::StatusOr<std::vector<proposers::Attempt>> Proposals::LatestAttempts(
    const v1::ResearchThread& thread, const std::vector<v1::Candidate>& history) {
  // The thread's latest attempts, with the outcome and error text of their
  // evaluation, so the model can fix what broke.
  constexpr size_t kAttempts = 6;
  std::map<int64_t, const v1::Candidate*> by_id;
  std::vector<const v1::Candidate*> mine;
  for (const auto& c : history) {
    by_id[c.id()] = &c;
    if (c.thread_id() == thread.id()) mine.push_back(&c);
  }
  std::vector<proposers::Attempt> attempts;
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
    attempts.push_back(std::move(attempt));
  }
  return attempts;
}

absl::Status Proposals::CollectProposals(v1::Campaign& campaign, int* open_evaluations,
                                         std::map<int64_t, int>* open_by_candidate,
                                         std::string* ended, bool* failed) {
  std::vector<ProposalPool::Finished> finished = pool_.TakeFinished(campaign.id());
  for (auto& f : finished) {
    auto candidate_id = TakeAnswer(campaign, f);
    if (!candidate_id.ok()) return candidate_id.status();
    if (*candidate_id == 0) continue;
    ++*open_evaluations;
    (*open_by_candidate)[*candidate_id] += 1;
  }
  if (!finished.empty())
    if (auto s = store_->UpdateCampaign(campaign); !s.ok()) return s;
  WhyNoMore(campaign, ended, failed);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Proposals::TakeAnswer(v1::Campaign& campaign,
                                              ProposalPool::Finished& f) {
  const int64_t id = campaign.id();
  const std::string who = absl::StrCat("thread ", f.thread_index, ": llm ");
  if (!f.result.ok()) {
    if (absl::IsCancelled(f.result.status())) return 0;
    // The proposer could not run at all (not an endpoint failure).
    campaign.set_llm_failed_requests(campaign.llm_failed_requests() + 1);
    pool_.RecordRequest(id, /*failed=*/true);
    events_->Emit(id, absl::StrCat(who, "proposal failed: ", f.result.status().message()));
    return 0;
  }
  proposers::Proposal& p = *f.result;
  campaign.set_llm_prompt_tokens(campaign.llm_prompt_tokens() + p.usage.prompt_tokens);
  campaign.set_llm_completion_tokens(campaign.llm_completion_tokens() +
                                     p.usage.completion_tokens);
  campaign.set_llm_cost_usd(campaign.llm_cost_usd() + p.usage.cost_usd);
  campaign.set_llm_requests(campaign.llm_requests() + p.usage.requests);
  campaign.set_llm_retries(campaign.llm_retries() + p.usage.retries);
  campaign.set_llm_failed_requests(campaign.llm_failed_requests() + p.usage.failed_requests);
  metrics_->LlmUsage(id, p.usage);
  pool_.RecordRequest(id, p.usage.failed_requests > 0);
  const std::string retried =
      p.usage.retries > 0 ? absl::StrCat(" after ", p.usage.retries, " retries") : "";
  if (!p.answer.ok()) {
    const bool malformed = absl::IsInvalidArgument(p.answer);
    if (malformed) {
      campaign.set_llm_malformed(campaign.llm_malformed() + 1);
      pool_.SetAnswerProblem(id, f.thread_id, std::string(p.answer.message()));
    }
    metrics_->LlmAnswer(malformed ? "malformed" : "failed");
    events_->Emit(id, absl::StrCat(who, malformed ? "answer rejected" : "request failed",
                                   retried, " (", p.usage.model,
                                   "): ", p.answer.message().substr(0, 300)));
    return 0;
  }
  pool_.SetAnswerProblem(id, f.thread_id, "");
  const std::string description = p.description;
  auto candidate_id = AddCandidate(campaign, f.thread_id, f.parent_id, std::move(p));
  if (!candidate_id.ok()) return candidate_id.status();
  if (*candidate_id == 0) {
    campaign.set_llm_duplicates(campaign.llm_duplicates() + 1);
    pool_.SetAnswerProblem(
        id, f.thread_id, "It gave a candidate that was already evaluated; try something new.");
    metrics_->LlmAnswer("duplicate");
    events_->Emit(id, absl::StrCat(who, "answer duplicates an earlier candidate", retried, ": ",
                                   description));
    return 0;
  }
  metrics_->LlmAnswer("candidate");
  events_->Emit(id, absl::StrCat(who, "proposed #", *candidate_id, retried,
                                 absl::StrFormat(" in %.1fs: ", f.seconds), description));
  return candidate_id;
}

void Proposals::WhyNoMore(const v1::Campaign& campaign, std::string* ended, bool* failed) {
  // Spend and endpoint health decide whether more requests may go out.
  const v1::LlmSettings& settings = campaign.spec().llm();
  if (settings.max_cost_usd() > 0 && campaign.llm_cost_usd() >= settings.max_cost_usd()) {
    *ended = absl::StrFormat("LLM cost cap reached ($%.4f of $%.4f)", campaign.llm_cost_usd(),
                             settings.max_cost_usd());
    return;
  }
  const int max_failures = std::max(5, 2 * std::max(1, settings.max_concurrency()));
  const int failures_in_a_row = pool_.FailuresInARow(campaign.id());
  if (failures_in_a_row >= max_failures) {
    *ended = absl::StrCat("the LLM endpoint failed ", failures_in_a_row,
                          " requests in a row (see the campaign's events)");
    *failed = true;
    return;
  }
  auto proposer = pool_.ProposerFor(campaign, llm_endpoints_.get());
  if (!proposer.ok()) {
    *ended = absl::StrCat("the llm proposer cannot run: ", proposer.status().message());
    *failed = true;
  }
}

}  // namespace ratchet::coordinator
