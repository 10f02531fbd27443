// `grid` and `replay`: proposers that learn nothing, to measure what the
// research adds. Both skip what the campaign has already tried (by content
// hash, across threads) and report OutOfRange once nothing new is left.
#include <set>

#include "absl/strings/str_cat.h"
#include "coordinator/proposers/builtin.h"

namespace ratchet::proposers {
namespace {

std::set<std::string> SeenHashes(const std::vector<v1::Candidate>& history) {
  std::set<std::string> seen;
  for (const auto& c : history) seen.insert(ContentHash(c.solution()));
  return seen;
}

class GridProposer : public Proposer {
 public:
  absl::StatusOr<Proposal> Propose(const ProposalContext& ctx) override {
    const KnobSpace& space = *ctx.space;
    if (space.knobs.empty())
      return absl::OutOfRangeError("grid: the solution declares no knobs");
    const std::set<std::string> seen = SeenHashes(*ctx.history);
    // Mixed-radix counting, first knob fastest; the space is small enough to
    // walk from the start each time (the caller stops at exhaustion).
    std::vector<size_t> digit(space.knobs.size(), 0);
    while (true) {
      Proposal out;
      out.solution = ctx.parent->solution();
      for (size_t k = 0; k < space.knobs.size(); ++k)
        (*out.solution.mutable_knobs())[space.knobs[k].name] = space.knobs[k].choices[digit[k]];
      if (!seen.count(ContentHash(out.solution))) {
        out.description = absl::StrCat("grid: ", DescribeKnobChange(ctx.parent->solution(),
                                                                    out.solution));
        return out;
      }
      size_t k = 0;
      for (; k < digit.size(); ++k) {
        if (++digit[k] < space.knobs[k].choices.size()) break;
        digit[k] = 0;
      }
      if (k == digit.size()) return absl::OutOfRangeError("grid: every point was tried");
    }
  }
};

class ReplayProposer : public Proposer {
 public:
  explicit ReplayProposer(std::vector<std::map<std::string, std::string>> settings)
      : settings_(std::move(settings)) {}

  absl::StatusOr<Proposal> Propose(const ProposalContext& ctx) override {
    const std::set<std::string> seen = SeenHashes(*ctx.history);
    for (size_t i = 0; i < settings_.size(); ++i) {
      Proposal out;
      out.solution = ctx.parent->solution();
      out.solution.clear_knobs();
      out.solution.mutable_knobs()->insert(settings_[i].begin(), settings_[i].end());
      if (seen.count(ContentHash(out.solution))) continue;
      out.description = absl::StrCat("replay ", i + 1, "/", settings_.size(), ": ",
                                     DescribeKnobChange(ctx.parent->solution(), out.solution));
      return out;
    }
    return absl::OutOfRangeError("replay: every listed setting was tried");
  }

 private:
  const std::vector<std::map<std::string, std::string>> settings_;
};

}  // namespace

std::unique_ptr<Proposer> NewGridProposer() { return std::make_unique<GridProposer>(); }

std::unique_ptr<Proposer> NewReplayProposer(
    std::vector<std::map<std::string, std::string>> settings) {
  return std::make_unique<ReplayProposer>(std::move(settings));
}

}  // namespace ratchet::proposers
