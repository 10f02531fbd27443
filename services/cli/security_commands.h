// `ratchet pki` and `ratchet token`: the credentials of a small cluster
// (docs/security.md).
#ifndef RATCHET_SERVICES_CLI_SECURITY_COMMANDS_H_
#define RATCHET_SERVICES_CLI_SECURITY_COMMANDS_H_

#include <ostream>
#include <string>

namespace ratchet::cli {

bool IsSecurityCommand(const std::string& name);
// argv[0] is "pki" or "token".
int RunSecurityCommand(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_SECURITY_COMMANDS_H_
