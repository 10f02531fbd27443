// The pure parts of diff and export: the unified diff, the knob section, the
// solution.json rewrite and the exported folder.
#include "services/cli/research.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace ratchet::cli {
namespace {

namespace fs = std::filesystem;

std::string Read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST(UnifiedDiff, EqualTextsGiveNothing) { EXPECT_EQ(UnifiedDiff("a\nb\n", "a\nb\n", "x", "y"), ""); }

TEST(UnifiedDiff, OneChangedLineWithContext) {
  std::string from, to;
  for (int i = 1; i <= 10; ++i) {
    from += "line" + std::to_string(i) + "\n";
    to += (i == 5 ? std::string("FIVE") : "line" + std::to_string(i)) + "\n";
  }
  EXPECT_EQ(UnifiedDiff(from, to, "a/k.cc", "b/k.cc"),
            "--- a/k.cc\n+++ b/k.cc\n@@ -2,7 +2,7 @@\n line2\n line3\n line4\n-line5\n+FIVE\n"
            " line6\n line7\n line8\n");
}

TEST(UnifiedDiff, SeparateHunksAndInsertions) {
  std::string from, to;
  for (int i = 1; i <= 20; ++i) from += std::to_string(i) + "\n";
  to = "0\n" + from;
  to.replace(to.find("\n15\n"), 4, "\n15\nsixteen-ish\n");
  std::string d = UnifiedDiff(from, to, "a", "b", 1);
  EXPECT_EQ(d, "--- a\n+++ b\n@@ -1 +1,2 @@\n+0\n 1\n@@ -15,2 +16,3 @@\n 15\n+sixteen-ish\n 16\n");
}

TEST(UnifiedDiff, NewFileAgainstEmpty) {
  EXPECT_EQ(UnifiedDiff("", "x\ny\n", "/dev/null", "b/n.h"),
            "--- /dev/null\n+++ b/n.h\n@@ -0,0 +1,2 @@\n+x\n+y\n");
}

TEST(DiffSolutions, KnobsThenFiles) {
  v1::Solution a, b;
  (*a.mutable_knobs())["VEC"] = "1";
  (*a.mutable_knobs())["FUSE"] = "0";
  (*b.mutable_knobs())["VEC"] = "8";
  (*b.mutable_knobs())["FUSE"] = "0";
  (*a.mutable_files())["kernel.cc"] = "int x = 1;\n";
  (*b.mutable_files())["kernel.cc"] = "int x = 2;\n";
  (*a.mutable_files())["solution.json"] = "{}\n";
  (*b.mutable_files())["solution.json"] = "{}\n";
  EXPECT_EQ(DiffSolutions(a, b, "#1", "#7"),
            "knobs #1 -> #7\n-VEC=1\n+VEC=8\n--- #1/kernel.cc\n+++ #7/kernel.cc\n@@ -1 +1 @@\n"
            "-int x = 1;\n+int x = 2;\n");
}

TEST(SolutionJson, DefaultsTakeTheCandidatesKnobsAndKeepTheirType) {
  const std::string json = R"({"name": "s", "knobs": {
      "VEC": {"choices": [1, 4, 8], "default": 1},
      "MODE": {"choices": ["a", "b"], "default": "a"}}})";
  google::protobuf::Map<std::string, std::string> knobs;
  knobs["VEC"] = "8";
  knobs["MODE"] = "b";
  auto out = SolutionJsonWithDefaults(json, knobs);
  ASSERT_TRUE(out.ok()) << out.status();
  auto doc = nlohmann::json::parse(*out);
  EXPECT_EQ(doc["knobs"]["VEC"]["default"], 8);
  EXPECT_EQ(doc["knobs"]["MODE"]["default"], "b");
  EXPECT_EQ(doc["name"], "s");
  EXPECT_FALSE(SolutionJsonWithDefaults("[1]", knobs).ok());
}

TEST(Export, WritesAReproducibleFolder) {
  v1::Campaign campaign;
  campaign.set_id(3);
  campaign.set_baseline_score(0.1);
  campaign.mutable_spec()->set_name("demo");
  campaign.mutable_spec()->set_device("cpu");
  campaign.mutable_spec()->mutable_problem()->set_name("p");
  campaign.mutable_spec()->mutable_problem()->set_definition_json("{\"name\": \"p\"}");
  campaign.mutable_spec()->mutable_problem()->set_workload_jsonl("{}\n");
  campaign.mutable_spec()->mutable_harness()->set_repetitions(7);
  v1::CandidateDetail d;
  auto* c = d.mutable_candidate();
  c->set_id(12);
  c->set_parent_id(4);
  c->set_score(0.3);
  c->set_status("accepted");
  c->set_description("VEC 1→8");
  (*c->mutable_solution()->mutable_files())["kernel.cc"] = "// k\n";
  (*c->mutable_solution()->mutable_files())["solution.json"] =
      R"({"knobs": {"VEC": {"choices": [1, 8], "default": 1}}})";
  (*c->mutable_solution()->mutable_knobs())["VEC"] = "8";

  fs::path dir = fs::temp_directory_path() / ("ratchet-export-" + std::to_string(getpid()));
  fs::remove_all(dir);
  ASSERT_TRUE(ExportCandidate(campaign, d, dir.string()).ok());
  EXPECT_EQ(Read(dir / "problem/definition.json"), "{\"name\": \"p\"}");
  EXPECT_EQ(Read(dir / "solution/kernel.cc"), "// k\n");
  EXPECT_EQ(nlohmann::json::parse(Read(dir / "solution/solution.json"))["knobs"]["VEC"]["default"], 8);
  std::string run = Read(dir / "run.sh");
  EXPECT_NE(run.find("bench problem solution --repetitions 7 --knob 'VEC=8'"), std::string::npos) << run;
  struct stat st;
  ASSERT_EQ(stat((dir / "run.sh").c_str(), &st), 0);
  EXPECT_TRUE(st.st_mode & S_IXUSR);
  EXPECT_NE(Read(dir / "README.md").find("3.00x"), std::string::npos);
  // Never over an existing export.
  EXPECT_FALSE(ExportCandidate(campaign, d, dir.string()).ok());
  // A file path that climbs out of the folder is refused.
  fs::remove_all(dir);
  (*c->mutable_solution()->mutable_files())["../evil"] = "x";
  EXPECT_FALSE(ExportCandidate(campaign, d, dir.string()).ok());
  fs::remove_all(dir);
}

// A campaign's name, knobs and descriptions come from clients: none of them
// may become a command of run.sh, which the person exporting will run.
TEST(Export, ClientTextNeverBecomesACommand) {
  const fs::path dir =
      fs::temp_directory_path() / ("ratchet-export-inject-" + std::to_string(getpid()));
  const fs::path marker = dir.string() + "-pwned";
  fs::remove_all(dir);
  fs::remove(marker);
  v1::Campaign campaign;
  campaign.set_id(5);
  campaign.mutable_spec()->set_name("x\nrm -rf /tmp/pwned\ntouch " + marker.string() + "\n");
  campaign.mutable_spec()->set_device("cpu\r\ntouch " + marker.string());
  campaign.mutable_spec()->mutable_problem()->set_name("p\n# not a heading\x1b[2J");
  v1::CandidateDetail d;
  auto* c = d.mutable_candidate();
  c->set_id(1);
  c->set_description("two\nlines\x1b]0;title\x07");
  (*c->mutable_solution()->mutable_files())["kernel.cc"] = "// k\n";
  const std::string evil_value = "8'; touch " + marker.string() + "; echo '\n$(id)`id`";
  (*c->mutable_solution()->mutable_knobs())["VEC"] = evil_value;
  ASSERT_TRUE(ExportCandidate(campaign, d, dir.string()).ok());

  const std::string run = Read(dir / "run.sh");
  std::istringstream lines(run);
  int line_number = 0;
  for (std::string line; std::getline(lines, line); ++line_number) {
    EXPECT_NE(line.rfind("rm", 0), 0u) << "line " << line_number << ": " << line;
    EXPECT_NE(line.rfind("touch", 0), 0u) << "line " << line_number << ": " << line;
  }
  const std::string readme = Read(dir / "README.md");
  EXPECT_EQ(readme.find('\x1b'), std::string::npos) << "terminal escapes reach README.md";
  EXPECT_EQ(readme.find("\n# not a heading"), std::string::npos) << readme;
  EXPECT_NE(readme.find("two\nlines"), std::string::npos) << "a description keeps its lines";

  // Run the script for real, with echo standing in for ratchet: the knob
  // arrives as one literal argument and nothing else runs.
  const std::string command = "RATCHET=echo sh " + (dir / "run.sh").string();
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buf[256];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  EXPECT_EQ(pclose(pipe), 0) << output;
  EXPECT_FALSE(fs::exists(marker)) << "run.sh ran a client's command";
  EXPECT_EQ(output, "bench problem solution --knob VEC=" + evil_value + "\n");
  fs::remove_all(dir);
  fs::remove(marker);
}

}  // namespace
}  // namespace ratchet::cli
