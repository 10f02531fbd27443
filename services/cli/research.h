// Client commands for the research loop's control and results: pause,
// resume, report, diff, export (docs/research.md) and events, a campaign's
// stored history (docs/cluster.md, "Events"). The pure parts (the
// diff, the export folder) are separate from the calls so tests can use them
// without a server.
#ifndef RATCHET_SERVICES_CLI_RESEARCH_H_
#define RATCHET_SERVICES_CLI_RESEARCH_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::cli {

bool IsResearchCommand(const std::string& name);
// argv[0] is the command name; returns the process exit code.
int RunResearchCommand(int argc, char** argv, std::ostream& out, std::ostream& err);

// A unified diff (`diff -u` format, `context` lines around each change) of two
// texts; "" when they are equal.
std::string UnifiedDiff(const std::string& from, const std::string& to,
                        const std::string& from_label, const std::string& to_label,
                        int context = 3);

// The knobs that differ ("-NAME=old" / "+NAME=new" lines under a "knobs"
// header) followed by a unified diff of every file that differs.
std::string DiffSolutions(const ratchet::v1::Solution& from, const ratchet::v1::Solution& to,
                          const std::string& from_label, const std::string& to_label);

// solution.json with each declared knob's "default" set to `knobs`' value,
// keeping the type (number or string) of the matching choice.
absl::StatusOr<std::string> SolutionJsonWithDefaults(
    const std::string& solution_json, const google::protobuf::Map<std::string, std::string>& knobs);

// Writes DIR/problem (definition.json, workload.jsonl), DIR/solution (the
// candidate's files, knobs applied as solution.json defaults), DIR/README.md
// and DIR/run.sh, which reproduces the result with `ratchet bench`. DIR must
// not exist or be empty.
absl::Status ExportCandidate(const ratchet::v1::Campaign& campaign,
                             const ratchet::v1::CandidateDetail& detail, const std::string& dir);

// Writes FILE, the candidate as a SOL-ExecBench solution JSON
// (kernels/harness/public_solution.h); FILE must not exist.
absl::Status ExportSolExecBench(const ratchet::v1::Campaign& campaign,
                                const ratchet::v1::CandidateDetail& detail, const std::string& file);

// `ratchet import <solution.json> <dir>`: argv[0] is "import"; needs no
// coordinator. Returns the process exit code.
int RunImportCommand(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_RESEARCH_H_
