// `evolve`: mutation and crossover over declared knobs, steered by experience.
//
// Two kinds of move, both weighted by what is known: a (knob, value) pair that
// appeared in candidates scoring above the parent is favoured, one that
// appeared only in failures is disfavoured, and lessons (this campaign's or,
// when shared, other campaigns' of the op type) scale each move by its
// measured effect.
//  - A sample draws every knob afresh from those weights. A thread's first
//    proposals are samples (an island's initial population: before anything
//    is known they are uniform, as `random` is), and a quarter of the later
//    ones, so that a thread keeps jumping to other regions. Where each
//    evaluation is a training run (costly_evaluations), no first samples and
//    one in twenty later: a tuned recipe is improved one change at a time.
//  - A mutation changes one knob (sometimes two) of the parent, a tournament
//    winner of the thread's archive; sometimes after a crossover with the best
//    accepted candidate of another thread.
#include <algorithm>
#include <map>
#include <optional>

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

// Mean measured effect (relative score change against the parent) of moving
// knob to value, from lessons; a move from the same value counts double, as
// it is the move about to be made.
std::map<KnobValueKey, std::pair<double, double>> LearnFromLessons(
    const std::vector<v1::Lesson>* lessons, const v1::Solution& parent) {
  std::map<KnobValueKey, std::pair<double, double>> effects;
  if (lessons == nullptr) return effects;
  for (const auto& l : *lessons) {
    if (l.knob().empty()) continue;
    auto current = parent.knobs().find(l.knob());
    const double weight =
        current != parent.knobs().end() && current->second == l.from_value() ? 2.0 : 1.0;
    auto& e = effects[{l.knob(), l.to_value()}];
    e.first += weight * std::clamp(l.effect(), -1.0, 3.0);
    e.second += weight;
  }
  return effects;
}

size_t WeightedPick(const std::vector<double>& weights, std::mt19937_64* rng) {
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  return pick(*rng);
}

// How much likelier a move to knob=choice is than a move about which nothing
// is known: the mean score of the candidates that had it against the parent's
// score (clamped, so that no value is ever excluded), times the lessons'
// factor.
double ValueWeight(const std::map<KnobValueKey, std::pair<double, int>>& stats,
                   const std::map<KnobValueKey, std::pair<double, double>>& effects,
                   const std::string& knob, const std::string& choice, double parent_score) {
  double w = 1.0;
  auto s = stats.find({knob, choice});
  if (s != stats.end() && s->second.second > 0)
    w = std::clamp(s->second.first / s->second.second / parent_score, 0.25, 4.0);
  // Experience: moves that helped before (here or in other campaigns of the
  // op type) are tried sooner, moves that hurt later.
  auto e = effects.find({knob, choice});
  if (e != effects.end() && e->second.second > 0)
    w *= std::clamp(1.0 + 2.0 * e->second.first / e->second.second, 0.2, 5.0);
  return w;
}

// The proposals of a thread that are samples before it mutates anything, and
// the share of samples after that; and the same where evaluations are costly.
constexpr int kSeedSamples = 2;
constexpr double kSampleShare = 0.25;
constexpr int kCostlySeedSamples = 0;
constexpr double kCostlySampleShare = 0.05;

class EvolveProposer : public Proposer {
 public:
  absl::StatusOr<Proposal> Propose(const ProposalContext& ctx) override {
    const KnobSpace& space = *ctx.space;
    Proposal out;
    out.solution = ctx.parent->solution();
    if (space.knobs.empty())
      return absl::FailedPreconditionError("the solution declares no knobs to evolve");
    std::uniform_real_distribution<double> coin(0.0, 1.0);

    // A scheduled merge: the parent and another thread's incumbent, knob by
    // knob; evaluated like any other candidate.
    if (ctx.merge_every > 0 && ctx.inspirations != nullptr && !ctx.inspirations->empty() &&
        (ctx.thread_proposals + 1) % ctx.merge_every == 0) {
      const v1::Candidate& other = ctx.inspirations->front();
      if (auto merged = Merge(space, *ctx.parent, other, ctx.rng); merged.has_value()) {
        out.solution = *merged;
        out.merged_with = other.id();
        out.description = absl::StrCat("merge with #", other.id(), ": ",
                                       DescribeKnobChange(ctx.parent->solution(), out.solution));
        return out;
      }
    }

    auto stats = LearnFromHistory(*ctx.history);
    auto effects = LearnFromLessons(ctx.lessons, out.solution);
    const double parent_score = std::max(ctx.parent->score(), 1e-6);
    auto pick_value = [&](const Knob& knob, const std::string& except) -> const std::string* {
      std::vector<const std::string*> options;
      std::vector<double> weights;
      for (const std::string& choice : knob.choices) {
        if (choice == except) continue;
        options.push_back(&choice);
        weights.push_back(ValueWeight(stats, effects, knob.name, choice, parent_score));
      }
      return options.empty() ? nullptr : options[WeightedPick(weights, ctx.rng)];
    };

    // A sample equal to the parent becomes a mutation of it instead.
    const int seed_samples = ctx.costly_evaluations ? kCostlySeedSamples : kSeedSamples;
    const double sample_share = ctx.costly_evaluations ? kCostlySampleShare : kSampleShare;
    if (ctx.thread_proposals < seed_samples || coin(*ctx.rng) < sample_share) {
      for (const Knob& knob : space.knobs)
        (*out.solution.mutable_knobs())[knob.name] = *pick_value(knob, "");
      if (ContentHash(out.solution) != ContentHash(ctx.parent->solution())) {
        out.description = absl::StrCat("sample: ", DescribeKnobChange(ctx.parent->solution(),
                                                                      out.solution));
        return out;
      }
    }

    const v1::Candidate* donor = BestOfOtherThreads(ctx);
    if (donor != nullptr && coin(*ctx.rng) < 0.2) {
      for (const Knob& knob : space.knobs) {
        auto it = donor->solution().knobs().find(knob.name);
        if (it != donor->solution().knobs().end() && coin(*ctx.rng) < 0.5)
          (*out.solution.mutable_knobs())[knob.name] = it->second;
      }
    }
    // Always mutate at least one knob, so a crossover that changed nothing
    // still moves; distinct knobs, so a second mutation cannot undo the first.
    std::vector<size_t> order(space.knobs.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), *ctx.rng);
    size_t mutations = std::min<size_t>(order.size(), coin(*ctx.rng) < 0.3 ? 2 : 1);
    for (size_t m = 0; m < mutations; ++m) {
      const Knob& knob = space.knobs[order[m]];
      const std::string* value = pick_value(knob, out.solution.knobs().at(knob.name));
      if (value != nullptr) (*out.solution.mutable_knobs())[knob.name] = *value;
    }
    out.description = DescribeKnobChange(ctx.parent->solution(), out.solution);
    return out;
  }

 private:
  // Each knob from either side; nullopt when the two agree on every knob. A
  // child equal to one side takes one differing knob from the other.
  static std::optional<v1::Solution> Merge(const KnobSpace& space, const v1::Candidate& a,
                                           const v1::Candidate& b, std::mt19937_64* rng) {
    std::vector<const Knob*> differing;
    for (const Knob& knob : space.knobs) {
      auto ia = a.solution().knobs().find(knob.name);
      auto ib = b.solution().knobs().find(knob.name);
      if (ia == a.solution().knobs().end() || ib == b.solution().knobs().end()) continue;
      if (ia->second != ib->second) differing.push_back(&knob);
    }
    if (differing.empty()) return std::nullopt;
    v1::Solution child = a.solution();
    std::uniform_int_distribution<int> side(0, 1);
    int from_b = 0;
    for (const Knob* knob : differing)
      if (side(*rng) == 1) {
        (*child.mutable_knobs())[knob->name] = b.solution().knobs().at(knob->name);
        ++from_b;
      }
    const bool all_b = from_b == static_cast<int>(differing.size());
    if (from_b == 0 || all_b) {
      std::uniform_int_distribution<size_t> pick(0, differing.size() - 1);
      const std::string& name = differing[pick(*rng)]->name;
      (*child.mutable_knobs())[name] =
          all_b ? a.solution().knobs().at(name) : b.solution().knobs().at(name);
      if (differing.size() == 1) return std::nullopt;  // no child differs from both
    }
    return child;
  }

  static const v1::Candidate* BestOfOtherThreads(const ProposalContext& ctx) {
    const v1::Candidate* best = nullptr;
    for (const auto& c : *ctx.history) {
      if (c.thread_id() == ctx.parent->thread_id() || c.score() < 0) continue;
      if (c.status() != v1::CANDIDATE_ACCEPTED) continue;
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

const v1::Candidate* SelectParent(const std::vector<const v1::Candidate*>& archive,
                                  const v1::Candidate* incumbent, int tournament_size,
                                  std::mt19937_64* rng) {
  if (tournament_size <= 0) tournament_size = 3;
  if (tournament_size == 1 || archive.empty()) return incumbent;
  // The incumbent is always an entrant, so it is never forgotten.
  std::uniform_int_distribution<size_t> pick(0, archive.size());
  const v1::Candidate* best = nullptr;
  for (int i = 0; i < tournament_size; ++i) {
    size_t k = pick(*rng);
    const v1::Candidate* c = k == archive.size() ? incumbent : archive[k];
    if (best == nullptr || c->score() > best->score()) best = c;
  }
  return best;
}

std::unique_ptr<Proposer> NewEvolveProposer() { return std::make_unique<EvolveProposer>(); }
std::unique_ptr<Proposer> NewRandomProposer() { return std::make_unique<RandomProposer>(); }

}  // namespace ratchet::proposers
