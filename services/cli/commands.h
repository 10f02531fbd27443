// The CLI's client commands: thin gRPC calls to CoordinatorService plus the
// tables that present their answers. Formatting is split from the calls so it
// can be tested without a server.
#ifndef RATCHET_SERVICES_CLI_COMMANDS_H_
#define RATCHET_SERVICES_CLI_COMMANDS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "ratchet/v1/ratchet.pb.h"
#include "common/flags.h"

namespace ratchet::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Deadline for unary calls, so a hung coordinator cannot hang the CLI.
inline constexpr int kRpcDeadlineSeconds = 15;

// --coordinator, else $RATCHET_COORDINATOR, else 127.0.0.1:50051.
std::string CoordinatorAddress(const Flags& flags);

std::unique_ptr<ratchet::v1::CoordinatorService::Stub> MakeStub(const std::string& address);
// A stub with the caller's credentials: --tls-ca, --token-file, ... (or
// $RATCHET_TLS_CA, $RATCHET_TOKEN; docs/security.md).
absl::StatusOr<std::unique_ptr<ratchet::v1::CoordinatorService::Stub>> MakeStub(
    const std::string& address, const Flags& flags);

// One line for a failed call: "cannot reach coordinator at ADDR: ..." when it
// is unreachable, else "coordinator at ADDR: NOT_FOUND: ...".
std::string RpcErrorLine(const std::string& address, const grpc::Status& status);

// The proto as JSON with proto field names, every field printed.
std::string ToJson(const google::protobuf::Message& message);

// Runs `submit`, `status`, `watch`, `leaderboard`, `show`, `workers` or
// `cancel`; argv[0] is the command name. Returns the process exit code.
bool IsClientCommand(const std::string& name);
int RunClientCommand(int argc, char** argv, std::ostream& out, std::ostream& err);

// Usage text for every command (the whole binary's help).
std::string Usage();
// One command's usage (the global one for a command it does not know).
std::string CommandUsage(const std::string& cmd);

// Presentation. `now_ms` makes relative times testable.
std::string FormatCampaign(const ratchet::v1::Campaign& campaign, int64_t now_ms);
std::string FormatCampaignTable(const std::vector<ratchet::v1::Campaign>& campaigns,
                                int64_t now_ms);
// Thread ids to the campaign's thread indices (ResearchThread.index), which
// every command shows as "thread N".
using ThreadIndex = std::map<int64_t, int>;
std::string ThreadLabel(int64_t thread_id, const ThreadIndex& index);
std::string FormatLeaderboard(const ratchet::v1::Leaderboard& leaderboard,
                              const ThreadIndex& threads = {});
std::string FormatCandidate(const ratchet::v1::CandidateDetail& detail, bool with_files,
                            const ThreadIndex& threads = {});
// What a verdict rests on (tiers, failed check, medians, Welch test, noise
// floor, screening flags, independent timings), as `show` prints it under
// each verification; "" when the verdict has no evidence (older verdicts).
std::string FormatEvidence(const ratchet::v1::Verification& verification);
std::string FormatWorkers(const ratchet::v1::ListWorkersResponse& workers);
// One compact progress line: elapsed, evaluations/budget, queue, scores.
std::string StatusLine(const ratchet::v1::Campaign& campaign, double elapsed_seconds);

// `text` on one line: newlines as \n, other control bytes as \xNN.
std::string EscapedLine(const std::string& text);
// Left-aligned columns separated by two spaces, each cell EscapedLine; rows may be
// shorter than the header.
std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& rows);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_COMMANDS_H_
