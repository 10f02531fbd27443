// `evolve`: mutation and crossover over declared knobs, steered by experience.
//
// Mutation changes one knob (sometimes two) of the parent. Which knob, and which
// new value, is weighted by what the campaign has seen: a (knob, value) pair
// that appeared in candidates scoring above their parent is favoured, one that
// appeared only in failures is disfavoured. Crossover takes each knob from the
// parent or from the best candidate of another thread.
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "coordinator/proposers/builtin.h"

namespace ratchet::proposers {
namespace {

using KnobValueKey = std::pair<std::string, std::string>;

// Mean score of the candidates that had knob=value, from history.
std::map<KnobValueKey, std::pair<double, int>> LearnFromHistory(
    const std::vector<v1::Candidate>& history) {
  std::map<KnobValueKey, std::pair<double, int>> stats;
  for (const auto& c : history) {
    if (c.score() < 0) continue;
    for (const auto& [name, value] : c.solution().knobs()) {
      auto& s = stats[{name, value}];
      s.first += c.score();
      s.second += 1;
    }
  }
  return stats;
}

size_t WeightedPick(const std::vector<double>& weights, std::mt19937_64* rng) {
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  return pick(*rng);
}

class EvolveProposer : public Proposer {
 public:
  absl::StatusOr<Proposal> Propose(const ProposalContext& ctx) override {
    const KnobSpace& space = *ctx.space;
    Proposal out;
    out.solution = ctx.parent->solution();
    if (space.knobs.empty())
      return absl::FailedPreconditionError("the solution declares no knobs to evolve");
    std::uniform_real_distribution<double> coin(0.0, 1.0);

    const v1::Candidate* donor = BestOfOtherThreads(ctx);
    if (donor != nullptr && coin(*ctx.rng) < 0.2) {
      for (const Knob& knob : space.knobs) {
        auto it = donor->solution().knobs().find(knob.name);
        if (it != donor->solution().knobs().end() && coin(*ctx.rng) < 0.5)
          (*out.solution.mutable_knobs())[knob.name] = it->second;
      }
    }
    // Always mutate at least one knob, so a crossover that changed nothing
    // still moves.
    auto stats = LearnFromHistory(*ctx.history);
    double parent_score = std::max(ctx.parent->score(), 1e-6);
    // Distinct knobs, so a second mutation cannot undo the first.
    std::vector<size_t> order(space.knobs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), *ctx.rng);
    size_t mutations = std::min<size_t>(order.size(), coin(*ctx.rng) < 0.3 ? 2 : 1);
    for (size_t m = 0; m < mutations; ++m) {
      const Knob& knob = space.knobs[order[m]];
      const std::string current = out.solution.knobs().at(knob.name);
      std::vector<const std::string*> options;
      std::vector<double> weights;
      for (const std::string& choice : knob.choices) {
        if (choice == current) continue;
        double w = 1.0;
        auto s = stats.find({knob.name, choice});
        if (s != stats.end() && s->second.second > 0) {
          double mean = s->second.first / s->second.second;
          // Favour values that scored above the parent, never exclude any.
          w = std::clamp(mean / parent_score, 0.25, 4.0);
        }
        options.push_back(&choice);
        weights.push_back(w);
      }
      if (options.empty()) continue;
      (*out.solution.mutable_knobs())[knob.name] = *options[WeightedPick(weights, ctx.rng)];
    }
    out.description = DescribeKnobChange(ctx.parent->solution(), out.solution);
    return out;
  }

 private:
  static const v1::Candidate* BestOfOtherThreads(const ProposalContext& ctx) {
    const v1::Candidate* best = nullptr;
    for (const auto& c : *ctx.history) {
      if (c.thread_id() == ctx.parent->thread_id() || c.score() < 0) continue;
      if (c.status() != "accepted") continue;
      if (best == nullptr || c.score() > best->score()) best = &c;
    }
    return best;
  }
};

class RandomProposer : public Proposer {
 public:
  absl::StatusOr<Proposal> Propose(const ProposalContext& ctx) override {
    Proposal out;
    out.solution = ctx.parent->solution();
    for (const Knob& knob : ctx.space->knobs) {
      std::uniform_int_distribution<size_t> pick(0, knob.choices.size() - 1);
      (*out.solution.mutable_knobs())[knob.name] = knob.choices[pick(*ctx.rng)];
    }
    out.description = DescribeKnobChange(ctx.parent->solution(), out.solution);
    return out;
  }
};

}  // namespace

std::unique_ptr<Proposer> NewEvolveProposer() { return std::make_unique<EvolveProposer>(); }
std::unique_ptr<Proposer> NewRandomProposer() { return std::make_unique<RandomProposer>(); }

}  // namespace ratchet::proposers
