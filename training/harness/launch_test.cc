// The launcher with real child processes: shell scripts that say what a
// training program may say (and what a cheating one would), killed with real
// signals, and the built-in GPT trained by two gloo processes. No assertion
// rests on how fast this machine is.
#include "training/harness/launch.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "training/data/shards.h"

namespace ratchet::training {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string TempDir(const std::string& name) {
  std::string dir = ::testing::TempDir() + "/launch_" + name;
  std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
  return dir;
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

LaunchOptions Script(const std::string& script, const std::string& dir, int nproc = 1) {
  LaunchOptions o;
  o.argv = {"/bin/sh", "-c", script};
  o.workdir = dir;
  o.env = {{"PATH", "/usr/bin:/bin"}};
  o.nproc = nproc;
  o.grace_seconds = 0.2;
  o.timeout_seconds = 120;
  return o;
}

TEST(Launch, EveryRankGetsTheRendezvousAndRankZeroTheControlChannel) {
  const std::string dir = TempDir("rendezvous");
  LaunchOptions o = Script(
      "echo \"$RANK $LOCAL_RANK $WORLD_SIZE $MASTER_ADDR $MASTER_PORT\" > out.$RANK;"
      "if [ \"$RANK\" = 0 ]; then echo 'phase warmup-begin' >&3; echo 'phase warmup-end' >&3;"
      "  echo 'progress 10 2.5 1000' >&3; echo 'progress 20 2.25 1100' >&3; echo 'done 20' >&3;"
      "else { echo x >&3; } 2>/dev/null || echo no-control >> out.$RANK; fi",
      dir, 2);
  std::vector<Progress> seen;
  o.on_progress = [&](const Progress& p) { seen.push_back(p); };
  const LaunchResult r = Launch(o);
  ASSERT_EQ(r.outcome, "ok") << r.message;
  EXPECT_EQ(r.exit_codes, (std::vector<int>{0, 0}));
  EXPECT_EQ(r.steps, 20);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].step, 20);
  EXPECT_DOUBLE_EQ(seen[1].loss, 2.25);
  EXPECT_LE(seen[0].at_seconds, seen[1].at_seconds);
  EXPECT_THAT(Read(dir + "/out.0"), HasSubstr("0 0 2 127.0.0.1 "));
  EXPECT_THAT(Read(dir + "/out.1"), HasSubstr("1 1 2 127.0.0.1 "));
  EXPECT_THAT(Read(dir + "/out.1"), HasSubstr("no-control"));
}

TEST(Launch, ARunPastItsBudgetIsStoppedAndSaysSo) {
  LaunchOptions o = Script("exec sleep 1000", TempDir("budget"), 2);
  o.budget_seconds = 0.2;
  const LaunchResult r = Launch(o);
  EXPECT_EQ(r.outcome, "over-budget");
  EXPECT_THAT(r.message, HasSubstr("past its budget"));
  EXPECT_EQ(r.exit_codes, (std::vector<int>{128 + SIGTERM, 128 + SIGTERM}));
}

TEST(Launch, ARankThatIgnoresSigtermIsKilled) {
  LaunchOptions o = Script("trap '' TERM; while :; do sleep 1; done", TempDir("kill"));
  o.budget_seconds = 0.1;
  const LaunchResult r = Launch(o);
  EXPECT_EQ(r.outcome, "over-budget");
  EXPECT_EQ(r.exit_codes[0], 128 + SIGKILL);
}

TEST(Launch, AFailedRankStopsTheOthers) {
  const LaunchResult r =
      Launch(Script("if [ \"$RANK\" = 1 ]; then exit 3; fi; exec sleep 1000", TempDir("crash"), 2));
  EXPECT_EQ(r.outcome, "crash");
  EXPECT_THAT(r.message, HasSubstr("rank 1 exited with status 3"));
  EXPECT_EQ(r.exit_codes[0], 128 + SIGTERM);
}

TEST(Launch, MarksOutOfOrderAreNotBelieved) {
  struct Case {
    const char* script;
    const char* why;
  } cases[] = {
      {"echo 'phase warmup-end' >&3", "without a warmup-begin"},
      {"echo 'phase warmup-begin' >&3; echo 'progress 5 1.0 10' >&3; echo 'phase warmup-end' >&3",
       "during the warm-up"},
      {"echo 'phase warmup-begin' >&3; echo 'phase warmup-end' >&3; echo 'phase warmup-begin' >&3",
       "repeated"},
      {"echo 'phase warmup-begin' >&3", "never ended"},
  };
  for (const Case& c : cases) {
    const LaunchResult r = Launch(Script(c.script, TempDir("marks")));
    EXPECT_EQ(r.outcome, "bad-marks") << c.script;
    EXPECT_THAT(r.message, HasSubstr(c.why)) << c.script;
  }
}

TEST(Launch, TheWarmUpLeftOutIsCappedByTheAllowance) {
  // 0.3 s of "warm-up" against an allowance of 0.1 s: at most 0.1 s of
  // the run is left out of the training time, however long it took.
  LaunchOptions o = Script(
      "echo 'phase warmup-begin' >&3; sleep 0.3; echo 'phase warmup-end' >&3; echo 'done 1' >&3",
      TempDir("allowance"));
  o.warmup_allowance_seconds = 0.1;
  const LaunchResult r = Launch(o);
  ASSERT_EQ(r.outcome, "ok") << r.message;
  EXPECT_NEAR(r.training_seconds, r.wall_seconds - 0.1, 1e-9);
}

TEST(Launch, DescriptorsAreExactlyStdioAndTheChannel) {
  // The lowest free descriptor is 3 when the launcher opens its log, and the
  // caller holds a stray one without close-on-exec: neither may confuse the
  // ranks' descriptors.
  const int saved3 = dup(3);
  close(3);
  const int stray = dup2(1, 77);
  ASSERT_EQ(stray, 77);
  const std::string dir = TempDir("fds");
  LaunchOptions o = Script(
      "ls /proc/$$/fd > fds.$RANK; if [ \"$RANK\" = 0 ]; then echo 'done 7' >&3; fi", dir, 2);
  o.log_path = dir + "/log";
  const LaunchResult r = Launch(o);
  close(77);
  if (saved3 >= 0) {
    dup2(saved3, 3);
    close(saved3);
  }
  ASSERT_EQ(r.outcome, "ok") << r.message;
  EXPECT_EQ(r.steps, 7);  // rank 0's channel reached the launcher
  EXPECT_THAT(Read(dir + "/fds.0"), Not(HasSubstr("77")));
  EXPECT_THAT(Read(dir + "/fds.1"), Not(HasSubstr("77")));
  EXPECT_THAT(Read(dir + "/fds.1"), Not(HasSubstr("3\n")));
}

TEST(Launch, AProgramThatCannotStartIsACrash) {
  LaunchOptions o = Script("", TempDir("missing"));
  o.argv = {"/nonexistent/python"};
  const LaunchResult r = Launch(o);
  EXPECT_EQ(r.outcome, "crash");
  EXPECT_THAT(r.message, HasSubstr("status 127"));
}

// The built-in GPT, two processes over gloo, on a few synthetic shards.
TEST(Launch, TheTinyGptTrainsWithTwoGlooProcesses) {
  if (std::system("/usr/bin/python3 -c 'import torch.distributed' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 cannot import torch (apt-get install python3-torch)";
  const std::string dir = TempDir("gpt");
  std::vector<uint16_t> tokens;
  for (int i = 0; i < 200000; ++i) tokens.push_back(static_cast<uint16_t>((i * 7) % 97 + 50));
  ASSERT_TRUE(WriteShard(dir + "/train_000000.bin", tokens).ok());
  LaunchOptions o;
  o.argv = {"/usr/bin/python3", RATCHET_SOURCE_DIR "/tasks/train/gpt_tiny/train.py"};
  o.workdir = dir;
  o.env = {{"PATH", "/usr/bin:/bin"},
           {"HOME", dir},
           {"OMP_NUM_THREADS", "1"},
           {"RATCHET_TRAIN_DATA", dir},
           {"RATCHET_BUDGET_SECONDS", "4"},
           {"RATCHET_KNOB_PROGRESS_EVERY", "1"},
           {"RATCHET_CHECKPOINT", dir + "/model.pt"}};
  o.nproc = 2;
  o.budget_seconds = 4;
  o.warmup_allowance_seconds = 120;  // python and torch start slowly on a busy machine
  o.grace_seconds = 60;
  o.log_path = dir + "/train.log";
  const LaunchResult r = Launch(o);
  ASSERT_EQ(r.outcome, "ok") << r.message << "\n" << Read(o.log_path);
  EXPECT_GT(r.steps, 0);
  ASSERT_FALSE(r.progress.empty()) << Read(o.log_path);
  struct stat st{};
  EXPECT_EQ(stat((dir + "/model.pt").c_str(), &st), 0) << Read(o.log_path);
}

}  // namespace
}  // namespace ratchet::training
