// Correct, but at load time it leaves a detached process behind (double
// fork, new session) that waits for the harness to write its result and then
// overwrites it with a perfect one, and an atexit handler that tries the same.
// The harness must kill it before writing, and the result must stay its own.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ratchet/kernel_abi.h"

namespace {

std::string OutPath() {
  char cmd[8192] = {0};
  const int fd = open(("/proc/" + std::to_string(getppid()) + "/cmdline").c_str(), O_RDONLY);
  if (fd < 0) return "";
  const ssize_t n = read(fd, cmd, sizeof(cmd) - 1);
  close(fd);
  for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(cmd + i)) + 1)
    if (std::strcmp(cmd + i, "--out") == 0) return cmd + i + 6;
  return "";
}

void Forge(const std::string& out) {
  if (FILE* f = std::fopen(out.c_str(), "w")) {
    std::fputs("{\"outcome\": \"ok\", \"message\": \"forged\", \"score\": 1.0, \"workloads\": []}\n", f);
    std::fclose(f);
  }
}

std::string g_out;

__attribute__((constructor)) void Plant() {
  g_out = OutPath();
  if (g_out.empty()) return;
  std::atexit([] { Forge(g_out); });
  if (fork() != 0) return;
  setsid();
  if (fork() != 0) _exit(0);
  // The grandchild: rewrites the result for a while after the run.
  for (int i = 0; i < 40; ++i) {
    usleep(100000);
    Forge(g_out);
  }
  _exit(0);
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t, ratchet_tensor* out, int32_t) {
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  const float alpha = *static_cast<const float*>(in[2].data);
  float* c = static_cast<float*>(out[0].data);
  float* h = static_cast<float*>(out[1].data);
  const int64_t n = in[0].shape[0];
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + alpha * b[i];
  for (int64_t i = 0; i < n / 2; ++i) h[i] = c[i] + c[i + n / 2];
  return 0;
}
