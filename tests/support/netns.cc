#include "tests/support/netns.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/support/process.h"

namespace ratchet::testing {
namespace {

// Namespaces are named "rtn<pid>-<host>", so that leftovers of a dead test
// process can be recognised and removed.
constexpr char kPrefix[] = "rtn";

absl::Status Ip(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {NetnsTopology::IpBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  CommandResult r = RunCommand(argv, 20'000);
  if (r.exit_code != 0)
    return absl::InternalError(
        absl::StrCat("ip ", absl::StrJoin(args, " "), ": exit ", r.exit_code, ": ", r.err));
  return absl::OkStatus();
}

void RemoveOrphans() {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    const std::string name = entry.path().filename().string();
    if (!absl::StartsWith(name, kPrefix)) continue;
    int pid = 0;
    const std::string rest = name.substr(sizeof(kPrefix) - 1);
    if (!absl::SimpleAtoi(rest.substr(0, rest.find('-')), &pid) || pid <= 0) continue;
    if (kill(pid, 0) == 0 || errno != ESRCH) continue;  // its test still runs
    (void)Ip({"netns", "del", name});
  }
}

}  // namespace

std::string NetnsTopology::IpBinary() {
  for (const char* p : {"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"})
    if (access(p, X_OK) == 0) return p;
  return "ip";
}

bool NetnsTopology::Available(std::string* why) {
  if (geteuid() != 0) {
    *why = "network namespaces need root (CAP_SYS_ADMIN, CAP_NET_ADMIN); running as uid " +
           std::to_string(geteuid());
    return false;
  }
  if (access(IpBinary().c_str(), X_OK) != 0) {
    *why = "the ip program (iproute2) is not installed";
    return false;
  }
  auto probe = Create({"a", "b"});
  if (!probe.ok()) {
    *why = absl::StrCat("cannot make network namespaces with veth links and a bridge here: ",
                        probe.status().message());
    return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<NetnsTopology>> NetnsTopology::Create(
    const std::vector<std::string>& hosts) {
  RemoveOrphans();
  static int serial = 0;
  std::unique_ptr<NetnsTopology> t(new NetnsTopology());
  const std::string base = absl::StrCat(kPrefix, getpid(), "-", serial);
  const int subnet = 100 + (getpid() + serial) % 100;
  ++serial;
  t->hub_ = base + "-hub";
  auto make_ns = [&](const std::string& ns) -> absl::Status {
    if (auto s = Ip({"netns", "add", ns}); !s.ok()) return s;
    t->made_.push_back(ns);
    return Ip({"-n", ns, "link", "set", "lo", "up"});
  };
  if (auto s = make_ns(t->hub_); !s.ok()) return s;
  if (auto s = Ip({"-n", t->hub_, "link", "add", "br0", "type", "bridge"}); !s.ok()) return s;
  if (auto s = Ip({"-n", t->hub_, "link", "set", "br0", "up"}); !s.ok()) return s;
  int i = 0;
  for (const auto& name : hosts) {
    ++i;
    Host host;
    host.ns = absl::StrCat(base, "-", name);
    host.bridge_side = absl::StrCat("veth", i);
    host.address = absl::StrCat("10.", subnet, ".0.", i);
    if (auto s = make_ns(host.ns); !s.ok()) return s;
    // Both ends are made in the hub, then one moves into the host.
    if (auto s = Ip({"-n", t->hub_, "link", "add", host.bridge_side, "type", "veth", "peer",
                     "name", "eth0", "netns", host.ns});
        !s.ok())
      return s;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"-n", t->hub_, "link", "set", host.bridge_side, "master", "br0"},
             {"-n", t->hub_, "link", "set", host.bridge_side, "up"},
             {"-n", host.ns, "addr", "add", host.address + "/24", "dev", "eth0"},
             {"-n", host.ns, "link", "set", "eth0", "up"}})
      if (auto s = Ip(args); !s.ok()) return s;
    t->hosts_[name] = host;
  }
  return t;
}

NetnsTopology::~NetnsTopology() {
  // Deleting a namespace deletes the veth ends in it (and so their peers).
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) (void)Ip({"netns", "del", *it});
}

std::string NetnsTopology::Namespace(const std::string& host) const {
  return hosts_.at(host).ns;
}

std::string NetnsTopology::Address(const std::string& host) const {
  return hosts_.at(host).address;
}

absl::Status NetnsTopology::SetLink(const std::string& host, bool up) {
  return Ip({"-n", hub_, "link", "set", hosts_.at(host).bridge_side, up ? "up" : "down"});
}

}  // namespace ratchet::testing
