#include "services/cli/security_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "services/cli/commands.h"
#include "common/auth.h"
#include "common/flags.h"
#include "common/pki.h"

namespace ratchet::cli {
namespace {

constexpr char kUsage[] =
    "usage: ratchet pki init DIR [--hosts=NAME,IP,...]\n"
    "         a CA (DIR/ca.pem, DIR/ca.key) and the coordinator's certificate\n"
    "         (DIR/coordinator.pem/.key) for the names and addresses clients dial\n"
    "         (localhost and 127.0.0.1 always)\n"
    "       ratchet pki issue DIR ROLE:NAME [--hosts=...]\n"
    "         a certificate signed by DIR's CA: worker:NAME, verifier:NAME, or a\n"
    "         client's admin:NAME / submit:NAME / read:NAME; DIR/NAME.pem/.key\n"
    "       ratchet token add --tokens=FILE --role=read|submit|admin --name=NAME\n"
    "         a new client token: printed once, its SHA-256 appended to FILE\n"
    "         (the coordinator's --tokens); pass it with --token-file or $RATCHET_TOKEN\n"
    "       --json: what was made, as one JSON object\n";

int Usage(std::ostream& err, const std::string& why) {
  err << "ratchet: " << why << "\n" << kUsage;
  return kExitUsage;
}

std::vector<std::string> Hosts(const Flags& flags) {
  std::vector<std::string> hosts;
  for (absl::string_view h : absl::StrSplit(flags.Get("hosts"), ',', absl::SkipEmpty()))
    hosts.emplace_back(h);
  return hosts;
}

// A name that is safe as a file stem and as a principal: letters, digits,
// '-', '_', '.'; not starting with '.'.
bool SafeName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.') return false;
  for (char c : name)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'))
      return false;
  return true;
}

int Pki(const Flags& flags, std::ostream& out, std::ostream& err) {
  const auto& pos = flags.positional();
  if (pos.size() < 3) return Usage(err, "pki needs a subcommand and DIR");
  const std::string& dir = pos[2];
  if (pos[1] == "init") {
    if (pos.size() != 3) return Usage(err, "pki init takes DIR only");
    if (auto s = pki::InitCa(dir); !s.ok()) {
      err << "ratchet pki init: " << s.message() << "\n";
      return kExitFailure;
    }
    std::vector<std::string> hosts = {"localhost", "127.0.0.1"};
    for (const auto& h : Hosts(flags)) hosts.push_back(h);
    if (auto s = pki::Issue(dir, "coordinator:coordinator", hosts, "coordinator"); !s.ok()) {
      err << "ratchet pki init: " << s.message() << "\n";
      return kExitFailure;
    }
    if (flags.Has("json")) {
      out << nlohmann::json{{"ca", dir + "/ca.pem"},
                            {"ca_key", dir + "/ca.key"},
                            {"certificate", dir + "/coordinator.pem"},
                            {"key", dir + "/coordinator.key"},
                            {"hosts", hosts}}
                 .dump()
          << "\n";
      return kExitOk;
    }
    out << "CA " << dir << "/ca.pem (its key " << dir << "/ca.key: keep it off the cluster)\n"
        << "coordinator certificate " << dir << "/coordinator.pem for "
        << absl::StrJoin(hosts, ", ") << "\n"
        << "next: ratchet pki issue " << dir << " worker:NAME; ratchet token add ...\n";
    return kExitOk;
  }
  if (pos[1] == "issue") {
    if (pos.size() != 4) return Usage(err, "pki issue takes DIR and ROLE:NAME");
    const std::string& cn = pos[3];
    const size_t colon = cn.find(':');
    if (colon == std::string::npos) return Usage(err, "expected ROLE:NAME, e.g. worker:gpu-1");
    if (auto role = auth::ParseRole(cn.substr(0, colon)); !role.ok())
      return Usage(err, std::string(role.status().message()));
    const std::string name = cn.substr(colon + 1);
    if (!SafeName(name))
      return Usage(err, "NAME: letters, digits, '-', '_' and '.' (at most 64)");
    if (auto s = pki::Issue(dir, cn, Hosts(flags), name); !s.ok()) {
      err << "ratchet pki issue: " << s.message() << "\n";
      return kExitFailure;
    }
    if (flags.Has("json")) {
      out << nlohmann::json{{"principal", cn},
                            {"certificate", dir + "/" + name + ".pem"},
                            {"key", dir + "/" + name + ".key"}}
                 .dump()
          << "\n";
    } else {
      out << cn << ": " << dir << "/" << name << ".pem and " << dir << "/" << name << ".key\n";
    }
    return kExitOk;
  }
  return Usage(err, absl::StrCat("unknown pki subcommand '", pos[1], "'"));
}

int Token(const Flags& flags, std::ostream& out, std::ostream& err) {
  const auto& pos = flags.positional();
  if (pos.size() != 2 || pos[1] != "add") return Usage(err, "token takes the subcommand add");
  if (!flags.Has("tokens") || !flags.Has("role") || !flags.Has("name"))
    return Usage(err, "token add needs --tokens, --role and --name");
  auto role = auth::ParseRole(flags.Get("role"));
  if (!role.ok()) return Usage(err, std::string(role.status().message()));
  if (*role == auth::Role::kWorker || *role == auth::Role::kVerifier)
    return Usage(err, "workers and verifiers use certificates (ratchet pki issue)");
  const std::string name = flags.Get("name");
  if (!SafeName(name)) return Usage(err, "--name: letters, digits, '-', '_' and '.'");
  const std::string token = auth::NewToken();
  const std::string line =
      absl::StrCat(auth::Sha256Hex(token), " ", auth::RoleName(*role), " ", name, "\n");
  const std::string path = flags.Get("tokens");
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 || ::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    if (fd >= 0) ::close(fd);
    err << "ratchet token add: cannot append to " << path << "\n";
    return kExitFailure;
  }
  ::close(fd);
  if (flags.Has("json")) {
    out << nlohmann::json{{"token", token},
                          {"role", auth::RoleName(*role)},
                          {"name", name},
                          {"tokens_file", path}}
               .dump()
        << "\n";
    return kExitOk;
  }
  out << token << "\n";
  err << "token for " << name << " (" << auth::RoleName(*role) << ") added to " << path
      << "; it is shown only now (the coordinator reads " << path << " at start)\n";
  return kExitOk;
}

}  // namespace

bool IsSecurityCommand(const std::string& name) { return name == "pki" || name == "token"; }

int RunSecurityCommand(int argc, char** argv, std::ostream& out, std::ostream& err) {
  auto flags = Flags::Parse(argc, argv, {"help", "json"});
  if (!flags.ok()) return Usage(err, std::string(flags.status().message()));
  if (flags->Has("help")) {
    out << kUsage;
    return kExitOk;
  }
  auto unknown = flags->Unknown({"hosts", "tokens", "role", "name", "help", "json"});
  if (!unknown.empty()) return Usage(err, absl::StrCat("unknown flag --", unknown[0]));
  return flags->positional().empty() || flags->positional()[0] == "pki" ? Pki(*flags, out, err)
                                                                          : Token(*flags, out, err);
}

}  // namespace ratchet::cli
