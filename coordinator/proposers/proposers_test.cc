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

TEST(Proposer, UnknownNameIsAnError) {
  auto p = MakeProposer("genius");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("unknown proposer"), std::string::npos);
}

}  // namespace
}  // namespace ratchet::proposers
