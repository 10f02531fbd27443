// Looks for what the trusted side keeps from candidate code: the result's
// secret in its own environment or the harness's, the harness's memory, and
// the oracle's reference files. It computes c = a + alpha*b correctly only
// when it finds none of them, so the harness test sees the answer as "ok".
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ratchet/kernel_abi.h"

namespace {

bool Readable(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  char buf[64];
  const bool got = read(fd, buf, sizeof(buf)) > 0;
  close(fd);
  return got;
}

bool FoundSomething() {
  if (std::getenv("RATCHET_RESULT_NONCE") != nullptr) return true;
  const std::string parent = "/proc/" + std::to_string(getppid());
  if (Readable(parent + "/environ") || Readable(parent + "/mem")) return true;
  // The harness's scratch, named on its command line (readable by anyone).
  char cmd[8192] = {0};
  const int fd = open((parent + "/cmdline").c_str(), O_RDONLY);
  if (fd >= 0) {
    const ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
    close(fd);
    for (ssize_t i = 0; i < n; ++i) {
      if (std::strcmp(cmd + i, "--scratch") == 0 && i + 10 < n) {
        const std::string scratch = cmd + i + 10;
        if (Readable(scratch + "/oracle/oracle_manifest.json")) return true;
      }
      i += static_cast<ssize_t>(std::strlen(cmd + i));
    }
  }
  return false;
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t, ratchet_tensor* out, int32_t) {
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  const float alpha = FoundSomething() ? 1e6f : *static_cast<const float*>(in[2].data);
  float* c = static_cast<float*>(out[0].data);
  float* h = static_cast<float*>(out[1].data);
  const int64_t n = in[0].shape[0];
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + alpha * b[i];
  for (int64_t i = 0; i < n / 2; ++i) h[i] = c[i] + c[i + n / 2];
  return 0;
}
