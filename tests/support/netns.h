// Several "hosts" on one machine for tests: a network namespace per host, each
// joined to a bridge (in a namespace of its own) by a veth pair, addresses
// 10.X.0.i/24. Links can be cut and restored from the bridge's side, as if a
// cable were pulled. Everything is deleted when the object goes away, and
// namespaces left behind by a test process that was killed are deleted the
// next time one is made.
//
// Needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) and the `ip` program;
// Available() says why not when it cannot work here.
#ifndef RATCHET_TESTS_SUPPORT_NETNS_H_
#define RATCHET_TESTS_SUPPORT_NETNS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ratchet::testing {

class NetnsTopology {
 public:
  // Whether namespaces, veth pairs and bridges can be made here (tried for
  // real); when not, `why` says what failed.
  static bool Available(std::string* why);
  // The `ip` program ("ip netns exec NS argv..." runs a command inside).
  static std::string IpBinary();

  // Makes one namespace per host name, host i (from 1) at 10.<subnet>.0.i.
  static absl::StatusOr<std::unique_ptr<NetnsTopology>> Create(
      const std::vector<std::string>& hosts);
  ~NetnsTopology();
  NetnsTopology(const NetnsTopology&) = delete;
  NetnsTopology& operator=(const NetnsTopology&) = delete;

  std::string Namespace(const std::string& host) const;
  std::string Address(const std::string& host) const;
  // Takes the host's link down or up at the bridge.
  absl::Status SetLink(const std::string& host, bool up);

 private:
  NetnsTopology() = default;
  struct Host {
    std::string ns;
    std::string bridge_side;  // veth end in the hub namespace
    std::string address;
  };
  std::string hub_;
  std::map<std::string, Host> hosts_;
  std::vector<std::string> made_;  // namespaces to delete
};

}  // namespace ratchet::testing

#endif  // RATCHET_TESTS_SUPPORT_NETNS_H_
