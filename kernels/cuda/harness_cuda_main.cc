// ratchet-harness-cuda: compiles a CUDA candidate with nvcc, checks it
// against the PyTorch reference (run on the GPU by the oracle, in a separate
// process), guards against the known reward hacks and times it with CUPTI,
// cross-checked by CUDA events. Contract: docs/harness.md.
#include <cuda_runtime_api.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/correctness/compare.h"
#include "kernels/cuda/abba.h"
#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/cupti_tracer.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/timing_stats.h"
#include "kernels/harness/back_to_back.h"
#include "kernels/harness/oracle_client.h"
#include "kernels/harness/result_table.h"
#include "kernels/harness/solution.h"
#include "kernels/harness/subprocess.h"
#include "kernels/harness/tensors.h"
#include "kernels/include/ratchet/kernel_abi.h"
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
constexpr size_t kMaxRepetitions = 100000;

struct Options {
  std::string problem, solution, out, python, scratch, cache_dir, arch;
  std::vector<std::pair<std::string, std::string>> knobs;
  uint64_t seed = 1;
  int warmups = 10, repetitions = 50, rounds = 3, device_index = 0;
  double peak_gbps = 0, peak_tflops = 0, min_time_ms = 0;
  bool print = false, compile_only = false;
  // Independent timing (verification): only back-to-back calls, with marks on
  // stdout that the parent times; the oracle's manifest reused from the scratch.
  double back_to_back = 0;
  bool reuse_oracle = false;
  ScreenMode screen = ScreenMode::kAuto;  // the cascade's screen stage
};

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "ratchet-harness-cuda: %s\n"
               "usage: ratchet-harness-cuda --problem DIR --solution DIR --out FILE\n"
               "         [--knob NAME=VALUE]... [--seed N] [--warmups N] [--repetitions N]\n"
               "         [--min-time-ms X] [--rounds N] [--device-index N]\n"
               "         [--arch sm_90|sm_90a|sm_100] [--peak-gbps X --peak-tflops Y]\n"
               "         [--python PATH] [--scratch DIR] [--cache-dir DIR] [--compile-only] [--print]\n"
               "         [--screen auto|on|off]\n"
               "         [--back-to-back SECONDS [--reuse-oracle]]\n",
               why.c_str());
  return 2;
}

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
    if (a == "--reuse-oracle") {
      o->reuse_oracle = true;
      continue;
    }
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
    else if (a == "--cache-dir") o->cache_dir = v;
    else if (a == "--screen") {
      if (!ParseScreenMode(v, &o->screen)) return Usage("--screen must be auto, on or off");
    }
    else if (a == "--arch") {
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
    } else if (a == "--min-time-ms") {
      if (!absl::SimpleAtod(v, &o->min_time_ms) || o->min_time_ms < 0) return Usage("--min-time-ms needs a non-negative number");
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
// A candidate that kills the process on the host side (a signal, exit())
// still leaves a result: prepared text, written with write(2) only.

char g_out_path[4096];
char g_context[512];
volatile sig_atomic_t g_in_candidate = 0;
volatile sig_atomic_t g_done = 0;

void SafeAppend(char* buf, size_t cap, size_t* len, const char* s) {
  for (size_t i = 0; s[i] != '\0' && *len + 1 < cap; ++i) buf[(*len)++] = s[i];
  buf[*len] = '\0';
}

void WriteEmergencyResult(const char* detail) {
  static char buf[4096];
  size_t len = 0;
  buf[0] = '\0';
  SafeAppend(buf, sizeof(buf), &len, "{\"outcome\":\"crash\",\"message\":\"");
  SafeAppend(buf, sizeof(buf), &len, g_context);
  SafeAppend(buf, sizeof(buf), &len, ": ");
  SafeAppend(buf, sizeof(buf), &len, detail);
  SafeAppend(buf, sizeof(buf), &len, "\",\"score\":0,\"workloads\":[],\"flags\":[]}\n");
  const int fd = open(g_out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    (void)!write(fd, buf, len);
    close(fd);
  }
  (void)!write(2, "ratchet-harness-cuda: candidate crash: ", 39);
  (void)!write(2, detail, std::strlen(detail));
  (void)!write(2, "\n", 1);
}

void OnFatalSignal(int sig) {
  const char* name = sig == SIGSEGV ? "killed by SIGSEGV"
                     : sig == SIGBUS ? "killed by SIGBUS"
                     : sig == SIGFPE ? "killed by SIGFPE"
                     : sig == SIGILL ? "killed by SIGILL"
                     : sig == SIGABRT ? "killed by SIGABRT"
                                      : "killed by a signal";
  WriteEmergencyResult(g_in_candidate ? name : "killed by a signal outside a ratchet_run_cuda call");
  _exit(0);
}

void OnExit() {
  if (g_in_candidate && !g_done) WriteEmergencyResult("called exit() inside ratchet_run_cuda");
}

void InstallSignalHandlers() {
  static std::vector<char> alt(1 << 16);
  stack_t ss{};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  sigaltstack(&ss, nullptr);
  struct sigaction sa {};
  sa.sa_handler = OnFatalSignal;
  sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) sigaction(sig, &sa, nullptr);
  std::atexit(OnExit);
}

void SetContext(const std::string& ctx) {
  std::string e = Json(ctx).dump();
  e = e.substr(1, e.size() - 2);
  std::snprintf(g_context, sizeof(g_context), "%s", e.c_str());
}

// Threads of this process (/proc/self/task) with their names.
std::map<long, std::string> Threads() {
  std::map<long, std::string> out;
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return out;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const long tid = std::strtol(e->d_name, nullptr, 10);
    std::string comm = ReadFileOrEmpty(absl::StrCat("/proc/self/task/", e->d_name, "/comm"));
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    out[tid] = comm;
  }
  closedir(d);
  return out;
}

// ---------------------------------------------------------------------------

struct WorkloadResult {
  int index = 0;
  std::string axes;
  bool correct = false;
  double matched_fraction = 0, max_abs_error = 0;
  double atol = 0, rtol = 0;
  double t_k = 0, t_k_spread = 0, t_k_events = 0, t_k_min = 0;
  double t_b = 0, t_b_eager = 0, t_b_compile = 0, t_ref_kernel = 0, t_sol = 0, score = 0;
  double flops = 0, bytes = 0;
  int repetitions = 0;
  int kernels_per_call = 0;
  std::vector<std::string> flags;
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
  bool build_reused = false;  // the scratch folder's earlier build was used
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
    x["t_k_events_ns"] = w.t_k_events;
    x["t_k_min_ns"] = w.t_k_min;
    x["t_b_ns"] = w.t_b;
    x["t_b_eager_ns"] = w.t_b_eager;
    x["t_b_compile_ns"] = w.t_b_compile;
    x["t_ref_kernel_ns"] = w.t_ref_kernel;
    x["t_sol_ns"] = w.t_sol;
    x["flops"] = w.flops;
    x["bytes"] = w.bytes;
    x["score"] = w.score;
    x["repetitions"] = w.repetitions;
    x["kernels_per_call"] = w.kernels_per_call;
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
  j["wall_seconds"] = r.wall_seconds;
  return j;
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

// One candidate call's outcome when it is not fine.
struct CallFailure {
  std::string outcome;  // crash | out_of_bounds | wrong_answer | harness_error
  std::string message;
};

class Harness {
 public:
  explicit Harness(Options o) : o_(std::move(o)), start_(Clock::now()) {}
  int Run();

 private:
  bool Compile(const Solution& s);
  bool LoadLibrary(const std::string& so);  // dlopen + ratchet_run_cuda
  // The full oracle request's settings; the screen's derive from them.
  OracleOptions FullOracleOptions() const;
  // The cascade's screen: one round of workload `w` from its own oracle run.
  bool Screen(const Workload& w);
  bool RunOracle();
  bool InitDevice();
  bool CheckCorrectness();
  // Checks `num_rounds` rounds of `mw` (the manifest's entry for workload
  // `w`), then the A/B/A' step when `abba`, each message starting with
  // `label`. A wrong answer leaves wr->correct false and, if it is the run's
  // first, its text in *first_failure; false when the run ended.
  bool CheckWorkload(const Workload& w, const Json& mw, int num_rounds, bool abba,
                     const std::string& label, WorkloadResult* wr, std::string* first_failure);
  bool Time();
  void BackToBack();
  void Fail(const std::string& outcome, const std::string& message) {
    result_.outcome = outcome;
    result_.message = message;
  }
  void FailCall(const CallFailure& f) { Fail(f.outcome, f.message); }
  // A CUDA error on the harness's own calls: before any candidate call the
  // harness's problem, after one most likely the candidate's sticky error.
  void FailCuda(const absl::Status& st, const std::string& ctx) {
    Fail(called_candidate_ ? "crash" : "harness_error",
         absl::StrCat(ctx, ": ", st.message()));
  }
  // Poisons outputs, calls the candidate, synchronises the device and runs
  // the per-call guards (CUDA errors, return code, threads, canaries).
  std::optional<CallFailure> Call(const std::vector<Tensor>& ins, const std::vector<void*>& in_ptrs,
                                  const std::vector<Tensor>& outs,
                                  const std::vector<std::unique_ptr<DeviceBuffer>>& out_bufs,
                                  const std::vector<const DeviceBuffer*>& check,
                                  const std::string& ctx);
  // The scratch file of round r's k-th "inputs" or "outputs" in `mw`, a
  // manifest's entry for one workload.
  std::string RoundFile(const Json& mw, int r, const char* kind, size_t k) const {
    return scratch_ + "/" + mw["rounds"][static_cast<size_t>(r)][kind][k].get<std::string>();
  }
  std::string InputPath(int w, int r, size_t i) const {
    return RoundFile(manifest_["workloads"][static_cast<size_t>(w)], r, "inputs", i);
  }
  std::string RefPath(int w, int r, size_t j) const {
    return RoundFile(manifest_["workloads"][static_cast<size_t>(w)], r, "outputs", j);
  }
  Tolerance ToleranceFor(const Workload& w, DType out_dtype) const;

  Options o_;
  Clock::time_point start_;
  Problem problem_;
  Json definition_json_;
  std::vector<Json> workload_lines_;
  Result result_;
  std::string scratch_;
  bool own_scratch_ = false;
  ratchet_run_cuda_fn run_ = nullptr;
  Json manifest_;
  cudaStream_t stream_ = nullptr;
  cudaDeviceProp prop_{};
  bool called_candidate_ = false;
};

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

bool Harness::Compile(const Solution& s) {
  Stage("compile");
  const auto t0 = Clock::now();
  const std::string exe_dir = SelfExeDir();
  std::string abi = ReadFileOrEmpty(exe_dir + "/kernel_abi.h");
  if (abi.empty()) {
    Fail("harness_error", absl::StrCat("kernel_abi.h not found beside ", exe_dir));
    return false;
  }
  mkdir((scratch_ + "/include").c_str(), 0755);
  mkdir((scratch_ + "/include/ratchet").c_str(), 0755);
  std::ofstream(scratch_ + "/include/ratchet/kernel_abi.h") << abi;
  const std::string so = scratch_ + "/candidate.so";
  const std::string num = result_.arch.substr(3);  // "90a" from "sm_90a".
  // -cudart shared: the candidate must use the harness's own CUDA runtime
  // (one context, one set of streams), not a static copy of it.
  std::vector<std::string> cmd = {FindNvcc(), "-O3", "-std=c++17", "-shared", "-Xcompiler", "-fPIC",
                                  "-cudart", "shared",
                                  absl::StrCat("-gencode=arch=compute_", num, ",code=sm_", num),
                                  "-I" + scratch_ + "/include",
                                  "-I" + scratch_ + "/include/ratchet", "-I" + o_.solution};
  for (const auto& [k, v] : s.knobs) cmd.push_back(absl::StrCat("-D", k, "=", v));
  for (const auto& f : s.sources) cmd.push_back(f);
  cmd.push_back("-o");
  cmd.push_back(so);
  for (const std::string& lib : s.libraries) cmd.push_back("-l" + lib);
  const std::string log = scratch_ + "/compile.log";
  // A build this scratch folder already holds for the same sources, knobs and
  // flags is reused: the worker compiles with --compile-only while another job
  // has the GPU, then runs the timed job on the finished library.
  const std::string key = BuildKey(cmd, o_.solution, abi);
  const std::string key_file = so + ".key";
  if (ReadFileOrEmpty(key_file) == key && access(so.c_str(), R_OK) == 0) {
    result_.compile_seconds = 0;
    result_.build_reused = true;
    return LoadLibrary(so);
  }
  std::remove(key_file.c_str());
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
  if (!LoadLibrary(so)) return false;
  std::ofstream(key_file) << key;
  return true;
}

bool Harness::LoadLibrary(const std::string& so) {
  void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    Fail("compile_error", absl::StrCat("cannot load the compiled library: ", dlerror()));
    return false;
  }
  run_ = reinterpret_cast<ratchet_run_cuda_fn>(dlsym(h, "ratchet_run_cuda"));
  if (run_ == nullptr) {
    Fail("compile_error",
         "the library exports no ratchet_run_cuda (declare it extern \"C\"; include "
         "\"ratchet/kernel_abi.h\")");
    return false;
  }
  return true;
}

OracleOptions Harness::FullOracleOptions() const {
  OracleOptions oo;
  oo.seed = o_.seed;
  oo.rounds = o_.rounds;
  oo.warmups = o_.warmups;
  oo.repetitions = o_.repetitions;
  oo.flush_bytes = 2 * static_cast<size_t>(std::max(prop_.l2CacheSize, 1 << 20));
  oo.threads = 4;
  oo.scratch = scratch_;
  oo.python = o_.python;
  oo.cache_dir = o_.cache_dir;
  oo.device = "cuda";
  oo.device_index = o_.device_index;
  oo.perturb_of = {0};
  return oo;
}

bool Harness::Screen(const Workload& w) {
  Stage("screen");
  const auto t0 = Clock::now();
  auto text = RunScreenOracle(problem_, w, FullOracleOptions());
  bool passed = false;
  const Json manifest = text.ok() ? Json::parse(*text, nullptr, /*allow_exceptions=*/false) : Json();
  if (!text.ok()) {
    Fail("harness_error", std::string(text.status().message()));
  } else if (!manifest.is_object() || !manifest.contains("workloads") ||
             manifest["workloads"].size() != 1) {
    Fail("harness_error", "screen: the oracle manifest does not hold one workload");
  } else {
    WorkloadResult wr;
    std::string failure;
    if (CheckWorkload(w, manifest["workloads"][0], 1, /*abba=*/false, "screen: ", &wr, &failure)) {
      passed = wr.correct;
      if (!passed) {
        result_.workloads.push_back(wr);
        Fail("wrong_answer", failure);
      }
    }
  }
  result_.screen_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return passed;
}

bool Harness::RunOracle() {
  Stage("oracle");
  auto text = kernels::RunOracle(problem_, FullOracleOptions());
  if (!text.ok()) {
    Fail("harness_error", std::string(text.status().message()));
    return false;
  }
  try {
    manifest_ = Json::parse(*text);
    const Json& ws = manifest_.at("workloads");
    if (!ws.is_array() || ws.size() != problem_.workloads.size()) {
      Fail("harness_error", "oracle manifest: wrong number of workloads");
      return false;
    }
    for (const Json& w : ws) {
      if (w.at("rounds").size() < static_cast<size_t>(o_.rounds)) {
        Fail("harness_error", "oracle manifest: fewer rounds than requested");
        return false;
      }
    }
  } catch (const std::exception& e) {
    Fail("harness_error", absl::StrCat("oracle manifest: ", e.what()));
    return false;
  }
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
  if (!st.ok()) {
    Fail("harness_error", std::string(st.message()));
    return false;
  }
  result_.device_name = prop_.name;
  result_.cc_major = prop_.major;
  result_.cc_minor = prop_.minor;
  return true;
}

Tolerance Harness::ToleranceFor(const Workload& w, DType out_dtype) const {
  Tolerance t;
  const Json& line = workload_lines_[static_cast<size_t>(w.index)];
  const bool given = (line.is_object() && line.contains("tolerance") && !line["tolerance"].is_null()) ||
                     problem_.definition.atol.has_value() || problem_.definition.rtol.has_value();
  if (given) {
    t.atol = w.atol;
    t.rtol = w.rtol;
  } else {
    const DefaultTolerance d = DefaultToleranceFor(out_dtype);
    t.atol = d.atol;
    t.rtol = d.rtol;
  }
  return t;
}

std::optional<CallFailure> Harness::Call(const std::vector<Tensor>& ins,
                                         const std::vector<void*>& in_ptrs,
                                         const std::vector<Tensor>& outs,
                                         const std::vector<std::unique_ptr<DeviceBuffer>>& out_bufs,
                                         const std::vector<const DeviceBuffer*>& check,
                                         const std::string& ctx) {
  for (const auto& b : out_bufs) {
    if (auto st = CudaStatus(cudaMemsetAsync(b->data(), 0xff, b->size(), stream_), "cudaMemsetAsync(poison)");
        !st.ok()) {
      return CallFailure{called_candidate_ ? "crash" : "harness_error", absl::StrCat(ctx, ": ", st.message())};
    }
  }
  if (auto st = CudaStatus(cudaStreamSynchronize(stream_), "cudaStreamSynchronize"); !st.ok()) {
    return CallFailure{called_candidate_ ? "crash" : "harness_error", absl::StrCat(ctx, ": ", st.message())};
  }
  std::vector<void*> out_ptrs;
  for (const auto& b : out_bufs) out_ptrs.push_back(b->data());
  std::vector<ratchet_tensor> ai = AbiTensors(ins, in_ptrs);
  std::vector<ratchet_tensor> ao = AbiTensors(outs, out_ptrs);
  SetContext(ctx);
  const auto before = Threads();
  called_candidate_ = true;
  g_in_candidate = 1;
  const int rc = run_(ai.data(), static_cast<int32_t>(ai.size()), ao.data(),
                      static_cast<int32_t>(ao.size()), stream_);
  g_in_candidate = 0;
  const cudaError_t launch = cudaGetLastError();
  const cudaError_t sync = cudaDeviceSynchronize();
  if (launch != cudaSuccess || sync != cudaSuccess) {
    const cudaError_t e = launch != cudaSuccess ? launch : sync;
    return CallFailure{"crash", absl::StrCat(ctx, ": CUDA error ", cudaGetErrorName(e), ": ",
                                             cudaGetErrorString(e),
                                             e == cudaErrorIllegalAddress
                                                 ? " (an access outside any allocation: out of bounds?)"
                                                 : "")};
  }
  if (rc != 0) return CallFailure{"crash", absl::StrCat(ctx, ": ratchet_run_cuda returned ", rc)};
  const auto after = Threads();
  std::vector<std::string> spawned;
  for (const auto& [tid, name] : after) {
    if (before.count(tid) == 0) spawned.push_back(absl::StrCat(tid, " '", name, "'"));
  }
  if (!spawned.empty()) {
    return CallFailure{"wrong_answer",
                       absl::StrCat(ctx, ": spawned-threads: ", spawned.size(),
                                    " host thread(s) still running after ratchet_run_cuda "
                                    "returned (",
                                    absl::StrJoin(spawned, ", "),
                                    "); all work must be finished or enqueued on the stream")};
  }
  for (size_t b = 0; b < check.size(); ++b) {
    absl::Status st = check[b]->CheckCanaries();
    if (absl::IsFailedPrecondition(st)) {
      const std::string name = b < ins.size() ? absl::StrCat("input '", ins[b].name, "'")
                                              : absl::StrCat("output '", outs[b - ins.size()].name, "'");
      return CallFailure{"out_of_bounds", absl::StrCat(ctx, ": ", name, ": ", st.message(),
                                                       " (canary bytes changed)")};
    }
    if (!st.ok()) return CallFailure{"crash", absl::StrCat(ctx, ": ", st.message())};
  }
  return std::nullopt;
}

// Everything one workload's correctness pass needs on the host.
struct HostRound {
  std::vector<std::string> inputs;
  std::vector<std::string> refs;
};

bool Harness::CheckWorkload(const Workload& w, const Json& mw, int num_rounds, bool abba,
                            const std::string& label, WorkloadResult* wr,
                            std::string* first_failure) {
  const Definition& def = problem_.definition;
  wr->index = w.index;
  wr->axes = w.axes_label;
  wr->correct = true;
  wr->matched_fraction = 1;
  const std::vector<Tensor> ins = MakeTensors(def.inputs, w);
  const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
  const int manifest_rounds = static_cast<int>(mw["rounds"].size());
  auto load_round = [&](int r) -> absl::StatusOr<HostRound> {
    HostRound h;
    for (size_t i = 0; i < ins.size(); ++i) {
      h.inputs.emplace_back(ins[i].bytes, '\0');
      auto st = LoadInto(RoundFile(mw, r, "inputs", i), h.inputs.back().data(), ins[i].bytes);
      if (!st.ok()) return st;
    }
    for (size_t j = 0; j < outs.size(); ++j) {
      h.refs.emplace_back(outs[j].bytes, '\0');
      auto st = LoadInto(RoundFile(mw, r, "outputs", j), h.refs.back().data(), outs[j].bytes);
      if (!st.ok()) return st;
    }
    return h;
  };
  // Two input sets (A's and B's addresses) and one output set.
  std::vector<std::unique_ptr<DeviceBuffer>> set_x, set_y, out_bufs;
  auto alloc = [&](const std::vector<Tensor>& ts, std::vector<std::unique_ptr<DeviceBuffer>>* dst) {
    for (const Tensor& t : ts) {
      auto b = DeviceBuffer::Create(t.bytes);
      if (!b.ok()) return b.status();
      dst->push_back(std::move(*b));
    }
    return absl::OkStatus();
  };
  absl::Status st = alloc(ins, &set_x);
  if (st.ok()) st = alloc(ins, &set_y);
  if (st.ok()) st = alloc(outs, &out_bufs);
  if (!st.ok()) {
    FailCuda(st, absl::StrCat(label, "workload ", w.index, ": allocating buffers"));
    return false;
  }
  auto ptrs = [](const std::vector<std::unique_ptr<DeviceBuffer>>& s) {
    std::vector<void*> p;
    for (const auto& b : s) p.push_back(b->data());
    return p;
  };
  auto checks = [&](const std::vector<std::unique_ptr<DeviceBuffer>>& s) {
    std::vector<const DeviceBuffer*> c;
    for (const auto& b : s) c.push_back(b.get());
    for (const auto& b : out_bufs) c.push_back(b.get());
    return c;
  };
  auto upload = [&](const HostRound& h, std::vector<std::unique_ptr<DeviceBuffer>>& s) {
    for (size_t i = 0; i < ins.size(); ++i) {
      absl::Status u = s[i]->Upload(h.inputs[i].data());
      if (!u.ok()) return u;
    }
    return absl::OkStatus();
  };
  auto download = [&](std::vector<std::string>* got) {
    got->clear();
    for (size_t j = 0; j < outs.size(); ++j) {
      got->emplace_back(outs[j].bytes, '\0');
      absl::Status d = out_bufs[j]->Download(got->back().data());
      if (!d.ok()) return d;
    }
    return absl::OkStatus();
  };
  // Inputs unchanged; returns the first modified input's name.
  auto modified_input = [&](const HostRound& h, std::vector<std::unique_ptr<DeviceBuffer>>& s)
      -> absl::StatusOr<std::string> {
    for (size_t i = 0; i < ins.size(); ++i) {
      std::string now(ins[i].bytes, '\0');
      absl::Status d = s[i]->Download(now.data());
      if (!d.ok()) return d;
      if (now != h.inputs[i]) return ins[i].name;
    }
    return std::string();
  };
  // Compares against refs; returns "" when correct.
  auto compare = [&](const std::vector<std::string>& got, const HostRound& h, bool record) {
    for (size_t j = 0; j < outs.size(); ++j) {
      const Tolerance tol = ToleranceFor(w, outs[j].dtype);
      if (record) {
        wr->atol = tol.atol;
        wr->rtol = tol.rtol;
      }
      const CompareResult c = CompareOutputs(got[j].data(), outs[j].dtype, h.refs[j].data(),
                                             outs[j].dtype, NumElements(outs[j].shape),
                                             outs[j].shape, tol);
      if (record) {
        wr->matched_fraction = std::min(wr->matched_fraction, c.matched_fraction);
        wr->max_abs_error = std::max(wr->max_abs_error, c.max_abs_error);
      }
      if (!c.ok) return absl::StrCat("output '", outs[j].name, "': ", c.message);
    }
    return std::string();
  };
  // One guarded call on `set` with round `h`; "" when it passed. Sets
  // `fatal` when the run must end at once.
  std::vector<std::string> got;
  auto one_call = [&](const HostRound& h, std::vector<std::unique_ptr<DeviceBuffer>>& set,
                      const std::string& ctx, bool record, bool* fatal) -> std::string {
    absl::Status u = upload(h, set);
    if (!u.ok()) {
      FailCuda(u, ctx);
      *fatal = true;
      return "fatal";
    }
    if (auto f = Call(ins, ptrs(set), outs, out_bufs, checks(set), ctx)) {
      FailCall(*f);
      *fatal = true;
      return "fatal";
    }
    auto mod = modified_input(h, set);
    absl::Status d = mod.ok() ? download(&got) : mod.status();
    if (!d.ok()) {
      FailCuda(d, ctx);
      *fatal = true;
      return "fatal";
    }
    if (!mod->empty()) {
      return absl::StrCat(ctx, ": the candidate modified its inputs (input '", *mod, "')");
    }
    const std::string why = compare(got, h, record);
    return why.empty() ? "" : absl::StrCat(ctx, ", ", why);
  };

  std::vector<HostRound> rounds;
  for (int r = 0; r < num_rounds; ++r) {
    auto h = load_round(r);
    if (!h.ok()) {
      Fail("harness_error", std::string(h.status().message()));
      return false;
    }
    rounds.push_back(std::move(*h));
  }
  bool fatal = false;
  const std::string wctx = absl::StrCat(label, "workload ", w.index, " (", w.axes_label, ")");
  // Every round at the same addresses: a cache keyed on pointers returns
  // round 0's answer for round 1.
  for (int r = 0; r < num_rounds && wr->correct; ++r) {
    const std::string ctx = absl::StrCat(wctx, " round ", r);
    std::string why = one_call(rounds[static_cast<size_t>(r)], set_x, ctx, true, &fatal);
    if (fatal) return false;
    if (!why.empty()) {
      wr->correct = false;
      if (first_failure->empty()) *first_failure = why;
      break;
    }
    if (r == 0) {
      // Determinism: the same inputs again give the same bits.
      const std::vector<std::string> first = got;
      why = one_call(rounds[0], set_x, absl::StrCat(wctx, " round 0 (again)"), false, &fatal);
      if (fatal) return false;
      if (!why.empty()) {
        wr->correct = false;
        if (first_failure->empty()) *first_failure = absl::StrCat(why, " (on the second call with the same inputs)");
        break;
      }
      if (got != first) {
        AddFlag(&wr->flags, "nondeterministic");
        AddFlag(&result_.flags, "nondeterministic");
      }
    }
  }
  // A/B/A': A' is A with one element changed, at A's addresses, after B at
  // other addresses. A cache keyed on pointers or on sampled contents
  // answers A' with A's output.
  if (wr->correct && abba) {
    if (manifest_rounds > num_rounds) {
      auto a_prime = load_round(num_rounds);
      if (!a_prime.ok()) {
        Fail("harness_error", std::string(a_prime.status().message()));
        return false;
      }
      const HostRound& b = rounds[rounds.size() > 1 ? 1 : 0];
      std::string why = one_call(rounds[0], set_x, absl::StrCat(wctx, " A/B/A' step A"), false, &fatal);
      if (!fatal && why.empty()) {
        why = one_call(b, set_y, absl::StrCat(wctx, " A/B/A' step B"), false, &fatal);
      }
      if (!fatal && why.empty()) {
        why = one_call(*a_prime, set_x, absl::StrCat(wctx, " A/B/A' step A'"), false, &fatal);
        // The few elements where A' and A differ decide: answering them
        // with A's values is caching, however small the fraction.
        for (size_t j = 0; !fatal && why.empty() && j < outs.size(); ++j) {
          const Tolerance tol = ToleranceFor(w, outs[j].dtype);
          const AbbaVerdict v = CheckAbba(got[j].data(), rounds[0].refs[j].data(), a_prime->refs[j].data(),
                                          outs[j].dtype, NumElements(outs[j].shape), tol.atol, tol.rtol);
          if (v.cached) {
            why = absl::StrCat(wctx, " A/B/A' step A', output '", outs[j].name, "': ", v.message,
                               " (all ", v.differing, " element(s) where A' differs from A)");
          }
        }
        if (!why.empty()) {
          why = absl::StrCat(why, " -- A' differs from A in one input element and sits at A's "
                                  "addresses: the candidate may be caching outputs");
        }
      }
      if (fatal) return false;
      if (!why.empty()) {
        wr->correct = false;
        if (first_failure->empty()) *first_failure = why;
      }
    } else {
      AddFlag(&wr->flags, "abba-unchecked");
      AddFlag(&result_.flags, "abba-unchecked");
    }
  }
  return true;
}

bool Harness::CheckCorrectness() {
  Stage("correctness");
  const Definition& def = problem_.definition;
  bool all_ok = true;
  std::string first_failure;
  for (const Workload& w : problem_.workloads) {
    const Json& mw = manifest_["workloads"][static_cast<size_t>(w.index)];
    WorkloadResult wr;
    if (!CheckWorkload(w, mw, o_.rounds, /*abba=*/true, "", &wr, &first_failure)) return false;
    // Baseline times and the speed of light.
    wr.t_b_eager = mw.value("t_b_eager_ns", 0.0);
    wr.t_b_compile = mw.value("t_b_compile_ns", 0.0);
    wr.t_ref_kernel = mw.value("t_ref_kernel_ns", 0.0);
    if (mw.contains("notes") && mw["notes"].is_array()) {
      for (const auto& n : mw["notes"]) {
        if (n.is_string()) wr.baseline_notes.push_back(n.get<std::string>());
      }
    }
    if (wr.t_b_eager > 0 && wr.t_b_compile > 0) {
      wr.t_b = std::min(wr.t_b_eager, wr.t_b_compile);
    } else if (wr.t_b_eager > 0 || wr.t_b_compile > 0) {
      wr.t_b = std::max(wr.t_b_eager, wr.t_b_compile);
    } else {
      wr.t_b = mw.value("t_b_ns", 0.0);
    }
    auto flops = WorkloadFlops(def, w);
    auto bytes = WorkloadBytes(def, w);
    if (!flops.ok() || !bytes.ok()) {
      Fail("harness_error", std::string((!flops.ok() ? flops.status() : bytes.status()).message()));
      return false;
    }
    wr.flops = *flops;
    if (def.flops_expr.empty()) wr.flops = mw.value("flops", 0.0);
    wr.bytes = *bytes;
    wr.t_sol = result_.gbps > 0 ? SolTimeNs(wr.flops, wr.bytes, result_.tflops * 1e3, result_.gbps) : 0;
    all_ok = all_ok && wr.correct;
    result_.workloads.push_back(wr);
  }
  if (!all_ok) {
    Fail("wrong_answer", first_failure);
    return false;
  }
  return true;
}

bool Harness::Time() {
  const Definition& def = problem_.definition;
  const size_t n = problem_.workloads.size();
  const size_t flush_bytes = 2 * static_cast<size_t>(std::max(prop_.l2CacheSize, 1 << 20));
  void* flush = nullptr;
  if (auto st = CudaStatus(cudaMalloc(&flush, flush_bytes), "cudaMalloc(L2 flush buffer)"); !st.ok()) {
    FailCuda(st, "timing");
    return false;
  }
  std::unique_ptr<void, void (*)(void*)> flush_guard(flush, [](void* p) { (void)cudaFree(p); });
  cudaEvent_t ev_start = nullptr, ev_stop = nullptr;
  absl::Status est = CudaStatus(cudaEventCreate(&ev_start), "cudaEventCreate");
  if (est.ok()) est = CudaStatus(cudaEventCreate(&ev_stop), "cudaEventCreate");
  if (!est.ok()) {
    FailCuda(est, "timing");
    return false;
  }
  for (const Workload& w : problem_.workloads) {
    Stage(absl::StrCat("timing workload ", w.index + 1, "/", n));
    WorkloadResult& wr = result_.workloads[static_cast<size_t>(w.index)];
    const std::string wctx = absl::StrCat("workload ", w.index, " (", w.axes_label, ") timing");
    const std::vector<Tensor> ins = MakeTensors(def.inputs, w);
    const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
    std::vector<std::string> host_in, refs;
    for (size_t i = 0; i < ins.size(); ++i) {
      host_in.emplace_back(ins[i].bytes, '\0');
      auto st = LoadInto(InputPath(w.index, 0, i), host_in.back().data(), ins[i].bytes);
      if (!st.ok()) {
        Fail("harness_error", std::string(st.message()));
        return false;
      }
    }
    for (size_t j = 0; j < outs.size(); ++j) {
      refs.emplace_back(outs[j].bytes, '\0');
      auto st = LoadInto(RefPath(w.index, 0, j), refs.back().data(), outs[j].bytes);
      if (!st.ok()) {
        Fail("harness_error", std::string(st.message()));
        return false;
      }
    }
    // A pool of input copies, each at its own shifted offset, used in turn:
    // no two consecutive repetitions see the same input addresses.
    size_t in_bytes = 0;
    for (const Tensor& t : ins) in_bytes += t.bytes + DeviceBuffer::kFrontCanary + DeviceBuffer::kBackCanary;
    size_t free_b = 0, total_b = 0;
    (void)cudaMemGetInfo(&free_b, &total_b);
    size_t pool = 8;
    while (pool > 2 && pool * in_bytes > free_b / 4) --pool;
    std::vector<std::vector<std::unique_ptr<DeviceBuffer>>> sets(pool);
    std::vector<std::unique_ptr<DeviceBuffer>> out_bufs;
    absl::Status st;
    for (size_t k = 0; k < pool && st.ok(); ++k) {
      for (size_t i = 0; i < ins.size() && st.ok(); ++i) {
        auto b = DeviceBuffer::Create(ins[i].bytes, 256 * k);
        if (!b.ok()) {
          st = b.status();
          break;
        }
        st = (*b)->Upload(host_in[i].data());
        sets[k].push_back(std::move(*b));
      }
    }
    for (size_t j = 0; j < outs.size() && st.ok(); ++j) {
      auto b = DeviceBuffer::Create(outs[j].bytes);
      if (!b.ok()) {
        st = b.status();
        break;
      }
      out_bufs.push_back(std::move(*b));
    }
    if (!st.ok()) {
      FailCuda(st, absl::StrCat(wctx, ": allocating the input pool"));
      return false;
    }
    std::vector<void*> out_ptrs;
    for (const auto& b : out_bufs) out_ptrs.push_back(b->data());
    std::vector<ratchet_tensor> ao = AbiTensors(outs, out_ptrs);
    std::vector<double> event_ns;
    std::vector<TimeWindow> windows;
    double measured = 0;
    if (auto c = CuptiTracer::Collect(); !c.ok()) {  // Drop what came before.
      FailCuda(c.status(), wctx);
      return false;
    }
    for (size_t rep = 0;; ++rep) {
      const bool warm = rep < static_cast<size_t>(o_.warmups);
      if (!warm && !NeedMoreRepetitions(event_ns.size(), static_cast<size_t>(o_.repetitions),
                                        measured, o_.min_time_ms, kMaxRepetitions)) {
        break;
      }
      const std::string ctx = absl::StrCat(wctx, " rep ", rep);
      const auto& set = sets[rep % pool];
      std::vector<void*> in_ptrs;
      for (const auto& b : set) in_ptrs.push_back(b->data());
      std::vector<ratchet_tensor> ai = AbiTensors(ins, in_ptrs);
      absl::Status s;
      for (const auto& b : out_bufs) {
        if (s.ok()) s = CudaStatus(cudaMemsetAsync(b->data(), 0xff, b->size(), stream_), "cudaMemsetAsync(poison)");
      }
      if (s.ok()) s = CudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
      if (!s.ok()) {
        FailCuda(s, ctx);
        return false;
      }
      SetContext(ctx);
      const auto before = Threads();
      TimeWindow win;
      win.begin = CuptiTracer::Now();
      // The L2 flush goes right before the start event, without a sync: the
      // GPU is busy with it while the host launches the candidate's work, so
      // the events see GPU time rather than launch latency. Its CUPTI record
      // is dropped by size below.
      s = CudaStatus(cudaMemsetAsync(flush, static_cast<int>(rep & 0xff), flush_bytes, stream_),
                     "cudaMemsetAsync(L2 flush)");
      if (s.ok()) s = CudaStatus(cudaEventRecord(ev_start, stream_), "cudaEventRecord");
      if (!s.ok()) {
        FailCuda(s, ctx);
        return false;
      }
      g_in_candidate = 1;
      const int rc = run_(ai.data(), static_cast<int32_t>(ai.size()), ao.data(),
                          static_cast<int32_t>(ao.size()), stream_);
      g_in_candidate = 0;
      const cudaError_t launch = cudaGetLastError();
      const cudaError_t rec = cudaEventRecord(ev_stop, stream_);
      // Device-wide: work the candidate left on other streams finishes here.
      const cudaError_t sync = cudaDeviceSynchronize();
      win.end = CuptiTracer::Now();
      for (cudaError_t e : {launch, rec, sync}) {
        if (e != cudaSuccess) {
          Fail("crash", absl::StrCat(ctx, ": CUDA error ", cudaGetErrorName(e), ": ", cudaGetErrorString(e)));
          return false;
        }
      }
      if (rc != 0) {
        Fail("crash", absl::StrCat(ctx, ": ratchet_run_cuda returned ", rc));
        return false;
      }
      float ms = 0;
      if (auto e = CudaStatus(cudaEventElapsedTime(&ms, ev_start, ev_stop), "cudaEventElapsedTime"); !e.ok()) {
        FailCuda(e, ctx);
        return false;
      }
      const auto after = Threads();
      for (const auto& [tid, name] : after) {
        if (before.count(tid) == 0) {
          Fail("wrong_answer", absl::StrCat(ctx, ": spawned-threads: host thread ", tid, " '", name,
                                            "' still running after ratchet_run_cuda returned"));
          return false;
        }
      }
      const double ev = 1e6 * static_cast<double>(ms);
      if (!warm) {
        windows.push_back(win);
        event_ns.push_back(ev);
        measured += ev;
      }
    }
    // One forced CUPTI flush per workload, then each record to its repetition.
    auto batch = CuptiTracer::Collect();
    if (!batch.ok()) {
      FailCuda(batch.status(), wctx);
      return false;
    }
    if (batch->dropped > 0) AddFlag(&wr.flags, "cupti-dropped-records");
    std::vector<ActivityInterval> all, kernels;
    for (const ActivityRecord& r : batch->records) {
      if (r.kind == ActivityRecord::Kind::kMemset && r.bytes == flush_bytes) continue;
      all.push_back({r.start, r.end});
      if (r.kind == ActivityRecord::Kind::kKernel) kernels.push_back({r.start, r.end});
    }
    const auto per_rep = SplitByWindow(all, windows);
    const auto kernels_per_rep = SplitByWindow(kernels, windows);
    std::vector<double> cupti_ns;
    int kernels_per_call = 0;
    bool no_activity = false;
    for (size_t i = 0; i < windows.size(); ++i) {
      const std::optional<double> span = SpanNs(per_rep[i]);
      if (!span.has_value()) no_activity = true;
      cupti_ns.push_back(span.value_or(event_ns[i]));
      kernels_per_call = std::max(kernels_per_call, static_cast<int>(kernels_per_rep[i].size()));
    }
    // The last repetition's outputs must still be right: a candidate that
    // stops working once it is being timed is caught here.
    absl::Status s;
    std::vector<std::string> got;
    for (size_t j = 0; j < outs.size() && s.ok(); ++j) {
      got.emplace_back(outs[j].bytes, '\0');
      s = out_bufs[j]->Download(got.back().data());
    }
    for (const auto& set : sets) {
      for (size_t i = 0; i < set.size() && s.ok(); ++i) {
        s = set[i]->CheckCanaries();
        if (absl::IsFailedPrecondition(s)) {
          Fail("out_of_bounds", absl::StrCat(wctx, ": input '", ins[i].name, "': ", s.message()));
          return false;
        }
        std::string now(ins[i].bytes, '\0');
        if (s.ok()) s = set[i]->Download(now.data());
        if (s.ok() && now != host_in[i]) {
          Fail("wrong_answer", absl::StrCat(wctx, ": the candidate modified its inputs (input '",
                                            ins[i].name, "')"));
          return false;
        }
      }
    }
    for (size_t j = 0; j < out_bufs.size() && s.ok(); ++j) {
      s = out_bufs[j]->CheckCanaries();
      if (absl::IsFailedPrecondition(s)) {
        Fail("out_of_bounds", absl::StrCat(wctx, ": output '", outs[j].name, "': ", s.message()));
        return false;
      }
    }
    if (!s.ok()) {
      FailCuda(s, wctx);
      return false;
    }
    for (size_t j = 0; j < outs.size(); ++j) {
      const Tolerance tol = ToleranceFor(w, outs[j].dtype);
      const CompareResult c = CompareOutputs(got[j].data(), outs[j].dtype, refs[j].data(), outs[j].dtype,
                                             NumElements(outs[j].shape), outs[j].shape, tol);
      if (!c.ok) {
        Fail("wrong_answer", absl::StrCat(wctx, ", last repetition, output '", outs[j].name, "': ",
                                          c.message, " (correct in the correctness rounds, wrong while timed)"));
        return false;
      }
    }
    const SampleSummary sc = Summarize(cupti_ns);
    const SampleSummary se = Summarize(event_ns);
    wr.t_k = sc.median;
    wr.t_k_spread = sc.spread;
    wr.t_k_min = sc.min;
    wr.t_k_events = se.median;
    wr.repetitions = static_cast<int>(sc.n);
    wr.kernels_per_call = kernels_per_call;
    if (no_activity) AddFlag(&wr.flags, "no-gpu-activity");
    if (TimingsDisagree(wr.t_k, wr.t_k_events)) AddFlag(&wr.flags, "timing-disagreement");
    // Clearly below the roofline: physically impossible, so a hack or a
    // wrong peak; the verifier rejects it.
    if (wr.t_sol > 0 && wr.t_k < 0.9 * wr.t_sol) AddFlag(&wr.flags, "below-sol");
    for (const std::string& f : wr.flags) AddFlag(&result_.flags, f);
    wr.score = SolScore(wr.t_k, wr.t_b, wr.t_sol);
  }
  (void)cudaEventDestroy(ev_start);
  (void)cudaEventDestroy(ev_stop);
  double sum = 0;
  for (const WorkloadResult& w : result_.workloads) sum += w.score;
  result_.score = result_.workloads.empty() ? 0 : sum / static_cast<double>(result_.workloads.size());
  result_.outcome = "ok";
  result_.message = "";
  return true;
}

// The second timing method of verification (back_to_back.h): round 0's
// inputs, calls back to back on the harness's stream.
void Harness::BackToBack() {
  const Definition& def = problem_.definition;
  for (const Workload& w : problem_.workloads) {
    const std::string ctx = absl::StrCat("workload ", w.index, " (", w.axes_label, ") back-to-back");
    const std::vector<Tensor> ins = MakeTensors(def.inputs, w);
    const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
    std::vector<std::unique_ptr<DeviceBuffer>> bufs;
    std::vector<void*> in_ptrs, out_ptrs;
    absl::Status st;
    for (size_t i = 0; i < ins.size() && st.ok(); ++i) {
      std::string host(ins[i].bytes, '\0');
      st = LoadInto(InputPath(w.index, 0, i), host.data(), ins[i].bytes);
      auto b = st.ok() ? DeviceBuffer::Create(ins[i].bytes) : absl::StatusOr<std::unique_ptr<DeviceBuffer>>(st);
      if (!b.ok()) {
        st = b.status();
        break;
      }
      st = (*b)->Upload(host.data());
      in_ptrs.push_back((*b)->data());
      bufs.push_back(std::move(*b));
    }
    for (size_t j = 0; j < outs.size() && st.ok(); ++j) {
      auto b = DeviceBuffer::Create(outs[j].bytes);
      if (!b.ok()) {
        st = b.status();
        break;
      }
      out_ptrs.push_back((*b)->data());
      bufs.push_back(std::move(*b));
    }
    if (!st.ok()) {
      FailCuda(st, ctx);
      return;
    }
    std::vector<ratchet_tensor> ai = AbiTensors(ins, in_ptrs);
    std::vector<ratchet_tensor> ao = AbiTensors(outs, out_ptrs);
    SetContext(ctx);
    // Batches keep doubling: each ends with a device-wide synchronisation.
    auto calls = RunMarkedBatches(
        w.index, o_.back_to_back, std::numeric_limits<double>::infinity(),
        [&](int64_t first, int64_t n) {
          called_candidate_ = true;
          g_in_candidate = 1;
          for (int64_t i = 0; i < n; ++i) {
            const int rc = run_(ai.data(), static_cast<int32_t>(ai.size()), ao.data(),
                                static_cast<int32_t>(ao.size()), stream_);
            if (rc != 0) {
              g_in_candidate = 0;
              return absl::InternalError(
                  absl::StrCat(ctx, " call ", first + i, ": ratchet_run_cuda returned ", rc));
            }
          }
          g_in_candidate = 0;
          const cudaError_t sync = cudaDeviceSynchronize();
          if (sync != cudaSuccess)
            return absl::InternalError(absl::StrCat(ctx, ": CUDA error ", cudaGetErrorName(sync),
                                                    ": ", cudaGetErrorString(sync)));
          return absl::OkStatus();
        });
    if (!calls.ok()) {
      Fail("crash", std::string(calls.status().message()));
      return;
    }
    WorkloadResult wr;
    wr.index = w.index;
    wr.axes = w.axes_label;
    wr.correct = true;  // not checked here: the first harness run did
    wr.repetitions = static_cast<int>(std::min<int64_t>(*calls, INT32_MAX));
    result_.workloads.push_back(wr);
  }
  result_.outcome = "ok";
  result_.message = "";
}

int Harness::Run() {
  std::snprintf(g_out_path, sizeof(g_out_path), "%s", o_.out.c_str());
  auto finish = [&]() {
    result_.wall_seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    if (result_.outcome != "ok") result_.score = 0;
    const std::string text = ToJson(result_).dump(2) + "\n";
    g_done = 1;
    const std::string tmp = o_.out + ".tmp";
    bool ok = false;
    {
      std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
      f << text;
      ok = static_cast<bool>(f);
    }
    if (!ok || std::rename(tmp.c_str(), o_.out.c_str()) != 0) {
      std::fprintf(stderr, "ratchet-harness-cuda: cannot write %s\n", o_.out.c_str());
      return 2;
    }
    if (o_.print) std::fputs(FormatResultTable(text).c_str(), stdout);
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
  try {
    definition_json_ = Json::parse(ReadFileOrEmpty(o_.problem + "/definition.json"));
    std::istringstream lines(ReadFileOrEmpty(o_.problem + "/workload.jsonl"));
    std::string line;
    std::map<int, Json> by_line;
    for (int n = 1; std::getline(lines, line); ++n) {
      if (line.find_first_not_of(" \t\r") != std::string::npos) by_line[n] = Json::parse(line);
    }
    for (const Workload& w : problem_.workloads) workload_lines_.push_back(by_line[w.line]);
  } catch (const std::exception& e) {
    Fail("harness_error", absl::StrCat("re-reading the problem: ", e.what()));
    return finish();
  }
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
  if (!Compile(*solution)) return finish();
  if (o_.compile_only) {
    result_.outcome = "ok";
    result_.message = "compiled (--compile-only)";
    return finish();
  }
  if (!InitDevice()) return finish();
  // The screen calls the candidate before the full oracle, so it waits for
  // the device set-up below; without it the oracle runs first, as it always has.
  const std::optional<Workload> screened =
      o_.reuse_oracle || o_.back_to_back > 0 ? std::nullopt : ScreenWorkload(problem_, o_.screen);
  if (o_.reuse_oracle) {
    manifest_ = Json::parse(ReadFileOrEmpty(scratch_ + "/oracle_manifest.json"), nullptr,
                            /*allow_exceptions=*/false);
    if (manifest_.is_discarded() || !manifest_.contains("workloads")) {
      Fail("harness_error", "--reuse-oracle: no readable oracle_manifest.json in the scratch");
      return finish();
    }
  } else if (!screened && !RunOracle()) {
    return finish();
  }
  if (o_.back_to_back > 0) {
    InstallSignalHandlers();
    BackToBack();
    return finish();
  }
  // Peaks for T_sol: flags, else the table.
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
  } else {
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
  // Context, stream and CUPTI before the first candidate call, so that the
  // threads they start are not counted against the candidate.
  absl::Status st = CudaStatus(cudaStreamCreate(&stream_), "cudaStreamCreate");
  if (st.ok()) st = CuptiTracer::Start();
  if (st.ok()) {
    void* p = nullptr;
    st = CudaStatus(cudaMalloc(&p, 1 << 20), "cudaMalloc");
    if (st.ok()) st = CudaStatus(cudaMemsetAsync(p, 0, 1 << 20, stream_), "cudaMemsetAsync");
    if (st.ok()) st = CudaStatus(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    if (st.ok()) st = CuptiTracer::Collect().status();
    if (p != nullptr) (void)cudaFree(p);
  }
  if (!st.ok()) {
    Fail("harness_error", absl::StrCat("setting up the device: ", st.message()));
    return finish();
  }
  InstallSignalHandlers();
  if (screened && !(Screen(*screened) && RunOracle())) return finish();
  if (!CheckCorrectness()) return finish();
  Time();
  return finish();
}

}  // namespace
}  // namespace ratchet::kernels

int main(int argc, char** argv) {
  ratchet::kernels::Options o;
  if (int rc = ratchet::kernels::ParseArgs(argc, argv, &o); rc != 0) return rc;
  ratchet::kernels::Harness h(std::move(o));
  return h.Run();
}
