// The harness's side of the call protocol against the real ratchet-candidate
// and libraries compiled here with the real compiler: how a call's end is
// taken (the kernel's stamp of the answer datagram) and what waiting costs
// the harness. Every assertion is a bound that a slow or busy host only
// moves further from failing.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "kernels/harness/candidate_channel.h"
#include "kernels/harness/candidate_process.h"

namespace ratchet::kernels {
namespace {

namespace fs = std::filesystem;
namespace ch = channel;

constexpr double kCallMs = 20;  // every test library's call sleeps this long

class CandidateProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ratchet-candidate-process-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    process_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // Compiles `body` (the inside of ratchet_run) into a library and starts
  // ratchet-candidate on it, loaded.
  void StartWith(const std::string& body) {
    const std::string src = dir_ + "/kernel.cc", lib = dir_ + "/kernel.so";
    std::ofstream(src) << "#include <sys/socket.h>\n#include <time.h>\n#include <unistd.h>\n#include <cstdint>\n"
                          "extern \"C\" int ratchet_run(const void*, int, void*, int) {\n"
                       << body << "\n  return 0;\n}\n";
    const std::string cmd = "g++ -O1 -shared -fPIC -o " + lib + " " + src;
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    fs::create_directories(dir_ + "/work");
    auto p = CandidateProcess::Start(RATCHET_CANDIDATE_BIN, lib, 1 << 20, dir_ + "/work",
                                     dir_ + "/candidate.log");
    ASSERT_TRUE(p.ok()) << p.status();
    process_ = std::move(*p);
    ASSERT_TRUE(process_->CalibrateRoundTrip(5).ok());
    ASSERT_TRUE(process_->Load().ok()) << process_->LogTail();
  }

  CandidateProcess::CallEnd CallOnce() {
    ch::ControlBlock* cb = process_->control();
    cb->num_inputs = 0;
    cb->num_outputs = 0;
    cb->repeat = 1;
    return process_->Send(ch::kCall);
  }

  std::string dir_;
  std::unique_ptr<CandidateProcess> process_;
};

const char* kSleep =
    "  timespec ts{0, 20000000};\n"
    "  nanosleep(&ts, nullptr);";

double ThreadCpuMs() {
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 +
         (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3;
}

// A waiting harness leaves the cores to the candidate: a spinning one took
// a core from a 2-thread candidate on 2 busy cores and read it 20x slower.
TEST_F(CandidateProcessTest, TheHarnessSleepsThroughALongCall) {
  StartWith(kSleep);
  const double cpu0 = ThreadCpuMs();
  double wall = 0;
  for (int i = 0; i < 5; ++i) {
    const CandidateProcess::CallEnd e = CallOnce();
    ASSERT_TRUE(e.returned) << e.how;
    wall += e.ns / 1e6;
  }
  const double cpu = ThreadCpuMs() - cpu0;
  EXPECT_GE(wall, 5 * kCallMs);
  // Spinning through them would be 100 ms of CPU; sleeping is well under 1.
  EXPECT_LT(cpu, 0.2 * wall) << "the harness used " << cpu << " ms of CPU over " << wall
                             << " ms of calls";
}

// The call's end is the kernel's stamp of the answer, taken while the
// harness slept: never before the call really ended.
TEST_F(CandidateProcessTest, ACallEndsWhenItsAnswerWasSent) {
  StartWith(kSleep);
  for (int i = 0; i < 3; ++i) {
    const CandidateProcess::CallEnd e = CallOnce();
    ASSERT_TRUE(e.returned) << e.how;
    EXPECT_GE(e.ns, kCallMs * 1e6);
  }
}

// Candidate code holds the answer socket too: datagrams it sends early, for
// any request number, do not end a call that is still running.
TEST_F(CandidateProcessTest, EarlyAnswersFromCandidateCodeDoNotShortenACall) {
  StartWith(
      "  for (uint32_t seq = 0; seq < 4096; ++seq)\n"
      "    send(5, &seq, sizeof(seq), MSG_DONTWAIT | MSG_NOSIGNAL);\n"
      "  timespec ts{0, 20000000};\n"
      "  nanosleep(&ts, nullptr);\n"
      "  for (uint32_t seq = 0; seq < 4096; ++seq)\n"
      "    send(5, &seq, sizeof(seq), MSG_DONTWAIT | MSG_NOSIGNAL);");
  for (int i = 0; i < 3; ++i) {
    const CandidateProcess::CallEnd e = CallOnce();
    ASSERT_TRUE(e.returned) << e.how;
    EXPECT_GE(e.ns, kCallMs * 1e6);
  }
}

// A candidate that closes the socket answers only through `done`: the call
// still ends, later rather than sooner.
TEST_F(CandidateProcessTest, NoDatagramStillEndsTheCall) {
  StartWith("  static bool closed = false;\n  if (!closed) { closed = true; close(5); }\n" +
            std::string(kSleep));
  const CandidateProcess::CallEnd e = CallOnce();
  ASSERT_TRUE(e.returned) << e.how;
  EXPECT_GE(e.ns, kCallMs * 1e6);
  EXPECT_LT(e.woke_ns, 0);
}

}  // namespace
}  // namespace ratchet::kernels
