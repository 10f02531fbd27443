// Static screening of candidate source: constructs that an honest kernel
// rarely needs and a reward hack often does (threads and processes, hidden
// streams, dynamic loading, memory protection, files and environment, clocks).
// A flag raises the verifier's scrutiny and is shown in the verdict; it never
// rejects by itself.
#ifndef RATCHET_SERVICES_VERIFIER_SCREENING_H_
#define RATCHET_SERVICES_VERIFIER_SCREENING_H_

#include <map>
#include <string>
#include <vector>

namespace ratchet::verifier {

struct ScreeningFlag {
  std::string category;   // "threads", "streams", "dynamic-loading", ...
  std::string construct;  // what was found, e.g. "pthread_create"
  std::string file;
  int line = 0;
};

// Scans every file (path -> content), skipping // comments. In file and line order.
std::vector<ScreeningFlag> ScreenSource(const std::map<std::string, std::string>& files);

// The flags of `candidate` whose construct the incumbent's source does not
// have: what the candidate adds is what raises scrutiny.
std::vector<ScreeningFlag> AddedFlags(const std::map<std::string, std::string>& candidate,
                                      const std::map<std::string, std::string>& incumbent);

// "threads: pthread_create (kernel.cc:12)".
std::string DescribeFlag(const ScreeningFlag& flag);
// "threads: pthread_create (kernel.cc:12); clocks: std::chrono (kernel.cc:30)".
std::string DescribeFlags(const std::vector<ScreeningFlag>& flags);

}  // namespace ratchet::verifier

#endif  // RATCHET_SERVICES_VERIFIER_SCREENING_H_
