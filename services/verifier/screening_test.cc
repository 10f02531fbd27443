#include "services/verifier/screening.h"

#include "gtest/gtest.h"

namespace ratchet::verifier {
namespace {

TEST(Screening, HonestKernelRaisesNothing) {
  std::map<std::string, std::string> files = {
      {"kernel.cu",
       "#include <ratchet/kernel_abi.h>\n"
       "__global__ void add(const float* a, float* c, int n) {\n"
       "  int i = blockIdx.x * blockDim.x + threadIdx.x;  // std::thread in a comment\n"
       "  if (i < n) c[i] = a[i] + 1.0f;\n}\n"
       "int threads_per_block = 256; int my_open_count = 0; void reopen(int);\n"},
      {"solution.json", "{\"sources\": [\"kernel.cu\"], \"note\": \"std::thread\"}"}};
  EXPECT_TRUE(ScreenSource(files).empty()) << DescribeFlags(ScreenSource(files));
}

TEST(Screening, FlagsEachSuspiciousConstructWithItsPlace) {
  std::map<std::string, std::string> files = {
      {"kernel.cc",
       "#include <thread>\n"
       "static std::thread worker;\n"
       "void* h = dlopen(\"libx.so\", 0);\n"
       "auto t0 = std::chrono::steady_clock::now();\n"
       "const char* e = getenv(\"HOME\");\n"
       "cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);\n"
       "mprotect(p, 4096, 7); execvp(\"sh\", argv);\n"}};
  auto flags = ScreenSource(files);
  std::string text = DescribeFlags(flags);
  EXPECT_NE(text.find("threads: std::thread (kernel.cc:2)"), std::string::npos) << text;
  EXPECT_NE(text.find("dynamic-loading: dlopen (kernel.cc:3)"), std::string::npos) << text;
  EXPECT_NE(text.find("clocks: std::chrono (kernel.cc:4)"), std::string::npos) << text;
  EXPECT_NE(text.find("environment-or-files: getenv (kernel.cc:5)"), std::string::npos);
  EXPECT_NE(text.find("streams: cudaStreamCreate"), std::string::npos) << text;
  EXPECT_NE(text.find("memory-protection: mprotect (kernel.cc:7)"), std::string::npos);
  EXPECT_NE(text.find("processes: execv (kernel.cc:7)"), std::string::npos) << text;
  // One flag per category and line.
  int streams = 0;
  for (const auto& f : flags) streams += f.category == "streams";
  EXPECT_EQ(streams, 1);
}

}  // namespace
}  // namespace ratchet::verifier
