// The solution reader (kernels/harness/solution.cc): solution.json as a
// campaign's baseline or an llm's candidate writes it. The reader takes a
// folder, so each input is written to solution.json in a scratch folder that
// also holds kernel.cc and util.h for the sources to find.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <cstdio>
#include <string>

#include "kernels/harness/solution.h"
#include "kernels/problem/problem.h"

namespace {

const std::string& Dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/ratchet-solution-fuzz-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (d == nullptr) std::abort();
    std::ofstream(std::string(d) + "/kernel.cc") << "int x;\n";
    std::ofstream(std::string(d) + "/util.h") << "#pragma once\n";
    return std::string(d);
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ratchet::kernels;
  {
    std::ofstream f(Dir() + "/solution.json", std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  for (SolutionBackend backend : {SolutionBackend::kCpu, SolutionBackend::kCuda}) {
    auto s = LoadSolution(Dir(), {{"UNROLL", "4"}}, backend);
    // The message goes into the harness's JSON result.
    if (!s.ok() && InvalidUtf8Offset(s.status().message()) != absl::string_view::npos) {
      std::fprintf(stderr, "message is not UTF-8: %s\n",
                   std::string(s.status().message()).c_str());
      __builtin_trap();
    }
  }
  return 0;
}
