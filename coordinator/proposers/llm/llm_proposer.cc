#include "coordinator/proposers/llm/llm_proposer.h"

#include "absl/strings/str_cat.h"
#include "coordinator/proposers/llm/edit_format.h"
#include "spec/defaults.h"

namespace ratchet::llm {
namespace {

constexpr size_t kMaxIdeaChars = 200;
// What of a rejected answer reaches the event log (and the next prompt).
constexpr size_t kMaxAnswerProblemBytes = 300;
constexpr double kCharsPerToken = 4.0;  // rough, for servers that report no usage

int64_t EstimateTokens(size_t chars) {
  return static_cast<int64_t>(static_cast<double>(chars) / kCharsPerToken) + 1;
}

// The other thread's incumbent to merge with: the best one that differs.
const v1::Candidate* MergePartner(const proposers::ProposalContext& ctx) {
  if (ctx.inspirations == nullptr) return nullptr;
  const std::string mine = proposers::ContentHash(ctx.parent->solution());
  const v1::Candidate* best = nullptr;
  for (const auto& c : *ctx.inspirations) {
    if (c.score() < 0 || proposers::ContentHash(c.solution()) == mine) continue;
    if (best == nullptr || c.score() > best->score()) best = &c;
  }
  return best;
}

}  // namespace

v1::LlmSettings WithDefaults(v1::LlmSettings s) {
  spec::ApplyLlmDefaults(&s);
  return s;
}

double CostUsd(const v1::LlmModel& model, int64_t prompt_tokens, int64_t completion_tokens) {
  return prompt_tokens / 1000.0 * model.prompt_price_per_1k() +
         completion_tokens / 1000.0 * model.completion_price_per_1k();
}

absl::StatusOr<std::unique_ptr<LlmProposer>> LlmProposer::Create(
    const v1::LlmSettings& input, const LlmEndpoints* endpoints) {
  if (absl::Status s = ValidateLlmSettings(input); !s.ok()) return s;
  v1::LlmSettings settings = WithDefaults(input);
  static const LlmEndpoints kNone;
  if (endpoints == nullptr) endpoints = &kNone;
  // The submitter's mistake either way (unknown name, model not allowed).
  auto refused = [](const std::string& where, const absl::Status& s) {
    return absl::InvalidArgumentError(absl::StrCat("llm.", where, ": ", s.message()));
  };
  absl::StatusOr<ResolvedEndpoint> resolved;
  if (settings.models().empty()) {
    resolved = endpoints->Resolve(settings.endpoint(), "");
    if (!resolved.ok()) return refused("endpoint", resolved.status());
    v1::LlmModel* model = settings.add_models();
    model->set_name(resolved->model);
    model->set_weight(1);
  }
  for (int i = 0; i < settings.models_size(); ++i) {
    resolved = endpoints->Resolve(settings.endpoint(), settings.models(i).name());
    if (!resolved.ok())
      return refused(absl::IsNotFound(resolved.status()) ? "endpoint"
                                                          : absl::StrCat("models[", i, "]"),
                     resolved.status());
  }
  ChatClientOptions options;
  options.base_url = resolved->base_url;
  options.api_key = resolved->api_key;
  options.timeout_seconds = settings.timeout_seconds();
  options.max_retries = settings.max_retries();
  auto limit = std::make_shared<ConcurrencyLimit>(settings.max_concurrency());
  auto client = std::make_unique<ChatClient>(std::move(options), std::move(limit));
  return std::unique_ptr<LlmProposer>(new LlmProposer(std::move(settings), std::move(client)));
}

LlmProposer::LlmProposer(v1::LlmSettings settings, std::unique_ptr<ChatClient> client)
    : settings_(std::move(settings)), client_(std::move(client)) {}

absl::StatusOr<proposers::Proposal> LlmProposer::Propose(
    const proposers::ProposalContext& ctx) {
  std::vector<double> weights;
  for (const auto& m : settings_.models()) weights.push_back(m.weight());
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  const v1::LlmModel& model = settings_.models(static_cast<int>(pick(*ctx.rng)));

  const v1::Candidate* partner = nullptr;
  if (settings_.merge_every() > 0 && (ctx.thread_proposals + 1) % settings_.merge_every() == 0)
    partner = MergePartner(ctx);

  ChatRequest request;
  request.model = model.name();
  request.temperature = settings_.temperature();
  request.max_tokens = settings_.max_tokens();
  request.messages = partner != nullptr ? BuildMergePrompt(ctx, *partner, limits_)
                                        : BuildProposalPrompt(ctx, limits_);

  proposers::Proposal out;
  out.usage.model = model.name();
  out.merged_with = partner != nullptr ? partner->id() : 0;
  CallStats stats;
  absl::StatusOr<ChatResponse> response = client_->Complete(request, ctx.cancelled, &stats);
  out.usage.retries = static_cast<int>(stats.retry_reasons.size());
  if (!response.ok()) {
    if (absl::IsCancelled(response.status())) return response.status();
    out.usage.failed_requests = 1;
    out.answer = absl::Status(response.status().code(),
                              ForLog(std::string(response.status().message()),
                                     kMaxAnswerProblemBytes));
    return out;
  }
  out.usage.requests = 1;
  out.usage.prompt_tokens = response->prompt_tokens;
  out.usage.completion_tokens = response->completion_tokens;
  if (!response->usage_reported) {
    size_t prompt_chars = 0;
    for (const auto& m : request.messages) prompt_chars += m.content.size();
    out.usage.prompt_tokens = EstimateTokens(prompt_chars);
    out.usage.completion_tokens = EstimateTokens(response->content.size());
    out.usage.estimated = true;
  }
  out.usage.cost_usd = CostUsd(model, out.usage.prompt_tokens, out.usage.completion_tokens);

  const std::string cut_off =
      response->finish_reason == "length" ? " (the answer was cut off at max_tokens)" : "";
  absl::StatusOr<ParsedAnswer> parsed = ParseAnswer(response->content);
  // Parse errors quote the answer; what is logged of it is bounded and clean.
  if (!parsed.ok()) {
    out.answer = absl::InvalidArgumentError(
        ForLog(absl::StrCat("malformed answer: ", parsed.status().message(), cut_off),
               kMaxAnswerProblemBytes));
    return out;
  }
  absl::StatusOr<v1::Solution> solution = ApplyAnswer(*parsed, ctx.parent->solution(), *ctx.space);
  if (!solution.ok()) {
    out.answer = absl::InvalidArgumentError(
        ForLog(absl::StrCat("answer does not apply: ", solution.status().message(), cut_off),
               kMaxAnswerProblemBytes));
    return out;
  }
  out.solution = *std::move(solution);
  std::string idea = ForLog(parsed->idea, kMaxIdeaChars);
  if (idea.empty()) idea = "(no IDEA line)";
  const std::string change = proposers::DescribeKnobChange(ctx.parent->solution(), out.solution);
  out.description = partner != nullptr
                        ? absl::StrCat("merge with #", partner->id(), " [", model.name(),
                                       "]: ", idea, " (", change, ")")
                        : absl::StrCat("[", model.name(), "] ", idea, " (", change, ")");
  return out;
}

}  // namespace ratchet::llm
