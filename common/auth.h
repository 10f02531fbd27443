// Who is calling, and what they may do (docs/security.md).
//
// Services (workers, verifiers) prove who they are with a client certificate
// signed by the cluster's CA, its common name "ROLE:NAME"; clients (the CLI,
// scripts) with a bearer token whose SHA-256 the coordinator keeps in its
// tokens file. Without TLS the coordinator is open: every caller is
// "anonymous" with every role, which it allows only on loopback or when told
// --insecure.
#ifndef RATCHET_COMMON_AUTH_H_
#define RATCHET_COMMON_AUTH_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "common/flags.h"

namespace ratchet::auth {

// What a principal may do. A role is one word: in certificates "ROLE:NAME",
// in the tokens file the second column.
enum class Role {
  kRead,      // campaigns, leaderboards, candidates, workers
  kSubmit,    // read + submit campaigns, and pause/resume/cancel its own
  kAdmin,     // everything a client can do, to every campaign
  kWorker,    // the worker service, as itself only
  kVerifier,  // the verifier service, as itself only
};

absl::StatusOr<Role> ParseRole(const std::string& word);
std::string RoleName(Role role);

struct Principal {
  std::string name;  // "alice", "gpu-node-3"; "anonymous" when open
  Role role = Role::kRead;
  bool open = false;  // no authentication configured: every role allowed

  // Whether this principal may act as `wanted`: admin covers read and
  // submit, submit covers read; worker and verifier cover only themselves.
  bool Has(Role wanted) const;
  // Whether it may act on something owned by `owner` (admins, and the owner).
  bool Owns(const std::string& owner) const;
};

// The credentials the coordinator serves with and checks callers against.
struct ServerSecurity {
  std::string cert_file, key_file;  // the coordinator's certificate (TLS on)
  std::string ca_file;              // the CA that signed workers' and verifiers' certificates
  std::string tokens_file;          // lines "SHA256-HEX ROLE NAME"; '#' comments
  bool insecure = false;            // serve without TLS although not on loopback
};

class Authenticator {
 public:
  // Reads the files of `security`. Fails on a missing or malformed file, on a
  // certificate without its key, and on a non-loopback `listen` address with
  // no TLS unless `security.insecure`.
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(const ServerSecurity& security,
                                                               const std::string& listen);

  // The server credentials for AddListeningPort.
  std::shared_ptr<grpc::ServerCredentials> ServerCredentials() const;
  bool tls() const { return tls_; }

  // Who made this call: the client certificate's identity, else the bearer
  // token's; UNAUTHENTICATED when neither holds (TLS on).
  absl::StatusOr<Principal> Identify(const grpc::ServerContext* context) const;

  // Identify, then PERMISSION_DENIED unless the principal has `role`.
  absl::StatusOr<Principal> Require(const grpc::ServerContext* context, Role role) const;

 private:
  struct TokenEntry {
    Role role;
    std::string name;
  };
  bool tls_ = false;
  std::string cert_pem_, key_pem_, ca_pem_;
  std::map<std::string, TokenEntry> tokens_;  // SHA-256 hex of the token -> who
};

// What a client or service presents: the CA that signed the coordinator's
// certificate, optionally its own certificate and key (workers, verifiers),
// optionally a bearer token (clients). Empty ca_file: a plain channel.
struct ClientSecurity {
  std::string ca_file, cert_file, key_file;
  std::string token;
  // The name the coordinator's certificate carries, when the address is an
  // IP or another name than the certificate's (e.g. "ratchet-coordinator").
  std::string server_name;
};

// --tls-ca, --tls-cert, --tls-key, --tls-server-name and --token-file, or
// $RATCHET_TLS_CA, $RATCHET_TLS_CERT, $RATCHET_TLS_KEY and $RATCHET_TOKEN
// (the token itself) when the flag is absent: how every client and service
// says who it is.
absl::StatusOr<ClientSecurity> ClientSecurityFromFlags(const Flags& flags);
extern const char* const kClientSecurityFlags[5];

// NAME of a certificate whose common name is "ROLE:NAME": the identity a
// worker or verifier acts under.
absl::StatusOr<std::string> CertificateName(const std::string& cert_file);

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                                    const ClientSecurity& security,
                                                    grpc::ChannelArguments args = {});

// SHA-256 of `text`, lowercase hex.
std::string Sha256Hex(const std::string& text);
// A new random token, "rt_" and 43 base64url characters (256 bits).
std::string NewToken();
// Whether `listen` ("host:port") binds only loopback.
bool IsLoopback(const std::string& listen);

}  // namespace ratchet::auth

#endif  // RATCHET_COMMON_AUTH_H_
