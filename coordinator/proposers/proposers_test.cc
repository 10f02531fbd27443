#include <map>
#include <random>

#include "coordinator/proposers/knob_space.h"
#include "coordinator/proposers/proposer.h"
#include "gtest/gtest.h"

namespace ratchet::proposers {
namespace {

v1::Solution MakeSolution(const std::string& knobs_json) {
  v1::Solution s;
  (*s.mutable_files())["solution.json"] = R"({"name":"x","knobs":)" + knobs_json + "}";
  (*s.mutable_files())["kernel.cc"] = "int x;";
  return s;
}

const char kKnobs[] =
    R"({"BLOCK":{"choices":[16,32,64],"default":32},"VARIANT":{"choices":["a","b"]}})";

TEST(KnobSpace, ParsesChoicesAndDefaults) {
  auto space = ParseKnobSpace(MakeSolution(kKnobs));
  ASSERT_TRUE(space.ok()) << space.status();
  ASSERT_EQ(space->knobs.size(), 2u);
  const Knob* block = space->Find("BLOCK");
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(block->choices, (std::vector<std::string>{"16", "32", "64"}));
  EXPECT_EQ(block->default_value, "32");
  EXPECT_EQ(space->Find("VARIANT")->default_value, "a");  // first choice when none given
}

TEST(KnobSpace, RejectsMalformedDeclarations) {
  EXPECT_FALSE(ParseKnobSpace(MakeSolution(R"({"B":{"choices":[]}})")).ok());
  EXPECT_FALSE(ParseKnobSpace(MakeSolution(R"({"B":{"choices":[1],"default":2}})")).ok());
  EXPECT_FALSE(ParseKnobSpace(MakeSolution(R"([1,2])")).ok());
  v1::Solution no_manifest;
  EXPECT_FALSE(ParseKnobSpace(no_manifest).ok());
}

TEST(KnobSpace, NormalizeMakesDefaultsExplicitAndRejectsUnknownValues) {
  auto space = ParseKnobSpace(MakeSolution(kKnobs));
  ASSERT_TRUE(space.ok());
  v1::Solution unset = MakeSolution(kKnobs);
  v1::Solution explicit_default = MakeSolution(kKnobs);
  (*explicit_default.mutable_knobs())["BLOCK"] = "32";
  ASSERT_TRUE(NormalizeKnobs(*space, &unset).ok());
  ASSERT_TRUE(NormalizeKnobs(*space, &explicit_default).ok());
  EXPECT_EQ(ContentHash(unset), ContentHash(explicit_default));

  v1::Solution bad = MakeSolution(kKnobs);
  (*bad.mutable_knobs())["BLOCK"] = "48";
  EXPECT_FALSE(NormalizeKnobs(*space, &bad).ok());
  v1::Solution undeclared = MakeSolution(kKnobs);
  (*undeclared.mutable_knobs())["NOPE"] = "1";
  EXPECT_FALSE(NormalizeKnobs(*space, &undeclared).ok());
}

TEST(KnobSpace, HashSeparatesFilesAndKnobs) {
  v1::Solution a = MakeSolution(kKnobs);
  v1::Solution b = a;
  (*b.mutable_knobs())["BLOCK"] = "64";
  v1::Solution c = a;
  (*c.mutable_files())["kernel.cc"] = "int y;";
  EXPECT_NE(ContentHash(a), ContentHash(b));
  EXPECT_NE(ContentHash(a), ContentHash(c));
  EXPECT_EQ(ContentHash(a), "d460e3d537ccacaa");  // stable across processes and builds
  EXPECT_EQ(DescribeKnobChange(a, b), "BLOCK -\u219264");
}

class ProposerTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ProposerTest, ProposesValidChangedCandidates) {
  auto proposer = MakeProposer(GetParam());
  ASSERT_TRUE(proposer.ok());
  v1::Candidate parent;
  *parent.mutable_solution() = MakeSolution(kKnobs);
  auto space = ParseKnobSpace(parent.solution());
  ASSERT_TRUE(space.ok());
  ASSERT_TRUE(NormalizeKnobs(*space, parent.mutable_solution()).ok());
  parent.set_score(0.3);
  std::vector<v1::Candidate> history;
  std::mt19937_64 rng(1);
  int changed = 0;
  for (int i = 0; i < 50; ++i) {
    ProposalContext ctx{&parent, &*space, &history, 0, &rng};
    auto p = (*proposer)->Propose(ctx);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(NormalizeKnobs(*space, &p->solution).ok());
    if (ContentHash(p->solution) != ContentHash(parent.solution())) ++changed;
  }
  // evolve always changes something; random can land on the parent by chance.
  EXPECT_GE(changed, GetParam() == "evolve" ? 50 : 30);
}

INSTANTIATE_TEST_SUITE_P(All, ProposerTest, ::testing::Values("evolve", "random"));

TEST(Evolve, ExperienceFavoursValuesThatScoredWell) {
  auto proposer = MakeProposer("evolve");
  ASSERT_TRUE(proposer.ok());
  v1::Candidate parent;
  *parent.mutable_solution() = MakeSolution(R"({"B":{"choices":[1,2,3,4,5,6,7,8]}})");
  auto space = ParseKnobSpace(parent.solution());
  ASSERT_TRUE(NormalizeKnobs(*space, parent.mutable_solution()).ok());
  parent.set_score(0.2);
  std::vector<v1::Candidate> history;
  for (const char* v : {"2", "3", "4", "5", "6", "7", "8"}) {
    v1::Candidate c = parent;
    (*c.mutable_solution()->mutable_knobs())["B"] = v;
    c.set_score(std::string(v) == "8" ? 0.8 : 0.05);
    history.push_back(c);
  }
  std::mt19937_64 rng(3);
  int picked_good = 0;
  const int n = 400;
  for (int i = 0; i < n; ++i) {
    ProposalContext ctx{&parent, &*space, &history, 0, &rng};
    auto p = (*proposer)->Propose(ctx);
    ASSERT_TRUE(p.ok());
    if (p->solution.knobs().at("B") == "8") ++picked_good;
  }
  // Uniform would give 1/7 of the proposals; experience should at least double it.
  EXPECT_GT(picked_good, 2 * n / 7);
}

// Runs `proposer` until it reports OutOfRange, adding each proposal to the
// history as the coordinator would; returns the knob settings in order.
std::vector<std::string> Exhaust(Proposer& proposer, v1::Candidate parent,
                                 const KnobSpace& space) {
  std::vector<v1::Candidate> history = {parent};
  std::vector<std::string> order;
  std::mt19937_64 rng(1);
  for (int i = 0; i < 100; ++i) {
    ProposalContext ctx{&parent, &space, &history, 0, &rng};
    auto p = proposer.Propose(ctx);
    if (absl::IsOutOfRange(p.status())) return order;
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) return order;
    EXPECT_TRUE(NormalizeKnobs(space, &p->solution).ok());
    order.push_back(p->solution.knobs().at("BLOCK") + p->solution.knobs().at("VARIANT"));
    v1::Candidate c;
    *c.mutable_solution() = p->solution;
    history.push_back(c);
  }
  ADD_FAILURE() << "never exhausted";
  return order;
}

v1::Candidate BaselineCandidate() {
  v1::Candidate parent;
  *parent.mutable_solution() = MakeSolution(kKnobs);
  auto space = ParseKnobSpace(parent.solution());
  EXPECT_TRUE(NormalizeKnobs(*space, parent.mutable_solution()).ok());
  return parent;
}

TEST(Grid, EnumeratesEveryPointOnceInAFixedOrder) {
  auto grid = MakeProposer("grid");
  ASSERT_TRUE(grid.ok());
  v1::Candidate parent = BaselineCandidate();  // BLOCK=32, VARIANT=a: tried already
  auto space = ParseKnobSpace(parent.solution());
  // First declared knob fastest; the baseline's point is skipped.
  EXPECT_EQ(Exhaust(**grid, parent, *space),
            (std::vector<std::string>{"16a", "64a", "16b", "32b", "64b"}));
}

TEST(Grid, NoKnobsIsExhaustedAtOnce) {
  auto grid = MakeProposer("grid");
  v1::Candidate parent;
  (*parent.mutable_solution()->mutable_files())["solution.json"] = R"({"name":"x"})";
  auto space = ParseKnobSpace(parent.solution());
  ASSERT_TRUE(space.ok());
  std::vector<v1::Candidate> history;
  std::mt19937_64 rng(1);
  ProposalContext ctx{&parent, &*space, &history, 0, &rng};
  EXPECT_TRUE(absl::IsOutOfRange((*grid)->Propose(ctx).status()));
}

v1::CampaignSpec ReplaySpec(const std::vector<std::map<std::string, std::string>>& list) {
  v1::CampaignSpec spec;
  spec.set_proposer(v1::PROPOSER_REPLAY);
  *spec.mutable_baseline() = MakeSolution(kKnobs);
  for (const auto& knobs : list) {
    auto* setting = spec.add_replay();
    for (const auto& [k, v] : knobs) (*setting->mutable_knobs())[k] = v;
  }
  return spec;
}

TEST(Replay, ProposesTheListInOrderSkippingWhatWasTried) {
  // The second entry is the baseline itself (defaults filled in): skipped.
  auto replay = MakeProposer(ReplaySpec({{{"BLOCK", "64"}},
                                         {{"VARIANT", "a"}},
                                         {{"BLOCK", "16"}, {"VARIANT", "b"}},
                                         {{"BLOCK", "64"}, {"VARIANT", "a"}}}));
  ASSERT_TRUE(replay.ok()) << replay.status();
  v1::Candidate parent = BaselineCandidate();
  auto space = ParseKnobSpace(parent.solution());
  // The fourth repeats the first once defaults are explicit: proposed once.
  EXPECT_EQ(Exhaust(**replay, parent, *space), (std::vector<std::string>{"64a", "16b"}));
}

TEST(Replay, BadSettingsAreRejectedUpFront) {
  auto bad_value = MakeProposer(ReplaySpec({{{"BLOCK", "48"}}}));
  ASSERT_FALSE(bad_value.ok());
  EXPECT_NE(bad_value.status().message().find("replay[0]: knob BLOCK=48 is not one of its choices"),
            std::string::npos)
      << bad_value.status();
  auto undeclared = MakeProposer(ReplaySpec({{{"NOPE", "1"}}}));
  ASSERT_FALSE(undeclared.ok());
  EXPECT_FALSE(MakeProposer(ReplaySpec({})).ok());
  EXPECT_FALSE(MakeProposer("replay").ok());  // needs its list from a spec
}

TEST(Proposer, UnknownNameIsAnError) {
  auto p = MakeProposer("genius");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("unknown proposer"), std::string::npos);
}

}  // namespace
}  // namespace ratchet::proposers

namespace ratchet::proposers {
namespace {

v1::Candidate Scored(int64_t id, double score) {
  v1::Candidate c;
  c.set_id(id);
  c.set_score(score);
  return c;
}

TEST(SelectParent, TournamentFavoursBetterScoresButKeepsOthers) {
  v1::Candidate incumbent = Scored(1, 0.5);
  std::vector<v1::Candidate> pool = {Scored(2, 0.1), Scored(3, 0.3), Scored(4, 0.9)};
  std::vector<const v1::Candidate*> archive;
  for (const auto& c : pool) archive.push_back(&c);
  std::mt19937_64 rng(11);
  std::map<int64_t, int> wins;
  for (int i = 0; i < 4000; ++i) wins[SelectParent(archive, &incumbent, 3, &rng)->id()]++;
  // Size 3 over 4 entrants: the best wins 1-(3/4)^3 = 58%; the worst only
  // when drawn three times, (1/4)^3 = 1.6%.
  EXPECT_NEAR(wins[4] / 4000.0, 0.578, 0.03);
  EXPECT_NEAR(wins[2] / 4000.0, 0.016, 0.01);
  EXPECT_GT(wins[1], 0);
  EXPECT_GT(wins[3], 0);
  // Size 1, or nothing in the archive: always the incumbent.
  EXPECT_EQ(SelectParent(archive, &incumbent, 1, &rng), &incumbent);
  EXPECT_EQ(SelectParent({}, &incumbent, 3, &rng), &incumbent);
}

TEST(Evolve, ScheduledMergeCombinesTwoIncumbents) {
  const char knobs[] =
      R"({"A":{"choices":[1,2]},"B":{"choices":[1,2]},"C":{"choices":[1,2]},"D":{"choices":[1,2]}})";
  v1::Candidate mine = Scored(10, 0.5), other = Scored(20, 0.6);
  *mine.mutable_solution() = MakeSolution(knobs);
  *other.mutable_solution() = MakeSolution(knobs);
  for (const char* k : {"A", "B", "C", "D"}) {
    (*mine.mutable_solution()->mutable_knobs())[k] = "1";
    (*other.mutable_solution()->mutable_knobs())[k] = "2";
  }
  auto space = ParseKnobSpace(mine.solution());
  ASSERT_TRUE(space.ok());
  std::vector<v1::Candidate> history = {mine, other};
  std::vector<v1::Candidate> inspirations = {other};
  auto evolve = MakeProposer("evolve");
  ASSERT_TRUE(evolve.ok());
  std::mt19937_64 rng(5);
  for (int n = 0; n < 40; ++n) {
    ProposalContext ctx;
    ctx.parent = &mine;
    ctx.space = &*space;
    ctx.history = &history;
    ctx.inspirations = &inspirations;
    ctx.rng = &rng;
    ctx.merge_every = 4;
    ctx.thread_proposals = n;
    auto p = (*evolve)->Propose(ctx);
    ASSERT_TRUE(p.ok()) << p.status();
    if ((n + 1) % 4 != 0) {
      EXPECT_EQ(p->merged_with, 0) << n;
      continue;
    }
    // Every 4th: a child with knobs from both sides, equal to neither.
    EXPECT_EQ(p->merged_with, 20);
    int from_other = 0;
    for (const char* k : {"A", "B", "C", "D"}) from_other += p->solution.knobs().at(k) == "2";
    EXPECT_GT(from_other, 0);
    EXPECT_LT(from_other, 4);
    EXPECT_NE(p->description.find("merge with #20"), std::string::npos);
  }
}

}  // namespace
}  // namespace ratchet::proposers

namespace ratchet::proposers {
namespace {

TEST(Evolve, LessonsBiasWhichMovesAreTried) {
  const char knobs[] = R"({"VEC":{"choices":[1,4,8,16]}})";
  v1::Candidate parent;
  parent.set_id(1);
  parent.set_score(0.2);
  *parent.mutable_solution() = MakeSolution(knobs);
  (*parent.mutable_solution()->mutable_knobs())["VEC"] = "1";
  auto space = ParseKnobSpace(parent.solution());
  ASSERT_TRUE(space.ok());
  // Another campaign learned: VEC 1->8 tripled the score, 1->16 failed.
  std::vector<v1::Lesson> lessons;
  for (auto [to, effect] : {std::pair<const char*, double>{"8", 2.0}, {"16", -1.0}}) {
    v1::Lesson l;
    l.set_knob("VEC");
    l.set_from_value("1");
    l.set_to_value(to);
    l.set_effect(effect);
    lessons.push_back(l);
  }
  std::vector<v1::Candidate> history = {parent};
  auto evolve = MakeProposer("evolve");
  ASSERT_TRUE(evolve.ok());
  auto count = [&](const std::vector<v1::Lesson>* with) {
    std::map<std::string, int> picks;
    std::mt19937_64 rng(9);
    for (int i = 0; i < 3000; ++i) {
      ProposalContext ctx;
      ctx.parent = &parent;
      ctx.space = &*space;
      ctx.history = &history;
      ctx.rng = &rng;
      ctx.lessons = with;
      auto p = (*evolve)->Propose(ctx);
      EXPECT_TRUE(p.ok());
      picks[p->solution.knobs().at("VEC")]++;
    }
    return picks;
  };
  auto blind = count(nullptr);
  auto taught = count(&lessons);
  // Without lessons the three moves are equally likely; with them, weights
  // 5 : 1 : 0.2 (clamped 1 + 2 x effect).
  EXPECT_NEAR(blind["8"] / 3000.0, 1.0 / 3, 0.04);
  EXPECT_NEAR(taught["8"] / 3000.0, 5.0 / 6.2, 0.04);
  EXPECT_NEAR(taught["16"] / 3000.0, 0.2 / 6.2, 0.02);
}

}  // namespace
}  // namespace ratchet::proposers

namespace ratchet::proposers {
namespace {

// A thread's first proposals draw every knob afresh (an island's initial
// population); later ones are mostly mutations of one or two knobs.
TEST(Evolve, AThreadStartsWithSamplesOfEveryKnobThenMutates) {
  const char knobs[] =
      R"({"A":{"choices":[1,2,3,4]},"B":{"choices":[1,2,3,4]},"C":{"choices":[1,2,3,4]},)"
      R"("D":{"choices":[1,2,3,4]}})";
  v1::Candidate parent;
  parent.set_score(0.5);
  *parent.mutable_solution() = MakeSolution(knobs);
  auto space = ParseKnobSpace(parent.solution());
  ASSERT_TRUE(space.ok());
  ASSERT_TRUE(NormalizeKnobs(*space, parent.mutable_solution()).ok());
  std::vector<v1::Candidate> history = {parent};
  auto evolve = MakeProposer("evolve");
  ASSERT_TRUE(evolve.ok());
  // Mean number of knobs changed against the parent, and the share of
  // proposals described as samples, at a given point of the thread.
  bool costly = false;
  auto moves = [&](int thread_proposals) {
    std::mt19937_64 rng(5);
    double changed = 0, samples = 0;
    const int n = 2000;
    for (int i = 0; i < n; ++i) {
      ProposalContext ctx{&parent, &*space, &history, 0, &rng};
      ctx.thread_proposals = thread_proposals;
      ctx.costly_evaluations = costly;
      auto p = (*evolve)->Propose(ctx);
      EXPECT_TRUE(p.ok());
      for (const auto& [name, value] : p->solution.knobs())
        if (parent.solution().knobs().at(name) != value) changed += 1;
      if (p->description.rfind("sample: ", 0) == 0) samples += 1;
    }
    return std::pair<double, double>{changed / n, samples / n};
  };
  auto [first_changed, first_samples] = moves(0);
  auto [later_changed, later_samples] = moves(10);
  // Uniform draws of 4 knobs with 4 choices change 3 on average (a draw equal
  // to the parent, 1 in 256, becomes a mutation).
  EXPECT_NEAR(first_changed, 3.0, 0.15);
  EXPECT_GT(first_samples, 0.99);
  EXPECT_NEAR(later_samples, 0.25, 0.04);
  // 3/4 mutations of 1.3 knobs on average, 1/4 samples of 3.
  EXPECT_NEAR(later_changed, 0.75 * 1.3 + 0.25 * 3.0, 0.15);

  // Where each evaluation is a training run: one or two knobs from the first
  // proposal on, a sample one time in twenty.
  costly = true;
  auto [costly_first_changed, costly_first_samples] = moves(0);
  auto [costly_later_changed, costly_later_samples] = moves(10);
  EXPECT_EQ(costly_first_samples, costly_later_samples);  // no seed samples
  EXPECT_NEAR(costly_first_samples, 0.05, 0.02);
  EXPECT_NEAR(costly_first_changed, 0.95 * 1.3 + 0.05 * 3.0, 0.15);
}

}  // namespace
}  // namespace ratchet::proposers
