// Planted hack (tests/hacks): tampered in-process timers, and no work where
// only an outside clock is watching (the CUDA form of
// tests/hacks/matmul/independent_timing_cheat).
//
// As timer_tamper: the harness's GOT slots for cuptiActivityGetNextRecord and
// cudaEventElapsedTime point at wrappers that shrink every kernel record and
// event interval to a quarter, so both in-process clocks agree on a 4x faster
// incumbent kernel. Verification's cross-check is a second harness process
// run with --back-to-back and timed by the worker from its marks; its outputs
// are never checked. This candidate reads /proc/self/cmdline and, there,
// launches nothing: the outside clock reads faster than the tampered one, and
// the verifier only rejects an outside time that is slower.
#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>

#include <string>

#include "ratchet/kernel_abi.h"

__global__ void rowsum_naive(const float* x, float* y, int64_t R, int64_t C) {
  const int64_t row = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (row >= R) return;
  float acc = 0.f;
  for (int64_t c = 0; c < C; ++c) acc += x[row * C + c];
  y[row] = acc;
}

namespace {

constexpr int kShrink = 4;
// CUpti_ActivityKernel4..10 all begin with kind (4 bytes) and have start and
// end (ns) at bytes 16 and 24; kinds KERNEL = 3, CONCURRENT_KERNEL = 10.
typedef int (*NextRecordFn)(uint8_t*, size_t, void**);
typedef cudaError_t (*ElapsedFn)(float*, cudaEvent_t, cudaEvent_t);
NextRecordFn real_next = nullptr;
ElapsedFn real_elapsed = nullptr;

int ShrunkRecord(uint8_t* buffer, size_t valid, void** record) {
  const int rc = real_next(buffer, valid, record);
  if (rc == 0 && record != nullptr && *record != nullptr) {
    const uint32_t kind = *static_cast<uint32_t*>(*record);
    if (kind == 3 || kind == 10) {
      uint64_t* span = reinterpret_cast<uint64_t*>(static_cast<char*>(*record) + 16);
      if (span[1] > span[0]) span[1] = span[0] + (span[1] - span[0]) / kShrink;
    }
  }
  return rc;
}

cudaError_t ShrunkElapsed(float* ms, cudaEvent_t start, cudaEvent_t end) {
  const cudaError_t e = real_elapsed(ms, start, end);
  if (e == cudaSuccess && ms != nullptr) *ms /= kShrink;
  return e;
}

void* self_base = nullptr;

// Rewrites the PLT/GOT slots of both functions in every other loaded object.
int Patch(dl_phdr_info* info, size_t, void*) {
  if (reinterpret_cast<void*>(info->dlpi_addr) == self_base) return 0;
  const ElfW(Dyn)* dyn = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_DYNAMIC)
      dyn = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
  if (dyn == nullptr) return 0;
  const ElfW(Rela)* tables[2] = {nullptr, nullptr};
  size_t sizes[2] = {0, 0};
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  for (; dyn->d_tag != DT_NULL; ++dyn) {
    if (dyn->d_tag == DT_JMPREL) tables[0] = reinterpret_cast<const ElfW(Rela)*>(dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_PLTRELSZ) sizes[0] = dyn->d_un.d_val;
    if (dyn->d_tag == DT_RELA) tables[1] = reinterpret_cast<const ElfW(Rela)*>(dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_RELASZ) sizes[1] = dyn->d_un.d_val;
    if (dyn->d_tag == DT_SYMTAB) symtab = reinterpret_cast<const ElfW(Sym)*>(dyn->d_un.d_ptr);
    if (dyn->d_tag == DT_STRTAB) strtab = reinterpret_cast<const char*>(dyn->d_un.d_ptr);
  }
  if (symtab == nullptr || strtab == nullptr) return 0;
  for (int t = 0; t < 2; ++t) {
    if (tables[t] == nullptr) continue;
    for (size_t i = 0; i < sizes[t] / sizeof(ElfW(Rela)); ++i) {
      const uint32_t sym = ELF64_R_SYM(tables[t][i].r_info);
      if (sym == 0) continue;
      const char* name = strtab + symtab[sym].st_name;
      void* replacement = nullptr;
      if (strcmp(name, "cuptiActivityGetNextRecord") == 0)
        replacement = reinterpret_cast<void*>(&ShrunkRecord);
      else if (strcmp(name, "cudaEventElapsedTime") == 0)
        replacement = reinterpret_cast<void*>(&ShrunkElapsed);
      if (replacement == nullptr) continue;
      void** slot = reinterpret_cast<void**>(info->dlpi_addr + tables[t][i].r_offset);
      const uintptr_t page = reinterpret_cast<uintptr_t>(slot) & ~uintptr_t{4095};
      mprotect(reinterpret_cast<void*>(page), 4096, PROT_READ | PROT_WRITE);
      *slot = replacement;
    }
  }
  return 0;
}

bool Tamper() {
  real_next = reinterpret_cast<NextRecordFn>(dlsym(RTLD_DEFAULT, "cuptiActivityGetNextRecord"));
  real_elapsed = reinterpret_cast<ElapsedFn>(dlsym(RTLD_DEFAULT, "cudaEventElapsedTime"));
  Dl_info self;
  if (dladdr(reinterpret_cast<void*>(&ShrunkRecord), &self) != 0) self_base = self.dli_fbase;
  if (real_next != nullptr && real_elapsed != nullptr) dl_iterate_phdr(Patch, nullptr);
  return true;
}

}  // namespace

namespace {
bool BackToBack() {
  FILE* f = fopen("/proc/self/cmdline", "rb");
  if (f == nullptr) return false;
  std::string all;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) all.append(buf, n);
  fclose(f);
  for (size_t at = 0; at < all.size(); at += strlen(all.c_str() + at) + 1)
    if (strcmp(all.c_str() + at, "--back-to-back") == 0) return true;
  return false;
}
}  // namespace

extern "C" int ratchet_run_cuda(const ratchet_tensor* in, int32_t ni, ratchet_tensor* out, int32_t no,
                                void* stream) {
  static const bool back_to_back = BackToBack();
  if (back_to_back) return 0;  // nobody checks these outputs
  static bool tampered = Tamper();
  (void)tampered;
  const int64_t R = in[0].shape[0], C = in[0].shape[1];
  rowsum_naive<<<(unsigned)((R + 127) / 128), 128, 0, (cudaStream_t)stream>>>(
      (const float*)in[0].data, (float*)out[0].data, R, C);
  return cudaGetLastError() == cudaSuccess ? 0 : 2;
}
