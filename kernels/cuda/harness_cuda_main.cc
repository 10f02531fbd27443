// ratchet-harness-cuda: compiles a CUDA candidate with nvcc, checks it
// against the PyTorch reference (run on the GPU by the oracle, in a process
// of its own) and times it. Contract: docs/harness.md.
//
// This process is the trusted side (docs/verifier.md, "Threat model") and
// shares the CPU harness's driver (kernels/harness/harness_driver.h): the
// same command line, stages and result, and the same EvaluationPipeline
// checks and times every call; only the backend below differs. It never
// loads candidate code: the candidate runs in ratchet-candidate-cuda on a
// device arena this process allocates and exports, and sees only the
// tensors of the call it is making. T_k is this process's clock around
// request and answer (the candidate process answers after a device-wide
// synchronisation), minus a round trip calibrated before the library is
// loaded.
#include <cuda_runtime_api.h>
#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/harness/candidate_process.h"
#include "kernels/harness/harness_driver.h"
#include "kernels/harness/python_solution.h"
#include "kernels/harness/subprocess.h"
#include "kernels/problem/problem.h"
#include "kernels/sol/gpu_peaks.h"
#include "kernels/sol/sol.h"

namespace ratchet::kernels {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

std::string FindNvcc() {
  if (const char* e = std::getenv("RATCHET_NVCC"); e != nullptr && *e) return e;
  if (const char* h = std::getenv("CUDA_HOME"); h != nullptr && *h) {
    const std::string p = std::string(h) + "/bin/nvcc";
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  if (access("/usr/local/cuda/bin/nvcc", X_OK) == 0) return "/usr/local/cuda/bin/nvcc";
#ifdef RATCHET_DEFAULT_NVCC
  if (access(RATCHET_DEFAULT_NVCC, X_OK) == 0) return RATCHET_DEFAULT_NVCC;
#endif
  return "nvcc";
}

// FNV-1a over the nvcc command line and every file of the solution and the
// ABI header: the key under which a build in the scratch folder is reused.
std::string BuildKey(const std::vector<std::string>& cmd, const std::string& solution_dir,
                     const std::string& abi) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const std::string& bytes) {
    for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
    h = (h ^ 0xff) * 1099511628211ull;  // separator
  };
  for (const std::string& a : cmd) mix(a);
  mix(abi);
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(solution_dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) files.push_back(it->path().string());
  }
  std::sort(files.begin(), files.end());
  for (const std::string& f : files) {
    mix(f);
    mix(ReadFileOrEmpty(f));
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// Whether the shared library at `path` defines the dynamic symbol `name`,
// read from its ELF tables: this process never loads candidate code, yet
// --compile-only must still say when the entry point is missing.
absl::StatusOr<bool> ExportsSymbol(const std::string& path, const std::string& name) {
  const std::string f = ReadFileOrEmpty(path);
  auto fail = [&](const char* why) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a 64-bit ELF library (", why, ")"));
  };
  if (f.size() < sizeof(Elf64_Ehdr)) return fail("too short");
  Elf64_Ehdr eh;
  std::memcpy(&eh, f.data(), sizeof(eh));
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64)
    return fail("bad header");
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shoff > f.size() ||
      eh.e_shnum > (f.size() - eh.e_shoff) / sizeof(Elf64_Shdr))
    return fail("bad section table");
  auto section = [&](size_t i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, f.data() + eh.e_shoff + i * sizeof(Elf64_Shdr), sizeof(sh));
    return sh;
  };
  auto inside = [&](const Elf64_Shdr& sh) {
    return sh.sh_offset <= f.size() && sh.sh_size <= f.size() - sh.sh_offset;
  };
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    const Elf64_Shdr sym = section(i);
    if (sym.sh_type != SHT_DYNSYM || sym.sh_link >= eh.e_shnum || !inside(sym)) continue;
    const Elf64_Shdr str = section(sym.sh_link);
    if (!inside(str)) return fail("bad string table");
    for (size_t k = 0; k + 1 <= sym.sh_size / sizeof(Elf64_Sym); ++k) {
      Elf64_Sym s;
      std::memcpy(&s, f.data() + sym.sh_offset + k * sizeof(Elf64_Sym), sizeof(s));
      if (s.st_shndx == SHN_UNDEF || s.st_name >= str.sh_size) continue;
      const int bind = ELF64_ST_BIND(s.st_info);
      if (bind != STB_GLOBAL && bind != STB_WEAK) continue;
      const char* n = f.data() + str.sh_offset + s.st_name;
      const size_t room = str.sh_size - s.st_name;
      if (strnlen(n, room) == name.size() && std::memcmp(n, name.data(), name.size()) == 0)
        return true;
    }
  }
  return false;
}

class CudaBackend : public HarnessBackend {
 public:
  // The target: --arch, else the device's compute capability (9.0 -> sm_90a
  // so that wgmma is available). Only this query touches the GPU before
  // compilation; the worker passes --arch to avoid even that.
  bool BeforeCompile(HarnessRun& run) override {
    HarnessResult& r = run.result;
    r.arch = run.args.arch;
    if (!r.arch.empty()) return true;
    if (run.args.compile_only) return run.Fail(kOutcomeHarnessError, "--compile-only needs --arch");
    const int device = run.args.device_index;
    int major = 0, minor = 0;
    absl::Status st = CudaStatus(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device),
                                 "cudaDeviceGetAttribute");
    if (st.ok()) st = CudaStatus(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device),
                                 "cudaDeviceGetAttribute");
    if (!st.ok()) {
      return run.Fail(kOutcomeHarnessError,
                      absl::StrCat("cannot read the device's compute capability (pass --arch): ",
                                   st.message()));
    }
    r.arch = absl::StrCat("sm_", major, minor, major == 9 && minor == 0 ? "a" : "");
    return true;
  }

  bool Compile(const Solution& s, HarnessRun& run) override;

  // The device, then the peaks for T_sol.
  bool Prepare(HarnessRun& run) override {
    if (!InitDevice(run)) return false;
    SetPeaks(run);
    return true;
  }

  void ConfigureOracle(const HarnessRun& run, OracleOptions* oo) const override {
    oo->flush_bytes = FlushBytes();
    oo->threads = 4;
    oo->cache_dir = run.args.cache_dir;
    oo->device = "cuda";
    oo->device_index = run.args.device_index;
  }

  // Allocates the device arena, then starts a candidate process on it.
  absl::StatusOr<std::unique_ptr<CandidateProcess>> StartProcess(const HarnessRun& run,
                                                                 const std::string& dir) override {
    const std::string exe = SelfExeDir() + "/ratchet-candidate-cuda";
    if (!python_.active() && access(exe.c_str(), X_OK) != 0)
      return absl::NotFoundError(
          absl::StrCat(exe, " not found: it must sit beside ratchet-harness-cuda"));
    auto b = CudaProcessBackend::Create(run.args.device_index, ArenaBytesFor(run.problem),
                                        FlushBytes(), run.args.seed);
    if (!b.ok())
      return absl::Status(b.status().code(),
                          absl::StrCat("allocating the device arena: ", b.status().message()));
    calls_ = *std::move(b);
    // The shared file carries only the control page; tensors live on the device.
    auto prepare = [this](channel::ControlBlock* cb) { calls_->Prepare(cb); };
    if (python_.active()) return python_.Start(run, 4096, dir + "/output.log", prepare);
    return CandidateProcess::Start(exe, run.library, 4096, dir, dir + "/output.log", prepare);
  }

  CandidateBackend* Attach(CandidateProcess* process, const HarnessRun& run) override {
    calls_->Attach(process);
    return calls_.get();
  }

  void Release() override {
    calls_.reset();
    python_.Release();
  }

  void SpeedOfLight(const Definition& def, double flops, double bytes, double oracle_flops,
                    const HarnessResult& r, WorkloadResult* wr) const override {
    wr->flops = def.flops_expr.empty() ? oracle_flops : flops;
    wr->bytes = bytes;
    wr->t_sol_ns =
        r.peak_gbps > 0 ? SolTimeNs(wr->flops, wr->bytes, r.peak_tflops * 1e3, r.peak_gbps) : 0;
    // Clearly below the roofline: physically impossible, so a hack or a
    // wrong peak; the verifier rejects it.
    if (wr->t_k_ns > 0 && wr->t_sol_ns > 0 && wr->t_k_ns < 0.9 * wr->t_sol_ns)
      AddFlag(&wr->flags, "below-sol");
  }

 private:
  bool InitDevice(HarnessRun& run);
  void SetPeaks(HarnessRun& run);
  size_t FlushBytes() const {
    return 2 * static_cast<size_t>(std::max(prop_.l2CacheSize, 1 << 20));
  }

  cudaDeviceProp prop_{};
  std::unique_ptr<CudaProcessBackend> calls_;
  PythonSolutionHost python_;  // a Python solution's host, when it is one
};

bool CudaBackend::Compile(const Solution& s, HarnessRun& run) {
  if (IsPython(s)) return python_.Prepare(s, run);
  ReportStage("compile");
  const auto t0 = Clock::now();
  HarnessResult& r = run.result;
  auto abi = KernelAbiHeader();
  if (!abi.ok()) return run.Fail(kOutcomeHarnessError, std::string(abi.status().message()));
  const std::string build = run.scratch + "/build";
  run.library = build + "/candidate.so";
  const std::string& library = run.library;
  const std::string num = r.arch.substr(3);  // "90a" from "sm_90a".
  // -cudart shared: the candidate uses the candidate process's CUDA runtime
  // (one context, the stream it is handed), not a static copy of it.
  std::vector<std::string> cmd = {FindNvcc(), "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
                                  "-cudart", "shared",
                                  absl::StrCat("-gencode=arch=compute_", num, ",code=sm_", num),
                                  "-I" + build + "/include",
                                  "-I" + build + "/include/ratchet", "-I" + run.args.solution};
  for (const auto& [k, v] : s.knobs) cmd.push_back(absl::StrCat("-D", k, "=", v));
  for (const auto& f : s.sources) cmd.push_back(f);
  cmd.push_back("-o");
  cmd.push_back(library);
  for (const std::string& lib : s.libraries) cmd.push_back("-l" + lib);
  // The entry point, checked without loading the library here (the
  // candidate process loads it; a library that does not load is its
  // compile_error then).
  auto check_export = [&]() {
    auto has = ExportsSymbol(library, "ratchet_run_cuda");
    if (!has.ok()) return run.Fail(kOutcomeCompileError, std::string(has.status().message()));
    if (!*has) {
      return run.Fail(kOutcomeCompileError,
                      "the library exports no ratchet_run_cuda (declare it extern \"C\"; include "
                      "\"ratchet/kernel_abi.h\")");
    }
    return true;
  };
  // A build this scratch folder already holds for the same sources, knobs and
  // flags is reused: the worker compiles with --compile-only while another job
  // has the GPU, then runs the timed job on the finished library.
  const std::string key = BuildKey(cmd, run.args.solution, *abi);
  const std::string key_file = library + ".key";
  if (ReadFileOrEmpty(key_file) == key && access(library.c_str(), R_OK) == 0) {
    r.compile_seconds = 0;
    r.build_reused = true;
    return check_export();
  }
  if (auto st = FreshBuildDir(build, *abi); !st.ok())
    return run.Fail(kOutcomeHarnessError, std::string(st.message()));
  const std::string log = build + "/compile.log";
  auto rc = RunProcess(cmd, log);
  r.compile_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!rc.ok()) {
    return run.Fail(kOutcomeHarnessError, absl::StrCat("cannot run nvcc (", cmd[0],
                                                       "; set $RATCHET_NVCC): ",
                                                       rc.status().message()));
  }
  if (*rc != 0) return run.Fail(kOutcomeCompileError, CompileErrorMessage(cmd, log));
  if (!check_export()) return false;
  std::ofstream(key_file) << key;
  return true;
}

bool CudaBackend::InitDevice(HarnessRun& run) {
  ReportStage("device");
  const int device = run.args.device_index;
  int count = 0;
  if (auto st = CudaStatus(cudaGetDeviceCount(&count), "cudaGetDeviceCount"); !st.ok())
    return run.Fail(kOutcomeHarnessError, absl::StrCat("no usable CUDA device: ", st.message()));
  if (device >= count) {
    return run.Fail(kOutcomeHarnessError, absl::StrCat("--device-index ", device, " but ", count,
                                                       " CUDA device(s) visible"));
  }
  absl::Status st = CudaStatus(cudaSetDevice(device), "cudaSetDevice");
  if (st.ok()) st = CudaStatus(cudaGetDeviceProperties(&prop_, device), "cudaGetDeviceProperties");
  if (st.ok()) st = CudaStatus(cudaFree(nullptr), "cudaFree(nullptr) (creating the context)");
  if (!st.ok()) return run.Fail(kOutcomeHarnessError, std::string(st.message()));
  run.result.device_name = prop_.name;
  run.result.compute_capability = absl::StrCat(prop_.major, ".", prop_.minor);
  return true;
}

// Peaks for T_sol: the flags, else the GPU table for the definition's dtype
// and unit (tensor cores for matmul-like ops, or as the definition says).
void CudaBackend::SetPeaks(HarnessRun& run) {
  HarnessResult& r = run.result;
  const Definition& def = run.problem.definition;
  for (const TensorSpec& t : def.inputs) {
    if (IsFloating(t.dtype)) {
      r.peak_dtype = DTypeName(t.dtype);
      break;
    }
  }
  if (r.peak_dtype.empty()) r.peak_dtype = "float32";
  Json definition = Json::parse(ReadFileOrEmpty(run.args.problem + "/definition.json"), nullptr,
                                /*allow_exceptions=*/false);
  std::string unit;
  if (definition.is_object() && definition.contains("ratchet") && definition["ratchet"].is_object())
    unit = definition["ratchet"].value("unit", "");
  const bool tensor = TensorCoreRoofline(def.op_type, unit, def.flops_expr.empty());
  r.peak_unit = tensor ? "tensor" : "simt";
  if (run.args.peak_gbps > 0) {
    r.peak_gbps = run.args.peak_gbps;
    r.peak_tflops = run.args.peak_tflops;
    r.peak_gflops = r.peak_tflops * 1e3;
    r.peak_source = "flags";
    return;
  }
#ifdef RATCHET_HAVE_GPU_PEAKS
  if (auto p = LookupGpuPeaks(r.device_name)) {
    r.peak_sku = p->sku;
    r.peak_gbps = p->dram_gbps;
    r.peak_tflops = PeakTflops(*p, r.peak_dtype, tensor);
    r.peak_gflops = r.peak_tflops * 1e3;
    r.peak_source = "table";
  }
#endif
  if (r.peak_source == "none") AddFlag(&r.flags, "no-peaks");
}

}  // namespace
}  // namespace ratchet::kernels

int main(int argc, char** argv) {
  using namespace ratchet::kernels;
  return HarnessMain(HarnessKind::kCuda, argc, argv, [] { return std::make_unique<CudaBackend>(); });
}
