#include "common/pki.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ratchet::pki {
namespace {

namespace fs = std::filesystem;

struct Free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(X509* p) const { X509_free(p); }
  void operator()(BIO* p) const { BIO_free_all(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;

absl::Status OpenSslError(const std::string& what) {
  char buf[256] = "unknown error";
  if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  return absl::InternalError(absl::StrCat(what, ": ", buf));
}

absl::StatusOr<Key> NewKey() {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("EC key generation");
  return key;
}

// Writes `pem` text produced by `write` to `path`, created with `mode`.
template <typename Write>
absl::Status WritePem(const fs::path& path, mode_t mode, Write write) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return absl::AlreadyExistsError(absl::StrCat("cannot create ", path.string(),
                                                           " (does it exist already?)"));
  FILE* f = fdopen(fd, "w");
  if (f == nullptr) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  }
  const bool ok = write(f);
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) return OpenSslError(absl::StrCat("writing ", path.string()));
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return OpenSslError(absl::StrCat("extension ", value));
  const int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok == 1 ? absl::OkStatus() : OpenSslError("X509_add_ext");
}

// A certificate for `key` named `cn`, valid `days`, not yet signed.
absl::StatusOr<Cert> NewCert(EVP_PKEY* key, const std::string& cn, int days) {
  Cert cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);  // clocks a little behind
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("ratchet"), -1, -1, 0);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1)
    return OpenSslError("common name");
  return cert;
}

absl::StatusOr<std::pair<Key, Cert>> LoadCa(const fs::path& dir) {
  Bio kb(BIO_new_file((dir / "ca.key").c_str(), "r"));
  Bio cb(BIO_new_file((dir / "ca.pem").c_str(), "r"));
  if (!kb || !cb)
    return absl::NotFoundError(absl::StrCat("no CA in ", dir.string(), " (ca.pem and ca.key; "
                                            "`ratchet pki init ", dir.string(), "` makes one)"));
  Key key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr));
  Cert cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr));
  if (!key || !cert) return OpenSslError("reading the CA");
  return std::make_pair(std::move(key), std::move(cert));
}

}  // namespace

absl::Status InitCa(const std::string& dir_name, int days) {
  const fs::path dir(dir_name);
  std::error_code ec;
  fs::create_directories(dir, ec);
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = NewCert(key->get(), "ratchet cluster CA", days);
  if (!cert.ok()) return cert.status();
  X509_set_issuer_name(cert->get(), X509_get_subject_name(cert->get()));
  for (const auto& [nid, value] :
       std::vector<std::pair<int, std::string>>{{NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
                                                {NID_key_usage, "critical,keyCertSign,cRLSign"},
                                                {NID_subject_key_identifier, "hash"}})
    if (auto s = AddExtension(cert->get(), cert->get(), nid, value); !s.ok()) return s;
  if (X509_sign(cert->get(), key->get(), EVP_sha256()) == 0) return OpenSslError("signing the CA");
  if (auto s = WritePem(dir / "ca.key", 0600, [&](FILE* f) {
        return PEM_write_PrivateKey(f, key->get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
      });
      !s.ok())
    return s;
  return WritePem(dir / "ca.pem", 0644,
                  [&](FILE* f) { return PEM_write_X509(f, cert->get()) == 1; });
}

absl::Status Issue(const std::string& dir_name, const std::string& common_name,
                   const std::vector<std::string>& hosts, const std::string& file_stem,
                   int days) {
  const fs::path dir(dir_name);
  auto ca = LoadCa(dir);
  if (!ca.ok()) return ca.status();
  auto key = NewKey();
  if (!key.ok()) return key.status();
  auto cert = NewCert(key->get(), common_name, days);
  if (!cert.ok()) return cert.status();
  X509_set_issuer_name(cert->get(), X509_get_subject_name(ca->second.get()));
  std::vector<std::string> alt;
  for (const std::string& h : hosts) {
    unsigned char buf[16];
    const bool ip = inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
    alt.push_back(absl::StrCat(ip ? "IP:" : "DNS:", h));
  }
  std::vector<std::pair<int, std::string>> exts = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, hosts.empty() ? "clientAuth" : "serverAuth,clientAuth"},
      {NID_authority_key_identifier, "keyid"}};
  if (!alt.empty()) exts.push_back({NID_subject_alt_name, absl::StrJoin(alt, ",")});
  for (const auto& [nid, value] : exts)
    if (auto s = AddExtension(cert->get(), ca->second.get(), nid, value); !s.ok()) return s;
  if (X509_sign(cert->get(), ca->first.get(), EVP_sha256()) == 0)
    return OpenSslError("signing the certificate");
  if (auto s = WritePem(dir / (file_stem + ".key"), 0600, [&](FILE* f) {
        return PEM_write_PrivateKey(f, key->get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
      });
      !s.ok())
    return s;
  return WritePem(dir / (file_stem + ".pem"), 0644,
                  [&](FILE* f) { return PEM_write_X509(f, cert->get()) == 1; });
}

}  // namespace ratchet::pki
