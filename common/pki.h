// A small cluster's certificate authority: one CA, and certificates it signs
// for the coordinator (a server certificate with the names clients dial) and
// for workers and verifiers (client certificates whose common name
// "ROLE:NAME" is their identity). EC P-256 keys, SHA-256 signatures.
#ifndef RATCHET_COMMON_PKI_H_
#define RATCHET_COMMON_PKI_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ratchet::pki {

// Writes DIR/ca.pem and DIR/ca.key (0600); fails if either exists.
absl::Status InitCa(const std::string& dir, int days = 3650);

// Signs a certificate for `common_name` ("coordinator:main", "worker:gpu-1")
// with DIR's CA; writes DIR/FILE_STEM.pem and DIR/FILE_STEM.key (0600).
// `hosts` (DNS names or IP addresses) become subjectAltNames: a server
// certificate needs the names its clients dial.
absl::Status Issue(const std::string& dir, const std::string& common_name,
                   const std::vector<std::string>& hosts, const std::string& file_stem,
                   int days = 825);

}  // namespace ratchet::pki

#endif  // RATCHET_COMMON_PKI_H_
