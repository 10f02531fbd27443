#include "worker/rounds_cache.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <sstream>
#include <tuple>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ratchet::worker {
namespace {

// In an entry made for a replay's seed (a verification's pair shares it).
constexpr char kReplayMark[] = "replay-seed";

namespace fs = std::filesystem;

// FNV-1a over the parts, as hex: an entry's name. A collision costs nothing
// but a miss: the harness uses given rounds only where their request is its.
std::string Fnv1a(const std::vector<std::string>& parts) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const std::string& p : parts) {
    for (unsigned char c : p) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;  // a separator
  }
  return absl::StrFormat("%016x", h);
}

bool WriteText(const fs::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  return static_cast<bool>(f);
}

std::string ReadText(const fs::path& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The job's view of a cache folder: round data (`*.bin`, large) as hard
// links, the rest (manifest, request: small) as copies. The harness only
// ever unlinks, renames or replaces the data files (never writes into one),
// so the cache's inodes stay as made; they are read-only besides.
bool LinkRounds(const fs::path& from, const fs::path& to, std::error_code& ec) {
  fs::create_directories(to, ec);
  for (const auto& e : fs::directory_iterator(from, ec)) {
    const fs::path dst = to / e.path().filename();
    if (e.is_directory()) {
      if (!LinkRounds(e.path(), dst, ec)) return false;
      continue;
    }
    if (e.path().extension() == ".bin") {
      fs::create_hard_link(e.path(), dst, ec);
      if (!ec) continue;
      ec.clear();  // another file system: a copy
    }
    fs::copy_file(e.path(), dst, ec);
    if (ec) return false;
  }
  return !ec;
}

void MakeReadOnly(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file())
      fs::permissions(e.path(), fs::perms::owner_read | fs::perms::group_read |
                                    fs::perms::others_read, ec);
}

}  // namespace

bool RoundsCache::Applies(const v1::Job& job, const kernels::HarnessArgs& args) {
  const bool shared_seed = (job.kind() == v1::JOB_EVALUATE && job.shared_inputs()) ||
                           job.kind() == v1::JOB_REPLAY;
  return shared_seed && !args.baseline.empty() && args.back_to_back <= 0;
}

std::string RoundsCache::Key(const v1::Job& job, const kernels::HarnessArgs& args) {
  return Fnv1a({job.problem().definition_json(), job.problem().workload_jsonl(),
                absl::StrCat(job.seed()), absl::StrCat(args.warmups.value_or(-1)),
                absl::StrCat(args.repetitions.value_or(-1)), absl::StrCat(args.rounds.value_or(-1)),
                args.screen, args.kind == kernels::HarnessKind::kCuda ? "cuda" : "cpu",
                args.python});
}

std::string RoundsCache::Provide(
    const v1::Job& job, const kernels::HarnessArgs& job_args, const SandboxSpec& job_spec,
    const Sandbox& sandbox, const RunHooks& hooks, const fs::path& job_scratch,
    const std::function<std::vector<std::string>(const kernels::HarnessArgs&)>& command_line,
    const std::function<void(const std::string&)>& log, double* seconds) {
  *seconds = 0;
  if (dir_.empty() || !Applies(job, job_args)) return "";
  const auto t0 = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mu_);
  const fs::path entry = fs::path(dir_) / Key(job, job_args);
  std::error_code ec;
  if (!fs::exists(entry / "complete", ec) &&
      !Make(job, job_args, job_spec, sandbox, hooks, entry, command_line, log))
    return "";
  // The job's own folder of links: the harness moves them into its own
  // folders and replaces the references by decoys (new files); the cache
  // stays as the oracle-only run left it.
  const fs::path given = job_scratch / "given-rounds";
  fs::remove_all(given, ec);
  fs::create_directories(given, ec);
  for (const char* sub : {"oracle", "oracle-screen"}) {
    if (!fs::exists(entry / sub, ec)) continue;
    if (!LinkRounds(entry / sub, given / sub, ec)) {
      log(absl::StrCat("rounds cache: copying ", (entry / sub).string(), ": ", ec.message()));
      fs::remove_all(given, ec);
      return "";
    }
  }
  fs::last_write_time(entry / "complete", fs::file_time_type::clock::now(), ec);  // recently used
  log(absl::StrCat("rounds cache: job ", job.id(), " gets the rounds of seed ", job.seed()));
  *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return given.string();
}

bool RoundsCache::Make(
    const v1::Job& job, const kernels::HarnessArgs& job_args, const SandboxSpec& job_spec,
    const Sandbox& sandbox, const RunHooks& hooks, const fs::path& entry,
    const std::function<std::vector<std::string>(const kernels::HarnessArgs&)>& command_line,
    const std::function<void(const std::string&)>& log) {
  // A folder of its own, the problem's files only: no candidate file or
  // process is ever in it.
  std::error_code ec;
  const fs::path work = fs::path(dir_) / (entry.filename().string() + ".partial");
  fs::remove_all(work, ec);
  for (const char* sub : {"problem", "work", "tmp", "home"}) fs::create_directories(work / sub, ec);
  if (!WriteText(work / "problem" / "definition.json", job.problem().definition_json()) ||
      !WriteText(work / "problem" / "workload.jsonl", job.problem().workload_jsonl())) {
    log(absl::StrCat("rounds cache: cannot write ", (work / "problem").string()));
    fs::remove_all(work, ec);
    return false;
  }
  kernels::HarnessArgs a = job_args;
  a.oracle_only = true;
  a.compile_only = false;
  a.problem = (work / "problem").string();
  a.scratch = (work / "work").string();
  a.out = (work / "result.json").string();
  a.baseline.clear();
  a.given_rounds.clear();
  a.knobs.clear();
  SandboxSpec spec = job_spec;
  spec.argv = command_line(a);
  spec.scratch_dir = work.string();
  for (std::string& e : spec.env) {
    if (absl::StartsWith(e, "TMPDIR=")) e = "TMPDIR=" + (work / "tmp").string();
    if (absl::StartsWith(e, "HOME=")) e = "HOME=" + (work / "home").string();
    if (absl::StartsWith(e, "XDG_CACHE_HOME=")) e = "XDG_CACHE_HOME=" + (work / "home/.cache").string();
  }
  auto run = sandbox.Run(spec, hooks);
  const std::string result = ReadText(work / "result.json");
  const auto parsed = kernels::FromJson(result);
  const bool ok = run.ok() && !run->timed_out && !run->cancelled && !run->scratch_exceeded &&
                  run->signal == 0 && parsed.ok() && parsed->outcome == kernels::kOutcomeOk &&
                  fs::exists(work / "work" / "oracle" / "oracle_manifest.json", ec);
  if (!ok) {
    log(absl::StrCat("rounds cache: the oracle-only run for seed ", job.seed(), " failed (",
                     run.ok() ? absl::StrCat("exit ", run->exit_code, run->timed_out ? ", timed out" : "")
                              : std::string(run.status().message()),
                     "): the job runs its own oracle"));
    fs::remove_all(work, ec);
    return false;
  }
  fs::remove_all(entry, ec);
  fs::create_directories(entry, ec);
  for (const char* sub : {"oracle", "oracle-screen"})
    if (fs::exists(work / "work" / sub, ec)) fs::rename(work / "work" / sub, entry / sub, ec);
  // A replay's seed serves its pair only: such entries go first (Evict).
  if (job.kind() == v1::JOB_REPLAY) WriteText(entry / kReplayMark, "");
  MakeReadOnly(entry);
  const bool made = !ec && WriteText(entry / "complete", result);
  fs::remove_all(work, ec);
  if (!made) {
    fs::remove_all(entry, ec);
    return false;
  }
  log(absl::StrCat("rounds cache: made the rounds of seed ", job.seed(), " in ",
                   absl::StrFormat("%.1f s", run->wall_seconds)));
  Evict(entry);
  return true;
}

void RoundsCache::Evict(const fs::path& keep) {
  // Past max_entries_, replays' entries go first (a pair uses one twice,
  // then never again), then the least recently used: a campaign's seed
  // stays while its verifications come and go.
  std::vector<std::tuple<bool, fs::file_time_type, fs::path>> entries;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec)) {
    if (!e.is_directory() || e.path() == keep) continue;
    const bool replay = fs::exists(e.path() / kReplayMark, ec);
    const auto t = fs::last_write_time(e.path() / "complete", ec);
    entries.emplace_back(!replay, ec ? fs::file_time_type::min() : t, e.path());
  }
  std::sort(entries.begin(), entries.end());
  const int extra = static_cast<int>(entries.size()) + 1 - max_entries_;
  for (int i = 0; i < extra && i < static_cast<int>(entries.size()); ++i)
    fs::remove_all(std::get<2>(entries[static_cast<size_t>(i)]), ec);
}

}  // namespace ratchet::worker
