// ratchet-harness-cuda: compiles a CUDA candidate with nvcc, checks it
// against the PyTorch reference (run on the GPU by the oracle, in a process
// of its own) and times it. Contract: docs/harness.md.
//
// This process is the trusted side (docs/verifier.md, "Threat model") and
// shares the CPU harness's core: the same EvaluationPipeline checks and
// times every call; only the backend differs. It never loads candidate
// code: the candidate runs in ratchet-candidate-cuda on a device arena this
// process allocates and exports, and sees only the tensors of the call it
// is making. T_k is this process's clock around request and answer (the
// candidate process answers after a device-wide synchronisation), minus a
// round trip calibrated before the library is loaded. References,
// timestamps and the result stay here, and the result is written only after
// the candidate process and everything it started are gone.
#include <cuda_runtime_api.h>
#include <elf.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/cuda/cuda_backend.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/harness/candidate_process.h"
#include "kernels/harness/given_baseline.h"
#include "kernels/harness/oracle_client.h"
#include "kernels/harness/pipeline.h"
#include "kernels/harness/result_table.h"
#include "kernels/harness/solution.h"
#include "kernels/harness/subprocess.h"
#include "kernels/harness/tensors.h"
#include "kernels/problem/problem.h"
#include "kernels/sol/sol.h"
#ifdef RATCHET_HAVE_GPU_PEAKS
#include "kernels/sol/gpu_peaks.h"
#endif

namespace ratchet::kernels {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
constexpr size_t kMaxMessage = 16 * 1024;

struct Options {
  std::string problem, solution, out, python, scratch, cache_dir, arch;
  std::string baseline;  // --baseline: T_b stored by the coordinator
  std::vector<std::pair<std::string, std::string>> knobs;
  uint64_t seed = 1;
  int warmups = 10, repetitions = 50, rounds = 3, device_index = 0;
  double peak_gbps = 0, peak_tflops = 0;
  bool print = false, compile_only = false;
  // Independent timing (docs/verifier.md): after timing, calls back to back
  // with marks on stdout that the parent timestamps; > 0 is the budget per
  // workload in seconds. The worker passes it in $RATCHET_INDEPENDENT_TIMING
  // so that nothing a candidate can read tells such a run from another.
  double back_to_back = 0;
  // $RATCHET_RESULT_NONCE: echoed in the result, so that the worker can tell
  // this process's result from a file the candidate wrote.
  std::string nonce;
  ScreenMode screen = ScreenMode::kAuto;  // the cascade's screen stage
};

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "ratchet-harness-cuda: %s\n"
               "usage: ratchet-harness-cuda --problem DIR --solution DIR --out FILE\n"
               "         [--knob NAME=VALUE]... [--seed N] [--warmups N] [--repetitions N]\n"
               "         [--rounds N] [--device-index N] [--arch sm_90|sm_90a|sm_100]\n"
               "         [--peak-gbps X --peak-tflops Y] [--python PATH] [--scratch DIR]\n"
               "         [--cache-dir DIR] [--compile-only] [--screen auto|on|off] [--print]\n"
               "         [--verify] [--back-to-back SECONDS] [--baseline FILE]\n",
               why.c_str());
  return 2;
}

// Returns 0 on success, else the exit status for a bad command line.
int ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], v;
    if (a == "--print") {
      o->print = true;
      continue;
    }
    if (a == "--compile-only") {
      o->compile_only = true;
      continue;
    }
    // Every run checks every call; kept so that older command lines work.
    if (a == "--verify") continue;
    if (a == "-h" || a == "--help") return Usage("help");
    const size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    } else {
      if (i + 1 >= argc) return Usage(absl::StrCat(a, " needs a value"));
      v = argv[++i];
    }
    auto as_int = [&](int* dst) { return absl::SimpleAtoi(v, dst) && *dst >= 0; };
    if (a == "--problem") o->problem = v;
    else if (a == "--solution") o->solution = v;
    else if (a == "--out") o->out = v;
    else if (a == "--python") o->python = v;
    else if (a == "--scratch") o->scratch = v;
    else if (a == "--baseline") o->baseline = v;
    else if (a == "--cache-dir") o->cache_dir = v;
    else if (a == "--screen") {
      if (!ParseScreenMode(v, &o->screen)) return Usage("--screen must be auto, on or off");
    } else if (a == "--arch") {
      if (v != "sm_90" && v != "sm_90a" && v != "sm_100" && v != "sm_100a" && v != "sm_80" &&
          v != "sm_89" && v != "sm_120") {
        return Usage("--arch must be one of sm_80, sm_89, sm_90, sm_90a, sm_100, sm_100a, sm_120");
      }
      o->arch = v;
    } else if (a == "--seed") {
      if (!absl::SimpleAtoi(v, &o->seed)) return Usage("--seed needs a non-negative integer");
    } else if (a == "--warmups") {
      if (!as_int(&o->warmups)) return Usage("--warmups needs a non-negative integer");
    } else if (a == "--repetitions") {
      if (!as_int(&o->repetitions) || o->repetitions < 1) return Usage("--repetitions needs an integer >= 1");
    } else if (a == "--rounds") {
      if (!as_int(&o->rounds) || o->rounds < 1) return Usage("--rounds needs an integer >= 1");
    } else if (a == "--device-index") {
      if (!as_int(&o->device_index)) return Usage("--device-index needs a non-negative integer");
    } else if (a == "--peak-gbps") {
      if (!absl::SimpleAtod(v, &o->peak_gbps) || o->peak_gbps <= 0) return Usage("--peak-gbps needs a positive number");
    } else if (a == "--peak-tflops") {
      if (!absl::SimpleAtod(v, &o->peak_tflops) || o->peak_tflops <= 0) return Usage("--peak-tflops needs a positive number");
    } else if (a == "--back-to-back") {
      if (!absl::SimpleAtod(v, &o->back_to_back) || o->back_to_back <= 0 || o->back_to_back > 60)
        return Usage("--back-to-back needs seconds in (0, 60]");
    } else if (a == "--knob") {
      const size_t k = v.find('=');
      if (k == std::string::npos || k == 0) return Usage("--knob needs NAME=VALUE");
      o->knobs.emplace_back(v.substr(0, k), v.substr(k + 1));
    } else {
      return Usage(absl::StrCat("unknown argument ", a));
    }
  }
  if (o->problem.empty() || o->solution.empty() || o->out.empty()) {
    return Usage("--problem, --solution and --out are required");
  }
  if ((o->peak_gbps > 0) != (o->peak_tflops > 0)) {
    return Usage("--peak-gbps and --peak-tflops go together");
  }
  return 0;
}

// ---------------------------------------------------------------------------

// What the pipeline checked and timed, with the baseline and the score.
struct WorkloadResult : CheckedWorkload {
  double atol = 0, rtol = 0;
  double t_b = 0, t_b_eager = 0, t_b_compile = 0, t_ref_kernel = 0, t_sol = 0, score = 0;
  double t_b_spread = 0;
  bool t_b_given = false;  // from --baseline, not timed in this run
  double flops = 0, bytes = 0;
  int repetitions = 0;
  std::vector<std::string> baseline_notes;  // the oracle's, e.g. why T_b is eager only
};

struct Result {
  std::string outcome = "harness_error";
  std::string message;
  double score = 0;
  std::vector<WorkloadResult> workloads;
  std::vector<std::string> flags;
  std::string device_name, arch, sku, peak_source = "none", peak_dtype, unit = "simt";
  int cc_major = 0, cc_minor = 0;
  double gbps = 0, tflops = 0;
  double compile_seconds = 0, wall_seconds = 0;
  double screen_seconds = 0;  // 0 when the screen did not run
  double round_trip_ns = 0;   // a call's cost besides the call, removed from T_k
  bool build_reused = false;  // the scratch folder's earlier build was used
  std::string candidate_user;  // who the candidate process ran as
  std::string nonce;
  std::string software;  // the oracle's torch and CUDA versions: part of T_b's key
};

void AddFlag(std::vector<std::string>* flags, const std::string& f) {
  if (std::find(flags->begin(), flags->end(), f) == flags->end()) flags->push_back(f);
}

Json ToJson(const Result& r) {
  Json j;
  j["outcome"] = r.outcome;
  j["message"] = r.message.size() > kMaxMessage ? Tail(r.message, kMaxMessage) : r.message;
  j["score"] = r.score;
  Json ws = Json::array();
  for (const WorkloadResult& w : r.workloads) {
    Json x;
    x["index"] = w.index;
    x["axes"] = w.axes;
    x["correct"] = w.correct;
    x["matched_fraction"] = w.matched_fraction;
    x["max_abs_error"] = w.max_abs_error;
    x["atol"] = w.atol;
    x["rtol"] = w.rtol;
    x["t_k_ns"] = w.t_k;
    x["t_k_spread"] = w.t_k_spread;
    x["t_b_ns"] = w.t_b;
    x["t_b_eager_ns"] = w.t_b_eager;
    x["t_b_compile_ns"] = w.t_b_compile;
    x["t_ref_kernel_ns"] = w.t_ref_kernel;
    x["t_b_spread"] = w.t_b_spread;
    x["t_b_given"] = w.t_b_given;
    x["t_sol_ns"] = w.t_sol;
    x["flops"] = w.flops;
    x["bytes"] = w.bytes;
    x["score"] = w.score;
    x["repetitions"] = w.repetitions;
    if (w.timed_rounds > 0) x["timed_rounds"] = w.timed_rounds;
    if (w.calls > 0) x["calls"] = w.calls;
    if (!w.baseline_notes.empty()) x["baseline_notes"] = w.baseline_notes;
    x["flags"] = w.flags;
    ws.push_back(x);
  }
  j["workloads"] = ws;
  j["flags"] = r.flags;
  j["device"] = {{"name", r.device_name},
                 {"compute_capability", absl::StrCat(r.cc_major, ".", r.cc_minor)},
                 {"arch", r.arch}};
  j["peaks"] = {{"gbps", r.gbps}, {"tflops", r.tflops}, {"gflops", r.tflops * 1e3},
                {"sku", r.sku}, {"source", r.peak_source}, {"unit", r.unit},
                {"dtype", r.peak_dtype}};
  j["compile_seconds"] = r.compile_seconds;
  j["screen_seconds"] = r.screen_seconds;
  j["build_reused"] = r.build_reused;
  j["round_trip_ns"] = r.round_trip_ns;
  j["wall_seconds"] = r.wall_seconds;
  // T_k is the trusted clock's request-to-answer time less the calibrated
  // round trip: launch overhead included, no in-process CUPTI or events.
  j["timing"] = "round-trip";
  j["isolation"] = "process";
  if (!r.candidate_user.empty()) j["candidate_user"] = r.candidate_user;
  if (!r.nonce.empty()) j["nonce"] = r.nonce;
  if (!r.software.empty()) j["software"] = r.software;
  return j;
}

bool WriteResult(const std::string& path, const Result& r, bool print) {
  // The message may quote candidate output or file names: bytes that are not
  // UTF-8 become U+FFFD rather than an exception that would lose the result.
  const std::string text =
      ToJson(r).dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  const std::string tmp = path + ".tmp";
  std::remove(tmp.c_str());  // not a file someone else left open for us
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return false;
    f << text;
    if (!f) return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return false;
  if (print) std::fputs(FormatResultTable(text).c_str(), stdout);
  return true;
}

void Stage(const std::string& s) { std::fprintf(stderr, "stage: %s\n", s.c_str()); }

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

bool IsTensorCoreOp(const std::string& op_type) {
  std::string t;
  for (char c : op_type) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  for (const char* k : {"matmul", "gemm", "bmm", "attention", "attn", "conv", "mm", "linear"}) {
    if (t.find(k) != std::string::npos) return true;
  }
  return false;
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

// Oracle data of every round held in memory, at most this much: timed calls
// beyond it reuse rounds (at new addresses) and say so in timed_rounds.
constexpr double kRoundBudgetBytes = 1024.0 * 1024 * 1024;

class Harness {
 public:
  explicit Harness(Options o) : o_(std::move(o)), start_(Clock::now()) {}
  int Run();

 private:
  // Each returns false when the run ended (result_ already filled).
  bool Compile(const Solution& s);
  bool InitDevice();
  void SetPeaks();
  OracleOptions FullOracleOptions() const;
  // Reads every round the oracle wrote into memory, then leaves decoys in
  // place of its reference files.
  bool LoadRounds(const std::string& dir, const std::string& manifest_text,
                  const std::vector<Workload>& workloads, std::vector<WorkloadRounds>* rounds);
  // Allocates the device arena, starts a candidate process on it,
  // calibrates its round trip and loads the library; the pipeline then
  // calls it through `backend_`.
  bool StartCandidate(const std::string& name);
  void StopCandidate();
  bool Screen(const Workload& w);
  void Evaluate();
  void Fail(const std::string& outcome, const std::string& message) {
    result_.outcome = outcome;
    result_.message = message;
  }
  size_t FlushBytes() const {
    return 2 * static_cast<size_t>(std::max(prop_.l2CacheSize, 1 << 20));
  }
  PipelineOptions Pipeline() const {
    PipelineOptions po;
    po.correctness_rounds = o_.rounds;
    po.warmups = o_.warmups;
    po.repetitions = o_.repetitions;
    po.back_to_back_seconds = o_.back_to_back;
    po.stage = Stage;
    return po;
  }

  Options o_;
  Clock::time_point start_;
  Problem problem_;
  Json definition_json_;
  Result result_;
  std::string scratch_;
  std::string library_;
  bool own_scratch_ = false;
  cudaDeviceProp prop_{};
  // Destroyed in this order by StopCandidate: the process before the
  // device memory it has open.
  std::unique_ptr<CandidateProcess> process_;
  std::unique_ptr<CudaProcessBackend> backend_;
  GivenBaseline baseline_;  // --baseline, read before any candidate process exists
};

bool Harness::Compile(const Solution& s) {
  Stage("compile");
  const auto t0 = Clock::now();
  const std::string exe_dir = SelfExeDir();
  std::string abi = ReadFileOrEmpty(exe_dir + "/kernel_abi.h");
  if (abi.empty()) {
    Fail("harness_error", absl::StrCat("kernel_abi.h not found beside ", exe_dir));
    return false;
  }
  const std::string build = scratch_ + "/build";
  library_ = build + "/candidate.so";
  const std::string num = result_.arch.substr(3);  // "90a" from "sm_90a".
  // -cudart shared: the candidate uses the candidate process's CUDA runtime
  // (one context, the stream it is handed), not a static copy of it.
  std::vector<std::string> cmd = {FindNvcc(), "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
                                  "-cudart", "shared",
                                  absl::StrCat("-gencode=arch=compute_", num, ",code=sm_", num),
                                  "-I" + build + "/include",
                                  "-I" + build + "/include/ratchet", "-I" + o_.solution};
  for (const auto& [k, v] : s.knobs) cmd.push_back(absl::StrCat("-D", k, "=", v));
  for (const auto& f : s.sources) cmd.push_back(f);
  cmd.push_back("-o");
  cmd.push_back(library_);
  for (const std::string& lib : s.libraries) cmd.push_back("-l" + lib);
  // The entry point, checked without loading the library here (the
  // candidate process loads it; a library that does not load is its
  // compile_error then).
  auto check_export = [&]() {
    auto has = ExportsSymbol(library_, "ratchet_run_cuda");
    if (!has.ok()) {
      Fail("compile_error", std::string(has.status().message()));
      return false;
    }
    if (!*has) {
      Fail("compile_error",
           "the library exports no ratchet_run_cuda (declare it extern \"C\"; include "
           "\"ratchet/kernel_abi.h\")");
      return false;
    }
    return true;
  };
  // A build this scratch folder already holds for the same sources, knobs and
  // flags is reused: the worker compiles with --compile-only while another job
  // has the GPU, then runs the timed job on the finished library.
  const std::string key = BuildKey(cmd, o_.solution, abi);
  const std::string key_file = library_ + ".key";
  if (ReadFileOrEmpty(key_file) == key && access(library_.c_str(), R_OK) == 0) {
    result_.compile_seconds = 0;
    result_.build_reused = true;
    return check_export();
  }
  if (auto st = FreshDir(build); !st.ok()) {
    Fail("harness_error", std::string(st.message()));
    return false;
  }
  mkdir((build + "/include").c_str(), 0755);
  mkdir((build + "/include/ratchet").c_str(), 0755);
  std::ofstream(build + "/include/ratchet/kernel_abi.h") << abi;
  const std::string log = build + "/compile.log";
  auto rc = RunProcess(cmd, log);
  result_.compile_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!rc.ok()) {
    Fail("harness_error", absl::StrCat("cannot run nvcc (", cmd[0], "; set $RATCHET_NVCC): ",
                                       rc.status().message()));
    return false;
  }
  if (*rc != 0) {
    Fail("compile_error", Tail(absl::StrCat(absl::StrJoin(cmd, " "), "\n", ReadFileOrEmpty(log)),
                               kMaxMessage));
    return false;
  }
  if (!check_export()) return false;
  std::ofstream(key_file) << key;
  return true;
}

bool Harness::InitDevice() {
  Stage("device");
  int count = 0;
  if (auto st = CudaStatus(cudaGetDeviceCount(&count), "cudaGetDeviceCount"); !st.ok()) {
    Fail("harness_error", absl::StrCat("no usable CUDA device: ", st.message()));
    return false;
  }
  if (o_.device_index >= count) {
    Fail("harness_error", absl::StrCat("--device-index ", o_.device_index, " but ", count,
                                       " CUDA device(s) visible"));
    return false;
  }
  absl::Status st = CudaStatus(cudaSetDevice(o_.device_index), "cudaSetDevice");
  if (st.ok()) st = CudaStatus(cudaGetDeviceProperties(&prop_, o_.device_index), "cudaGetDeviceProperties");
  if (st.ok()) st = CudaStatus(cudaFree(nullptr), "cudaFree(nullptr) (creating the context)");
  if (!st.ok()) {
    Fail("harness_error", std::string(st.message()));
    return false;
  }
  result_.device_name = prop_.name;
  result_.cc_major = prop_.major;
  result_.cc_minor = prop_.minor;
  return true;
}

// Peaks for T_sol: the flags, else the GPU table for the definition's dtype
// and unit (tensor cores for matmul-like ops, or as the definition says).
void Harness::SetPeaks() {
  const Definition& def = problem_.definition;
  for (const TensorSpec& t : def.inputs) {
    if (IsFloating(t.dtype)) {
      result_.peak_dtype = DTypeName(t.dtype);
      break;
    }
  }
  if (result_.peak_dtype.empty()) result_.peak_dtype = "float32";
  bool tensor = IsTensorCoreOp(def.op_type);
  if (definition_json_.contains("ratchet") && definition_json_["ratchet"].is_object()) {
    const std::string unit = definition_json_["ratchet"].value("unit", "");
    if (unit == "tensor") tensor = true;
    if (unit == "simt") tensor = false;
  }
  result_.unit = tensor ? "tensor" : "simt";
  if (o_.peak_gbps > 0) {
    result_.gbps = o_.peak_gbps;
    result_.tflops = o_.peak_tflops;
    result_.peak_source = "flags";
    return;
  }
#ifdef RATCHET_HAVE_GPU_PEAKS
  if (auto p = LookupGpuPeaks(result_.device_name)) {
    result_.sku = p->sku;
    result_.gbps = p->dram_gbps;
    result_.tflops = PeakTflops(*p, result_.peak_dtype, tensor);
    result_.peak_source = "table";
  }
#endif
  if (result_.peak_source == "none") AddFlag(&result_.flags, "no-peaks");
}

OracleOptions Harness::FullOracleOptions() const {
  OracleOptions oo;
  oo.seed = o_.seed;
  // The correctness rounds, then a round of its own for every timed call
  // (warm-ups included), within the memory budget.
  double round_bytes = 1;
  for (const Workload& w : problem_.workloads) {
    double b = 0;
    for (const auto* specs : {&problem_.definition.inputs, &problem_.definition.outputs})
      for (const Tensor& t : MakeTensors(*specs, w)) b += static_cast<double>(t.bytes);
    round_bytes += 2 * b;  // references and decoys
  }
  const int wanted = o_.warmups + o_.repetitions;
  const int fits = static_cast<int>(kRoundBudgetBytes / round_bytes) - o_.rounds;
  oo.rounds = o_.rounds + std::max(2, std::min(wanted, fits));
  oo.warmups = o_.warmups;
  oo.repetitions = o_.repetitions;
  oo.flush_bytes = FlushBytes();
  oo.threads = 4;
  oo.python = o_.python;
  oo.cache_dir = o_.cache_dir;
  oo.device = "cuda";
  oo.device_index = o_.device_index;
  oo.isolated = true;
  return oo;
}

bool Harness::LoadRounds(const std::string& dir, const std::string& manifest_text,
                         const std::vector<Workload>& workloads,
                         std::vector<WorkloadRounds>* rounds) {
  auto st = ReadOracleRounds(problem_.definition, dir, manifest_text, workloads, rounds);
  if (!st.ok()) Fail("harness_error", std::string(st.message()));
  return st.ok();
}

bool Harness::StartCandidate(const std::string& name) {
  const std::string exe = SelfExeDir() + "/ratchet-candidate-cuda";
  if (access(exe.c_str(), X_OK) != 0) {
    Fail("harness_error", absl::StrCat(exe, " not found: it must sit beside ratchet-harness-cuda"));
    return false;
  }
  const std::string dir = scratch_ + "/" + name;
  if (auto st = FreshDir(dir); !st.ok()) {
    Fail("harness_error", std::string(st.message()));
    return false;
  }
  auto b = CudaProcessBackend::Create(o_.device_index, ArenaBytesFor(problem_), FlushBytes(),
                                      o_.seed);
  if (!b.ok()) {
    Fail("harness_error", absl::StrCat("allocating the device arena: ", b.status().message()));
    return false;
  }
  backend_ = std::move(*b);
  // The shared file carries only the control page; tensors live on the device.
  auto p = CandidateProcess::Start(exe, library_, 4096, dir, dir + "/output.log",
                                   [this](channel::ControlBlock* cb) { backend_->Prepare(cb); });
  if (!p.ok()) {
    Fail("harness_error", std::string(p.status().message()));
    return false;
  }
  process_ = std::move(*p);
  result_.candidate_user = process_->identity();
  // Before the library is loaded nothing in that process is the candidate's.
  auto rt = process_->CalibrateRoundTrip(21);
  if (!rt.ok()) {
    Fail("harness_error", std::string(rt.status().message()));
    return false;
  }
  result_.round_trip_ns = *rt;
  if (auto st = process_->Load(); !st.ok()) {
    Fail("compile_error", std::string(st.message()));
    return false;
  }
  backend_->Attach(process_.get(), *rt);
  return true;
}

void Harness::StopCandidate() {
  if (process_) process_->KillAll();
  process_.reset();
  backend_.reset();
}

bool Harness::Screen(const Workload& w) {
  Stage("screen");
  const auto t0 = Clock::now();
  bool passed = false;
  OracleOptions oo = FullOracleOptions();
  oo.scratch = scratch_ + "/oracle-screen";
  std::vector<WorkloadRounds> rounds;
  if (auto st = FreshDir(oo.scratch); !st.ok()) {
    Fail("harness_error", std::string(st.message()));
  } else if (auto text = RunScreenOracle(problem_, w, oo); !text.ok()) {
    Fail("harness_error", std::string(text.status().message()));
  } else if (LoadRounds(oo.scratch, *text, {w}, &rounds) && StartCandidate("candidate-screen")) {
    EvaluationPipeline pipeline(problem_.definition, backend_.get(), Pipeline());
    const PipelineResult pr = pipeline.Screen(w, rounds[0]);
    passed = pr.outcome == "ok";
    if (!passed) {
      WorkloadResult wr;
      static_cast<CheckedWorkload&>(wr) = pr.workloads[0];
      const Tolerance tol = ToleranceFor(w, problem_.definition.outputs[0].dtype);
      wr.atol = tol.atol;
      wr.rtol = tol.rtol;
      result_.workloads.push_back(wr);
      Fail(pr.outcome, pr.message);
    }
  }
  // Nothing the screen's candidate process started lives on into the oracle.
  StopCandidate();
  result_.screen_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return passed;
}

void Harness::Evaluate() {
  // The oracle first, in a folder made after every candidate process is
  // gone: T_b is timed before any candidate code of this run exists.
  Stage("oracle");
  OracleOptions oo = FullOracleOptions();
  oo.scratch = scratch_ + "/oracle";
  if (auto st = FreshDir(oo.scratch); !st.ok()) return Fail("harness_error", std::string(st.message()));
  // A baseline stored by the coordinator spares timing the reference, if it
  // was measured with the same software; else T_b is timed here after all.
  oo.time_reference = baseline_.empty();
  auto text = kernels::RunOracle(problem_, oo);
  if (!text.ok()) return Fail("harness_error", std::string(text.status().message()));
  result_.software = OracleSoftware(*text);
  if (!baseline_.empty() && baseline_.software != result_.software) {
    std::fprintf(stderr, "ratchet-harness-cuda: the given baseline is for %s, this is %s: "
                 "timing T_b here\n", baseline_.software.c_str(), result_.software.c_str());
    oo.time_reference = true;
    if (auto st = FreshDir(oo.scratch); !st.ok()) return Fail("harness_error", std::string(st.message()));
    text = kernels::RunOracle(problem_, oo);
    if (!text.ok()) return Fail("harness_error", std::string(text.status().message()));
  }
  std::vector<WorkloadRounds> rounds;
  if (!LoadRounds(oo.scratch, *text, problem_.workloads, &rounds)) return;
  const Json manifest = Json::parse(*text);
  if (!StartCandidate("candidate")) return;
  EvaluationPipeline pipeline(problem_.definition, backend_.get(), Pipeline());
  const PipelineResult pr = pipeline.Run(problem_.workloads, rounds);
  StopCandidate();
  const Definition& def = problem_.definition;
  double sum = 0;
  for (size_t k = 0; k < pr.workloads.size(); ++k) {
    const Workload& w = problem_.workloads[k];
    const Json& mw = manifest["workloads"][k];
    WorkloadResult wr;
    static_cast<CheckedWorkload&>(wr) = pr.workloads[k];
    const Tolerance tol = ToleranceFor(w, problem_.definition.outputs[0].dtype);
    wr.atol = tol.atol;
    wr.rtol = tol.rtol;
    wr.repetitions = o_.repetitions;
    // Baseline times and the speed of light.
    wr.t_b_eager = mw.value("t_b_eager_ns", 0.0);
    wr.t_b_compile = mw.value("t_b_compile_ns", 0.0);
    wr.t_ref_kernel = mw.value("t_ref_kernel_ns", 0.0);
    if (mw.contains("notes") && mw["notes"].is_array()) {
      for (const auto& n : mw["notes"])
        if (n.is_string()) wr.baseline_notes.push_back(n.get<std::string>());
    }
    if (wr.t_b_eager > 0 && wr.t_b_compile > 0) {
      wr.t_b = std::min(wr.t_b_eager, wr.t_b_compile);
    } else if (wr.t_b_eager > 0 || wr.t_b_compile > 0) {
      wr.t_b = std::max(wr.t_b_eager, wr.t_b_compile);
    } else {
      wr.t_b = mw.value("t_b_ns", 0.0);
    }
    wr.t_b_spread = mw.value("t_b_spread", 0.0);
    if (!oo.time_reference) {
      auto it = baseline_.workloads.find(w.index);
      if (it == baseline_.workloads.end())
        return Fail("harness_error",
                    absl::StrCat("--baseline has no T_b for workload ", w.index));
      const GivenBaseline::Entry& b = it->second;
      wr.t_b = b.t_b_ns;
      wr.t_b_spread = b.t_b_spread;
      wr.t_b_eager = b.t_b_eager_ns;
      wr.t_b_compile = b.t_b_compile_ns;
      wr.t_ref_kernel = b.t_ref_kernel_ns;
      wr.t_b_given = true;
    }
    auto flops = WorkloadFlops(def, w);
    auto bytes = WorkloadBytes(def, w);
    if (!flops.ok() || !bytes.ok())
      return Fail("harness_error",
                  std::string((!flops.ok() ? flops.status() : bytes.status()).message()));
    wr.flops = def.flops_expr.empty() ? mw.value("flops", 0.0) : *flops;
    wr.bytes = *bytes;
    wr.t_sol = result_.gbps > 0 ? SolTimeNs(wr.flops, wr.bytes, result_.tflops * 1e3, result_.gbps) : 0;
    // Clearly below the roofline: physically impossible, so a hack or a
    // wrong peak; the verifier rejects it.
    if (wr.t_k > 0 && wr.t_sol > 0 && wr.t_k < 0.9 * wr.t_sol) AddFlag(&wr.flags, "below-sol");
    if (pr.outcome == "ok") wr.score = SolScore(wr.t_k, wr.t_b, wr.t_sol);
    sum += wr.score;
    result_.workloads.push_back(wr);
  }
  if (pr.outcome != "ok") return Fail(pr.outcome, pr.message);
  result_.score = result_.workloads.empty() ? 0 : sum / static_cast<double>(result_.workloads.size());
  result_.outcome = "ok";
  result_.message = "";
}

int Harness::Run() {
  auto finish = [&]() {
    // The result is written once no candidate process is left.
    StopCandidate();
    result_.wall_seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    result_.nonce = o_.nonce;
    for (const WorkloadResult& w : result_.workloads)
      for (const std::string& f : w.flags) AddFlag(&result_.flags, f);
    if (result_.outcome != "ok") result_.score = 0;
    if (!WriteResult(o_.out, result_, o_.print)) {
      std::fprintf(stderr, "ratchet-harness-cuda: cannot write %s\n", o_.out.c_str());
      return 2;
    }
    if (own_scratch_ && std::getenv("RATCHET_KEEP_SCRATCH") == nullptr) {
      RunProcess({"rm", "-rf", scratch_}, "").IgnoreError();
    }
    return 0;
  };
  auto problem = LoadProblem(o_.problem);
  if (!problem.ok()) {
    Fail("harness_error", std::string(problem.status().message()));
    return finish();
  }
  problem_ = std::move(*problem);
  definition_json_ = Json::parse(ReadFileOrEmpty(o_.problem + "/definition.json"), nullptr,
                                 /*allow_exceptions=*/false);
  if (!definition_json_.is_object()) definition_json_ = Json::object();
  auto solution = LoadSolution(o_.solution, o_.knobs, SolutionBackend::kCuda);
  if (!solution.ok()) {
    Fail("harness_error", std::string(solution.status().message()));
    return finish();
  }
  if (o_.scratch.empty()) {
    char tmpl[] = "/tmp/ratchet-harness-cuda-XXXXXX";
    const char* d = mkdtemp(tmpl);
    if (d == nullptr) {
      Fail("harness_error", "cannot create a scratch folder in /tmp");
      return finish();
    }
    scratch_ = d;
    own_scratch_ = true;
  } else {
    scratch_ = o_.scratch;
    RunProcess({"mkdir", "-p", scratch_}, "").IgnoreError();
  }
  // The target: --arch, else the device's compute capability (9.0 -> sm_90a
  // so that wgmma is available). Only this query touches the GPU before
  // compilation; the worker passes --arch to avoid even that.
  result_.arch = o_.arch;
  if (result_.arch.empty()) {
    if (o_.compile_only) {
      Fail("harness_error", "--compile-only needs --arch");
      return finish();
    }
    int major = 0, minor = 0;
    absl::Status st = CudaStatus(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, o_.device_index),
                                 "cudaDeviceGetAttribute");
    if (st.ok()) st = CudaStatus(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, o_.device_index),
                                 "cudaDeviceGetAttribute");
    if (!st.ok()) {
      Fail("harness_error", absl::StrCat("cannot read the device's compute capability (pass --arch): ",
                                         st.message()));
      return finish();
    }
    result_.arch = absl::StrCat("sm_", major, minor, major == 9 && minor == 0 ? "a" : "");
  }
  // Read before any candidate process exists.
  baseline_ = LoadGivenBaseline(o_.baseline);
  if (!Compile(*solution)) return finish();
  if (o_.compile_only) {
    result_.outcome = "ok";
    result_.message = "compiled (--compile-only)";
    return finish();
  }
  if (!InitDevice()) return finish();
  SetPeaks();
  // The independent timing checks every workload in full: no screen.
  const std::optional<Workload> screened =
      o_.back_to_back > 0 ? std::nullopt : ScreenWorkload(problem_, o_.screen);
  if (screened && !Screen(*screened)) return finish();
  Evaluate();
  return finish();
}

// Settings a candidate must not see arrive in the environment, which a
// non-dumpable process hides from processes of its own user; they are
// removed before any child starts.
void TakeSecrets(Options* o) {
  if (const char* n = std::getenv("RATCHET_RESULT_NONCE")) o->nonce = n;
  if (const char* b = std::getenv("RATCHET_INDEPENDENT_TIMING")) {
    double s = 0;
    if (absl::SimpleAtod(b, &s) && s > 0 && s <= 60) o->back_to_back = s;
  }
}

}  // namespace
}  // namespace ratchet::kernels

int main(int argc, char** argv) {
  ratchet::kernels::BecomeTrustedParent();
  ratchet::kernels::Options o;
  ratchet::kernels::TakeSecrets(&o);
  ratchet::kernels::ScrubEnvironment();
  if (int rc = ratchet::kernels::ParseArgs(argc, argv, &o); rc != 0) return rc;
  const std::string out = o.out, nonce = o.nonce;
  const bool print = o.print;
  std::string error;
  try {
    // Destroyed before the result is written: no candidate process is left.
    ratchet::kernels::Harness h(std::move(o));
    return h.Run();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  // Whatever escaped is the harness's fault, never the candidate's: without
  // a result the worker would report the abort as the candidate's crash.
  ratchet::kernels::Result r;
  r.outcome = "harness_error";
  r.message = "ratchet-harness-cuda: internal error: " + error;
  r.nonce = nonce;
  std::fprintf(stderr, "%s\n", r.message.c_str());
  if (!ratchet::kernels::WriteResult(out, r, print)) {
    std::fprintf(stderr, "ratchet-harness-cuda: cannot write %s\n", out.c_str());
    return 2;
  }
  return 0;
}
