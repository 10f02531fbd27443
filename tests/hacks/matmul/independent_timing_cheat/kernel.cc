// Planted hack (tests/hacks): a tampered in-process clock, and no work where
// only an outside clock is watching.
//
// As timer_tamper: the harness's clock_gettime (its GOT slot) is patched so
// that time runs 8x slower, so the harness's own timer (plain and --verify)
// reads the incumbent's kernel as 8x faster. Verification cross-checks that
// figure with a second harness process run with --back-to-back, timed from
// outside by the worker, whose outputs are never checked: this candidate
// reads /proc/self/cmdline, and in that process it returns at once without
// computing anything. The outside clock then reads faster than the tampered
// in-process one, and the verifier only rejects an outside time that is
// slower (timing-disagreement).
#include <ratchet/kernel_abi.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

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

#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace {
timespec start = {0, 0};

int SlowClock(clockid_t id, timespec* ts) {
  const long rc = syscall(SYS_clock_gettime, id, ts);
  if (rc != 0 || id != CLOCK_MONOTONIC) return static_cast<int>(rc);
  if (start.tv_sec == 0) start = *ts;
  const int64_t ns = (ts->tv_sec - start.tv_sec) * 1000000000ll + (ts->tv_nsec - start.tv_nsec);
  const int64_t slow = start.tv_nsec + ns / 8;
  ts->tv_sec = start.tv_sec + slow / 1000000000ll;
  ts->tv_nsec = slow % 1000000000ll;
  return 0;
}

// Rewrites every other loaded object's GOT slot for clock_gettime (the
// harness's timer calls it through libstdc++'s steady_clock).
int Patch(dl_phdr_info* info, size_t, void*) {
  if (info->dlpi_name != nullptr && strstr(info->dlpi_name, "candidate") != nullptr) return 0;
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  if (dyn == nullptr) return 0;
  const ElfW(Rela)* rela = nullptr;
  size_t rela_size = 0;
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  for (; dyn->d_tag != DT_NULL; ++dyn) {
    if (dyn->d_tag == DT_JMPREL) rela = reinterpret_cast<const ElfW(Rela)*>(dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_PLTRELSZ) rela_size = dyn->d_un.d_val;
    if (dyn->d_tag == DT_SYMTAB) symtab = reinterpret_cast<const ElfW(Sym)*>(dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_STRTAB) strtab = reinterpret_cast<const char*>(dyn->d_un.d_ptr);
  }
  if (rela == nullptr || symtab == nullptr || strtab == nullptr) return 0;
  for (size_t i = 0; i < rela_size / sizeof(ElfW(Rela)); ++i) {
    const char* name = strtab + symtab[ELF64_R_SYM(rela[i].r_info)].st_name;
    if (strcmp(name, "clock_gettime") != 0) continue;
    void** slot = reinterpret_cast<void**>(info->dlpi_addr + rela[i].r_offset);
    const uintptr_t page = reinterpret_cast<uintptr_t>(slot) & ~uintptr_t{4095};
    mprotect(reinterpret_cast<void*>(page), 4096, PROT_READ | PROT_WRITE);
    *slot = reinterpret_cast<void*>(&SlowClock);
  }
  return 0;
}
}  // namespace

extern "C" int ratchet_run(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no) {
  static const bool back_to_back = !Arg("--back-to-back", false).empty();
  if (back_to_back) return 0;  // nobody checks these outputs
  static bool patched = (dl_iterate_phdr(Patch, nullptr), true);
  (void)patched;
  Mat m;
  if (!Unpack(in, ni, out, no, &m)) return 1;
  Naive(m);
  return 0;
}
