// ratchet-harness: compiles a candidate, checks it against the PyTorch
// reference and times it. Contract: docs/harness.md.
//
// This process is the trusted side (docs/verifier.md, "Threat model"): it
// never loads candidate code. The candidate runs in its own process
// (ratchet-candidate) that sees only the tensors of the call it is making;
// references, timestamps and the result stay here, and the result is written
// only after that process and everything it started are gone.
#include <sys/stat.h>
#include <unistd.h>

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
#include "kernels/harness/candidate_process.h"
#include "kernels/harness/given_baseline.h"
#include "kernels/harness/oracle_client.h"
#include "kernels/harness/pipeline.h"
#include "kernels/harness/result_table.h"
#include "kernels/harness/solution.h"
#include "kernels/harness/subprocess.h"
#include "kernels/harness/tensors.h"
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
  // T_b stored by the coordinator (docs/harness.md, "A given baseline").
  std::string baseline;
  std::vector<std::pair<std::string, std::string>> knobs;
  uint64_t seed = 1;
  int warmups = 3, repetitions = 20, rounds = 3;
  double peak_gbps = 0, peak_gflops = 0;
  bool print = false;
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
               "ratchet-harness: %s\n"
               "usage: ratchet-harness --problem DIR --solution DIR --out FILE\n"
               "         [--knob NAME=VALUE]... [--seed N] [--warmups N] [--repetitions N]\n"
               "         [--rounds N] [--peak-gbps X --peak-gflops Y] [--python PATH]\n"
               "         [--scratch DIR] [--screen auto|on|off] [--print]\n"
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
    // Every run checks every call now; kept so that older command lines work.
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
    auto as_int = [&](int* dst) {
      return absl::SimpleAtoi(v, dst) && *dst >= 0;
    };
    if (a == "--problem") o->problem = v;
    else if (a == "--solution") o->solution = v;
    else if (a == "--out") o->out = v;
    else if (a == "--python") o->python = v;
    else if (a == "--scratch") o->scratch = v;
    else if (a == "--baseline") o->baseline = v;
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

// What the pipeline checked and timed, with the baseline and the score.
struct WorkloadResult : CheckedWorkload {
  double t_b = 0, t_sol = 0, score = 0;
  double t_b_spread = 0;
  bool t_b_given = false;  // from --baseline, not timed in this run
};

struct Result {
  std::string outcome = "harness_error";
  std::string message;
  double score = 0;
  std::vector<WorkloadResult> workloads;
  CpuPeaks peaks{0, 0};
  double compile_seconds = 0;
  double screen_seconds = 0;  // 0 when the screen did not run
  double round_trip_ns = 0;   // a call's cost besides the call, removed from T_k
  double wall_seconds = 0;
  std::string nonce;
  std::string software;  // the oracle's torch (and CUDA) version: part of T_b's key
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
    x["t_b_spread"] = w.t_b_spread;
    x["t_b_given"] = w.t_b_given;
    x["t_sol_ns"] = w.t_sol;
    x["score"] = w.score;
    if (w.timed_rounds > 0) x["timed_rounds"] = w.timed_rounds;
    if (!w.flags.empty()) x["flags"] = w.flags;
    if (w.calls > 0) x["calls"] = w.calls;
    ws.push_back(x);
  }
  j["workloads"] = ws;
  j["peaks"] = {{"gbps", r.peaks.gbps}, {"gflops", r.peaks.gflops}};
  j["compile_seconds"] = r.compile_seconds;
  j["screen_seconds"] = r.screen_seconds;
  j["round_trip_ns"] = r.round_trip_ns;
  j["wall_seconds"] = r.wall_seconds;
  j["isolation"] = "process";
  if (!r.software.empty()) j["software"] = r.software;
  if (!r.nonce.empty()) j["nonce"] = r.nonce;
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
  OracleOptions FullOracleOptions() const;
  // Reads every round the oracle wrote into memory, then leaves decoys in
  // place of its reference files.
  bool LoadRounds(const std::string& dir, const std::string& manifest_text,
                  const std::vector<Workload>& workloads, std::vector<WorkloadRounds>* rounds);
  // Starts a candidate process, calibrates its round trip and loads the
  // library; the pipeline then calls it through `backend_`.
  bool StartCandidate(const std::string& name);
  void StopCandidate();
  bool Screen(const Workload& w);
  void Evaluate();
  void Fail(const std::string& outcome, const std::string& message) {
    result_.outcome = outcome;
    result_.message = message;
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
  Result result_;
  std::string scratch_;
  std::string library_;
  bool own_scratch_ = false;
  std::unique_ptr<CandidateProcess> process_;
  std::unique_ptr<ProcessBackend> backend_;
  GivenBaseline baseline_;  // --baseline, read before any candidate process exists
};

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
  const std::string build = scratch_ + "/build";
  if (auto st = FreshDir(build); !st.ok()) {
    Fail("harness_error", std::string(st.message()));
    return false;
  }
  mkdir((build + "/include").c_str(), 0755);
  mkdir((build + "/include/ratchet").c_str(), 0755);
  std::ofstream(build + "/include/ratchet/kernel_abi.h") << abi;
  library_ = build + "/candidate.so";
  std::vector<std::string> cmd = {"g++", "-std=c++17", "-O3", "-march=native", "-shared",
                                  "-fPIC", "-fopenmp", "-pthread",
                                  "-I" + build + "/include",
                                  "-I" + build + "/include/ratchet", "-I" + o_.solution};
  for (const auto& [k, v] : s.knobs) cmd.push_back(absl::StrCat("-D", k, "=", v));
  for (const auto& f : s.sources) cmd.push_back(f);
  cmd.push_back("-o");
  cmd.push_back(library_);
  const std::string log = build + "/compile.log";
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
  return true;
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
  oo.threads = UsableCpus();
  oo.python = o_.python;
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
  const std::string dir = scratch_ + "/" + name;
  if (auto st = FreshDir(dir); !st.ok()) {
    Fail("harness_error", std::string(st.message()));
    return false;
  }
  auto p = CandidateProcess::Start(SelfExeDir() + "/ratchet-candidate", library_,
                                   ArenaBytesFor(problem_), dir, dir + "/output.log");
  if (!p.ok()) {
    Fail("harness_error", std::string(p.status().message()));
    return false;
  }
  process_ = std::move(*p);
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
  backend_ = std::make_unique<ProcessBackend>(process_.get(), *rt, FlushBytes(), o_.seed);
  return true;
}

void Harness::StopCandidate() {
  backend_.reset();
  if (process_) process_->KillAll();
  process_.reset();
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
    std::fprintf(stderr, "ratchet-harness: the given baseline is for %s, this is %s: "
                 "timing T_b here\n", baseline_.software.c_str(), result_.software.c_str());
    oo.time_reference = true;
    if (auto st = FreshDir(oo.scratch); !st.ok()) return Fail("harness_error", std::string(st.message()));
    text = kernels::RunOracle(problem_, oo);
    if (!text.ok()) return Fail("harness_error", std::string(text.status().message()));
  }
  const Json manifest = Json::parse(*text);
  std::vector<WorkloadRounds> rounds;
  if (!LoadRounds(oo.scratch, *text, problem_.workloads, &rounds)) return;
  if (!StartCandidate("candidate")) return;
  EvaluationPipeline pipeline(problem_.definition, backend_.get(), Pipeline());
  const PipelineResult pr = pipeline.Run(problem_.workloads, rounds);
  StopCandidate();
  const Definition& def = problem_.definition;
  double sum = 0;
  for (size_t k = 0; k < pr.workloads.size(); ++k) {
    const Workload& w = problem_.workloads[k];
    WorkloadResult wr;
    static_cast<CheckedWorkload&>(wr) = pr.workloads[k];
    const Json& timed = manifest["workloads"][k];
    wr.t_b = timed.value("t_b_ns", 0.0);
    wr.t_b_spread = timed.value("t_b_spread", 0.0);
    if (!oo.time_reference) {
      auto it = baseline_.workloads.find(w.index);
      if (it == baseline_.workloads.end())
        return Fail("harness_error",
                    absl::StrCat("--baseline has no T_b for workload ", w.index));
      wr.t_b = it->second.t_b_ns;
      wr.t_b_spread = it->second.t_b_spread;
      wr.t_b_given = true;
    }
    auto flops = WorkloadFlops(def, w);
    auto bytes = WorkloadBytes(def, w);
    if (!flops.ok() || !bytes.ok())
      return Fail("harness_error",
                  std::string((!flops.ok() ? flops.status() : bytes.status()).message()));
    wr.t_sol = SolTimeNs(*flops, *bytes, result_.peaks.gflops, result_.peaks.gbps);
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
  baseline_ = LoadGivenBaseline(o_.baseline);
  if (!Compile(*solution)) return finish();
  if (o_.peak_gbps > 0) {
    result_.peaks = {o_.peak_gbps, o_.peak_gflops};
  } else {
    result_.peaks = MeasureCpuPeaks();
  }
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
  r.message = "ratchet-harness: internal error: " + error;
  r.nonce = nonce;
  std::fprintf(stderr, "%s\n", r.message.c_str());
  if (!ratchet::kernels::WriteResult(out, r, print)) {
    std::fprintf(stderr, "ratchet-harness: cannot write %s\n", out.c_str());
    return 2;
  }
  return 0;
}
