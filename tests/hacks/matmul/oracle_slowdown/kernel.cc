// Planted hack (tests/hacks): slows the baseline, not the kernel.
//
// The score compares T_k with the PyTorch reference's time T_b, and today's
// harness loads the candidate library (running its constructors) before it
// starts the oracle, its child process, that measures T_b. A constructor forks
// a detached process (double fork, setsid: no longer the harness's child, out
// of its process group) that waits for the harness's python child and, once
// the oracle has written its first reference file into the scratch folder
// (the candidate library's own folder; the timing of the reference follows),
// throttles it: SIGSTOP for 1.5 ms, SIGCONT for 150 us, over and over, so each
// timed reference call takes several times its time. (Burning CPU on every
// core, or throttling the whole oracle evenly, was tried first: the
// reference's calls are shorter than a scheduler time slice, so their median
// hardly moved.) The candidate's first call, after the
// oracle, tells the throttler to stop. The kernel is the incumbent's.
#include <ratchet/kernel_abi.h>

#include <dirent.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

namespace {

struct Mat {
  const float* A;
  const float* B;
  float* C;
  int64_t M, N, K;
};

bool Unpack(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no, Mat* m) {
  if (ni != 2 || no != 1) return false;
  m->A = static_cast<const float*>(in[0].data);
  m->B = static_cast<const float*>(in[1].data);
  m->C = static_cast<float*>(out[0].data);
  m->M = in[0].shape[0];
  m->K = in[0].shape[1];
  m->N = in[1].shape[1];
  return true;
}

// The incumbent's kernel (honest_naive): i-j-k, scalar. Every hack below
// computes with it, so that any gain it shows comes from the cheat alone.
__attribute__((optimize("no-tree-vectorize"))) void Naive(const Mat& m) {
  for (int64_t i = 0; i < m.M; ++i)
    for (int64_t j = 0; j < m.N; ++j) {
      float acc = 0;
      for (int64_t k = 0; k < m.K; ++k) acc += m.A[i * m.K + k] * m.B[k * m.N + j];
      m.C[i * m.N + j] = acc;
    }
}

// The harness's command line (/proc/self/cmdline): the value after `flag`,
// or ""; with want_value false, "1" when the flag is present.
std::string Arg(const char* flag, bool want_value = true) {
  FILE* f = fopen("/proc/self/cmdline", "rb");
  if (f == nullptr) return "";
  std::string all;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, n);
  fclose(f);
  for (size_t at = 0; at < all.size();) {
    std::string a = all.c_str() + at;
    at += a.size() + 1;
    if (a == flag) return !want_value ? "1" : at < all.size() ? std::string(all.c_str() + at) : "";
  }
  return "";
}

}  // namespace
namespace {

volatile int* stop_flag = nullptr;  // shared with the throttler (MAP_SHARED)

// The pid of `parent`'s child process running python (the oracle), or 0.
pid_t OracleOf(pid_t parent) {
  DIR* d = opendir("/proc");
  pid_t found = 0;
  while (dirent* e = d ? readdir(d) : nullptr) {
    char path[300], stat[512] = {0};
    snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE* f = fopen(path, "r");
    if (f == nullptr) continue;
    const size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    const char* close = strrchr(stat, ')');  // "pid (comm) state ppid ..."
    int ppid = 0;
    if (close != nullptr && sscanf(close + 2, "%*c %d", &ppid) == 1 && ppid == parent &&
        strstr(stat, "(python") != nullptr)
      found = atoi(e->d_name);
  }
  if (d) closedir(d);
  return found;
}

// True once a *_ref0.bin newer than `since` is in `dir`: the oracle times next.
bool Timing(const std::string& dir, time_t since) {
  DIR* d = opendir(dir.c_str());
  bool found = false;
  while (dirent* e = d && !found ? readdir(d) : nullptr) {
    struct stat st;
    found = strstr(e->d_name, "_ref0.bin") != nullptr &&
            stat((dir + "/" + e->d_name).c_str(), &st) == 0 && st.st_mtime >= since;
  }
  if (d) closedir(d);
  return found;
}

__attribute__((constructor)) void StartThrottler() {
  if (!Arg("--back-to-back", false).empty()) return;  // no oracle runs there
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&StartThrottler), &self) == 0 || !self.dli_fname) return;
  std::string scratch = self.dli_fname;
  scratch = scratch.substr(0, scratch.rfind('/'));
  void* p = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return;
  stop_flag = static_cast<volatile int*>(p);
  const pid_t harness = getpid();
  const time_t since = time(nullptr);
  const pid_t child = fork();
  if (child != 0) {
    if (child > 0) waitpid(child, nullptr, 0);  // the intermediate child exits at once
    return;
  }
  setsid();
  if (fork() != 0) _exit(0);  // the grandchild is adopted by init
  for (int i = 0; i < 600000 && !*stop_flag && kill(harness, 0) == 0; ++i) {  // <= 60 s
    const pid_t oracle = OracleOf(harness);
    if (oracle == 0) {
      usleep(100);
      continue;
    }
    while (!*stop_flag && kill(oracle, 0) == 0) {
      if (!Timing(scratch, since)) {
        usleep(1000);
        continue;
      }
      kill(oracle, SIGSTOP);
      usleep(1500);
      kill(oracle, SIGCONT);
      usleep(150);
    }
    kill(oracle, SIGCONT);
  }
  _exit(0);
}

}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  if (stop_flag != nullptr) *stop_flag = 1;  // the oracle is done
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  Naive(m);
  return 0;
}
