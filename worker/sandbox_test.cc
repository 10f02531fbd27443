// Real child processes, real signals: every test starts processes through the
// sandbox and checks what happened to them from outside.
#include "worker/sandbox.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "worker/result.h"

extern char** environ;

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

// Secrets of the kind a worker's environment holds (the store's password,
// API keys), set for the length of one test.
class ScopedSecrets {
 public:
  ScopedSecrets() {
    for (const char* name : kNames) setenv(name, "hunter2-secret", 1);
  }
  ~ScopedSecrets() {
    for (const char* name : kNames) unsetenv(name);
  }
  static constexpr const char* kNames[] = {"PGPASSWORD", "OPENAI_API_KEY",
                                           "AWS_SECRET_ACCESS_KEY", "NVIDIA_API_KEY",
                                           "RATCHET_RESULT_NONCE", "DATABASE_URL"};
};

TEST_P(SandboxTest, CandidateSeesNoSecretOfTheWorkersEnvironment) {
  ScopedSecrets secrets;
  SandboxSpec spec;
  // What the worker does for a job (worker.cc): the allowed environment and
  // the toolchains' folders.
  spec.env = AllowedEnvironment(environ);
  spec.ro_binds = ToolchainFolders(spec.env, {});
  spec.argv = {"/usr/bin/env"};
  spec.scratch_dir = scratch_.path();
  spec.wall_seconds = 20;
  std::vector<std::string> lines;
  RunHooks hooks;
  hooks.output_line = [&](const std::string& line) { lines.push_back(line); };
  RunResult r = MustRun(spec, hooks);
  ASSERT_EQ(r.exit_code, 0) << absl::StrJoin(lines, "\n");
  const std::string all = absl::StrJoin(lines, "\n");
  EXPECT_FALSE(absl::StrContains(all, "hunter2")) << all;
  for (const char* name : ScopedSecrets::kNames)
    EXPECT_FALSE(absl::StrContains(all, absl::StrCat(name, "="))) << name;
  EXPECT_TRUE(std::any_of(lines.begin(), lines.end(),
                          [](const std::string& l) { return absl::StartsWith(l, "PATH="); }))
      << all;
}

TEST_P(SandboxTest, HostFilesOutsideTheSystemAreHiddenUnderBwrap) {
  // Controls first: the host has these, so their absence inside means
  // something.
  const std::string source = __FILE__;
  ASSERT_TRUE(fs::path(source).is_absolute()) << source;
  ASSERT_TRUE(fs::exists(source));
  const bool os_release = fs::exists("/etc/os-release");
  TempDir outside("/var/tmp");
  ASSERT_FALSE(outside.path().empty());
  { std::ofstream(outside.path() + "/hidden") << "not for candidates\n"; }

  RunResult r = MustRun(Shell(absl::StrCat(
      "for f in ", source, " ", outside.path(), "/hidden", os_release ? " /etc/os-release" : "",
      " /etc/shadow /etc/hostname; do if cat \"$f\" >/dev/null 2>&1; then echo \"read $f\"; ",
      "exit 1; fi; done; if ls /root /home /srv /var >/dev/null 2>&1; then exit 2; fi; exit 0")));
  if (!bwrap()) {
    EXPECT_NE(r.exit_code, 0) << "control: without bwrap the host's files are readable";
    return;
  }
  EXPECT_EQ(r.exit_code, 0) << "1: a host file was readable, 2: a host folder was listable";
}

TEST_P(SandboxTest, CompilerAndPythonStillWork) {
  if (access("/usr/bin/g++", X_OK) != 0 || access("/usr/bin/python3", X_OK) != 0)
    GTEST_SKIP() << "needs /usr/bin/g++ and /usr/bin/python3";
  SandboxSpec spec = Shell(
      "printf '#include <cstdio>\\nint main() { std::puts(\"hello from g++\"); }\\n' > hello.cc"
      " && g++ -O1 -o hello hello.cc && ./hello"
      " && /usr/bin/python3 -c 'import json, os; print(json.dumps(os.getcwd()))'",
      120);
  spec.env.push_back("HOME=" + scratch_.path());
  spec.env.push_back("TMPDIR=" + scratch_.path());
  std::vector<std::string> lines;
  RunHooks hooks;
  hooks.output_line = [&](const std::string& line) { lines.push_back(line); };
  RunResult r = MustRun(spec, hooks);
  EXPECT_EQ(r.exit_code, 0) << absl::StrJoin(lines, "\n");
  ASSERT_EQ(lines.size(), 2u) << absl::StrJoin(lines, "\n");
  EXPECT_EQ(lines[0], "hello from g++");
  EXPECT_EQ(lines[1], absl::StrCat("\"", scratch_.path(), "\""));
}

TEST_P(SandboxTest, ExtraReadOnlyFoldersAreVisibleAndOnlyThose) {
  TempDir outside("/var/tmp");
  ASSERT_FALSE(outside.path().empty());
  const std::string shown = outside.path() + "/shown", hidden = outside.path() + "/hidden";
  fs::create_directories(shown);
  fs::create_directories(hidden);
  { std::ofstream(shown + "/f") << "visible\n"; }
  { std::ofstream(hidden + "/f") << "hidden\n"; }
  SandboxSpec spec = Shell(absl::StrCat("cat ", shown, "/f || exit 1; cat ", hidden,
                                        "/f 2>/dev/null && exit 2; touch ", shown,
                                        "/new 2>/dev/null && exit 3; exit 0"));
  spec.ro_binds = {shown, "relative/ignored", "/nonexistent/ignored"};
  RunResult r = MustRun(spec);
  if (!bwrap()) {
    EXPECT_EQ(r.exit_code, 2) << "control: without bwrap every folder is readable";
    return;
  }
  EXPECT_EQ(r.exit_code, 0) << "1: a bound folder was unreadable, 2: an unbound one was "
                               "readable, 3: a bound folder was writable";
  EXPECT_FALSE(fs::exists(shown + "/new"));
}

// Scratch limits. The data is random so that no filesystem compresses it away.
constexpr int64_t kScratchLimit = 20 << 20;

TEST_P(SandboxTest, ManyFilesPastTheScratchLimitAreKilledAndReported) {
  // Files of 4 MiB each, without end: no one file reaches RLIMIT_FSIZE, so
  // only the watch on the whole folder stops it.
  SandboxSpec spec = Shell(
      "i=0; while :; do head -c 4194304 /dev/urandom > \"$S/f$i\" || exit 9; i=$((i+1)); done",
      120);
  spec.scratch_bytes = kScratchLimit;
  RunResult r = MustRun(spec);
  EXPECT_TRUE(r.scratch_exceeded);
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_GT(r.scratch_used_bytes, kScratchLimit);
}

TEST_P(SandboxTest, AScratchOverrunIsTheCandidatesCrashWhateverItLeft) {
  // A result file first (as a harness would write one), then the overrun.
  SandboxSpec spec = Shell(
      "echo '{\"outcome\": \"ok\", \"score\": 1}' > \"$S/result.json\"; "
      "i=0; while :; do head -c 4194304 /dev/urandom > \"$S/f$i\" || exit 9; i=$((i+1)); done",
      120);
  spec.scratch_bytes = kScratchLimit;
  RunResult r = MustRun(spec);
  ASSERT_TRUE(r.scratch_exceeded);
  const v1::Evaluation e = EvaluationFromRun(r, R"({"outcome": "ok", "score": 1})", 120,
                                             "last line\n", "", kScratchLimit);
  EXPECT_EQ(e.outcome(), v1::OUTCOME_CRASH);
  EXPECT_EQ(e.score(), 0);
  EXPECT_TRUE(absl::StartsWith(
      e.message(), "scratch-exceeded: wrote more than 20971520 bytes (20 MiB) of scratch"))
      << e.message();
  EXPECT_TRUE(absl::StrContains(e.message(), "last line")) << e.message();
}

TEST_P(SandboxTest, OneFileStopsAtTheScratchLimit) {
  SandboxSpec spec = Shell("exec head -c 104857600 /dev/urandom > \"$S/big\"", 120);
  spec.scratch_bytes = kScratchLimit;
  RunResult r = MustRun(spec);
  EXPECT_TRUE(r.scratch_exceeded);
  EXPECT_EQ(r.signal, SIGXFSZ);
  EXPECT_LE(static_cast<int64_t>(fs::file_size(scratch_.path() + "/big")), kScratchLimit);
}

TEST_P(SandboxTest, ABurstThatEndsQuicklyIsCaughtEitherWay) {
  // A run that may end before the watch's first look: if a look falls inside
  // it, the run is killed; if not, the look after it still sees 30 MiB.
  SandboxSpec spec = Shell(
      "head -c 15728640 /dev/urandom > \"$S/a\" && head -c 15728640 /dev/urandom > \"$S/b\"");
  spec.scratch_bytes = kScratchLimit;
  RunResult r = MustRun(spec);
  EXPECT_TRUE(r.exit_code == 0 || r.signal == SIGKILL)
      << "exit " << r.exit_code << ", signal " << r.signal;
  EXPECT_TRUE(r.scratch_exceeded);
  EXPECT_GT(r.scratch_used_bytes, kScratchLimit);
}

TEST_P(SandboxTest, StayingUnderTheScratchLimitPasses) {
  SandboxSpec spec = Shell("head -c 5242880 /dev/urandom > \"$S/a\" && mkdir \"$S/d\" && "
                           "head -c 5242880 /dev/urandom > \"$S/d/b\"");
  spec.scratch_bytes = kScratchLimit;
  RunResult r = MustRun(spec);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_FALSE(r.scratch_exceeded);
  EXPECT_GE(r.scratch_used_bytes, 10 << 20);
  EXPECT_LE(r.scratch_used_bytes, kScratchLimit);
}

// /tmp and /dev/shm are tmpfs under bwrap, which the scratch watch does not
// see: files each under RLIMIT_FSIZE, 60 MiB in all, must still stop near the
// cap (Sandbox::TmpfsBytes) with ENOSPC, not fill half of the host's RAM.
TEST_P(SandboxTest, TmpAndShmAreBoundedByTheScratchCapUnderBwrap) {
  if (!bwrap()) GTEST_SKIP() << "without bwrap /tmp is the host's";
  for (const char* tmp : {"/tmp", "/dev/shm"}) {
    SCOPED_TRACE(tmp);
    SandboxSpec spec = Shell(absl::StrCat(
        "df -k ", tmp, " | tail -n 1; i=0; while [ $i -lt 15 ]; do "
        "head -c 4194304 /dev/zero > ", tmp, "/f$i 2>/dev/null || { "
        "echo stopped at $i; du -sk ", tmp, "; exit 7; }; i=$((i+1)); done; exit 0"));
    spec.scratch_bytes = kScratchLimit;
    std::vector<std::string> lines;
    RunHooks hooks;
    hooks.output_line = [&lines](const std::string& l) { lines.push_back(l); };
    RunResult r = MustRun(spec, hooks);
    const std::string out = absl::StrJoin(lines, " | ");
    EXPECT_EQ(r.exit_code, 7) << out;
    EXPECT_EQ(r.signal, 0) << out;
    EXPECT_FALSE(r.timed_out);
    // Nothing went to the scratch folder, and the watch says so.
    EXPECT_FALSE(r.scratch_exceeded) << out;
    EXPECT_LT(r.scratch_used_bytes, 1 << 20);
    // The tmpfs held no more than its size (a quarter of the cap).
    ASSERT_GE(lines.size(), 3u) << out;
    int64_t held_kb = 0;
    ASSERT_TRUE(absl::SimpleAtoi(lines.back().substr(0, lines.back().find('\t')), &held_kb))
        << out;
    EXPECT_LE(held_kb * 1024, Sandbox::TmpfsBytes(kScratchLimit) + (64 << 10)) << out;
  }
}

// Without a scratch cap the tmpfs stay unsized, as before.
TEST(SandboxCommandLineTest, TmpfsSizesFollowTheScratchCap) {
  auto sandbox = Sandbox::Create("bwrap");
  if (!sandbox.ok()) GTEST_SKIP() << "bwrap unavailable: " << sandbox.status();
  if (!sandbox->sized_tmpfs()) GTEST_SKIP() << "this bwrap takes no --size";
  TempDir scratch;
  SandboxSpec spec;
  spec.argv = {"/bin/true"};
  spec.scratch_dir = scratch.path();
  spec.scratch_bytes = int64_t{8} << 30;
  const std::string line = absl::StrJoin(sandbox->CommandLine(spec), " ");
  EXPECT_TRUE(absl::StrContains(line, "--size 2147483648 --tmpfs /dev/shm")) << line;
  EXPECT_TRUE(absl::StrContains(line, "--size 2147483648 --tmpfs /tmp")) << line;
  spec.scratch_bytes = 0;
  EXPECT_FALSE(absl::StrContains(absl::StrJoin(sandbox->CommandLine(spec), " "), "--size"));
}

INSTANTIATE_TEST_SUITE_P(Modes, SandboxTest, ::testing::Values("bwrap", "none"),
                         [](const auto& info) {
                           return info.param == "bwrap" ? std::string("Bwrap")
                                                        : std::string("Rlimits");
                         });

TEST(AllowedEnvironmentTest, KeepsToolchainVariablesAndDropsSecrets) {
  std::vector<std::string> given = {
      "PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C", "CUDA_VISIBLE_DEVICES=1",
      "NVIDIA_VISIBLE_DEVICES=all", "LD_LIBRARY_PATH=/opt/bundle/lib", "CUDA_HOME=/usr/local/cuda",
      "RATCHET_PYTHON=/opt/venv/bin/python", "RATCHET_TB_COMPILE=0", "RATCHET_NVCC=/x/nvcc",
      "PYTHONPATH=/opt/site", "VIRTUAL_ENV=/opt/venv", "CUTLASS_DIR=/opt/cutlass",
      // Never:
      "PGPASSWORD=hunter2", "PGHOST=db", "OPENAI_API_KEY=sk-1", "AWS_SECRET_ACCESS_KEY=a",
      "AWS_ACCESS_KEY_ID=b", "GITHUB_TOKEN=c", "NVIDIA_API_KEY=d", "CUDA_AUTH_TOKEN=e",
      "RATCHET_RESULT_NONCE=f", "RATCHET_INDEPENDENT_TIMING=1", "RATCHET_JOB_ID=3",
      "RATCHET_STORE=postgres://u:p@h/db", "DATABASE_URL=postgres://u:p@h/db", "HOME=/root",
      "TMPDIR=/var/tmp", "XDG_CACHE_HOME=/root/.cache", "LD_PRELOAD=/tmp/evil.so",
      "SSH_AUTH_SOCK=/run/ssh", "path=lowercase", "=empty", "NOEQUALS"};
  std::vector<char*> env;
  for (auto& kv : given) env.push_back(kv.data());
  env.push_back(nullptr);
  const std::vector<std::string> expected(given.begin(), given.begin() + 13);
  EXPECT_EQ(AllowedEnvironment(env.data()), expected);
}

TEST(AllowedEnvironmentTest, SecretsSetInThisProcessDoNotComeThrough) {
  ScopedSecrets secrets;
  const std::vector<std::string> allowed = AllowedEnvironment(environ);
  for (const auto& kv : allowed) EXPECT_FALSE(absl::StrContains(kv, "hunter2")) << kv;
  ASSERT_NE(getenv("PATH"), nullptr);
  EXPECT_NE(std::find(allowed.begin(), allowed.end(), absl::StrCat("PATH=", getenv("PATH"))),
            allowed.end());
}

TEST(ToolchainFoldersTest, LibraryFoldersAndPythonPrefixes) {
  TempDir root("/var/tmp");
  ASSERT_FALSE(root.path().empty());
  const std::string venv = root.path() + "/venv", lib = root.path() + "/bundle/lib";
  fs::create_directories(venv + "/bin");
  fs::create_directories(lib);
  // A venv's python is a link to the system's; both prefixes are wanted.
  fs::create_symlink("/usr/bin/python3", venv + "/bin/python3");
  const std::vector<std::string> env = {
      absl::StrCat("LD_LIBRARY_PATH=", lib, ":relative/lib:/nonexistent/lib"),
      "PYENV_ROOT=/root", absl::StrCat("RATCHET_NVCC=", root.path(), "/nvcc-not-installed"),
      "PATH=/usr/bin:/bin"};
  std::vector<std::string> folders = ToolchainFolders(env, {venv + "/bin/python3"});
  EXPECT_NE(std::find(folders.begin(), folders.end(), lib), folders.end());
  // CUTLASS's headers, for C++ solutions that include them.
  const std::string cutlass = root.path() + "/cutlass";
  fs::create_directories(cutlass + "/include");
  std::vector<std::string> with_cutlass = env;
  with_cutlass.push_back("CUTLASS_DIR=" + cutlass);
  const std::vector<std::string> cutlass_folders = ToolchainFolders(with_cutlass, {});
  EXPECT_NE(std::find(cutlass_folders.begin(), cutlass_folders.end(), cutlass),
            cutlass_folders.end());
  EXPECT_NE(std::find(folders.begin(), folders.end(), venv), folders.end());
  EXPECT_NE(std::find(folders.begin(), folders.end(), "/usr/bin"), folders.end());  // the link's, narrowed
  for (const auto& f : folders) {
    EXPECT_TRUE(fs::path(f).is_absolute()) << f;
    EXPECT_NE(f, "/root") << "a whole top-level folder";
    EXPECT_NE(f, "/nonexistent/lib");
  }
  // Without an explicit python, the one on PATH; a prefix that would be a
  // top-level folder narrows to the program's own folder.
  fs::create_directories(root.path() + "/pybin");
  {
    std::ofstream(root.path() + "/pybin/python3") << "#!/bin/sh\n";
  }
  fs::permissions(root.path() + "/pybin/python3", fs::perms::owner_all);
  folders = ToolchainFolders({absl::StrCat("PATH=", root.path(), "/pybin:/usr/bin")}, {});
  EXPECT_EQ(folders, std::vector<std::string>{root.path() + "/pybin"});
}

TEST(ScratchUsageTest, CountsTheWholeTreeButNotLinksOut) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  const int64_t empty = ScratchUsage(dir.path());
  fs::create_directories(dir.path() + "/a/b/c");
  {
    std::ofstream f(dir.path() + "/a/b/c/data", std::ios::binary);
    std::string chunk(1 << 20, 'x');
    for (int i = 0; i < 3; ++i) f << chunk;
  }
  // A link to a big file outside the tree does not count what it points to.
  fs::create_symlink("/usr/bin/python3", dir.path() + "/a/link");
  const int64_t used = ScratchUsage(dir.path());
  EXPECT_GE(used - empty, 3 << 20);
  EXPECT_LT(used - empty, 4 << 20);
  // A folder closed to its owner is still measured.
  fs::permissions(dir.path() + "/a/b", fs::perms::none);
  EXPECT_EQ(ScratchUsage(dir.path()), used);
  fs::permissions(dir.path() + "/a/b", fs::perms::owner_all);
}

TEST(ScratchUsageTest, ATreeTooDeepToWalkIsOverAnyLimit) {
  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  std::string deep = dir.path();
  for (int i = 0; i < 200; ++i) deep += "/d";
  fs::create_directories(deep);
  EXPECT_EQ(ScratchUsage(dir.path()), INT64_MAX);
}

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
