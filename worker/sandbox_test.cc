// Real child processes, real signals: every test starts processes through the
// sandbox and checks what happened to them from outside.
#include "worker/sandbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace ratchet::worker {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  explicit TempDir(const std::string& base = "/tmp") {
    std::string tmpl = base + "/ratchet-sandbox-test-XXXXXX";
    if (mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Runs every test once per sandbox mode; bwrap tests skip where bwrap cannot
// run, with the reason.
class SandboxTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    std::string warning;
    auto sandbox = Sandbox::Create(GetParam(), &warning);
    if (!sandbox.ok()) GTEST_SKIP() << "bwrap unavailable: " << sandbox.status();
    sandbox_.emplace(*std::move(sandbox));
    ASSERT_FALSE(scratch_.path().empty());
  }

  bool bwrap() const { return sandbox_->mode() == Sandbox::Mode::kBwrap; }

  SandboxSpec Shell(const std::string& script, double wall = 20) {
    SandboxSpec spec;
    spec.argv = {"/bin/sh", "-c", script};
    spec.scratch_dir = scratch_.path();
    spec.wall_seconds = wall;
    spec.env = {"PATH=/usr/bin:/bin", "S=" + scratch_.path()};
    return spec;
  }

  RunResult MustRun(const SandboxSpec& spec, const RunHooks& hooks = {}) {
    auto result = sandbox_->Run(spec, hooks);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *result : RunResult{};
  }

  std::optional<Sandbox> sandbox_;
  TempDir scratch_;
};

TEST_P(SandboxTest, ExitCodesPassThrough) {
  for (int code : {0, 1, 7, 42, 127}) {
    RunResult r = MustRun(Shell(absl::StrCat("exit ", code)));
    EXPECT_EQ(r.exit_code, code);
    EXPECT_EQ(r.signal, 0);
    EXPECT_FALSE(r.timed_out);
  }
}

TEST_P(SandboxTest, CrashBySignalIsReportedWithTheSignal) {
  RunResult r = MustRun(Shell("kill -SEGV $$"));
  EXPECT_EQ(r.signal, SIGSEGV);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(SignalName(r.signal), "SIGSEGV");
  r = MustRun(Shell("kill -ABRT $$"));
  EXPECT_EQ(r.signal, SIGABRT);
}

TEST_P(SandboxTest, WallLimitKillsTheProcessAndItsChildren) {
  // A grandchild that would leave a mark after 2 s; the child hangs.
  auto start = std::chrono::steady_clock::now();
  RunResult r = MustRun(Shell("(sleep 2; touch \"$S/late\") & sleep 100", 0.5));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_GE(r.wall_seconds, 0.5);
  EXPECT_LT(took, 5);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_FALSE(fs::exists(scratch_.path() + "/late")) << "a grandchild outlived the job";
}

TEST_P(SandboxTest, GrandchildrenDieWhenTheChildExitsNormally) {
  RunResult r = MustRun(Shell("(sleep 2; touch \"$S/late\") & exit 0"));
  EXPECT_EQ(r.exit_code, 0);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_FALSE(fs::exists(scratch_.path() + "/late")) << "a grandchild outlived the job";
}

TEST_P(SandboxTest, NewSessionEscapeStillDiesUnderBwrap) {
  if (!bwrap()) GTEST_SKIP() << "without bwrap a setsid child leaves the process group";
  RunResult r = MustRun(Shell("setsid sh -c 'sleep 2; touch \"$S/late\"' & sleep 100", 0.5));
  EXPECT_TRUE(r.timed_out);
  std::this_thread::sleep_for(std::chrono::seconds(3));
  EXPECT_FALSE(fs::exists(scratch_.path() + "/late")) << "a setsid child escaped bwrap";
}

TEST_P(SandboxTest, CancelKillsAtOnce) {
  std::atomic<bool> cancel{false};
  RunHooks hooks;
  hooks.cancel = &cancel;
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    cancel = true;
  });
  RunResult r = MustRun(Shell("sleep 100"), hooks);
  canceller.join();
  EXPECT_TRUE(r.cancelled);
  EXPECT_FALSE(r.timed_out);
  EXPECT_LT(r.wall_seconds, 3);
}

TEST_P(SandboxTest, CpuLimitKillsASpinningProcess) {
  SandboxSpec spec = Shell("while :; do :; done", 30);
  spec.cpu_seconds = 1;
  RunResult r = MustRun(spec);
  EXPECT_FALSE(r.timed_out);
  EXPECT_TRUE(r.signal == SIGXCPU || r.signal == SIGKILL) << "signal " << r.signal;
  EXPECT_LT(r.wall_seconds, 10);
}

TEST_P(SandboxTest, MemoryLimitRefusesLargeAllocations) {
  const char* python = "/usr/bin/python3";
  if (access(python, X_OK) != 0) GTEST_SKIP() << "no " << python;
  SandboxSpec spec;
  spec.argv = {python, "-c", "b = bytearray(512 << 20); b[-1] = 1"};
  spec.scratch_dir = scratch_.path();
  spec.env = {"PATH=/usr/bin:/bin"};
  EXPECT_EQ(MustRun(spec).exit_code, 0) << "control: 512 MiB without a limit";
  spec.memory_bytes = 256 << 20;
  RunResult r = MustRun(spec);
  EXPECT_NE(r.exit_code, 0);  // MemoryError
}

TEST_P(SandboxTest, ScratchIsWritableAndOutputIsStreamed) {
  std::vector<std::string> lines;
  RunHooks hooks;
  hooks.output_line = [&](const std::string& line) { lines.push_back(line); };
  RunResult r = MustRun(
      Shell("echo to-stdout; echo to-stderr >&2; echo hi > \"$S/file\" && pwd"), hooks);
  EXPECT_EQ(r.exit_code, 0);
  std::ifstream in(scratch_.path() + "/file");
  std::string content;
  std::getline(in, content);
  EXPECT_EQ(content, "hi");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "to-stdout");
  EXPECT_EQ(lines[1], "to-stderr");
  EXPECT_EQ(lines[2], scratch_.path());  // it runs in its scratch folder
}

TEST_P(SandboxTest, WritingOutsideScratchFailsUnderBwrap) {
  // Not under /tmp: /tmp is a private tmpfs inside, so use /var/tmp.
  TempDir outside("/var/tmp");
  ASSERT_FALSE(outside.path().empty());
  std::string leak = absl::StrCat("/tmp/ratchet-leak-", getpid());
  RunResult r = MustRun(Shell(absl::StrCat("touch ", outside.path(), "/x; a=$?; touch ",
                                           leak, "; exit $a")));
  if (!bwrap()) {
    EXPECT_EQ(r.exit_code, 0) << "control: rlimits alone do not stop the write";
    fs::remove(leak);
    return;
  }
  EXPECT_NE(r.exit_code, 0);
  EXPECT_FALSE(fs::exists(outside.path() + "/x"));
  EXPECT_FALSE(fs::exists(leak)) << "/tmp inside the sandbox is not private";
  // The system itself is read-only too.
  RunResult sys = MustRun(Shell("touch /usr/ratchet-sandbox-probe"));
  EXPECT_NE(sys.exit_code, 0);
  EXPECT_FALSE(fs::exists("/usr/ratchet-sandbox-probe"));
}

TEST_P(SandboxTest, NetworkIsUnreachableUnderBwrap) {
  if (access("/bin/bash", X_OK) != 0) GTEST_SKIP() << "no /bin/bash for /dev/tcp";
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);

  SandboxSpec spec;
  spec.argv = {"/bin/bash", "-c", absl::StrCat("exec 3<>/dev/tcp/127.0.0.1/", port)};
  spec.scratch_dir = scratch_.path();
  spec.wall_seconds = 10;
  spec.env = {"PATH=/usr/bin:/bin"};
  RunResult r = MustRun(spec);
  close(listener);
  if (!bwrap()) {
    EXPECT_EQ(r.exit_code, 0) << "control: the listener is reachable without bwrap";
  } else {
    EXPECT_NE(r.exit_code, 0) << "connected to a host port from inside the sandbox";
  }
}

TEST_P(SandboxTest, MissingProgramIsAnError) {
  SandboxSpec spec;
  spec.argv = {"/nonexistent/ratchet-harness"};
  spec.scratch_dir = scratch_.path();
  auto r = sandbox_->Run(spec);
  if (bwrap()) {
    // bwrap itself starts, then fails to exec: a non-zero exit.
    ASSERT_TRUE(r.ok());
    EXPECT_NE(r->exit_code, 0);
  } else {
    EXPECT_FALSE(r.ok());
  }
  spec.scratch_dir = "/nonexistent/scratch";
  EXPECT_FALSE(sandbox_->Run(spec).ok());
}

TEST_P(SandboxTest, ParallelRunsDoNotInterfere) {
  std::vector<std::thread> threads;
  std::atomic<int> correct{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto r = sandbox_->Run(Shell(absl::StrCat("sleep 0.2; exit ", 10 + i)));
      if (r.ok() && r->exit_code == 10 + i) ++correct;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(correct.load(), 4);
}

INSTANTIATE_TEST_SUITE_P(Modes, SandboxTest, ::testing::Values("bwrap", "none"),
                         [](const auto& info) {
                           return info.param == "bwrap" ? std::string("Bwrap")
                                                        : std::string("Rlimits");
                         });

TEST(SandboxCreateTest, RejectsUnknownChoice) {
  EXPECT_FALSE(Sandbox::Create("docker").ok());
  auto none = Sandbox::Create("none");
  ASSERT_TRUE(none.ok());
  EXPECT_STREQ(none->name(), "rlimits");
}

TEST(SandboxCreateTest, AutoNamesWhatItUses) {
  std::string warning;
  auto sandbox = Sandbox::Create("auto", &warning);
  ASSERT_TRUE(sandbox.ok());
  if (sandbox->mode() == Sandbox::Mode::kBwrap) {
    EXPECT_STREQ(sandbox->name(), "bwrap");
    EXPECT_TRUE(warning.empty());
  } else {
    EXPECT_STREQ(sandbox->name(), "rlimits");
    EXPECT_FALSE(warning.empty()) << "falling back must say why";
  }
}

}  // namespace
}  // namespace ratchet::worker
