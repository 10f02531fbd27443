// ratchet-harness: compiles a candidate, checks it against the PyTorch
// reference and times it. Contract: docs/harness.md.
#include <dlfcn.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/correctness/compare.h"
#include "kernels/harness/back_to_back.h"
#include "kernels/harness/guarded_buffer.h"
#include "kernels/harness/oracle_client.h"
#include "kernels/harness/result_table.h"
#include "kernels/harness/solution.h"
#include "kernels/harness/subprocess.h"
#include "kernels/harness/tensors.h"
#include "kernels/include/ratchet/kernel_abi.h"
#include "kernels/problem/problem.h"
#include "kernels/sol/cpu_peaks.h"
#include "kernels/sol/sol.h"

namespace ratchet::kernels {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;
constexpr size_t kMaxMessage = 16 * 1024;

struct Options {
  std::string problem, solution, out, python, scratch;
  std::vector<std::pair<std::string, std::string>> knobs;
  uint64_t seed = 1;
  int warmups = 3, repetitions = 20, rounds = 3;
  double peak_gbps = 0, peak_gflops = 0;
  bool print = false;
  // Verification (docs/verifier.md): adversarial checks in the timed loop.
  bool verify = false;
  // Independent timing: only back-to-back calls, with marks on stdout that
  // the parent timestamps; > 0 is the budget per workload in seconds.
  double back_to_back = 0;
  bool reuse_oracle = false;  // read SCRATCH/oracle_manifest.json instead
  ScreenMode screen = ScreenMode::kAuto;  // the cascade's screen stage
};

int Usage(const std::string& why) {
  std::fprintf(stderr,
               "ratchet-harness: %s\n"
               "usage: ratchet-harness --problem DIR --solution DIR --out FILE\n"
               "         [--knob NAME=VALUE]... [--seed N] [--warmups N] [--repetitions N]\n"
               "         [--rounds N] [--peak-gbps X --peak-gflops Y] [--python PATH]\n"
               "         [--scratch DIR] [--screen auto|on|off] [--print]\n"
               "         [--verify] [--back-to-back SECONDS [--reuse-oracle]]\n",
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
    if (a == "--verify") {
      o->verify = true;
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
    auto as_int = [&](int* dst) {
      return absl::SimpleAtoi(v, dst) && *dst >= 0;
    };
    if (a == "--problem") o->problem = v;
    else if (a == "--solution") o->solution = v;
    else if (a == "--out") o->out = v;
    else if (a == "--python") o->python = v;
    else if (a == "--scratch") o->scratch = v;
    else if (a == "--screen") {
      if (!ParseScreenMode(v, &o->screen)) return Usage("--screen must be auto, on or off");
    } else if (a == "--seed") {
      if (!absl::SimpleAtoi(v, &o->seed)) return Usage("--seed needs a non-negative integer");
    } else if (a == "--warmups") {
      if (!as_int(&o->warmups)) return Usage("--warmups needs a non-negative integer");
    } else if (a == "--repetitions") {
      if (!as_int(&o->repetitions) || o->repetitions < 1) return Usage("--repetitions needs an integer >= 1");
    } else if (a == "--rounds") {
      if (!as_int(&o->rounds) || o->rounds < 1) return Usage("--rounds needs an integer >= 1");
    } else if (a == "--peak-gbps") {
      if (!absl::SimpleAtod(v, &o->peak_gbps) || o->peak_gbps <= 0) return Usage("--peak-gbps needs a positive number");
    } else if (a == "--peak-gflops") {
      if (!absl::SimpleAtod(v, &o->peak_gflops) || o->peak_gflops <= 0) return Usage("--peak-gflops needs a positive number");
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
  if ((o->peak_gbps > 0) != (o->peak_gflops > 0)) {
    return Usage("--peak-gbps and --peak-gflops go together");
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Result written from a signal handler: everything is prepared beforehand and
// the handler only concatenates fixed strings and calls write(2).

char g_out_path[4096];
char g_context[512];      // JSON-escaped "workload 1 (M=4) round 2".
char g_tail[1024];        // ,"score":0,...} after the message.
volatile sig_atomic_t g_in_candidate = 0;
volatile sig_atomic_t g_done = 0;

struct GuardRange {
  uintptr_t lo, hi;
  char name[96];
};
GuardRange g_guards[512];
volatile int g_num_guards = 0;

size_t SafeLen(const char* s) {
  size_t n = 0;
  while (s[n] != '\0') ++n;
  return n;
}
void SafeAppend(char* buf, size_t cap, size_t* len, const char* s) {
  for (size_t i = 0; s[i] != '\0' && *len + 1 < cap; ++i) buf[(*len)++] = s[i];
  buf[*len] = '\0';
}
void SafeAppendHex(char* buf, size_t cap, size_t* len, uintptr_t v) {
  char tmp[2 + 16 + 1] = "0x";
  const char* digits = "0123456789abcdef";
  int n = 0;
  char rev[16];
  do {
    rev[n++] = digits[v & 15];
    v >>= 4;
  } while (v != 0 && n < 16);
  for (int i = 0; i < n; ++i) tmp[2 + i] = rev[n - 1 - i];
  tmp[2 + n] = '\0';
  SafeAppend(buf, cap, len, tmp);
}

void WriteEmergencyResult(const char* outcome, const char* detail) {
  static char buf[8192];
  size_t len = 0;
  buf[0] = '\0';
  SafeAppend(buf, sizeof(buf), &len, "{\"outcome\":\"");
  SafeAppend(buf, sizeof(buf), &len, outcome);
  SafeAppend(buf, sizeof(buf), &len, "\",\"message\":\"");
  SafeAppend(buf, sizeof(buf), &len, g_context);
  SafeAppend(buf, sizeof(buf), &len, ": ");
  SafeAppend(buf, sizeof(buf), &len, detail);
  SafeAppend(buf, sizeof(buf), &len, "\"");
  SafeAppend(buf, sizeof(buf), &len, g_tail);
  SafeAppend(buf, sizeof(buf), &len, "\n");
  const int fd = open(g_out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    size_t off = 0;
    while (off < len) {
      const ssize_t n = write(fd, buf + off, len - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(fd);
  }
  const char* pre = "ratchet-harness: candidate ";
  (void)!write(2, pre, SafeLen(pre));
  (void)!write(2, outcome, SafeLen(outcome));
  (void)!write(2, ": ", 2);
  (void)!write(2, detail, SafeLen(detail));
  (void)!write(2, "\n", 1);
}

const char* SignalName(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGABRT: return "SIGABRT";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
  }
  return "signal";
}

void OnFatalSignal(int sig, siginfo_t* info, void*) {
  static char detail[1024];
  size_t len = 0;
  detail[0] = '\0';
  const uintptr_t addr = reinterpret_cast<uintptr_t>(info->si_addr);
  const char* outcome = "crash";
  if (sig == SIGSEGV || sig == SIGBUS) {
    for (int i = 0; i < g_num_guards; ++i) {
      if (addr >= g_guards[i].lo && addr < g_guards[i].hi) {
        outcome = "out_of_bounds";
        SafeAppend(detail, sizeof(detail), &len, "access outside the bounds of ");
        SafeAppend(detail, sizeof(detail), &len, g_guards[i].name);
        SafeAppend(detail, sizeof(detail), &len, " (fault at ");
        SafeAppendHex(detail, sizeof(detail), &len, addr);
        SafeAppend(detail, sizeof(detail), &len, ", in a guard page)");
        break;
      }
    }
  }
  if (len == 0) {
    SafeAppend(detail, sizeof(detail), &len, "killed by ");
    SafeAppend(detail, sizeof(detail), &len, SignalName(sig));
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL) {
      SafeAppend(detail, sizeof(detail), &len, " (fault address ");
      SafeAppendHex(detail, sizeof(detail), &len, addr);
      SafeAppend(detail, sizeof(detail), &len, ")");
    }
    if (!g_in_candidate) {
      SafeAppend(detail, sizeof(detail), &len, " outside a ratchet_run call");
    }
  }
  WriteEmergencyResult(outcome, detail);
  _exit(0);
}

void OnExit() {
  // A candidate that calls exit() must not leave the job without a result.
  if (g_in_candidate && !g_done) {
    WriteEmergencyResult("crash", "called exit() inside ratchet_run");
  }
}

void InstallSignalHandlers() {
  static std::vector<char> alt(1 << 16);
  stack_t ss{};
  ss.ss_sp = alt.data();
  ss.ss_size = alt.size();
  sigaltstack(&ss, nullptr);  // Stack overflows still reach the handler.
  struct sigaction sa {};
  sa.sa_sigaction = OnFatalSignal;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS}) {
    sigaction(sig, &sa, nullptr);
  }
  std::atexit(OnExit);
}

std::string JsonEscapeForMessage(const std::string& s) {
  std::string d = Json(s).dump();
  return d.substr(1, d.size() - 2);
}

void SetContext(const std::string& ctx) {
  const std::string e = JsonEscapeForMessage(ctx);
  std::snprintf(g_context, sizeof(g_context), "%s", e.c_str());
}

void RegisterGuards(const std::vector<std::unique_ptr<GuardedBuffer>>& bufs,
                    const std::vector<std::string>& names) {
  int n = 0;
  g_num_guards = 0;
  for (size_t i = 0; i < bufs.size() && n + 2 <= 512; ++i) {
    const GuardedBuffer& b = *bufs[i];
    for (uintptr_t lo : {b.front_guard(), b.back_guard()}) {
      g_guards[n].lo = lo;
      g_guards[n].hi = lo + b.page();
      std::snprintf(g_guards[n].name, sizeof(g_guards[n].name), "%s", names[i].c_str());
      ++n;
    }
  }
  g_num_guards = n;
}

// ---------------------------------------------------------------------------

struct WorkloadResult {
  int index = 0;
  std::string axes;
  bool correct = false;
  double matched_fraction = 0, max_abs_error = 0;
  double t_k = 0, t_k_spread = 0, t_b = 0, t_sol = 0, score = 0;
  std::vector<std::string> flags;  // --verify: the check that caught it
  int64_t calls = 0;               // --back-to-back: calls made
};

struct Result {
  std::string outcome = "harness_error";
  std::string message;
  double score = 0;
  std::vector<WorkloadResult> workloads;
  CpuPeaks peaks{0, 0};
  double compile_seconds = 0;
  double screen_seconds = 0;  // 0 when the screen did not run
  double wall_seconds = 0;
};

Json ToJson(const Result& r) {
  Json j;
  j["outcome"] = r.outcome;
  std::string msg = r.message;
  if (msg.size() > kMaxMessage) msg = Tail(msg, kMaxMessage);
  j["message"] = msg;
  j["score"] = r.score;
  Json ws = Json::array();
  for (const WorkloadResult& w : r.workloads) {
    Json x;
    x["index"] = w.index;
    x["axes"] = w.axes;
    x["correct"] = w.correct;
    x["matched_fraction"] = w.matched_fraction;
    x["max_abs_error"] = w.max_abs_error;
    x["t_k_ns"] = w.t_k;
    x["t_k_spread"] = w.t_k_spread;
    x["t_b_ns"] = w.t_b;
    x["t_sol_ns"] = w.t_sol;
    x["score"] = w.score;
    if (!w.flags.empty()) x["flags"] = w.flags;
    if (w.calls > 0) x["calls"] = w.calls;
    ws.push_back(x);
  }
  j["workloads"] = ws;
  j["peaks"] = {{"gbps", r.peaks.gbps}, {"gflops", r.peaks.gflops}};
  j["compile_seconds"] = r.compile_seconds;
  j["screen_seconds"] = r.screen_seconds;
  j["wall_seconds"] = r.wall_seconds;
  return j;
}

// Prepares the tail of an emergency result (after the message).
void PrepareEmergencyTail(const Result& r, Clock::time_point start) {
  Result copy = r;
  copy.workloads.clear();
  copy.score = 0;
  copy.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::string full = ToJson(copy).dump();
  // Everything after "message":"" is the tail.
  const std::string marker = "\"message\":\"\"";
  const size_t at = full.find(marker);
  std::string tail = full.substr(at + marker.size());
  std::snprintf(g_tail, sizeof(g_tail), "%s", tail.c_str());
}

bool WriteResult(const std::string& path, const Result& r, bool print) {
  const std::string text = ToJson(r).dump(2) + "\n";
  g_done = 1;
  const std::string tmp = path + ".tmp";
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

// ---------------------------------------------------------------------------
// Compilation.

size_t FlushBytes() {
  if (const char* env = std::getenv("RATCHET_FLUSH_MIB")) {
    size_t mib = 0;
    if (absl::SimpleAtoi(env, &mib)) return mib << 20;
  }
  // 2x the LLC, capped at 64 MiB: VMs and multi-die parts report the whole
  // package's L3 (300 MiB on the build machines), but one core only ever
  // sees its own slice (measured under 64 MiB here), and every extra byte
  // costs time on each repetition.
  return std::min<size_t>(2 * static_cast<size_t>(LastLevelCacheBytes()), size_t{64} << 20);
}

class Harness {
 public:
  explicit Harness(Options o) : o_(std::move(o)), start_(Clock::now()) {}
  int Run();

 private:
  // Each returns false when the run ended (result_ already filled).
  bool Compile(const Solution& s);
  // The full oracle request's settings; the screen's derive from them.
  OracleOptions FullOracleOptions() const;
  // The cascade's screen: one round of workload `w` from its own oracle run.
  bool Screen(const Workload& w);
  bool RunOracle();
  bool CheckCorrectness();
  // Checks `num_rounds` of the manifest's `rounds` for workload `w`, each
  // message starting with `label`. A wrong answer leaves wr->correct false
  // and, if it is the run's first, its text in *first_failure; false when
  // the run ended (crash, out of bounds, harness error).
  bool CheckWorkload(const Workload& w, const Json& rounds, int num_rounds,
                     const std::string& label, WorkloadResult* wr, std::string* first_failure);
  void Time();
  // --verify: the timed loop with A/B/A' inputs, poisoned outputs and every
  // call checked (docs/verifier.md, "Adversarial checks").
  void VerifyTime();
  // --back-to-back: calls only, marks on stdout for the parent's clock.
  void BackToBack();
  // --verify: keeps every reference output in memory and leaves a decoy (the
  // reference with its low bits changed) in its file, so that a candidate
  // that reads the oracle's files gives itself away.
  absl::Status PreloadAndPlantDecoys();
  // A scratch file's bytes: from memory when preloaded, else from disk.
  absl::Status Load(const std::string& relative, void* dst, size_t bytes);
  // --verify: names the hack behind an output that failed its check
  // (a workload flag), with the evidence in `why`.
  std::string ClassifyMismatch(const Workload& w, size_t out_index, void* out,
                               const std::string& expected_file,
                               const std::vector<std::string>& other_files,
                               const std::string& when, std::string* why);
  // --verify: true when `out` equals, bit for bit, the decoy planted in place
  // of `expected_file` (a copy of the reference's leftovers).
  bool CopiedDecoy(const std::string& expected_file, const void* out, size_t bytes, DType dtype);
  bool Finish();
  void Fail(const std::string& outcome, const std::string& message) {
    result_.outcome = outcome;
    result_.message = message;
  }

  Options o_;
  Clock::time_point start_;
  Problem problem_;
  Result result_;
  std::string scratch_;
  bool own_scratch_ = false;
  ratchet_run_fn run_ = nullptr;
  Json manifest_;
  std::map<std::string, std::string> preloaded_;  // relative path -> true bytes
  std::map<std::string, std::string> decoys_;     // relative path -> decoy bytes
};

int CountThreads() {
  int n = 0;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

absl::Status Harness::Load(const std::string& relative, void* dst, size_t bytes) {
  auto it = preloaded_.find(relative);
  if (it == preloaded_.end()) return LoadInto(scratch_ + "/" + relative, dst, bytes);
  if (it->second.size() != bytes)
    return absl::InternalError(absl::StrCat(relative, ": ", it->second.size(),
                                            " bytes, expected ", bytes));
  std::memcpy(dst, it->second.data(), bytes);
  return absl::OkStatus();
}

absl::Status Harness::PreloadAndPlantDecoys() {
  for (const Json& w : manifest_["workloads"]) {
    for (const Json& round : w["rounds"]) {
      for (const Json& f : round["outputs"]) {
        const std::string rel = f.get<std::string>();
        std::string bytes = ReadFileOrEmpty(scratch_ + "/" + rel);
        if (bytes.empty()) return absl::InternalError(absl::StrCat("cannot read ", rel));
        // The lowest byte of every element changes: within any tolerance, so
        // that a copy of it passes correctness, and recognisable bit for bit.
        std::string decoy = bytes;
        const size_t elem = bytes.size() % 4 == 0 ? 4 : 1;
        for (size_t i = 0; i < decoy.size(); i += elem) decoy[i] ^= 0x05;
        std::ofstream(scratch_ + "/" + rel, std::ios::binary | std::ios::trunc) << decoy;
        preloaded_[rel] = std::move(bytes);
        decoys_[rel] = std::move(decoy);
      }
    }
  }
  return absl::OkStatus();
}

bool Harness::CopiedDecoy(const std::string& expected_file, const void* out, size_t bytes,
                          DType dtype) {
  auto d = decoys_.find(expected_file);
  if (d == decoys_.end() || d->second.size() != bytes) return false;
  const size_t esize = DTypeSize(dtype), count = bytes / esize;
  size_t same = 0;
  for (size_t i = 0; i < count; ++i)
    same += std::memcmp(d->second.data() + i * esize, static_cast<const char*>(out) + i * esize,
                        esize) == 0;
  return count > 0 && same * 10 >= count * 9;
}

std::string Harness::ClassifyMismatch(const Workload& w, size_t out_index, void* out,
                                      const std::string& expected_file,
                                      const std::vector<std::string>& other_files,
                                      const std::string& when, std::string* why) {
  const Definition& def = problem_.definition;
  const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
  const Tensor& t = outs[out_index];
  const int64_t count = NumElements(t.shape);
  const size_t esize = DTypeSize(t.dtype);
  Tolerance tol;
  tol.atol = w.atol;
  tol.rtol = w.rtol;
  const std::string at_return(static_cast<const char*>(out), t.bytes);
  // Work still going on after the call returned shows as a later change.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  if (std::memcmp(at_return.data(), out, t.bytes) != 0) {
    *why = absl::StrCat(when, ": the output changed after ratchet_run returned (work left "
                              "running on another thread)");
    return "work-after-return";
  }
  std::string poison(t.bytes, '\0');
  Poison(poison.data(), t.dtype, static_cast<size_t>(count));
  int64_t poisoned = 0;
  for (int64_t i = 0; i < count; ++i)
    poisoned += std::memcmp(poison.data() + i * esize, at_return.data() + i * esize, esize) == 0;
  if (poisoned == count) {
    *why = absl::StrCat(when, ": no element written; the output is still the poison the "
                              "harness put there (no work done; relies on stale output)");
    return "stale-output";
  }
  if (auto d = decoys_.find(expected_file); d != decoys_.end()) {
    int64_t same = 0;
    for (int64_t i = 0; i < count; ++i)
      same += std::memcmp(d->second.data() + i * esize, at_return.data() + i * esize, esize) == 0;
    if (same * 10 >= count * 9) {
      *why = absl::StrCat(when, ": ", same, " of ", count,
                          " elements equal, bit for bit, the decoy the harness left in the "
                          "oracle's reference file (the candidate read the reference)");
      return "read-reference";
    }
  }
  std::string expected(t.bytes, '\0');
  (void)Load(expected_file, expected.data(), t.bytes);
  for (const std::string& other_file : other_files) {
    if (other_file == expected_file) continue;
    std::string other(t.bytes, '\0');
    (void)Load(other_file, other.data(), t.bytes);
    // The decisive elements: where the two references differ. An answer that
    // holds the other inputs' values at all of them is a cached one.
    int64_t differ = 0, cached = 0;
    for (int64_t i = 0; i < count; ++i) {
      const double e = LoadAsDouble(expected.data(), t.dtype, i);
      const double o = LoadAsDouble(other.data(), t.dtype, i);
      const double got = LoadAsDouble(at_return.data(), t.dtype, i);
      if (std::fabs(e - o) <= tol.atol + tol.rtol * std::fabs(e)) continue;
      ++differ;
      cached += std::fabs(got - o) <= tol.atol + tol.rtol * std::fabs(o);
    }
    if (differ > 0 && cached == differ) {
      *why = absl::StrCat(when, ": at all ", differ, " elements where this round's reference "
                          "differs from an earlier round's, the output holds the earlier "
                          "answer (output cached across calls)");
      return "cached-answer";
    }
  }
  const CompareResult c = CompareOutputs(at_return.data(), t.dtype, expected.data(), t.dtype,
                                         count, t.shape, tol);
  double scale = 0, worst = 0;
  bool finite = true;
  for (int64_t i = 0; i < count; ++i) {
    const double e = LoadAsDouble(expected.data(), t.dtype, i);
    const double got = LoadAsDouble(at_return.data(), t.dtype, i);
    finite = finite && std::isfinite(got);
    scale = std::max(scale, std::fabs(e));
    worst = std::max(worst, std::fabs(got - e));
  }
  if (finite && scale > 0 && worst <= 0.05 * scale) {
    *why = absl::StrCat(when, ": close to the reference but beyond the tolerance (max error ",
                        worst, " of ", scale, ", ", c.num_mismatched,
                        " elements out of tolerance): a lower precision than the "
                        "correctness rounds saw; ", c.message);
    return "precision-downgrade";
  }
  *why = absl::StrCat(when, ": wrong, although the correctness rounds passed: ", c.message);
  return "wrong-while-timed";
}

bool Harness::Compile(const Solution& s) {
  Stage("compile");
  const auto t0 = Clock::now();
  const std::string exe_dir = SelfExeDir();
  // Beside the executable, not in a ratchet/ folder: bin/ratchet is the CLI.
  std::string abi = ReadFileOrEmpty(exe_dir + "/kernel_abi.h");
  if (abi.empty()) {
    Fail("harness_error", absl::StrCat("kernel_abi.h not found beside ", exe_dir));
    return false;
  }
  mkdir((scratch_ + "/include").c_str(), 0755);
  mkdir((scratch_ + "/include/ratchet").c_str(), 0755);
  std::ofstream(scratch_ + "/include/ratchet/kernel_abi.h") << abi;
  const std::string so = scratch_ + "/candidate.so";
  std::vector<std::string> cmd = {"g++", "-std=c++17", "-O3", "-march=native", "-shared",
                                  "-fPIC", "-fopenmp", "-pthread",
                                  "-I" + scratch_ + "/include",
                                  "-I" + scratch_ + "/include/ratchet", "-I" + o_.solution};
  for (const auto& [k, v] : s.knobs) cmd.push_back(absl::StrCat("-D", k, "=", v));
  for (const auto& f : s.sources) cmd.push_back(f);
  cmd.push_back("-o");
  cmd.push_back(so);
  const std::string log = scratch_ + "/compile.log";
  auto rc = RunProcess(cmd, log);
  result_.compile_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!rc.ok()) {
    Fail("harness_error", std::string(rc.status().message()));
    return false;
  }
  if (*rc != 0) {
    Fail("compile_error", Tail(absl::StrCat(absl::StrJoin(cmd, " "), "\n", ReadFileOrEmpty(log)),
                               kMaxMessage));
    return false;
  }
  void* h = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    Fail("compile_error", absl::StrCat("cannot load the compiled library: ", dlerror()));
    return false;
  }
  run_ = reinterpret_cast<ratchet_run_fn>(dlsym(h, "ratchet_run"));
  if (run_ == nullptr) {
    Fail("compile_error",
         "the library exports no ratchet_run (declare it extern \"C\"; include "
         "\"ratchet/kernel_abi.h\")");
    return false;
  }
  return true;
}

OracleOptions Harness::FullOracleOptions() const {
  OracleOptions oo;
  oo.seed = o_.seed;
  oo.rounds = o_.rounds;
  if (o_.verify) {
    // B is round 1 and A' (round 0 with one element changed) comes after.
    oo.rounds = std::max(2, o_.rounds);
    oo.perturb_of = {0};
  }
  oo.warmups = o_.warmups;
  oo.repetitions = o_.repetitions;
  oo.flush_bytes = FlushBytes();
  oo.threads = UsableCpus();
  oo.scratch = scratch_;
  oo.python = o_.python;
  return oo;
}

bool Harness::Screen(const Workload& w) {
  Stage("screen");
  const auto t0 = Clock::now();
  auto text = RunScreenOracle(problem_, w, FullOracleOptions());
  bool passed = false;
  if (!text.ok()) {
    Fail("harness_error", std::string(text.status().message()));
  } else {
    const Json manifest = Json::parse(*text);
    WorkloadResult wr;
    std::string failure;
    if (CheckWorkload(w, manifest["workloads"][0]["rounds"], 1, "screen: ", &wr, &failure)) {
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
  manifest_ = Json::parse(*text);
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
    if (!CheckWorkload(w, mw["rounds"], o_.rounds, "", &wr, &first_failure)) return false;
    wr.t_b = mw.value("t_b_ns", 0.0);
    auto flops = WorkloadFlops(def, w);
    auto bytes = WorkloadBytes(def, w);
    if (!flops.ok() || !bytes.ok()) {
      Fail("harness_error", std::string((!flops.ok() ? flops.status() : bytes.status()).message()));
      return false;
    }
    wr.t_sol = SolTimeNs(*flops, *bytes, result_.peaks.gflops, result_.peaks.gbps);
    all_ok = all_ok && wr.correct;
    result_.workloads.push_back(wr);
  }
  if (!all_ok) {
    Fail("wrong_answer", first_failure);
    return false;
  }
  return true;
}

bool Harness::CheckWorkload(const Workload& w, const Json& rounds, int num_rounds,
                            const std::string& label, WorkloadResult* wr,
                            std::string* first_failure) {
  const Definition& def = problem_.definition;
  wr->index = w.index;
  wr->axes = w.axes_label;
  wr->correct = true;
  wr->matched_fraction = 1;
  const std::vector<Tensor> ins = MakeTensors(def.inputs, w);
  const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
  for (int r = 0; r < num_rounds && wr->correct; ++r) {
    const std::string ctx =
        absl::StrCat(label, "workload ", w.index, " (", w.axes_label, ") round ", r);
    std::vector<std::unique_ptr<GuardedBuffer>> bufs;
    std::vector<std::string> names;
    std::vector<std::string> pristine;
    std::vector<void*> in_ptrs, out_ptrs;
    for (size_t i = 0; i < ins.size(); ++i) {
      bufs.push_back(std::make_unique<GuardedBuffer>(ins[i].bytes));
      names.push_back(absl::StrCat("input '", ins[i].name, "'"));
      auto st = Load(rounds[static_cast<size_t>(r)]["inputs"][i].get<std::string>(),
                     bufs.back()->data(), ins[i].bytes);
      if (!st.ok()) {
        Fail("harness_error", std::string(st.message()));
        return false;
      }
      pristine.emplace_back(static_cast<const char*>(bufs.back()->data()), ins[i].bytes);
      in_ptrs.push_back(bufs.back()->data());
    }
    std::vector<std::string> refs;
    for (size_t j = 0; j < outs.size(); ++j) {
      bufs.push_back(std::make_unique<GuardedBuffer>(outs[j].bytes));
      names.push_back(absl::StrCat("output '", outs[j].name, "'"));
      Poison(bufs.back()->data(), outs[j].dtype, outs[j].bytes / DTypeSize(outs[j].dtype));
      out_ptrs.push_back(bufs.back()->data());
      std::string ref(outs[j].bytes, '\0');
      auto st = Load(rounds[static_cast<size_t>(r)]["outputs"][j].get<std::string>(),
                     ref.data(), outs[j].bytes);
      if (!st.ok()) {
        Fail("harness_error", std::string(st.message()));
        return false;
      }
      refs.push_back(std::move(ref));
    }
    std::vector<ratchet_tensor> ai = AbiTensors(ins, in_ptrs);
    std::vector<ratchet_tensor> ao = AbiTensors(outs, out_ptrs);
    RegisterGuards(bufs, names);
    SetContext(ctx);
    PrepareEmergencyTail(result_, start_);
    g_in_candidate = 1;
    const int rc = run_(ai.data(), static_cast<int32_t>(ai.size()), ao.data(),
                        static_cast<int32_t>(ao.size()));
    g_in_candidate = 0;
    for (size_t b = 0; b < bufs.size(); ++b) {
      if (!bufs[b]->CanariesIntact()) {
        Fail("out_of_bounds", absl::StrCat(ctx, ": wrote before the start of ", names[b],
                                           " (canary bytes changed)"));
        return false;
      }
    }
    if (rc != 0) {
      Fail("crash", absl::StrCat(ctx, ": ratchet_run returned ", rc));
      return false;
    }
    for (size_t i = 0; i < ins.size(); ++i) {
      if (std::memcmp(pristine[i].data(), bufs[i]->data(), ins[i].bytes) != 0) {
        wr->correct = false;
        if (wr->flags.empty()) wr->flags.push_back("modified-inputs");
        if (first_failure->empty()) {
          *first_failure = absl::StrCat(ctx, ": the candidate modified its inputs (input '",
                                        ins[i].name, "')");
        }
      }
    }
    for (size_t j = 0; j < outs.size() && wr->correct; ++j) {
      Tolerance tol;
      tol.atol = w.atol;
      tol.rtol = w.rtol;
      const std::string& expected = rounds[static_cast<size_t>(r)]["outputs"][j].get<std::string>();
      const CompareResult c =
          CompareOutputs(bufs[ins.size() + j]->data(), outs[j].dtype, refs[j].data(),
                         outs[j].dtype, NumElements(outs[j].shape), outs[j].shape, tol);
      if (o_.verify &&
          CopiedDecoy(expected, bufs[ins.size() + j]->data(), outs[j].bytes, outs[j].dtype)) {
        wr->correct = false;
        wr->flags.push_back("read-reference");
        if (first_failure->empty())
          *first_failure = absl::StrCat("read-reference: ", ctx, ", output '", outs[j].name,
                                        "' equals, bit for bit, the decoy the harness left in "
                                        "the oracle's reference file (the candidate read the "
                                        "reference)");
        continue;
      }
      wr->matched_fraction = std::min(wr->matched_fraction, c.matched_fraction);
      wr->max_abs_error = std::max(wr->max_abs_error, c.max_abs_error);
      if (!c.ok) {
        wr->correct = false;
        std::string why;
        const std::string flag =
            o_.verify ? ClassifyMismatch(w, j, bufs[ins.size() + j]->data(), expected, {}, ctx,
                                         &why)
                      : "";
        // In the correctness rounds only a copied reference or late work
        // is a hack; anything else is an honest wrong answer.
        if (flag == "read-reference" || flag == "work-after-return") {
          wr->flags.push_back(flag);
          if (first_failure->empty()) *first_failure = absl::StrCat(flag, ": ", why);
        }
        if (first_failure->empty()) {
          *first_failure = absl::StrCat(ctx, ", output '", outs[j].name, "': ", c.message);
        }
      }
    }
  }
  return true;
}

void Harness::Time() {
  const Definition& def = problem_.definition;
  const size_t n = problem_.workloads.size();
  const size_t flush_bytes = FlushBytes();
  std::unique_ptr<char, decltype(&std::free)> flush(
      static_cast<char*>(std::aligned_alloc(size_t{2} << 20, (flush_bytes + (size_t{2} << 20) - 1) /
                                                                 (size_t{2} << 20) * (size_t{2} << 20))),
      &std::free);
  madvise(flush.get(), flush_bytes, MADV_HUGEPAGE);  // Cheaper first touch.
  for (const Workload& w : problem_.workloads) {
    Stage(absl::StrCat("timing workload ", w.index + 1, "/", n));
    WorkloadResult& wr = result_.workloads[static_cast<size_t>(w.index)];
    const std::vector<Tensor> ins = MakeTensors(def.inputs, w);
    const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
    const Json& round0 = manifest_["workloads"][static_cast<size_t>(w.index)]["rounds"][0];
    const int total = o_.warmups + o_.repetitions;
    // Each input lives in an arena big enough to put the copy at a new
    // 64-byte-aligned offset every repetition.
    std::vector<std::string> src;
    std::vector<std::unique_ptr<char, decltype(&std::free)>> arenas;
    for (size_t i = 0; i < ins.size(); ++i) {
      std::string data(ins[i].bytes, '\0');
      (void)Load(round0["inputs"][i].get<std::string>(), data.data(),
                     ins[i].bytes);
      src.push_back(std::move(data));
      const size_t arena = (ins[i].bytes + 64 * static_cast<size_t>(total + 1) + 63) / 64 * 64;
      arenas.emplace_back(static_cast<char*>(std::aligned_alloc(64, arena)), &std::free);
    }
    std::vector<std::unique_ptr<GuardedBuffer>> out_bufs;
    std::vector<void*> out_ptrs;
    std::vector<std::unique_ptr<GuardedBuffer>> all;
    std::vector<std::string> names;
    for (const Tensor& t : outs) {
      all.push_back(std::make_unique<GuardedBuffer>(t.bytes));
      names.push_back(absl::StrCat("output '", t.name, "'"));
      out_ptrs.push_back(all.back()->data());
    }
    RegisterGuards(all, names);
    std::vector<ratchet_tensor> ao = AbiTensors(outs, out_ptrs);
    std::vector<double> samples;
    for (int rep = 0; rep < total; ++rep) {
      std::vector<void*> in_ptrs;
      for (size_t i = 0; i < ins.size(); ++i) {
        char* dst = arenas[i].get() + 64 * static_cast<size_t>(rep + 1);
        std::memcpy(dst, src[i].data(), ins[i].bytes);
        in_ptrs.push_back(dst);
      }
      // Flush after the copy so that inputs, like outputs, start cold.
      std::memset(flush.get(), rep & 0xff, flush_bytes);
      std::vector<ratchet_tensor> ai = AbiTensors(ins, in_ptrs);
      SetContext(absl::StrCat("workload ", w.index, " (", w.axes_label, ") timing rep ", rep));
      g_in_candidate = 1;
      const auto t0 = Clock::now();
      const int rc = run_(ai.data(), static_cast<int32_t>(ai.size()), ao.data(),
                          static_cast<int32_t>(ao.size()));
      const auto t1 = Clock::now();
      g_in_candidate = 0;
      if (rc != 0) {
        Fail("crash", absl::StrCat("workload ", w.index, " timing rep ", rep,
                                   ": ratchet_run returned ", rc));
        return;
      }
      if (rep >= o_.warmups) samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
    std::sort(samples.begin(), samples.end());
    const size_t m = samples.size();
    const double med = m % 2 ? samples[m / 2] : 0.5 * (samples[m / 2 - 1] + samples[m / 2]);
    const double p10 = samples[static_cast<size_t>(0.1 * static_cast<double>(m - 1))];
    const double p90 = samples[static_cast<size_t>(std::lround(0.9 * static_cast<double>(m - 1)))];
    wr.t_k = med;
    wr.t_k_spread = med > 0 ? (p90 - p10) / med : 0;
    wr.score = SolScore(wr.t_k, wr.t_b, wr.t_sol);
  }
  double sum = 0;
  for (const WorkloadResult& w : result_.workloads) sum += w.score;
  result_.score = result_.workloads.empty() ? 0 : sum / static_cast<double>(result_.workloads.size());
  result_.outcome = "ok";
  result_.message = "";
}

void Harness::VerifyTime() {
  const Definition& def = problem_.definition;
  const size_t n = problem_.workloads.size();
  const size_t flush_bytes = FlushBytes();
  std::string flush(flush_bytes, '\0');
  const int extra_round = std::max(2, o_.rounds);  // A' (perturbed round 0)
  for (const Workload& w : problem_.workloads) {
    Stage(absl::StrCat("verify timing workload ", w.index + 1, "/", n));
    WorkloadResult& wr = result_.workloads[static_cast<size_t>(w.index)];
    const std::vector<Tensor> ins = MakeTensors(def.inputs, w);
    const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
    const Json& rounds = manifest_["workloads"][static_cast<size_t>(w.index)]["rounds"];
    // A (round 0) and A' (one element changed) at addresses X, B (round 1)
    // at Y: a cache keyed on pointers or on sampled contents answers A' with
    // A's outputs. The same output buffers throughout, as in plain timing.
    // A at X, A' at X + 64 bytes (the same page, as plain timing shifts its
    // inputs), then B at Y.
    const int plan[3] = {0, extra_round, 1};
    std::vector<std::vector<std::string>> data(3);  // [slot][input] pristine bytes
    for (int k = 0; k < 3; ++k) {
      for (size_t i = 0; i < ins.size(); ++i) {
        std::string d(ins[i].bytes, '\0');
        auto st = Load(rounds[static_cast<size_t>(plan[k])]["inputs"][i].get<std::string>(),
                       d.data(), ins[i].bytes);
        if (!st.ok()) return Fail("harness_error", std::string(st.message()));
        data[static_cast<size_t>(k)].push_back(std::move(d));
      }
    }
    using Arena = std::unique_ptr<char, decltype(&std::free)>;
    std::vector<Arena> x, y;
    std::vector<std::unique_ptr<GuardedBuffer>> out;
    std::vector<std::string> names;
    for (const Tensor& t : ins) {
      const size_t size = (t.bytes + 64 + 4095) / 4096 * 4096;
      x.emplace_back(static_cast<char*>(std::aligned_alloc(4096, size)), &std::free);
      y.emplace_back(static_cast<char*>(std::aligned_alloc(4096, size)), &std::free);
    }
    std::vector<void*> out_ptrs;
    for (const Tensor& t : outs) {
      out.push_back(std::make_unique<GuardedBuffer>(t.bytes));
      names.push_back(absl::StrCat("output '", t.name, "'"));
      out_ptrs.push_back(out.back()->data());
    }
    RegisterGuards(out, names);
    std::vector<ratchet_tensor> ao = AbiTensors(outs, out_ptrs);
    std::vector<double> samples;
    const int total = o_.warmups + o_.repetitions;
    for (int rep = 0; rep < total; ++rep) {
      const int k = rep % 3;
      std::vector<void*> in_ptrs;
      for (size_t i = 0; i < ins.size(); ++i) {
        char* at = k == 2 ? y[i].get() : x[i].get() + (k == 1 ? 64 : 0);
        std::memcpy(at, data[static_cast<size_t>(k)][i].data(), ins[i].bytes);
        in_ptrs.push_back(at);
      }
      for (size_t j = 0; j < outs.size(); ++j)
        Poison(out_ptrs[j], outs[j].dtype, static_cast<size_t>(NumElements(outs[j].shape)));
      std::memset(flush.data(), rep & 0xff, flush_bytes);
      std::vector<ratchet_tensor> ai = AbiTensors(ins, in_ptrs);
      const std::string ctx = absl::StrCat("workload ", w.index, " (", w.axes_label,
                                           ") verify rep ", rep, " (",
                                           k == 0 ? "A" : k == 1 ? "A'" : "B", ")");
      SetContext(ctx);
      const int threads_before = CountThreads();
      g_in_candidate = 1;
      const auto t0 = Clock::now();
      const int rc = run_(ai.data(), static_cast<int32_t>(ai.size()), ao.data(),
                          static_cast<int32_t>(ao.size()));
      const auto t1 = Clock::now();
      g_in_candidate = 0;
      // What the output held when the call returned, before anything else
      // runs: work still going on elsewhere cannot finish in time for it.
      std::vector<std::string> at_return;
      for (size_t j = 0; j < outs.size(); ++j)
        at_return.emplace_back(static_cast<const char*>(out_ptrs[j]), outs[j].bytes);
      const int threads_after = CountThreads();
      if (rc != 0) return Fail("crash", absl::StrCat(ctx, ": ratchet_run returned ", rc));
      for (size_t b = 0; b < out.size(); ++b) {
        if (!out[b]->CanariesIntact())
          return Fail("out_of_bounds", absl::StrCat(ctx, ": wrote before the start of ",
                                                    names[b], " (canary bytes changed)"));
      }
      auto caught = [&](const std::string& flag, const std::string& why) {
        wr.correct = false;
        wr.flags.push_back(flag);
        Fail("wrong_answer", absl::StrCat(flag, ": ", why));
      };
      for (size_t j = 0; j < outs.size(); ++j) {
        const std::string& expected =
            rounds[static_cast<size_t>(plan[k])]["outputs"][j].get<std::string>();
        std::string ref(outs[j].bytes, '\0');
        (void)Load(expected, ref.data(), outs[j].bytes);
        Tolerance tol;
        tol.atol = w.atol;
        tol.rtol = w.rtol;
        if (CopiedDecoy(expected, at_return[j].data(), outs[j].bytes, outs[j].dtype))
          return caught("read-reference",
                        absl::StrCat(ctx, ": the output equals, bit for bit, the decoy the "
                                          "harness left in the oracle's reference file"));
        const CompareResult c = CompareOutputs(at_return[j].data(), outs[j].dtype, ref.data(),
                                               outs[j].dtype, NumElements(outs[j].shape),
                                               outs[j].shape, tol);
        if (c.ok) continue;
        std::vector<std::string> others;
        for (int p : plan) others.push_back(rounds[static_cast<size_t>(p)]["outputs"][j].get<std::string>());
        std::string why, flag;
        if (std::memcmp(at_return[j].data(), out_ptrs[j], outs[j].bytes) != 0) {
          flag = "work-after-return";
          why = absl::StrCat(ctx, ": the output was incomplete when ratchet_run returned and "
                                  "changed afterwards (work left running on another thread)");
        } else {
          flag = ClassifyMismatch(w, j, out_ptrs[j], expected, others, ctx, &why);
        }
        if (threads_after > threads_before)
          absl::StrAppend(&why, " (", threads_after - threads_before,
                          " more threads alive after the call than before)");
        return caught(flag, why);
      }
      for (size_t i = 0; i < ins.size(); ++i) {
        if (std::memcmp(in_ptrs[i], data[static_cast<size_t>(k)][i].data(), ins[i].bytes) != 0)
          return caught("modified-inputs", absl::StrCat(ctx, ": input '", ins[i].name,
                                                        "' changed during the call"));
      }
      if (rep >= o_.warmups)
        samples.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
    }
    std::sort(samples.begin(), samples.end());
    const size_t m = samples.size();
    const double med = m % 2 ? samples[m / 2] : 0.5 * (samples[m / 2 - 1] + samples[m / 2]);
    const double p10 = samples[static_cast<size_t>(0.1 * static_cast<double>(m - 1))];
    const double p90 = samples[static_cast<size_t>(std::lround(0.9 * static_cast<double>(m - 1)))];
    wr.t_k = med;
    wr.t_k_spread = med > 0 ? (p90 - p10) / med : 0;
    wr.score = SolScore(wr.t_k, wr.t_b, wr.t_sol);
  }
  double sum = 0;
  for (const WorkloadResult& w : result_.workloads) sum += w.score;
  result_.score = result_.workloads.empty() ? 0 : sum / static_cast<double>(result_.workloads.size());
  result_.outcome = "ok";
  result_.message = "";
}

void Harness::BackToBack() {
  const Definition& def = problem_.definition;
  for (const Workload& w : problem_.workloads) {
    WorkloadResult wr;
    wr.index = w.index;
    wr.axes = w.axes_label;
    const std::vector<Tensor> ins = MakeTensors(def.inputs, w);
    const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
    const Json& round0 = manifest_["workloads"][static_cast<size_t>(w.index)]["rounds"][0];
    std::vector<std::unique_ptr<GuardedBuffer>> bufs;
    std::vector<void*> in_ptrs, out_ptrs;
    for (size_t i = 0; i < ins.size(); ++i) {
      bufs.push_back(std::make_unique<GuardedBuffer>(ins[i].bytes));
      auto st = Load(round0["inputs"][i].get<std::string>(), bufs.back()->data(), ins[i].bytes);
      if (!st.ok()) return Fail("harness_error", std::string(st.message()));
      in_ptrs.push_back(bufs.back()->data());
    }
    for (const Tensor& t : outs) {
      bufs.push_back(std::make_unique<GuardedBuffer>(t.bytes));
      out_ptrs.push_back(bufs.back()->data());
    }
    std::vector<ratchet_tensor> ai = AbiTensors(ins, in_ptrs);
    std::vector<ratchet_tensor> ao = AbiTensors(outs, out_ptrs);
    SetContext(absl::StrCat("workload ", w.index, " (", w.axes_label, ") back-to-back"));
    // Batches settle at about a millisecond: many short windows, so that the
    // parent can leave out those in which other load preempted this process.
    auto calls = RunMarkedBatches(w.index, o_.back_to_back, 1e-3, [&](int64_t first, int64_t n) {
      g_in_candidate = 1;
      for (int64_t i = 0; i < n; ++i) {
        if (run_(ai.data(), static_cast<int32_t>(ai.size()), ao.data(),
                 static_cast<int32_t>(ao.size())) != 0) {
          g_in_candidate = 0;
          return absl::InternalError(absl::StrCat("workload ", w.index, " back-to-back call ",
                                                  first + i, ": ratchet_run returned non-zero"));
        }
      }
      g_in_candidate = 0;
      return absl::OkStatus();
    });
    if (!calls.ok()) return Fail("crash", std::string(calls.status().message()));
    wr.calls = *calls;
    wr.correct = true;
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
    if (!WriteResult(o_.out, result_, o_.print)) {
      std::fprintf(stderr, "ratchet-harness: cannot write %s\n", o_.out.c_str());
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
  auto solution = LoadSolution(o_.solution, o_.knobs);
  if (!solution.ok()) {
    Fail("harness_error", std::string(solution.status().message()));
    return finish();
  }
  if (o_.scratch.empty()) {
    char tmpl[] = "/tmp/ratchet-harness-XXXXXX";
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
  if (!Compile(*solution)) return finish();
  if (o_.peak_gbps > 0) {
    result_.peaks = {o_.peak_gbps, o_.peak_gflops};
  } else {
    result_.peaks = MeasureCpuPeaks();
  }
  // Before the first candidate call, which the screen may make.
  InstallSignalHandlers();
  if (o_.reuse_oracle) {
    const std::string text = ReadFileOrEmpty(scratch_ + "/oracle_manifest.json");
    manifest_ = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (manifest_.is_discarded() || !manifest_.contains("workloads")) {
      Fail("harness_error", "--reuse-oracle: no readable oracle_manifest.json in the scratch");
      return finish();
    }
  } else {
    // Verification runs check every workload in full; back-to-back runs
    // check nothing.
    const std::optional<Workload> screened =
        o_.verify || o_.back_to_back > 0 ? std::nullopt : ScreenWorkload(problem_, o_.screen);
    if (screened && !Screen(*screened)) return finish();
    if (!RunOracle()) return finish();
  }
  if (o_.back_to_back > 0) {
    BackToBack();
    return finish();
  }
  if (o_.verify) {
    if (auto st = PreloadAndPlantDecoys(); !st.ok()) {
      Fail("harness_error", std::string(st.message()));
      return finish();
    }
  }
  if (!CheckCorrectness()) return finish();
  if (o_.verify) {
    VerifyTime();
  } else {
    Time();
  }
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
