#include "kernels/harness/harness_driver.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "kernels/harness/given_baseline.h"
#include "kernels/harness/public_solution.h"
#include "kernels/harness/result_table.h"
#include "kernels/harness/subprocess.h"
#include "kernels/harness/tensors.h"
#include "kernels/sol/sol.h"

namespace ratchet::kernels {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

// The seconds of each stage family ("timing workload 2/4" counts as
// "timing"), in the order they began: a stage ends where the next begins.
struct StageClock {
  std::vector<std::pair<std::string, double>> seconds;
  std::string current;
  Clock::time_point since;

  void Close() {
    if (current.empty()) return;
    const double d = std::chrono::duration<double>(Clock::now() - since).count();
    auto it = std::find_if(seconds.begin(), seconds.end(),
                           [&](const auto& e) { return e.first == current; });
    if (it == seconds.end()) {
      seconds.emplace_back(current, d);
    } else {
      it->second += d;
    }
    current.clear();
  }
};

StageClock& Stages() {
  static StageClock clock;
  return clock;
}


// Oracle data of every round is held in memory (and sits in the job's
// scratch, which a worker caps at 8 GiB by default): an eighth of the memory
// available, between 1 and 4 GiB. Every timed call takes a round of its own
// (pipeline.cc), so a budget that holds fewer rounds than repetitions means
// fewer timed calls; timed_rounds says how many.
// An operator's (and the tests') override, in bytes: read as the program
// loads, before the environment is cut to its allow-list.
const double kRoundBudgetOverride = [] {
  const char* b = std::getenv("RATCHET_ROUND_BUDGET_BYTES");
  return b != nullptr && *b ? std::max(1.0, std::atof(b)) : 0.0;
}();

double RoundBudgetBytes() {
  constexpr double kGiB = 1024.0 * 1024 * 1024;
  if (kRoundBudgetOverride > 0) return kRoundBudgetOverride;
  const double available =
      static_cast<double>(sysconf(_SC_AVPHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  return std::clamp(available / 8, 1 * kGiB, 4 * kGiB);
}

// Writes the result file (through a temporary and a rename, so that a
// reader never sees half of it) and, with --print, its table on stdout.
bool WriteResult(const std::string& path, const HarnessResult& r, bool print) {
  const std::string text = ToJson(r);
  const std::string tmp = path + ".tmp";
  std::remove(tmp.c_str());  // not a file someone else left open for us
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return false;
    f << text;
    if (!f) return false;
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return false;
  // The table shows what the file holds (the message cut, bytes replaced).
  if (print) std::fputs(FormatResultTable(text).c_str(), stdout);
  return true;
}

// What the pipeline checked and timed of workload `w`, with the tolerance
// it was checked with.
WorkloadResult Checked(const CheckedWorkload& cw, const Workload& w, const Definition& def) {
  WorkloadResult wr;
  wr.index = cw.index;
  wr.axes = cw.axes;
  wr.correct = cw.correct;
  wr.matched_fraction = cw.matched_fraction;
  wr.max_abs_error = cw.max_abs_error;
  wr.t_k_ns = cw.t_k;
  wr.t_k_spread = cw.t_k_spread;
  wr.t_k_p10_ns = cw.t_k_p10;
  wr.flags = cw.flags;
  wr.calls = cw.calls;
  wr.timed_rounds = cw.timed_rounds;
  const Tolerance tol = ToleranceFor(w, def.outputs[0].dtype);
  wr.atol = tol.atol;
  wr.rtol = tol.rtol;
  return wr;
}

// --screen, or auto.
ScreenMode ScreenModeOf(const HarnessArgs& args) {
  ScreenMode mode = ScreenMode::kAuto;
  if (!args.screen.empty()) ParseScreenMode(args.screen, &mode);
  return mode;
}

class Driver {
 public:
  Driver(HarnessRun run, HarnessBackend* backend)
      : run_(std::move(run)), backend_(*backend), start_(Clock::now()) {}
  // The process first, then what the backend holds for it (the device
  // memory it has open), whichever way the run ends.
  ~Driver() { StopCandidate(); }
  int Run();

 private:
  bool Fail(const std::string& outcome, const std::string& message) {
    return run_.Fail(outcome, message);
  }
  OracleOptions FullOracleOptions() const;
  // Reads every round the oracle wrote into memory, then leaves decoys in
  // place of its reference files.
  bool LoadRounds(const std::string& dir, const std::string& manifest_text,
                  const std::vector<Workload>& workloads, std::vector<WorkloadRounds>* rounds);
  // Starts a candidate process, calibrates its round trip and has it load
  // the library; the pipeline then calls it through `candidate_`.
  bool StartCandidate(const std::string& name);
  void StopCandidate();
  PipelineOptions Pipeline() const;
  // The cascade's screen: false when it ended the run (the result filled).
  bool Screen(const Workload& w);
  // --device-lock: waits for the device ("device-wait"), held until exit.
  bool LockDevice();
  void OracleOnly();
  void TakeGivenRounds();
  // The full oracle, correctness, timing and the score.
  void Evaluate();
  // The result written, the scratch folder removed: the exit status.
  int Finish();

  HarnessRun run_;
  HarnessBackend& backend_;
  Clock::time_point start_;
  bool own_scratch_ = false;
  std::unique_ptr<CandidateProcess> process_;
  CandidateBackend* candidate_ = nullptr;  // the backend's, over process_
  GivenBaseline baseline_;  // --baseline, read before any candidate process exists
  // --given-rounds, read (references decoyed, inputs removed) before the
  // candidate is compiled: the screen's and the evaluation's, and the
  // evaluation's manifest.
  std::vector<WorkloadRounds> given_screen_rounds_, given_rounds_;
  absl::StatusOr<std::string> given_text_ = absl::NotFoundError("no rounds given");
};

PipelineOptions Driver::Pipeline() const {
  PipelineOptions po;
  po.correctness_rounds = run_.rounds;
  po.warmups = run_.warmups;
  po.repetitions = run_.repetitions;
  po.back_to_back_seconds = run_.back_to_back;
  po.stage = ReportStage;
  return po;
}

OracleOptions Driver::FullOracleOptions() const {
  OracleOptions oo;
  oo.seed = run_.args.seed;
  // The correctness rounds, then a round of its own for every timed call
  // (warm-ups go round the correctness rounds), within the memory budget:
  // every workload gets its correctness rounds and one timed round, then
  // timed rounds are added smallest workload first, one per workload per
  // pass, while they fit (up to a round per repetition). So a problem of
  // many large workloads stays within the budget (and the worker's scratch),
  // and its small workloads still get many timed calls.
  const Problem& p = run_.problem;
  std::vector<double> bytes;
  for (const Workload& w : p.workloads) {
    double b = 1;
    for (const Tensor& t : MakeTensors(p.definition.inputs, w)) b += t.bytes;
    for (const Tensor& t : MakeTensors(p.definition.outputs, w))
      b += 2.0 * t.bytes;  // references and decoys
    bytes.push_back(b);
  }
  const int wanted = std::max(1, run_.repetitions);
  std::vector<int> checked(bytes.size(), run_.rounds);
  std::vector<int> timed(bytes.size(), 1);
  double total = 0;
  for (double b : bytes) total += (run_.rounds + 1) * b;
  std::vector<size_t> order(bytes.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return bytes[a] < bytes[b]; });
  const double budget = RoundBudgetBytes();
  // Where even that exceeds the budget (SOL-ExecBench's rmsnorm: 14
  // workloads up to 14,509 x 4,096 bf16, 1.5 GB a round, overflowed an
  // 8 GiB scratch), the largest workloads give up correctness rounds, down
  // to one: each is still checked on two inputs, its timed round (checked
  // too) one that no earlier call saw.
  for (auto it = order.rbegin(); total > budget && it != order.rend();) {
    if (checked[*it] <= 1) {
      ++it;
      continue;
    }
    --checked[*it];
    total -= bytes[*it];
  }
  for (bool added = true; added;) {
    added = false;
    for (size_t k : order) {
      if (timed[k] >= wanted || total + bytes[k] > budget) continue;
      ++timed[k];
      total += bytes[k];
      added = true;
    }
  }
  oo.rounds = 0;
  oo.rounds_by_workload.clear();
  for (size_t k = 0; k < timed.size(); ++k) {
    oo.rounds_by_workload.push_back(checked[k] + timed[k]);
    oo.rounds = std::max(oo.rounds, checked[k] + timed[k]);
  }
  oo.warmups = run_.warmups;
  oo.repetitions = run_.repetitions;
  oo.python = run_.args.python;
  oo.isolated = true;
  backend_.ConfigureOracle(run_, &oo);
  return oo;
}

bool Driver::LoadRounds(const std::string& dir, const std::string& manifest_text,
                        const std::vector<Workload>& workloads,
                        std::vector<WorkloadRounds>* rounds) {
  auto st = ReadOracleRounds(run_.problem.definition, dir, manifest_text, workloads, rounds);
  if (!st.ok()) return Fail(kOutcomeHarnessError, std::string(st.message()));
  return true;
}

bool Driver::StartCandidate(const std::string& name) {
  const std::string dir = run_.scratch + "/" + name;
  if (auto st = FreshDir(dir); !st.ok()) return Fail(kOutcomeHarnessError, std::string(st.message()));
  auto p = backend_.StartProcess(run_, dir);
  if (!p.ok()) return Fail(kOutcomeHarnessError, std::string(p.status().message()));
  process_ = *std::move(p);
  run_.result.candidate_user = process_->identity();
  // Before the library is loaded nothing in that process is the candidate's.
  auto rt = process_->CalibrateRoundTrip(21);
  if (!rt.ok()) return Fail(kOutcomeHarnessError, std::string(rt.status().message()));
  run_.result.round_trip_ns = *rt;
  if (auto st = process_->Load(run_.load_target); !st.ok())
    return Fail(kOutcomeCompileError, std::string(st.message()));
  candidate_ = backend_.Attach(process_.get(), run_);
  return true;
}

void Driver::StopCandidate() {
  candidate_ = nullptr;
  // The round trip the calls' times were last reduced by.
  if (process_) run_.result.round_trip_ns = process_->round_trip_ns();
  if (process_) process_->KillAll();
  process_.reset();
  backend_.Release();
}

bool Driver::LockDevice() {
  const std::string& path = run_.args.device_lock;
  if (path.empty()) return true;
  ReportStage("device-wait");
  // Not inherited by any child (O_CLOEXEC): only this process holds it, and
  // the kernel lets it go when this process ends, however it ends.
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  int rc = fd < 0 ? -1 : 0;
  while (rc == 0 && flock(fd, LOCK_EX) != 0) {
    if (errno != EINTR) rc = -1;
  }
  if (rc != 0)
    return Fail(kOutcomeHarnessError,
                absl::StrCat("--device-lock ", path, ": ", strerror(errno)));
  std::fprintf(stderr, "%s: holding the device (%s)\n", HarnessName(run_.args.kind),
               path.c_str());
  return true;
}

bool Driver::Screen(const Workload& w) {
  ReportStage("screen");
  // Its round: given (TakeGivenRounds), else from an oracle run of its own.
  std::vector<WorkloadRounds> rounds = std::move(given_screen_rounds_);
  if (rounds.empty()) {
    OracleOptions oo = FullOracleOptions();
    oo.scratch = run_.scratch + "/oracle-screen";
    if (auto st = FreshDir(oo.scratch); !st.ok()) {
      Fail(kOutcomeHarnessError, std::string(st.message()));
      return false;
    }
    auto text = RunScreenOracle(run_.problem, w, oo);
    if (!text.ok()) {
      Fail(kOutcomeHarnessError, std::string(text.status().message()));
      return false;
    }
    if (!LoadRounds(oo.scratch, *text, {w}, &rounds)) return false;
  }
  bool passed = false;
  if (StartCandidate("candidate-screen")) {
    EvaluationPipeline pipeline(run_.problem.definition, candidate_, Pipeline());
    const PipelineResult pr = pipeline.Screen(w, rounds[0]);
    passed = pr.outcome == kOutcomeOk;
    if (!passed) {
      run_.result.workloads.push_back(Checked(pr.workloads[0], w, run_.problem.definition));
      Fail(pr.outcome, pr.message);
    }
  }
  // Nothing the screen's candidate process started lives on into an oracle
  // run. With the evaluation's rounds given no oracle runs: a candidate that
  // passed goes on in the same process (for a Python solution, no second
  // interpreter and import).
  if (!passed || given_rounds_.empty()) StopCandidate();
  return passed;
}

// Removes the oracle's input files from `dir` (the harness holds them).
void RemoveInputFiles(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.size() > 4 && name.find("_in") != std::string::npos &&
        name.compare(name.size() - 4, 4, ".bin") == 0)
      std::filesystem::remove(e.path(), ec);
  }
}

void Driver::TakeGivenRounds() {
  // What the worker copied in from an --oracle-only run of this seed: used
  // where its requests are this run's (the folders aside), read into memory
  // at once, references overwritten with decoys and inputs removed, and the
  // rest deleted, so that nothing real is left on disk when the candidate is
  // compiled (a compiler can embed any file it can read).
  ReportStage("oracle");
  const std::string given = run_.args.given_rounds;
  const std::optional<Workload> screened =
      run_.back_to_back > 0 ? std::nullopt : ScreenWorkload(run_.problem, ScreenModeOf(run_.args));
  for (const bool screen : {true, false}) {
    if (screen && !screened) continue;
    OracleOptions oo = FullOracleOptions();
    oo.scratch = run_.scratch + (screen ? "/oracle-screen" : "/oracle");
    oo.time_reference = !screen && baseline_.empty();
    oo.reuse_dir = given + (screen ? "/oracle-screen" : "/oracle");
    bool reused = false;
    oo.reused = &reused;
    if (!FreshDir(oo.scratch).ok()) break;
    oo.reuse_only = true;
    auto text = screen ? RunScreenOracle(run_.problem, *screened, oo) : RunOracle(run_.problem, oo);
    if (!text.ok() || !reused) continue;
    std::vector<WorkloadRounds> rounds;
    const std::vector<Workload> workloads =
        screen ? std::vector<Workload>{*screened} : run_.problem.workloads;
    if (!ReadOracleRounds(run_.problem.definition, oo.scratch, *text, workloads, &rounds).ok())
      continue;
    RemoveInputFiles(oo.scratch);
    if (screen) {
      given_screen_rounds_ = std::move(rounds);
    } else {
      given_rounds_ = std::move(rounds);
      given_text_ = *text;
      run_.result.rounds_given = true;
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(given, ec);
}

void Driver::OracleOnly() {
  // No candidate: the rounds of the screen (where there is one) and of the
  // evaluation, as an evaluation with a given T_b asks for them.
  HarnessResult& result = run_.result;
  const std::optional<Workload> screened = ScreenWorkload(run_.problem, ScreenModeOf(run_.args));
  std::string text;
  for (const bool screen : {true, false}) {
    if (screen && !screened) continue;
    ReportStage(screen ? "screen" : "oracle");
    OracleOptions oo = FullOracleOptions();
    oo.scratch = run_.scratch + (screen ? "/oracle-screen" : "/oracle");
    oo.time_reference = false;
    if (auto st = FreshDir(oo.scratch); !st.ok()) {
      Fail(kOutcomeHarnessError, std::string(st.message()));
      return;
    }
    auto t = screen ? RunScreenOracle(run_.problem, *screened, oo) : RunOracle(run_.problem, oo);
    if (!t.ok()) {
      Fail(kOutcomeHarnessError, std::string(t.status().message()));
      return;
    }
    text = *t;
  }
  result.software = OracleSoftware(text);
  result.outcome = kOutcomeOk;
  result.message = absl::StrCat("oracle only: the rounds of seed ", run_.args.seed);
}

void Driver::Evaluate() {
  const HarnessKind kind = run_.args.kind;
  // The oracle first, in a folder made after every candidate process is
  // gone: T_b is timed before any candidate code of this run exists.
  ReportStage("oracle");
  OracleOptions oo = FullOracleOptions();
  oo.scratch = run_.scratch + "/oracle";
  // A baseline stored by the coordinator spares timing the reference, if it
  // was measured with the same software; else T_b is timed here after all.
  oo.time_reference = baseline_.empty();
  absl::StatusOr<std::string> text = given_text_;
  std::vector<WorkloadRounds> rounds = std::move(given_rounds_);
  if (rounds.empty()) {
    if (auto st = FreshDir(oo.scratch); !st.ok()) {
      Fail(kOutcomeHarnessError, std::string(st.message()));
      return;
    }
    text = RunOracle(run_.problem, oo);
  }
  if (!text.ok()) {
    Fail(kOutcomeHarnessError, std::string(text.status().message()));
    return;
  }
  HarnessResult& result = run_.result;
  result.software = OracleSoftware(*text);
  if (!baseline_.empty() && baseline_.software != result.software) {
    result.rounds_given = false;
    rounds.clear();
    std::fprintf(stderr, "%s: the given baseline is for %s, this is %s: timing T_b here\n",
                 HarnessName(kind), baseline_.software.c_str(), result.software.c_str());
    StopCandidate();  // the screen's, if it went on: none while the oracle runs
    oo.time_reference = true;
    if (auto st = FreshDir(oo.scratch); !st.ok()) {
      Fail(kOutcomeHarnessError, std::string(st.message()));
      return;
    }
    text = RunOracle(run_.problem, oo);
    if (!text.ok()) {
      Fail(kOutcomeHarnessError, std::string(text.status().message()));
      return;
    }
  }
  if (rounds.empty() && !LoadRounds(oo.scratch, *text, run_.problem.workloads, &rounds)) return;
  const Json manifest = Json::parse(*text);
  if (!process_ && !StartCandidate("candidate")) return;
  EvaluationPipeline pipeline(run_.problem.definition, candidate_, Pipeline());
  const PipelineResult pr = pipeline.Run(run_.problem.workloads, rounds);
  StopCandidate();
  const Definition& def = run_.problem.definition;
  double sum = 0;
  for (size_t k = 0; k < pr.workloads.size(); ++k) {
    const Workload& w = run_.problem.workloads[k];
    const Json& mw = manifest["workloads"][k];
    WorkloadResult wr = Checked(pr.workloads[k], w, def);
    wr.repetitions = run_.repetitions;
    // The baseline: on a GPU the oracle times eager PyTorch and
    // torch.compile, and T_b is the faster of those it has; else (the CPU
    // oracle) its t_b_ns.
    wr.t_b_eager_ns = mw.value("t_b_eager_ns", 0.0);
    wr.t_b_compile_ns = mw.value("t_b_compile_ns", 0.0);
    wr.t_ref_kernel_ns = mw.value("t_ref_kernel_ns", 0.0);
    if (mw.contains("notes") && mw["notes"].is_array()) {
      for (const auto& n : mw["notes"])
        if (n.is_string()) wr.baseline_notes.push_back(n.get<std::string>());
    }
    if (wr.t_b_eager_ns > 0 && wr.t_b_compile_ns > 0) {
      wr.t_b_ns = std::min(wr.t_b_eager_ns, wr.t_b_compile_ns);
    } else if (wr.t_b_eager_ns > 0 || wr.t_b_compile_ns > 0) {
      wr.t_b_ns = std::max(wr.t_b_eager_ns, wr.t_b_compile_ns);
    } else {
      wr.t_b_ns = mw.value("t_b_ns", 0.0);
    }
    wr.t_b_spread = mw.value("t_b_spread", 0.0);
    if (!oo.time_reference) {
      auto it = baseline_.workloads.find(w.index);
      if (it == baseline_.workloads.end()) {
        Fail(kOutcomeHarnessError, absl::StrCat("--baseline has no T_b for workload ", w.index));
        return;
      }
      const GivenBaseline::Entry& b = it->second;
      wr.t_b_ns = b.t_b_ns;
      wr.t_b_spread = b.t_b_spread;
      wr.t_b_eager_ns = b.t_b_eager_ns;
      wr.t_b_compile_ns = b.t_b_compile_ns;
      wr.t_ref_kernel_ns = b.t_ref_kernel_ns;
      wr.t_b_given = true;
    }
    auto flops = WorkloadFlops(def, w);
    auto bytes = WorkloadBytes(def, w);
    if (!flops.ok() || !bytes.ok()) {
      Fail(kOutcomeHarnessError,
           std::string((!flops.ok() ? flops.status() : bytes.status()).message()));
      return;
    }
    backend_.SpeedOfLight(def, *flops, *bytes, mw.value("flops", 0.0), result, &wr);
    if (pr.outcome == kOutcomeOk) wr.score = SolScore(wr.t_k_ns, wr.t_b_ns, wr.t_sol_ns);
    sum += wr.score;
    result.workloads.push_back(wr);
  }
  if (pr.outcome != kOutcomeOk) {
    Fail(pr.outcome, pr.message);
    return;
  }
  result.score = result.workloads.empty() ? 0 : sum / static_cast<double>(result.workloads.size());
  result.outcome = kOutcomeOk;
  result.message = "";
}

int Driver::Finish() {
  // The result is written once no candidate process is left.
  StopCandidate();
  HarnessResult& r = run_.result;
  r.wall_seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  Stages().Close();
  r.stage_seconds = Stages().seconds;
  for (const WorkloadResult& w : r.workloads)
    for (const std::string& f : w.flags) AddFlag(&r.flags, f);
  if (r.outcome != kOutcomeOk) r.score = 0;
  if (!WriteResult(run_.args.out, r, run_.args.print)) {
    std::fprintf(stderr, "%s: cannot write %s\n", HarnessName(run_.args.kind),
                 run_.args.out.c_str());
    return kHarnessExitNoResult;
  }
  if (own_scratch_ && std::getenv("RATCHET_KEEP_SCRATCH") == nullptr) {
    RunProcess({"rm", "-rf", run_.scratch}, "").IgnoreError();
  }
  return kHarnessExitResult;
}

int Driver::Run() {
  const HarnessArgs& args = run_.args;
  auto problem = LoadProblem(args.problem);
  if (!problem.ok()) {
    Fail(kOutcomeHarnessError, std::string(problem.status().message()));
    return Finish();
  }
  run_.problem = *std::move(problem);
  if (args.scratch.empty()) {
    std::string tmpl = absl::StrCat("/tmp/", HarnessName(args.kind), "-XXXXXX");
    if (mkdtemp(tmpl.data()) == nullptr) {
      Fail(kOutcomeHarnessError, "cannot create a scratch folder in /tmp");
      return Finish();
    }
    run_.scratch = tmpl;
    own_scratch_ = true;
  } else {
    run_.scratch = args.scratch;
    RunProcess({"mkdir", "-p", run_.scratch}, "").IgnoreError();
  }
  if (args.oracle_only) {
    // No solution is read: nothing of a candidate's reaches this run.
    if (!LockDevice()) return Finish();
    ReportStage("prepare");
    if (backend_.Prepare(run_)) OracleOnly();
    return Finish();
  }
  // SOL-ExecBench's own solution.json (inline sources): imported into the
  // scratch folder as `ratchet import` would, then read from there.
  if (const std::string text = ReadFileOrEmpty(args.solution + "/solution.json");
      LooksLikePublicSolution(text)) {
    auto pub = ParsePublicSolution(text);
    if (!pub.ok()) {
      Fail(kOutcomeHarnessError, absl::StrCat(args.solution, "/solution.json: ",
                                              pub.status().message()));
      return Finish();
    }
    const std::string dir = run_.scratch + "/public-solution";
    if (auto st = ImportPublicSolution(*pub, dir); !st.ok()) {
      Fail(kOutcomeHarnessError, std::string(st.message()));
      return Finish();
    }
    run_.args.solution = dir;
  }
  auto solution = LoadSolution(args.solution, args.knobs,
                               args.kind == HarnessKind::kCuda ? SolutionBackend::kCuda
                                                               : SolutionBackend::kCpu);
  if (!solution.ok()) {
    Fail(kOutcomeHarnessError, std::string(solution.status().message()));
    return Finish();
  }
  if (!backend_.BeforeCompile(run_)) return Finish();
  // Read before any candidate process exists.
  baseline_ = LoadGivenBaseline(args.baseline);
  if (!args.given_rounds.empty()) TakeGivenRounds();
  if (!backend_.Compile(*solution, run_)) return Finish();
  if (args.compile_only) {
    run_.result.outcome = kOutcomeOk;
    run_.result.message = "compiled (--compile-only)";
    return Finish();
  }
  if (!LockDevice()) return Finish();
  ReportStage("prepare");  // the device and the peaks
  if (!backend_.Prepare(run_)) return Finish();
  // The screen is a cheap early reject; the independent timing (the
  // verifier's replay) checks and times every workload in full instead.
  const std::optional<Workload> screened =
      run_.back_to_back > 0 ? std::nullopt : ScreenWorkload(run_.problem, ScreenModeOf(args));
  if (screened && !Screen(*screened)) return Finish();
  Evaluate();
  return Finish();
}

}  // namespace

bool HarnessRun::Fail(const std::string& outcome, const std::string& message) {
  result.outcome = outcome;
  result.message = message;
  return false;
}


void ReportStage(const std::string& s) {
  std::fprintf(stderr, "stage: %s\n", s.c_str());
  StageClock& c = Stages();
  c.Close();
  c.current = s.substr(0, s.find(' '));
  c.since = Clock::now();
}

absl::StatusOr<std::string> KernelAbiHeader() {
  const std::string exe_dir = SelfExeDir();
  // Beside the executable, not in a ratchet/ folder: bin/ratchet is the CLI.
  std::string abi = ReadFileOrEmpty(exe_dir + "/kernel_abi.h");
  if (abi.empty()) return absl::NotFoundError(absl::StrCat("kernel_abi.h not found beside ", exe_dir));
  return abi;
}

absl::Status FreshBuildDir(const std::string& build, const std::string& abi) {
  if (auto st = FreshDir(build); !st.ok()) return st;
  mkdir((build + "/include").c_str(), 0755);
  mkdir((build + "/include/ratchet").c_str(), 0755);
  std::ofstream(build + "/include/ratchet/kernel_abi.h") << abi;
  return absl::OkStatus();
}

std::string CompileErrorMessage(const std::vector<std::string>& cmd, const std::string& log) {
  return Tail(absl::StrCat(absl::StrJoin(cmd, " "), "\n", ReadFileOrEmpty(log)),
              kMaxResultMessage);
}

void AddFlag(std::vector<std::string>* flags, const std::string& f) {
  if (std::find(flags->begin(), flags->end(), f) == flags->end()) flags->push_back(f);
}

int HarnessMain(HarnessKind kind, int argc, char** argv,
                const std::function<std::unique_ptr<HarnessBackend>()>& make_backend) {
  BecomeTrustedParent();
  // Settings a candidate must not see arrive in the environment, which a
  // non-dumpable process hides from processes of its own user; they are
  // removed before any child starts.
  const HarnessSecrets secrets = SecretsFromEnvironment();
  ScrubEnvironment();
  auto args = ParseArgv(kind, std::vector<std::string>(argv + 1, argv + argc));
  if (!args.ok()) {
    std::fprintf(stderr, "%s: %s\n%s", HarnessName(kind), std::string(args.status().message()).c_str(),
                 HarnessUsage(kind).c_str());
    return kHarnessExitNoResult;
  }
  HarnessRun run;
  run.args = *std::move(args);
  const HarnessDefaults defaults = DefaultsFor(kind);
  run.warmups = run.args.warmups.value_or(defaults.warmups);
  run.repetitions = run.args.repetitions.value_or(defaults.repetitions);
  run.rounds = run.args.rounds.value_or(defaults.rounds);
  run.back_to_back = run.args.back_to_back > 0 ? run.args.back_to_back : secrets.independent_timing;
  run.result.kind = kind;
  run.result.nonce = secrets.nonce;
  const std::string out = run.args.out;
  const bool print = run.args.print;
  std::string error;
  try {
    // Destroyed before the result is written: no candidate process is left.
    std::unique_ptr<HarnessBackend> backend = make_backend();
    Driver driver(std::move(run), backend.get());
    return driver.Run();
  } catch (const std::exception& e) {
    error = e.what();
  } catch (...) {
    error = "unknown exception";
  }
  // Whatever escaped is the harness's fault, never the candidate's: without
  // a result the worker would report the abort as the candidate's crash.
  HarnessResult r;
  r.kind = kind;
  r.outcome = kOutcomeHarnessError;
  r.message = absl::StrCat(HarnessName(kind), ": internal error: ", error);
  r.nonce = secrets.nonce;
  std::fprintf(stderr, "%s\n", r.message.c_str());
  if (!WriteResult(out, r, print)) {
    std::fprintf(stderr, "%s: cannot write %s\n", HarnessName(kind), out.c_str());
    return kHarnessExitNoResult;
  }
  return kHarnessExitResult;
}

}  // namespace ratchet::kernels
