#include "coordinator/proposers/llm/edit_format.h"

#include "gtest/gtest.h"

namespace ratchet::llm {
namespace {

constexpr char kKernel[] =
    "#include <stdint.h>\n"
    "// add\n"
    "int add(int a, int b) {\n"
    "  return a + b;\n"
    "}\n"
    "int twice(int a) {\n"
    "  return a + a;\n"
    "}\n";

v1::Solution Parent() {
  v1::Solution s;
  (*s.mutable_files())["solution.json"] =
      R"({"name":"x","knobs":{"VEC":{"choices":[1,4,8]},"MODE":{"choices":["a","b"]}}})";
  (*s.mutable_files())["kernel.cc"] = kKernel;
  (*s.mutable_files())["util.h"] = "#pragma once\n";
  (*s.mutable_knobs())["VEC"] = "1";
  (*s.mutable_knobs())["MODE"] = "a";
  return s;
}

absl::StatusOr<v1::Solution> Apply(const std::string& answer) {
  auto parsed = ParseAnswer(answer);
  if (!parsed.ok()) return parsed.status();
  auto space = proposers::ParseKnobSpace(Parent());
  if (!space.ok()) return space.status();
  return ApplyAnswer(*parsed, Parent(), *space);
}

TEST(EditFormat, SearchReplaceWholeFileAndKnobs) {
  const std::string answer =
      "Here is my change.\r\n"
      "IDEA: use a multiply and a wider vector\r\n"
      "```\n"
      "<<<<<<< SEARCH kernel.cc\n"
      "  return a + a;\n"
      "=======\n"
      "  return 2 * a;\n"
      ">>>>>>> REPLACE\n"
      "```\n"
      "<<<<<<< FILE util.h\n"
      "#pragma once\n"
      "#define FAST 1\n"
      ">>>>>>> END\n"
      "<<<<<<< KNOBS\n"
      "  VEC = 8\n"
      "\n"
      "MODE=b\n"
      ">>>>>>> END\n"
      "That is all.\n";
  auto parsed = ParseAnswer(answer);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->idea, "use a multiply and a wider vector");
  ASSERT_EQ(parsed->edits.size(), 2u);
  EXPECT_EQ(parsed->edits[0].path, "kernel.cc");
  EXPECT_EQ(parsed->edits[0].line, 4);
  auto out = Apply(answer);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE(out->files().at("kernel.cc").find("return 2 * a;\n"), std::string::npos);
  EXPECT_EQ(out->files().at("kernel.cc").find("return a + a;"), std::string::npos);
  EXPECT_EQ(out->files().at("util.h"), "#pragma once\n#define FAST 1\n");
  EXPECT_EQ(out->knobs().at("VEC"), "8");
  EXPECT_EQ(out->knobs().at("MODE"), "b");
  EXPECT_EQ(out->files().at("solution.json"), Parent().files().at("solution.json"));
}

TEST(EditFormat, BlocksApplyInOrder) {
  // The second SEARCH matches what the first one wrote.
  auto out = Apply(
      "<<<<<<< SEARCH kernel.cc\n  return a + b;\n=======\n  return b + a;\n>>>>>>> REPLACE\n"
      "<<<<<<< SEARCH kernel.cc\n  return b + a;\n=======\n  return a - -b;\n>>>>>>> REPLACE\n");
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_NE(out->files().at("kernel.cc").find("return a - -b;"), std::string::npos);
}

TEST(EditFormat, FileWithoutFinalNewlineStillMatches) {
  v1::Solution parent = Parent();
  (*parent.mutable_files())["kernel.cc"] = "int x = 1;";
  auto parsed = ParseAnswer("<<<<<<< SEARCH kernel.cc\nint x = 1;\n=======\nint x = 2;\n>>>>>>> REPLACE\n");
  ASSERT_TRUE(parsed.ok());
  auto out = ApplyAnswer(*parsed, parent, *proposers::ParseKnobSpace(parent));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->files().at("kernel.cc"), "int x = 2;\n");
}

struct BadCase {
  const char* name;
  std::string answer;
  std::string expected;  // in the error message
};

void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class MalformedAnswer : public ::testing::TestWithParam<BadCase> {};

TEST_P(MalformedAnswer, IsRejectedWhole) {
  auto out = Apply(GetParam().answer);
  ASSERT_FALSE(out.ok()) << "accepted:\n" << GetParam().answer;
  EXPECT_TRUE(absl::IsInvalidArgument(out.status()));
  EXPECT_NE(out.status().message().find(GetParam().expected), std::string::npos)
      << out.status().message();
}

const std::string kGoodBlock =
    "<<<<<<< SEARCH kernel.cc\n  return a + a;\n=======\n  return 2 * a;\n>>>>>>> REPLACE\n";

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedAnswer,
    ::testing::Values(
        BadCase{"Empty", "", "has no SEARCH/REPLACE, FILE or KNOBS block"},
        BadCase{"ProseOnly", "IDEA: go faster\nI would unroll the loop.\n", "has no SEARCH"},
        BadCase{"Unterminated", "<<<<<<< SEARCH kernel.cc\n  return a + a;\n=======\n  x\n",
                "line 1: block is not terminated"},
        BadCase{"NoDivider", "<<<<<<< SEARCH kernel.cc\n  return a + a;\n>>>>>>> REPLACE\n",
                "unexpected marker '>>>>>>> REPLACE' (expected =======)"},
        BadCase{"StrayDivider", "=======\n" + kGoodBlock, "line 1: marker '=======' outside a block"},
        BadCase{"StrayClose", kGoodBlock + ">>>>>>> END\n", "outside a block"},
        BadCase{"UnknownKind", "<<<<<<< PATCH kernel.cc\nx\n>>>>>>> END\n", "unknown block kind 'PATCH'"},
        BadCase{"NoKind", "<<<<<<<\nx\n", "block opener without a kind"},
        BadCase{"SearchWithoutFile", "<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n",
                "SEARCH needs exactly one file name"},
        BadCase{"EmptySearch", "<<<<<<< SEARCH kernel.cc\n=======\ny\n>>>>>>> REPLACE\n",
                "SEARCH text is empty"},
        BadCase{"NestedBlock",
                "<<<<<<< FILE util.h\n<<<<<<< SEARCH kernel.cc\n>>>>>>> END\n",
                "line 2: unexpected marker"},
        BadCase{"EmptyFile", "<<<<<<< FILE util.h\n\n>>>>>>> END\n", "FILE util.h would be empty"},
        BadCase{"SearchNotFound",
                "<<<<<<< SEARCH kernel.cc\n  return a * b;\n=======\n  return 0;\n>>>>>>> REPLACE\n",
                "the SEARCH text is not in kernel.cc"},
        BadCase{"WhitespaceMatters",
                "<<<<<<< SEARCH kernel.cc\nreturn a + a;\n=======\nreturn 0;\n>>>>>>> REPLACE\n",
                "is not in kernel.cc"},
        BadCase{"SearchTwice",
                "<<<<<<< SEARCH kernel.cc\n}\n=======\n} // end\n>>>>>>> REPLACE\n",
                "occurs 2 times in kernel.cc"},
        BadCase{"UnknownFile",
                "<<<<<<< FILE main.cc\nint main() {}\n>>>>>>> END\n",
                "unknown file 'main.cc' (editable: kernel.cc, util.h)"},
        BadCase{"ManifestNotEditable",
                "<<<<<<< FILE solution.json\n{}\n>>>>>>> END\n", "solution.json is not editable"},
        BadCase{"UndeclaredKnob", "<<<<<<< KNOBS\nTHREADS=2\n>>>>>>> END\n",
                "THREADS is not a declared knob (declared: MODE, VEC)"},
        BadCase{"KnobValueNotAChoice", "<<<<<<< KNOBS\nVEC=16\n>>>>>>> END\n",
                "VEC=16 is not one of its choices (1, 4, 8)"},
        BadCase{"KnobNotNameValue", "<<<<<<< KNOBS\nVEC 8\n>>>>>>> END\n",
                "line 2: knob setting 'VEC 8' is not NAME=value"},
        BadCase{"KnobTwice", "<<<<<<< KNOBS\nVEC=8\nVEC=4\n>>>>>>> END\n", "knob VEC is set twice"},
        BadCase{"KnobsEmpty", "<<<<<<< KNOBS\n>>>>>>> END\n", "KNOBS block sets no knob"},
        BadCase{"ChangesNothing",
                "<<<<<<< SEARCH kernel.cc\n  return a + a;\n=======\n  return a + a;\n>>>>>>> REPLACE\n",
                "the answer changes nothing"},
        // A good first block does not save a bad second one: nothing applies.
        BadCase{"GoodThenBad",
                kGoodBlock + "<<<<<<< SEARCH kernel.cc\nnot there\n=======\nx\n>>>>>>> REPLACE\n",
                "block 2 (line 6): the SEARCH text is not in kernel.cc"}),
    [](const ::testing::TestParamInfo<BadCase>& info) { return info.param.name; });

TEST(EditFormat, GuideDocumentsEveryMarker) {
  const std::string guide = EditFormatGuide();
  for (const char* marker : {"IDEA:", "<<<<<<< SEARCH", "=======", ">>>>>>> REPLACE",
                             "<<<<<<< FILE", ">>>>>>> END", "<<<<<<< KNOBS"})
    EXPECT_NE(guide.find(marker), std::string::npos) << marker;
}

}  // namespace
}  // namespace ratchet::llm
