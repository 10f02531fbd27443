#include "common/auth.h"

#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace ratchet::auth {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& what, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, ": cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of `key` in the call's metadata, if present.
std::string Metadata(const grpc::ServerContext* context, const std::string& key) {
  const auto& md = context->client_metadata();
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

absl::StatusOr<Role> ParseRole(const std::string& word) {
  if (word == "read") return Role::kRead;
  if (word == "submit") return Role::kSubmit;
  if (word == "admin") return Role::kAdmin;
  if (word == "worker") return Role::kWorker;
  if (word == "verifier") return Role::kVerifier;
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown role '", word, "' (read, submit, admin, worker, verifier)"));
}

std::string RoleName(Role role) {
  switch (role) {
    case Role::kRead: return "read";
    case Role::kSubmit: return "submit";
    case Role::kAdmin: return "admin";
    case Role::kWorker: return "worker";
    case Role::kVerifier: return "verifier";
  }
  return "?";
}

bool Principal::Has(Role wanted) const {
  if (open || role == wanted) return true;
  switch (wanted) {
    case Role::kRead: return role == Role::kSubmit || role == Role::kAdmin;
    case Role::kSubmit: return role == Role::kAdmin;
    default: return false;
  }
}

bool Principal::Owns(const std::string& owner) const {
  return open || role == Role::kAdmin || (role == Role::kSubmit && owner == name);
}

std::string Sha256Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), digest, &n, EVP_sha256(), nullptr);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), n));
}

std::string NewToken() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) std::abort();  // no entropy: nothing is safe
  return "rt_" + absl::WebSafeBase64Escape(
                     absl::string_view(reinterpret_cast<char*>(bytes), sizeof(bytes)));
}

bool IsLoopback(const std::string& listen) {
  std::string host = listen;
  if (absl::StartsWith(host, "[")) {  // [::1]:port
    host = host.substr(1, host.find(']') == std::string::npos ? std::string::npos
                                                               : host.find(']') - 1);
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    host = host.substr(0, colon);
  }
  if (host == "localhost") return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;  // 0.0.0.0, [::], a host name: reachable from elsewhere
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    const ServerSecurity& security, const std::string& listen) {
  auto a = std::unique_ptr<Authenticator>(new Authenticator());
  const bool has_cert = !security.cert_file.empty(), has_key = !security.key_file.empty();
  if (has_cert != has_key)
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  a->tls_ = has_cert;
  if (!a->tls_) {
    if (!security.ca_file.empty() || !security.tokens_file.empty())
      return absl::InvalidArgumentError(
          "--tls-ca and --tokens need TLS: give --tls-cert and --tls-key too");
    if (!IsLoopback(listen) && !security.insecure)
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve ", listen, " without TLS: anyone who reaches it could submit "
          "campaigns, run code on workers and forge verdicts. Give --tls-cert, --tls-key, "
          "--tls-ca and --tokens (`ratchet pki init` makes them), listen on 127.0.0.1, or "
          "say --insecure"));
    return a;
  }
  auto cert = ReadFile("--tls-cert", security.cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadFile("--tls-key", security.key_file);
  if (!key.ok()) return key.status();
  a->cert_pem_ = *cert;
  a->key_pem_ = *key;
  if (!security.ca_file.empty()) {
    auto ca = ReadFile("--tls-ca", security.ca_file);
    if (!ca.ok()) return ca.status();
    a->ca_pem_ = *ca;
  }
  if (!security.tokens_file.empty()) {
    auto text = ReadFile("--tokens", security.tokens_file);
    if (!text.ok()) return text.status();
    int line_number = 0;
    for (absl::string_view line : absl::StrSplit(*text, '\n')) {
      ++line_number;
      line = absl::StripAsciiWhitespace(line);
      if (line.empty() || line[0] == '#') continue;
      std::vector<std::string> f = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
      auto where = [&] { return absl::StrCat(security.tokens_file, ":", line_number, ": "); };
      if (f.size() != 3 || f[0].size() != 64 ||
          f[0].find_first_not_of("0123456789abcdef") != std::string::npos)
        return absl::InvalidArgumentError(
            absl::StrCat(where(), "expected 'SHA256-HEX ROLE NAME' (`ratchet token add`)"));
      auto role = ParseRole(f[1]);
      if (!role.ok()) return absl::InvalidArgumentError(absl::StrCat(where(), role.status().message()));
      if (*role == Role::kWorker || *role == Role::kVerifier)
        return absl::InvalidArgumentError(absl::StrCat(
            where(), "workers and verifiers prove who they are with certificates, not tokens"));
      if (!a->tokens_.emplace(f[0], TokenEntry{*role, f[2]}).second)
        return absl::InvalidArgumentError(absl::StrCat(where(), "the same token twice"));
    }
  }
  return a;
}

std::shared_ptr<grpc::ServerCredentials> Authenticator::ServerCredentials() const {
  if (!tls_) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions options(
      ca_pem_.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                      // A certificate is optional (clients use tokens), but one
                      // that is shown must chain to the cluster's CA.
                      : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  options.pem_root_certs = ca_pem_;
  options.pem_key_cert_pairs.push_back({key_pem_, cert_pem_});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<Principal> Authenticator::Identify(const grpc::ServerContext* context) const {
  if (!tls_) return Principal{"anonymous", Role::kAdmin, /*open=*/true};
  // A verified client certificate: its common name is "ROLE:NAME".
  std::shared_ptr<const grpc::AuthContext> auth = context->auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const auto& cn : auth->FindPropertyValues("x509_common_name")) {
      const std::string value(cn.data(), cn.size());
      const size_t colon = value.find(':');
      if (colon == std::string::npos) continue;
      auto role = ParseRole(value.substr(0, colon));
      const std::string name = value.substr(colon + 1);
      if (role.ok() && !name.empty()) return Principal{name, *role, false};
    }
    return absl::UnauthenticatedError(
        "the client certificate's common name is not ROLE:NAME (ratchet pki issue makes one)");
  }
  const std::string header = Metadata(context, "authorization");
  if (header.empty())
    return absl::UnauthenticatedError(
        "no credentials: give a token (--token-file or $RATCHET_TOKEN) or a client certificate");
  absl::string_view token = header;
  if (!absl::ConsumePrefix(&token, "Bearer "))
    return absl::UnauthenticatedError("the authorization header is not 'Bearer TOKEN'");
  auto it = tokens_.find(Sha256Hex(std::string(token)));
  if (it == tokens_.end()) return absl::UnauthenticatedError("unknown token");
  return Principal{it->second.name, it->second.role, false};
}

absl::StatusOr<Principal> Authenticator::Require(const grpc::ServerContext* context,
                                                 Role role) const {
  auto p = Identify(context);
  if (!p.ok()) return p.status();
  if (!p->Has(role))
    return absl::PermissionDeniedError(absl::StrCat(p->name, " (", RoleName(p->role),
                                                    ") may not do this: it needs the ",
                                                    RoleName(role), " role"));
  return p;
}

const char* const kClientSecurityFlags[5] = {"tls-ca", "tls-cert", "tls-key",
                                             "tls-server-name", "token-file"};

absl::StatusOr<ClientSecurity> ClientSecurityFromFlags(const Flags& flags) {
  auto get = [&](const char* flag, const char* env) {
    if (flags.Has(flag)) return flags.Get(flag);
    const char* v = std::getenv(env);
    return std::string(v == nullptr ? "" : v);
  };
  ClientSecurity s;
  s.ca_file = get("tls-ca", "RATCHET_TLS_CA");
  s.cert_file = get("tls-cert", "RATCHET_TLS_CERT");
  s.key_file = get("tls-key", "RATCHET_TLS_KEY");
  s.server_name = flags.Get("tls-server-name");
  if (flags.Has("token-file")) {
    auto token = ReadFile("--token-file", flags.Get("token-file"));
    if (!token.ok()) return token.status();
    s.token = std::string(absl::StripAsciiWhitespace(*token));
  } else if (const char* t = std::getenv("RATCHET_TOKEN"); t != nullptr) {
    s.token = std::string(absl::StripAsciiWhitespace(t));
  }
  return s;
}

absl::StatusOr<std::string> CertificateName(const std::string& cert_file) {
  auto pem = ReadFile("--tls-cert", cert_file);
  if (!pem.ok()) return pem.status();
  BIO* bio = BIO_new_mem_buf(pem->data(), static_cast<int>(pem->size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(cert_file, ": not a PEM certificate"));
  char cn[256] = "";
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
  X509_free(cert);
  const std::string value = cn;
  const size_t colon = value.find(':');
  if (colon == std::string::npos || colon + 1 == value.size())
    return absl::InvalidArgumentError(absl::StrCat(
        cert_file, ": its common name '", value, "' is not ROLE:NAME (ratchet pki issue)"));
  return value.substr(colon + 1);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                                    const ClientSecurity& security,
                                                    grpc::ChannelArguments args) {
  if (security.ca_file.empty()) {
    if (!security.token.empty() || !security.cert_file.empty())
      return absl::InvalidArgumentError(
          "a token or a client certificate needs TLS: give the cluster's CA (--tls-ca)");
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  auto ca = ReadFile("--tls-ca", security.ca_file);
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *ca;
  if (security.cert_file.empty() != security.key_file.empty())
    return absl::InvalidArgumentError("--tls-cert and --tls-key go together");
  if (!security.cert_file.empty()) {
    auto cert = ReadFile("--tls-cert", security.cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadFile("--tls-key", security.key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds = grpc::SslCredentials(ssl);
  if (!security.token.empty())
    creds = grpc::CompositeChannelCredentials(creds, grpc::AccessTokenCredentials(security.token));
  if (!security.server_name.empty()) args.SetSslTargetNameOverride(security.server_name);
  return grpc::CreateCustomChannel(address, creds, args);
}

}  // namespace ratchet::auth
