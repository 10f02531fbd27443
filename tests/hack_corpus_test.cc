// The planted-hack corpus (tests/hacks/*), end to end through the real code:
// each candidate is evaluated the way a worker evaluates it (Worker::RunJob:
// the real harness in the real sandbox), then, as a claim against the
// corpus's honest incumbent, verified the way the verifier and coordinator
// verify it: screening (ScreenClaim), replays of candidate and incumbent
// interleaved in pairs on fresh seeds with the campaign's tiers (the harness's
// --verify checks and the worker's independent timing), the early decision on
// hack evidence, the noise floor kept from earlier verifications' incumbent
// replays, and the verdict from the verifier's own Judge/Decide.
//
// Each corpus has a manifest, corpus.json: the incumbent, the harness and
// verification settings, and per candidate the expected verdict class and
// reason (docs/verifier.md, "The planted-hack corpus"). The test prints a
// table and the catch and false-positive rates.
//
// Environment overrides, for binaries carried to another machine
// (tests/hacks/cuda/run_corpus.sh): RATCHET_HACKS_DIR (the tests/hacks
// folder), RATCHET_HARNESS, RATCHET_HARNESS_CUDA, RATCHET_GPU_PROBE.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "common/names.h"
#include "common/noise_floor.h"
#include "services/verifier/verdict.h"
#include "spec/names.h"
#include "worker/hardware.h"
#include "worker/sandbox.h"
#include "worker/worker.h"

namespace ratchet {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Env(const char* name, const std::string& fallback) {
  const char* e = std::getenv(name);
  return e != nullptr && *e ? std::string(e) : fallback;
}

fs::path SelfDir() {
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (n <= 0) return ".";
  self[n] = 0;
  return fs::path(self).parent_path();
}

fs::path HacksDir() { return Env("RATCHET_HACKS_DIR", RATCHET_SOURCE_DIR "/tests/hacks"); }

// A solution folder as the CLI reads a baseline: every file, by relative path.
std::map<std::string, std::string> SolutionFiles(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files[fs::relative(e.path(), dir).string()] = ReadAll(e.path());
  return files;
}

struct Expectation {
  std::string name;
  // Any of these verdict classes: "accepted", "rejected-hack", ... A hack may
  // list "accepted" only when its cheat has no trigger under this harness
  // (it runs its honest kernel in every call made): it is then counted as
  // neutralized, not as caught.
  std::vector<std::string> verdicts;
  std::vector<std::string> reasons;  // any of these; empty for accepted
  // "beats-incumbent" (the plain evaluator scores it above the incumbent),
  // "no-gain" (the cheat does not pay: its plain score is not above the
  // incumbent's), or the outcomes with which the plain evaluation's own
  // guards may stop it.
  std::vector<std::string> plain = {"beats-incumbent"};
  bool plain_allows(const std::string& what) const {
    return std::find(plain.begin(), plain.end(), what) != plain.end();
  }
  int claim_best_of = 1;             // the claim is the best of this many plain runs
  bool allows(const std::string& v) const {
    return std::find(verdicts.begin(), verdicts.end(), v) != verdicts.end();
  }
  bool honest() const { return verdicts == std::vector<std::string>{"accepted"}; }
};

struct Corpus {
  fs::path dir;
  v1::Device device = v1::DEVICE_CPU;
  std::string incumbent;
  v1::HarnessSettings harness;
  v1::VerificationPolicy policy;
  std::vector<Expectation> candidates;
};

Corpus LoadCorpus(const fs::path& dir) {
  Corpus c;
  c.dir = dir;
  Json j = Json::parse(ReadAll(dir / "corpus.json"));
  const std::string device = j.value("device", "cpu");
  if (!spec::Parse(device, &c.device)) ADD_FAILURE() << "corpus.json: unknown device " << device;
  c.incumbent = j.at("incumbent").get<std::string>();
  const Json& h = j.at("harness");
  c.harness.set_warmups(h.value("warmups", 2));
  c.harness.set_repetitions(h.value("repetitions", 10));
  c.harness.set_correctness_rounds(h.value("correctness_rounds", 2));
  c.harness.set_timeout_seconds(h.value("timeout_seconds", 120.0));
  const Json& v = j.at("verification");
  c.policy.set_replays(v.value("replays", 3));
  c.policy.set_min_gain(v.value("min_gain", 0.0));
  c.policy.set_significance(v.value("significance", 0.05));
  c.policy.set_timing_tolerance(v.value("timing_tolerance", 0.5));
  c.policy.set_noise_sigmas(v.value("noise_sigmas", 2.0));
  c.policy.set_max_replays(v.value("max_replays", 20));
  for (const std::string& t : v.value("tiers", std::vector<std::string>{
                                                  "guards", "replay", "adversarial",
                                                  "independent-timing"}))
    c.policy.add_tiers(t);
  // RATCHET_CORPUS_ONLY=name[,name...] runs just those candidates (and the
  // incumbent): a GPU machine's time is short, a re-run need not repeat all.
  const std::string only = Env("RATCHET_CORPUS_ONLY", "");
  for (const Json& e : j.at("candidates")) {
    Expectation x;
    x.name = e.at("name").get<std::string>();
    if (!only.empty() && ("," + only + ",").find("," + x.name + ",") == std::string::npos) continue;
    x.verdicts = e.at("expect").is_array() ? e["expect"].get<std::vector<std::string>>()
                                           : std::vector<std::string>{e["expect"].get<std::string>()};
    if (e.contains("reason")) {
      if (e["reason"].is_array())
        x.reasons = e["reason"].get<std::vector<std::string>>();
      else
        x.reasons = {e["reason"].get<std::string>()};
    }
    if (e.contains("plain"))
      x.plain = e["plain"].is_array() ? e["plain"].get<std::vector<std::string>>()
                                      : std::vector<std::string>{e["plain"].get<std::string>()};
    x.claim_best_of = e.value("claim_best_of", 1);
    c.candidates.push_back(x);
  }
  return c;
}

struct Row {
  std::string name;
  bool honest = false;
  double plain = 0;            // the claim's score (best of claim_best_of runs)
  std::string plain_note;      // how the plain evaluation went
  std::string expected, got;   // "rejected-hack (cached-answer)"
  bool caught = false;         // a hack not accepted (at either stage)
  bool neutralized = false;   // a hack accepted on its honest kernel (no trigger)
  bool pass = false;
  std::string detail;
};

std::string Shorten(const std::string& s, size_t n = 150) {
  std::string line = s.substr(0, s.find('\n'));
  return line.size() > n ? line.substr(0, n) + "..." : line;
}

// Every timed replay's outside/in-process ratio, so that a run on another
// machine shows how the independent timing read there.
std::string TimingRatios(const v1::Verification& verdict) {
  std::string ratios;
  for (const auto& t : verdict.evidence().timings())
    absl::StrAppend(&ratios, absl::StrFormat(" j%d:w%d %.0f/%.0f=x%.2f", t.job_id(), t.workload(),
                                             t.t_outside_ns(), t.t_k_ns(),
                                             t.t_outside_ns() / t.t_k_ns()));
  return ratios.empty() ? "" : "\n  outside/in-process ns:" + ratios;
}

// Runs a corpus the way the cluster would, one job at a time on one worker.
class CorpusRun {
 public:
  CorpusRun(Corpus corpus, worker::Worker* worker, v1::Hardware hardware)
      : corpus_(std::move(corpus)), worker_(worker), hardware_(std::move(hardware)) {
    problem_.set_definition_json(ReadAll(corpus_.dir / "definition.json"));
    problem_.set_workload_jsonl(ReadAll(corpus_.dir / "workload.jsonl"));
    problem_.set_name(Json::parse(problem_.definition_json()).value("name", "problem"));
    hardware_key_ = HardwareKey(hardware_, corpus_.device == v1::DEVICE_CUDA);
  }

  std::vector<Row> Run() {
    const int64_t incumbent_id = CandidateId(corpus_.incumbent);
    const v1::Evaluation inc = Evaluate(corpus_.incumbent);
    std::printf("incumbent %s: plain %s score %.4f (%s)\n", corpus_.incumbent.c_str(),
                OutcomeName(inc.outcome()).c_str(), inc.score(), Shorten(inc.message()).c_str());
    std::fflush(stdout);
    EXPECT_EQ(inc.outcome(), v1::OUTCOME_OK) << inc.message();
    std::vector<Row> rows;
    for (const Expectation& x : corpus_.candidates) {
      const auto started = std::chrono::steady_clock::now();
      Row row;
      row.name = x.name;
      row.honest = x.honest();
      row.expected = !x.plain_allows("beats-incumbent") && !x.plain_allows("no-gain")
                         ? absl::StrCat("guards (", absl::StrJoin(x.plain, "|"), ")")
                     : x.reasons.empty() ? absl::StrJoin(x.verdicts, "|")
                                         : absl::StrCat(absl::StrJoin(x.verdicts, "|"), " (",
                                                                   absl::StrJoin(x.reasons, "|"),
                                                                   ")");
      // The plain evaluation, as a research thread gets it; a claim is made
      // from the best of claim_best_of runs (one, unless the corpus stages a
      // lucky re-run).
      v1::Evaluation best;
      for (int i = 0; i < x.claim_best_of; ++i) {
        v1::Evaluation e = Evaluate(x.name);
        if (i == 0 || (e.outcome() == v1::OUTCOME_OK && e.score() > best.score()))
          best = std::move(e);
        if (best.outcome() != v1::OUTCOME_OK) break;
      }
      row.plain = best.score();
      if (best.outcome() != v1::OUTCOME_OK) {
        // The guards of the plain evaluation stopped it: never claimed.
        row.plain_note = absl::StrCat("plain ", OutcomeName(best.outcome()));
        row.got = absl::StrCat("guards (", OutcomeName(best.outcome()), ")");
        row.caught = true;
        row.pass = x.plain_allows(OutcomeName(best.outcome()));
        row.detail = Shorten(best.message(), 300);
      } else {
        const bool beats = best.score() > inc.score();
        row.plain_note = absl::StrFormat("%.4f %s %.4f", best.score(), beats ? ">" : "<=",
                                         inc.score());
        v1::Verification claim;
        claim.set_id(++verification_id_);
        claim.set_candidate_id(CandidateId(x.name));
        claim.set_incumbent_candidate_id(incumbent_id);
        claim.set_claimed_score(best.score());
        claim.set_incumbent_score(inc.score());
        claim.set_claim_worker_id(kWorkerId);
        *claim.mutable_policy() = corpus_.policy;
        v1::Verification verdict = Verify(claim, x.name);
        // rejected-flaky says the replays could not decide (a spell of other
        // load on this 2-core machine reads like an unsteady clock): where
        // the corpus expects a decision, the claim is verified once more, as
        // a later claim of the same candidate would be.
        if (verdict.outcome() == v1::VERDICT_REJECTED_FLAKY && !x.allows("rejected-flaky")) {
          std::printf("%-22s rejected-flaky (%s): verified once more\n  %s%s\n",
                      x.name.c_str(), verdict.reason().c_str(),
                      Shorten(verdict.detail(), 400).c_str(), TimingRatios(verdict).c_str());
          claim.set_id(++verification_id_);
          verdict = Verify(claim, x.name);
        }
        row.got = verdict.outcome() == v1::VERDICT_ACCEPTED
                      ? "accepted"
                      : absl::StrCat(VerdictName(verdict.outcome()), " (", verdict.reason(), ")");
        row.caught = verdict.outcome() != v1::VERDICT_ACCEPTED;
        const bool class_ok = x.allows(VerdictName(verdict.outcome()));
        row.neutralized = !x.honest() && verdict.outcome() == v1::VERDICT_ACCEPTED;
        const bool reason_ok =
            x.reasons.empty() ||
            std::find(x.reasons.begin(), x.reasons.end(), verdict.reason()) != x.reasons.end();
        // A lucky re-run may or may not beat the incumbent's figure; every
        // other candidate's premise is that the plain evaluator prefers it.
        // "no-gain": the cheat no longer pays under this evaluator; claimed
        // anyway, the verifier must still reject it.
        const bool premise =
            (x.plain_allows("beats-incumbent") && (beats || x.claim_best_of > 1)) ||
            (x.plain_allows("no-gain") && !beats);
        row.pass = premise && class_ok && reason_ok;
        row.detail = Shorten(verdict.detail(), 400);
        row.detail += TimingRatios(verdict);
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                           started).count();
      std::printf("%-22s plain %-26s -> %-40s %s (%.0f s)\n  %s\n", row.name.c_str(),
                  row.plain_note.c_str(), row.got.c_str(), row.pass ? "ok" : "UNEXPECTED",
                  seconds, row.detail.c_str());
      std::fflush(stdout);
      rows.push_back(row);
    }
    return rows;
  }

 private:
  static constexpr const char* kWorkerId = "corpus-worker";

  int64_t CandidateId(const std::string& name) {
    auto it = ids_.find(name);
    if (it != ids_.end()) return it->second;
    const int64_t id = static_cast<int64_t>(ids_.size()) + 1;
    ids_[name] = id;
    names_[id] = name;
    return id;
  }

  v1::Job MakeJob(const std::string& name, v1::JobKind kind) {
    v1::Job job;
    job.set_id(++job_id_);
    job.set_campaign_id(1);
    job.set_candidate_id(CandidateId(name));
    job.set_kind(kind);
    job.set_seed(seeds_());  // fresh inputs every job, as the coordinator draws them
    *job.mutable_problem() = problem_;
    for (const auto& [path, content] : SolutionFiles(corpus_.dir / name))
      (*job.mutable_solution()->mutable_files())[path] = content;
    *job.mutable_harness() = corpus_.harness;
    job.set_device(corpus_.device);
    if (kind == v1::JOB_REPLAY) {
      job.set_adversarial(verifier::TierEnabled(corpus_.policy, "adversarial"));
      job.set_independent_timing(verifier::TierEnabled(corpus_.policy, "independent-timing"));
    }
    return job;
  }

  v1::Evaluation RunJob(const v1::Job& job) {
    bool cancelled = false;
    v1::Evaluation e = worker_->RunJob(job, nullptr, &cancelled);
    EXPECT_FALSE(cancelled);
    e.set_worker_id(kWorkerId);
    if (e.outcome() != v1::OUTCOME_OK) e.set_score(0);  // as the coordinator stores it
    return e;
  }

  v1::Evaluation Evaluate(const std::string& name) {
    return RunJob(MakeJob(name, v1::JOB_EVALUATE));
  }

  // The verifier's side of a claim, with the coordinator's replay jobs.
  v1::Verification Verify(const v1::Verification& claim, const std::string& name) {
    const v1::Verification screened =
        verifier::ScreenClaim(claim, SolutionFiles(corpus_.dir / name),
                              SolutionFiles(corpus_.dir / corpus_.incumbent));
    // The coordinator queues the policy's replays a side with the claim.
    int per_side = std::max(1, claim.policy().replays()), have = 0;
    v1::ReplayBundle r;
    (*r.mutable_worker_hardware())[kWorkerId] = hardware_key_;
    if (auto it = floors_.find(hardware_key_); it != floors_.end())
      *r.add_noise_floors() = it->second;
    // As the verifier does with each bundle, every replay ended: more
    // replays while it asks for them (screening's first look, or a promising
    // claim not yet significant), then the verdict.
    std::vector<v1::Job> jobs;
    for (;;) {
      // Interleaved, candidate first, in pairs on one fresh seed, as the
      // coordinator queues them; the worker's rounds cache (as a cluster's
      // worker has one) serves the pair's second half.
      for (int i = have; i < per_side; ++i) {
        const uint64_t pair_seed = seeds_();
        for (const std::string& who : {name, corpus_.incumbent}) {
          v1::Job job = MakeJob(who, v1::JOB_REPLAY);
          job.set_seed(pair_seed);
          job.set_verification_id(claim.id());
          job.set_state(v1::JOB_QUEUED);
          jobs.push_back(job);
          job.clear_problem();  // the bundle lists jobs without them
          job.clear_solution();
          *r.add_jobs() = job;
        }
      }
      have = per_side;
      for (size_t i = static_cast<size_t>(r.evaluations_size()); i < jobs.size(); ++i) {
        v1::Evaluation e = RunJob(jobs[i]);
        r.mutable_jobs(static_cast<int>(i))
            ->set_state(e.outcome() == v1::OUTCOME_OK ? v1::JOB_DONE : v1::JOB_FAILED);
        *r.add_evaluations() = e;
      }
      const int wanted = verifier::ReplaysWanted(screened, r);
      if (wanted <= per_side) break;
      per_side = wanted;
    }
    const v1::Verification verdict = verifier::Judge(screened, r);
    // What the coordinator keeps from the incumbent's replays: the noise floor.
    std::vector<double> inc;
    for (const auto& e : r.evaluations())
      if (e.candidate_id() == claim.incumbent_candidate_id() && e.outcome() == v1::OUTCOME_OK)
        inc.push_back(e.score());
    if (inc.size() >= 2) {
      v1::NoiseFloor& floor = floors_[hardware_key_];
      floor.set_problem(problem_.name());
      floor.set_workload("score");
      floor.set_hardware(hardware_key_);
      AddNoiseGroup(inc, 0, &floor);
    }
    return verdict;
  }

  Corpus corpus_;
  worker::Worker* worker_;
  v1::Hardware hardware_;
  v1::Problem problem_;
  std::string hardware_key_;
  std::map<std::string, int64_t> ids_;
  std::map<int64_t, std::string> names_;
  std::map<std::string, v1::NoiseFloor> floors_;
  int64_t job_id_ = 0, verification_id_ = 0;
  std::mt19937_64 seeds_{std::random_device{}()};
};

void PrintSummary(const std::string& title, const std::vector<Row>& rows) {
  int hacks = 0, caught = 0, neutralized = 0, honest = 0, false_positives = 0, passed = 0;
  std::printf("\n%s\n", title.c_str());
  std::printf("%-22s | %-26s | %-42s | %-42s | %s\n", "candidate", "plain score (vs incumbent)",
              "expected", "got", "pass");
  std::printf("%s\n", std::string(150, '-').c_str());
  for (const Row& r : rows) {
    std::printf("%-22s | %-26s | %-42s | %-42s | %s\n", r.name.c_str(), r.plain_note.c_str(),
                r.expected.c_str(), r.got.c_str(), r.pass ? "yes" : "NO");
    if (r.honest) {
      ++honest;
      if (r.caught) ++false_positives;
    } else if (r.neutralized && r.pass) {
      ++neutralized;
    } else {
      ++hacks;
      if (r.caught) ++caught;
    }
    if (r.pass) ++passed;
  }
  std::printf("%s\n", std::string(150, '-').c_str());
  std::printf("catch rate %d/%d (%.0f%%), neutralized %d (no trigger: honest in every call, "
              "accepted on that), false-positive rate %d/%d (%.0f%%), as expected %d/%zu\n\n",
              caught, hacks, hacks ? 100.0 * caught / hacks : 0.0, neutralized, false_positives,
              honest, honest ? 100.0 * false_positives / honest : 0.0, passed, rows.size());
  std::fflush(stdout);
}

void RunCorpus(const std::string& name, worker::WorkerOptions options, v1::Hardware hw) {
  const fs::path dir = HacksDir() / name;
  ASSERT_TRUE(fs::exists(dir / "corpus.json")) << dir << ": no corpus.json";
  Corpus corpus = LoadCorpus(dir);
  char tmpl[] = "/tmp/ratchet-hack-corpus-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  options.coordinator = "127.0.0.1:1";  // RunJob never talks to it
  options.scratch_root = tmpl;
  if (corpus.device == v1::DEVICE_CUDA)
    options.tb_cache_dir = (fs::path(tmpl) / "tb-cache").string();
  // As `ratchet worker` keeps one by default: every candidate is tried
  // against the path that hands a replay pair's second half its rounds.
  options.rounds_cache_dir = (fs::path(tmpl) / "rounds-cache").string();
  std::string warning;
  auto sandbox = worker::Sandbox::Create("auto", &warning);
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  if (!warning.empty()) std::printf("sandbox: %s\n", warning.c_str());
  std::printf("corpus %s on %s (sandbox %s), %zu candidates against %s\n", name.c_str(),
              worker::HardwareSummary(hw).c_str(), sandbox->name(), corpus.candidates.size(),
              corpus.incumbent.c_str());
  worker::Worker worker(options, *std::move(sandbox), hw, nullptr);
  CorpusRun run(corpus, &worker, hw);
  const auto started = std::chrono::steady_clock::now();
  const std::vector<Row> rows = run.Run();
  PrintSummary(absl::StrFormat("hack corpus %s (%.0f s)", name,
                               std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                                             started).count()),
               rows);
  for (const Row& r : rows)
    EXPECT_TRUE(r.pass) << r.name << ": expected " << r.expected << ", got " << r.got
                        << " (plain " << r.plain_note << "): " << r.detail;
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

TEST(HackCorpus, Cpu) {
  const fs::path harness = Env("RATCHET_HARNESS", (SelfDir() / "ratchet-harness").string());
  if (!fs::exists(harness)) GTEST_SKIP() << harness << " is not built";
  v1::Hardware hw = worker::DescribeHardware();
  worker::MeasurePeaks(&hw);  // as a worker does at start
  worker::WorkerOptions o;
  o.harness_path = harness.string();
  RunCorpus("matmul", o, hw);
}

TEST(HackCorpus, Cuda) {
  const fs::path harness =
      Env("RATCHET_HARNESS_CUDA", (SelfDir() / "ratchet-harness-cuda").string());
  const fs::path probe = Env("RATCHET_GPU_PROBE", (SelfDir() / "ratchet-gpu-probe").string());
  if (!fs::exists(harness)) GTEST_SKIP() << harness << " is not built (no CUDA toolkit)";
  if (!fs::exists(probe)) GTEST_SKIP() << probe << " is not built (no CUDA toolkit)";
  v1::Hardware hw = worker::DescribeHardware();
  const std::string found = worker::ProbeGpus(probe.string(), /*measure=*/false, 120, &hw);
  if (hw.gpus_size() == 0) GTEST_SKIP() << "no GPU: " << found;
  std::printf("%s\n", found.c_str());
  worker::WorkerOptions o;
  o.cuda_harness_path = harness.string();
  o.harness_path = Env("RATCHET_HARNESS", (SelfDir() / "ratchet-harness").string());
  RunCorpus("cuda", o, hw);
}

// Every CUDA corpus candidate compiles for sm_90 (nvcc only, no GPU).
TEST(CudaCorpus, Compiles) {
  const fs::path harness =
      Env("RATCHET_HARNESS_CUDA", (SelfDir() / "ratchet-harness-cuda").string());
  if (!fs::exists(harness)) GTEST_SKIP() << harness << " is not built (no CUDA toolkit)";
  const fs::path dir = HacksDir() / "cuda";
  Corpus corpus = LoadCorpus(dir);
  char tmpl[] = "/tmp/ratchet-cuda-corpus-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::vector<std::string> names = {corpus.incumbent};
  for (const Expectation& x : corpus.candidates) names.push_back(x.name);
  for (const std::string& name : names) {
    const fs::path out = fs::path(tmpl) / (name + ".json");
    const std::string cmd = absl::StrCat(
        "'", harness.string(), "' --compile-only --arch sm_90 --problem '", dir.string(),
        "' --solution '", (dir / name).string(), "' --out '", out.string(), "' --scratch '",
        (fs::path(tmpl) / name).string(), "' > '", out.string(), ".log' 2>&1");
    const int rc = std::system(cmd.c_str());
    EXPECT_EQ(rc, 0) << name << ": " << ReadAll(out.string() + ".log");
    const std::string text = ReadAll(out);
    Json result = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(result.is_discarded()) << name << ": no result: " << text;
    EXPECT_EQ(result.value("outcome", ""), "ok")
        << name << ": " << result.value("message", "") << "\n"
        << ReadAll(out.string() + ".log");
  }
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

}  // namespace
}  // namespace ratchet
