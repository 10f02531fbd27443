#include "spec/frozen_files.h"

#include "gtest/gtest.h"

namespace ratchet::spec {
namespace {

TEST(GlobTest, StarStaysWithinOneName) {
  EXPECT_TRUE(GlobMatches("*.py", "model.py"));
  EXPECT_FALSE(GlobMatches("*.py", "lib/model.py"));
  EXPECT_TRUE(GlobMatches("lib/*.py", "lib/model.py"));
  EXPECT_TRUE(GlobMatches("model.py", "model.py"));
  EXPECT_FALSE(GlobMatches("model.py", "model.pyc"));
  EXPECT_TRUE(GlobMatches("m?del.py", "model.py"));
  EXPECT_FALSE(GlobMatches("m?del.py", "mdel.py"));
  EXPECT_TRUE(GlobMatches("*", "train.py"));
  EXPECT_TRUE(GlobMatches("a*b*c", "axxbyyc"));
  EXPECT_FALSE(GlobMatches("a*b*c", "axxbyy"));
}

TEST(GlobTest, DoubleStarCrossesFolders) {
  EXPECT_TRUE(GlobMatches("**/*.py", "model.py"));
  EXPECT_TRUE(GlobMatches("**/*.py", "a/b/model.py"));
  EXPECT_TRUE(GlobMatches("kernels/**/*.cu", "kernels/x.cu"));
  EXPECT_TRUE(GlobMatches("kernels/**/*.cu", "kernels/a/b/x.cu"));
  EXPECT_FALSE(GlobMatches("kernels/**/*.cu", "other/x.cu"));
  EXPECT_TRUE(GlobMatches("**", "anything/at/all"));
}

v1::TrainingSettings Editable(std::initializer_list<const char*> globs) {
  v1::TrainingSettings t;
  for (const char* g : globs) t.add_editable(g);
  return t;
}

TEST(FrozenFilesTest, OnlyEditableFilesMayChange) {
  const std::map<std::string, std::string> baseline = {
      {"train.py", "loop"}, {"model.py", "gpt"}, {"solution.json", "{}"}, {"data.py", "io"}};
  v1::TrainingSettings t = Editable({"model.py", "train.py"});
  auto frozen = FrozenHashes(baseline, t);
  ASSERT_EQ(frozen.size(), 2u);
  EXPECT_TRUE(frozen.count("solution.json"));
  EXPECT_TRUE(frozen.count("data.py"));
  EXPECT_EQ(frozen["data.py"].size(), 64u);
  t.mutable_frozen()->insert(frozen.begin(), frozen.end());

  EXPECT_TRUE(CheckFrozenFiles(baseline, t).ok());
  auto edited = baseline;
  edited["model.py"] = "a better gpt";
  EXPECT_TRUE(CheckFrozenFiles(edited, t).ok());

  auto changed = baseline;
  changed["data.py"] = "io that peeks";
  absl::Status s = CheckFrozenFiles(changed, t);
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("changes frozen file 'data.py'"), std::string::npos) << s;

  auto missing = baseline;
  missing.erase("solution.json");
  s = CheckFrozenFiles(missing, t);
  EXPECT_NE(s.message().find("'solution.json' is missing"), std::string::npos) << s;

  auto added = baseline;
  added["sitecustomize.py"] = "import os";
  s = CheckFrozenFiles(added, t);
  EXPECT_NE(s.message().find("adds file 'sitecustomize.py'"), std::string::npos) << s;
}

}  // namespace
}  // namespace ratchet::spec
