#include "coordinator/proposal_pool.h"

#include <chrono>

namespace ratchet::coordinator {

ProposalPool::~ProposalPool() {
  std::list<Runner> runners;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, state] : campaigns_) state.cancelled->store(true);
    runners.swap(runners_);
  }
  for (auto& r : runners) r.thread.join();
}

absl::StatusOr<std::shared_ptr<proposers::Proposer>> ProposalPool::ProposerFor(
    const v1::Campaign& campaign, const llm::LlmEndpoints* llm_endpoints) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = campaigns_.find(campaign.id());
    if (it != campaigns_.end() && it->second.proposer != nullptr) return it->second.proposer;
  }
  auto made = proposers::MakeProposer(campaign.spec(), llm_endpoints);
  if (!made.ok()) return made.status();
  std::shared_ptr<proposers::Proposer> proposer = std::move(*made);
  std::lock_guard<std::mutex> lock(mu_);
  CampaignState& state = campaigns_[campaign.id()];
  if (state.proposer == nullptr) state.proposer = proposer;
  return state.proposer;
}

void ProposalPool::ReapLocked() {
  for (auto it = runners_.begin(); it != runners_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = runners_.erase(it);
    } else {
      ++it;
    }
  }
}

void ProposalPool::Start(Request request) {
  std::lock_guard<std::mutex> lock(mu_);
  ReapLocked();
  CampaignState& state = campaigns_[request.campaign_id];
  state.in_flight_by_thread[request.thread_id] += 1;
  std::shared_ptr<proposers::Proposer> proposer = state.proposer;
  std::shared_ptr<std::atomic<bool>> cancelled = state.cancelled;
  std::string problem = state.answer_problem_by_thread[request.thread_id];
  auto done = std::make_shared<std::atomic<bool>>(false);
  Runner runner;
  runner.done = done;
  runner.thread = std::thread([this, request = std::move(request), proposer, cancelled, problem,
                               done]() mutable {
    const auto start = std::chrono::steady_clock::now();
    std::mt19937_64 rng(request.seed);
    proposers::ProposalContext ctx;
    ctx.parent = &request.parent;
    ctx.space = &request.space;
    ctx.history = &request.history;
    ctx.thread_index = request.thread_index;
    ctx.rng = &rng;
    ctx.problem = &request.problem;
    ctx.device = &request.device;
    ctx.recent_attempts = &request.attempts;
    ctx.inspirations = &request.inspirations;
    ctx.thread_proposals = request.thread_proposals;
    ctx.lessons = &request.lessons;
    ctx.previous_answer_problem = problem;
    ctx.cancelled = cancelled.get();
    Finished f;
    f.campaign_id = request.campaign_id;
    f.thread_id = request.thread_id;
    f.thread_index = request.thread_index;
    f.parent_id = request.parent.id();
    f.result = proposer != nullptr ? proposer->Propose(ctx)
                                   : absl::FailedPreconditionError("no proposer");
    f.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = campaigns_.find(f.campaign_id);
      // A forgotten campaign's state is a new one (or none): drop the answer.
      if (it != campaigns_.end() && it->second.cancelled == cancelled)
        it->second.finished.push_back(std::move(f));
    }
    done->store(true);
  });
  runners_.push_back(std::move(runner));
}

std::vector<ProposalPool::Finished> ProposalPool::TakeFinished(int64_t campaign_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ReapLocked();
  auto it = campaigns_.find(campaign_id);
  if (it == campaigns_.end()) return {};
  std::vector<Finished> out;
  out.swap(it->second.finished);
  for (const auto& f : out) {
    int& n = it->second.in_flight_by_thread[f.thread_id];
    if (n > 0) --n;
  }
  return out;
}

int ProposalPool::InFlight(int64_t campaign_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = campaigns_.find(campaign_id);
  if (it == campaigns_.end()) return 0;
  int n = 0;
  for (const auto& [thread, count] : it->second.in_flight_by_thread) n += count;
  return n;
}

int ProposalPool::InFlight(int64_t campaign_id, int64_t thread_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = campaigns_.find(campaign_id);
  if (it == campaigns_.end()) return 0;
  auto t = it->second.in_flight_by_thread.find(thread_id);
  return t == it->second.in_flight_by_thread.end() ? 0 : t->second;
}

void ProposalPool::Forget(int64_t campaign_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = campaigns_.find(campaign_id);
  if (it == campaigns_.end()) return;
  it->second.cancelled->store(true);
  campaigns_.erase(it);
  ReapLocked();
}

void ProposalPool::SetAnswerProblem(int64_t campaign_id, int64_t thread_id,
                                    const std::string& problem) {
  std::lock_guard<std::mutex> lock(mu_);
  campaigns_[campaign_id].answer_problem_by_thread[thread_id] = problem;
}

void ProposalPool::RecordRequest(int64_t campaign_id, bool failed) {
  std::lock_guard<std::mutex> lock(mu_);
  int& n = campaigns_[campaign_id].consecutive_failures;
  n = failed ? n + 1 : 0;
}

int ProposalPool::FailuresInARow(int64_t campaign_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = campaigns_.find(campaign_id);
  return it == campaigns_.end() ? 0 : it->second.consecutive_failures;
}

}  // namespace ratchet::coordinator
