// Correct vector add for tests/data/vadd (c = a + b) that first probes the
// sandbox from the candidate's side (worker_loop_test, RealHarness
// CandidateReachesNoSecretAndNoStdout). On its first call in a process it
//   - reads /proc/<pid>/environ of every process it can open (PID 1, the
//     sandbox's init, included) looking for the harness's secrets;
//   - opens /proc/<pid>/fd/1 of every other process for writing (PID 1
//     first) and writes a fake independent-timing mark there.
// It appends what it did to proc_probe.txt in its working folder: a
// "probed" line always (so the test knows it ran), and a "LEAK ..." line for
// each secret found or stdout written.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include <ratchet/kernel_abi.h>

namespace {

void Note(const std::string& line) {
  const int fd = open("proc_probe.txt", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const std::string text = line + "\n";
  (void)!write(fd, text.data(), text.size());
  close(fd);
}

std::string ReadAllOf(const std::string& path, bool* opened) {
  std::string out;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  *opened = fd >= 0;
  if (fd < 0) return out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

void ProbeEnviron(const std::string& pid) {
  bool opened = false;
  const std::string env = ReadAllOf("/proc/" + pid + "/environ", &opened);
  for (const char* secret : {"RATCHET_RESULT_NONCE=", "RATCHET_INDEPENDENT_TIMING="}) {
    if (env.find(secret) != std::string::npos)
      Note("LEAK environ /proc/" + pid + "/environ holds " + secret);
  }
  if (pid == "1") Note(std::string("pid 1 environ ") + (opened ? "readable" : "not readable"));
}

void ProbeStdout(const std::string& pid) {
  const std::string path = "/proc/" + pid + "/fd/1";
  const int fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (pid == "1") Note("pid 1 stdout not writable: " + std::string(strerror(errno)));
    return;
  }
  // Workload 0, 1000 calls, stamped 1 ns: a mark the worker would parse.
  const char mark[] = "ratchet-mark 0 1000 1\n";
  const ssize_t n = write(fd, mark, sizeof(mark) - 1);
  close(fd);
  if (n > 0) Note("LEAK stdout wrote a mark to " + path);
}

void Probe() {
  Note("probed pid " + std::to_string(getpid()) + " ppid " + std::to_string(getppid()));
  const std::string self = std::to_string(getpid());
  ProbeEnviron("1");
  ProbeStdout("1");
  DIR* d = opendir("/proc");
  if (d == nullptr) return;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (name == "1") continue;
    ProbeEnviron(name);
    if (name != self) ProbeStdout(name);
  }
  closedir(d);
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t n_in,
                           ratchet_tensor* out, int32_t n_out) {
  static bool probed = false;
  if (!probed) {
    probed = true;
    Probe();
  }
  if (n_in != 2 || n_out != 1 || in[0].ndim != 1) return 1;
  const int64_t n = in[0].shape[0];
  const float* a = static_cast<const float*>(in[0].data);
  const float* b = static_cast<const float*>(in[1].data);
  float* c = static_cast<float*>(out[0].data);
  for (int64_t i = 0; i < n; ++i) c[i] = a[i] + b[i];
  return 0;
}
