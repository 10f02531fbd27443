// Picks the store backend from the form of its URL.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "coordinator/store/store.h"

namespace ratchet::store {

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url) {
  if (absl::StartsWith(url, "postgresql://") || absl::StartsWith(url, "postgres://")) {
    return OpenPostgresStore(url);
  }
  if (absl::StartsWith(url, "sqlite:")) {
    std::string path = url.substr(7);
    // Accept "sqlite://PATH" as well as "sqlite:PATH".
    if (absl::StartsWith(path, "//")) path = path.substr(2);
    if (path.empty()) return absl::InvalidArgumentError("store URL 'sqlite:' names no file");
    return OpenSqliteStore(path);
  }
  if (url.empty()) return absl::InvalidArgumentError("empty store URL");
  if (url.find("://") != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown store URL '", url,
        "': use postgresql://..., postgres://..., sqlite:PATH or a file path"));
  }
  return OpenSqliteStore(url);
}

std::string RedactStoreUrl(const std::string& url) {
  std::string out = url;
  // postgresql://user:PASSWORD@host/...
  if (size_t scheme = out.find("://"); scheme != std::string::npos) {
    const size_t start = scheme + 3;
    const size_t end = out.find_first_of("/?", start);
    const size_t at = out.rfind('@', end == std::string::npos ? out.size() : end);
    if (at != std::string::npos && at >= start) {
      const size_t colon = out.find(':', start);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // ...?password=PASSWORD&... and "password=PASSWORD" in keyword/value form.
  for (size_t pos = out.find("password="); pos != std::string::npos;
       pos = out.find("password=", pos + 1)) {
    const size_t value = pos + 9;
    size_t end = out.find_first_of("& ", value);
    if (end == std::string::npos) end = out.size();
    out.replace(value, end - value, "***");
  }
  return out;
}

}  // namespace ratchet::store
