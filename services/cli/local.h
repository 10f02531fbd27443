// `ratchet local <spec.yaml>`: the one-machine mode. Starts a coordinator
// (SQLite), a verifier and N workers as child processes of this binary,
// submits the spec, shows progress, prints the summary and stops them again.
#ifndef RATCHET_SERVICES_CLI_LOCAL_H_
#define RATCHET_SERVICES_CLI_LOCAL_H_

#include <string>
#include <vector>

namespace ratchet::cli {

// argv[0] is "local". Exit code 0 if the campaign finished, 1 if it failed,
// was cancelled or interrupted, or a service died; 2 on usage errors.
int LocalMain(int argc, char** argv);

// The last `lines` lines of a file ("" if unreadable); for error reports.
std::string TailFile(const std::string& path, int lines);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_LOCAL_H_
