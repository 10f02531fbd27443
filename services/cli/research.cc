#include "services/cli/research.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "coordinator/proposers/knob_space.h"
#include "kernels/harness/public_solution.h"
#include "kernels/harness/subprocess.h"
#include "kernels/problem/problem.h"
#include "nlohmann/json.hpp"
#include "services/cli/commands.h"
#include "services/cli/plot.h"
#include "common/auth.h"
#include "services/cli/summary.h"
#include "common/flags.h"
#include "common/names.h"
#include "spec/names.h"

namespace ratchet::cli {
namespace {

namespace v1 = ratchet::v1;
namespace fs = std::filesystem;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();  // the final newline
  return lines;
}

// One step of an edit script: ' ' keep, '-' from `from`, '+' from `to`.
struct Edit {
  char op;
  size_t from_line;  // index in from (for ' ' and '-')
  size_t to_line;    // index in to (for ' ' and '+')
};

// Longest common subsequence of lines; kernel sources are small enough for
// the quadratic table. Past a size cap, the whole file is one change.
std::vector<Edit> EditScript(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  std::vector<Edit> script;
  const size_t n = a.size(), m = b.size();
  if (n * m > 25'000'000) {
    for (size_t i = 0; i < n; ++i) script.push_back({'-', i, 0});
    for (size_t j = 0; j < m; ++j) script.push_back({'+', n, j});
    return script;
  }
  std::vector<std::vector<uint32_t>> lcs(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      script.push_back({' ', i++, j++});
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      script.push_back({'-', i++, j});  // removals first, as diff -u prints them
    } else {
      script.push_back({'+', i, j++});
    }
  }
  return script;
}

std::string Range(size_t start, size_t count) {
  // diff -u numbers lines from 1; an empty range names the line before it.
  if (count == 0) return absl::StrCat(start, ",0");
  if (count == 1) return absl::StrCat(start + 1);
  return absl::StrCat(start + 1, ",", count);
}

// `s` as a JSON string literal.
std::string JsonString(const std::string& s) { return nlohmann::json(s).dump(); }

int Fail(std::ostream& err, const std::string& what) {
  err << "ratchet: " << what << "\n";
  return kExitFailure;
}

int UsageError(std::ostream& err, const std::string& cmd, const std::string& what) {
  err << "ratchet " << cmd << ": " << what << "\n\n" << CommandUsage(cmd);
  return kExitUsage;
}

class Client {
 public:
  Client(const Flags& flags, std::ostream& err)
      : address_(CoordinatorAddress(flags)), err_(err) {
    auto stub = MakeStub(address_, flags);  // with the caller's credentials
    if (stub.ok()) {
      stub_ = std::move(*stub);
    } else {
      dial_error_ = std::string(stub.status().message());
    }
  }

  bool Campaign(int64_t id, v1::Campaign* out) {
    v1::GetCampaignRequest req;
    req.set_campaign_id(id);
    return Call(&Stub::GetCampaign, req, out);
  }
  bool Candidate(int64_t id, v1::CandidateDetail* out) {
    v1::GetCandidateRequest req;
    req.set_candidate_id(id);
    return Call(&Stub::GetCandidate, req, out);
  }
  // The top `limit` (0: every scored candidate).
  bool Leaderboard(int64_t id, v1::Leaderboard* out, int limit = 10) {
    v1::GetLeaderboardRequest req;
    req.set_campaign_id(id);
    req.set_limit(limit);
    return Call(&Stub::GetLeaderboard, req, out);
  }
  bool Events(int64_t id, int64_t after_seq, int limit, v1::ListEventsResponse* out) {
    v1::ListEventsRequest req;
    req.set_campaign_id(id);
    req.set_after_seq(after_seq);
    req.set_limit(limit);
    return Call(&Stub::ListEvents, req, out);
  }
  bool Pause(int64_t id, bool pause, v1::Campaign* out) {
    if (pause) {
      v1::PauseCampaignRequest req;
      req.set_campaign_id(id);
      return Call(&Stub::PauseCampaign, req, out);
    }
    v1::ResumeCampaignRequest req;
    req.set_campaign_id(id);
    return Call(&Stub::ResumeCampaign, req, out);
  }

 private:
  using Stub = v1::CoordinatorService::Stub;

  // One unary call under the CLI's deadline; a failure is printed.
  template <typename Request, typename Reply>
  bool Call(grpc::Status (Stub::*rpc)(grpc::ClientContext*, const Request&, Reply*),
            const Request& req, Reply* out) {
    if (stub_ == nullptr) {
      err_ << "ratchet: " << dial_error_ << "\n";
      return false;
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(kRpcDeadlineSeconds));
    const grpc::Status s = (stub_.get()->*rpc)(&ctx, req, out);
    if (!s.ok()) err_ << "ratchet: " << RpcErrorLine(address_, s) << "\n";
    return s.ok();
  }

  std::string address_;
  std::ostream& err_;
  std::unique_ptr<v1::CoordinatorService::Stub> stub_;
  std::string dial_error_;
};

bool ParseId(const std::string& text, int64_t* id) {
  return absl::SimpleAtoi(text, id) && *id > 0;
}

absl::Status WriteFile(const fs::path& path, const std::string& content) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (ec) return absl::InternalError(absl::StrCat(path.parent_path().string(), ": ", ec.message()));
  std::ofstream f(path, std::ios::binary);
  f << content;
  f.close();
  if (!f) return absl::InternalError(absl::StrCat("cannot write ", path.string()));
  return absl::OkStatus();
}

// A relative path that stays inside its folder (no "..", not absolute).
bool SafeRelative(const std::string& path) {
  fs::path p(path);
  if (p.empty() || p.is_absolute()) return false;
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

// One word to the shell, whatever it holds: inside single quotes only ' is
// special, and it is closed, escaped and reopened.
std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Client-supplied text made safe for one line of a comment or a heading:
// a newline in a campaign's name would otherwise end run.sh's comment and
// start a live command; other control characters (terminal escapes) become
// spaces too. UTF-8 passes unchanged.
std::string OneLine(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  return out;
}

// Like OneLine, but a multi-line description keeps its newlines (and tabs):
// README.md is read, not run.
std::string PlainText(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7f) c = ' ';
  return out;
}

bool Terminal(v1::CampaignState state) {
  return state != v1::CAMPAIGN_RUNNING && state != v1::CAMPAIGN_PAUSED;
}

// Events asked for per ListEvents call: the coordinator's own cap. A
// coordinator that caps lower sends fewer; paging ends on an empty page.
constexpr int64_t kEventsPerPage = 1'000;

// `ratchet events`: pages through the stored events after `after_seq`, at
// most `limit` of them (0: all); with `follow`, polls every second until
// the campaign has ended.
int PrintEvents(Client& client, int64_t id, int64_t after_seq, int64_t limit, bool follow,
                bool json, std::ostream& out) {
  int64_t printed = 0;
  bool followed = false;  // saw the campaign still going
  while (true) {
    // The state is read before the events: once it is terminal, the events
    // listed after it are the campaign's last. One seen ending while followed
    // gets one more look, for an event emitted just after its state was
    // stored.
    v1::Campaign campaign;
    if (!client.Campaign(id, &campaign)) return kExitFailure;
    while (limit == 0 || printed < limit) {
      const int64_t page_size =
          limit == 0 ? kEventsPerPage : std::min<int64_t>(kEventsPerPage, limit - printed);
      v1::ListEventsResponse page;
      if (!client.Events(id, after_seq, static_cast<int>(page_size), &page)) return kExitFailure;
      if (page.events_size() == 0) break;  // caught up
      for (const v1::StoredEvent& e : page.events()) {
        if (json) {
          nlohmann::json line = {{"seq", e.seq()}, {"unix_ms", e.unix_ms()}, {"text", e.text()}};
          out << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
        } else {
          const time_t seconds = static_cast<time_t>(e.unix_ms() / 1000);
          struct tm local {};
          localtime_r(&seconds, &local);
          out << absl::StrFormat("%02d:%02d:%02d  ", local.tm_hour, local.tm_min, local.tm_sec)
              << OneLine(e.text()) << "\n";
        }
        after_seq = e.seq();
        ++printed;
      }
    }
    out.flush();
    if (!follow || (limit != 0 && printed >= limit)) return kExitOk;
    if (Terminal(campaign.state())) {
      if (!followed) return kExitOk;
      followed = false;  // one more look, then done
    } else {
      followed = true;
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

}  // namespace

std::string UnifiedDiff(const std::string& from, const std::string& to,
                        const std::string& from_label, const std::string& to_label,
                        int context) {
  if (from == to) return "";
  const std::vector<std::string> a = Lines(from), b = Lines(to);
  const std::vector<Edit> script = EditScript(a, b);
  std::string out = absl::StrCat("--- ", from_label, "\n+++ ", to_label, "\n");
  size_t k = 0;
  while (k < script.size()) {
    // Next change; a hunk starts `context` lines before it and runs until a
    // stretch of more than 2*context kept lines.
    while (k < script.size() && script[k].op == ' ') ++k;
    if (k == script.size()) break;
    size_t start = k >= static_cast<size_t>(context) ? k - context : 0;
    size_t end = k;
    while (end < script.size()) {
      if (script[end].op != ' ') {
        ++end;
        continue;
      }
      size_t run = end;
      while (run < script.size() && script[run].op == ' ') ++run;
      if (run == script.size() || run - end > static_cast<size_t>(2 * context)) {
        end = std::min(script.size(), end + context);
        break;
      }
      end = run;
    }
    size_t from_start = script[start].from_line, to_start = script[start].to_line;
    size_t from_count = 0, to_count = 0;
    std::string body;
    for (size_t i = start; i < end; ++i) {
      const Edit& e = script[i];
      if (e.op != '+') ++from_count;
      if (e.op != '-') ++to_count;
      body += e.op;
      body += e.op == '+' ? b[e.to_line] : a[e.from_line];
      body += '\n';
    }
    absl::StrAppend(&out, "@@ -", Range(from_start, from_count), " +", Range(to_start, to_count),
                    " @@\n", body);
    k = end;
  }
  return out;
}

std::string DiffSolutions(const v1::Solution& from, const v1::Solution& to,
                          const std::string& from_label, const std::string& to_label) {
  std::string out;
  std::set<std::string> names;
  for (const auto& [k, v] : from.knobs()) names.insert(k);
  for (const auto& [k, v] : to.knobs()) names.insert(k);
  std::string knobs;
  for (const auto& name : names) {
    auto a = from.knobs().find(name);
    auto b = to.knobs().find(name);
    const std::string av = a == from.knobs().end() ? "" : a->second;
    const std::string bv = b == to.knobs().end() ? "" : b->second;
    if (av == bv) continue;
    if (!av.empty()) absl::StrAppend(&knobs, "-", name, "=", av, "\n");
    if (!bv.empty()) absl::StrAppend(&knobs, "+", name, "=", bv, "\n");
  }
  if (!knobs.empty())
    absl::StrAppend(&out, "knobs ", from_label, " -> ", to_label, "\n", knobs);
  std::set<std::string> files;
  for (const auto& [k, v] : from.files()) files.insert(k);
  for (const auto& [k, v] : to.files()) files.insert(k);
  for (const auto& path : files) {
    auto a = from.files().find(path);
    auto b = to.files().find(path);
    const bool in_a = a != from.files().end(), in_b = b != to.files().end();
    absl::StrAppend(&out, UnifiedDiff(in_a ? a->second : "", in_b ? b->second : "",
                                      in_a ? absl::StrCat(from_label, "/", path) : "/dev/null",
                                      in_b ? absl::StrCat(to_label, "/", path) : "/dev/null"));
  }
  return out;
}

absl::StatusOr<std::string> SolutionJsonWithDefaults(
    const std::string& solution_json,
    const google::protobuf::Map<std::string, std::string>& knobs) {
  nlohmann::json doc = nlohmann::json::parse(solution_json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object())
    return absl::InvalidArgumentError("solution.json is not a JSON object");
  if (!doc.contains("knobs") || knobs.empty()) return solution_json;
  for (auto& [name, decl] : doc["knobs"].items()) {
    auto it = knobs.find(name);
    if (it == knobs.end() || !decl.is_object()) continue;
    nlohmann::json value = it->second;  // a string unless a choice says otherwise
    if (decl.contains("choices") && decl["choices"].is_array())
      for (const auto& choice : decl["choices"]) {
        absl::StatusOr<std::string> text = proposers::KnobValue(choice, name);
        if (text.ok() && *text == it->second) value = choice;
      }
    decl["default"] = value;
  }
  return doc.dump(2) + "\n";
}

absl::Status ExportCandidate(const v1::Campaign& campaign, const v1::CandidateDetail& detail,
                             const std::string& dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (fs::exists(root, ec) && !fs::is_empty(root, ec))
    return absl::AlreadyExistsError(absl::StrCat(dir, " exists and is not empty"));
  const v1::Candidate& c = detail.candidate();
  const v1::Problem& problem = campaign.spec().problem();
  if (auto s = WriteFile(root / "problem" / "definition.json", problem.definition_json()); !s.ok())
    return s;
  if (auto s = WriteFile(root / "problem" / "workload.jsonl", problem.workload_jsonl()); !s.ok())
    return s;
  for (const auto& [path, content] : c.solution().files()) {
    if (!SafeRelative(path))
      return absl::InvalidArgumentError(absl::StrCat("solution file '", path, "' leaves its folder"));
    std::string text = content;
    if (path == "solution.json") {
      auto with_defaults = SolutionJsonWithDefaults(content, c.solution().knobs());
      if (!with_defaults.ok()) return with_defaults.status();
      text = *with_defaults;
    }
    if (auto s = WriteFile(root / "solution" / path, text); !s.ok()) return s;
  }
  const v1::HarnessSettings& h = campaign.spec().harness();
  std::string bench_flags;
  if (h.warmups() > 0) absl::StrAppend(&bench_flags, " --warmups ", h.warmups());
  if (h.repetitions() > 0) absl::StrAppend(&bench_flags, " --repetitions ", h.repetitions());
  if (h.correctness_rounds() > 0) absl::StrAppend(&bench_flags, " --rounds ", h.correctness_rounds());
  // The knobs are the solution's defaults now; they are passed as well so
  // that the command line alone says what is measured.
  std::string knob_flags;
  for (const auto& [name, value] : c.solution().knobs())
    absl::StrAppend(&knob_flags, " --knob ", ShellQuote(absl::StrCat(name, "=", value)));
  const std::string run = absl::StrCat(
      "#!/bin/sh\n"
      "# Reproduces candidate #", c.id(), " of campaign ", campaign.id(), " (",
      OneLine(campaign.spec().name()),
      "):\n# its SOL score on this machine, with the harness settings of the campaign.\n"
      "# RATCHET names the ratchet binary (default: ratchet on PATH); extra\n"
      "# arguments go to ratchet bench (e.g. --json).\n"
      "set -e\n"
      "cd \"$(dirname \"$0\")\"\n"
      "exec \"${RATCHET:-ratchet}\" bench problem solution", bench_flags, knob_flags, " \"$@\"\n");
  if (auto s = WriteFile(root / "run.sh", run); !s.ok()) return s;
  fs::permissions(root / "run.sh", fs::perms::owner_all | fs::perms::group_read |
                                       fs::perms::group_exec | fs::perms::others_read |
                                       fs::perms::others_exec, ec);
  std::string knobs;
  for (const auto& [name, value] : c.solution().knobs())
    absl::StrAppend(&knobs, "- ", OneLine(name), " = ", OneLine(value), "\n");
  std::string verdicts;
  for (const auto& v : detail.verifications())
    absl::StrAppend(&verdicts, "- claim ", v.id(), ": ", VerdictName(v.outcome()),
                    v.reason().empty() ? "" : " (" + OneLine(v.reason()) + ")", "\n");
  const std::string readme = absl::StrCat(
      "# ", OneLine(problem.name()), ": candidate #", c.id(), "\n\n",
      "From campaign ", campaign.id(), " (", OneLine(campaign.spec().name()), ", device ",
      spec::Name(campaign.spec().device()), "). Status: ", spec::Name(c.status()),
      absl::StrFormat(", score %.4f", c.score()),
      campaign.baseline_score() > 0
          ? absl::StrFormat(" (baseline %.4f, %.2fx)", campaign.baseline_score(),
                            c.score() / campaign.baseline_score())
          : "",
      ".\n\nWhat changed against its parent #", c.parent_id(), ": ", PlainText(c.description()), "\n\n",
      "## Knobs\n\n", knobs.empty() ? "none\n" : knobs, "\n",
      verdicts.empty() ? "" : absl::StrCat("## Verdicts\n\n", verdicts, "\n"),
      "## Layout\n\n"
      "- problem/: definition.json and workload.jsonl (SOL-ExecBench format)\n"
      "- solution/: the candidate's files; solution.json's knob defaults are the\n"
      "  candidate's choices\n"
      "- run.sh: `./run.sh` measures it again with `ratchet bench` (set RATCHET to\n"
      "  the binary if it is not on PATH)\n");
  return WriteFile(root / "README.md", readme);
}

absl::Status ExportSolExecBench(const v1::Campaign& campaign, const v1::CandidateDetail& detail,
                                const std::string& file) {
  std::error_code ec;
  if (fs::exists(file, ec)) return absl::AlreadyExistsError(absl::StrCat(file, " exists"));
  auto def = kernels::ParseDefinition(campaign.spec().problem().definition_json(), "definition.json");
  if (!def.ok()) return def.status();
  const v1::Candidate& c = detail.candidate();
  const std::map<std::string, std::string> files(c.solution().files().begin(),
                                                 c.solution().files().end());
  const std::map<std::string, std::string> knobs(c.solution().knobs().begin(),
                                                 c.solution().knobs().end());
  kernels::CudaCandidateExport options;
  options.name = absl::StrCat(def->name, "_ratchet_", c.id());
  options.description = absl::StrCat("ratchet candidate #", c.id(), " of campaign ", campaign.id(),
                                     ": ", OneLine(c.description()));
  // The harness's copy, beside this binary in the build tree and in a bundle.
  options.abi_header = kernels::ReadFileOrEmpty(kernels::SelfExeDir() + "/kernel_abi.h");
  if (options.abi_header.empty())
    return absl::NotFoundError(absl::StrCat("kernel_abi.h not found beside ", kernels::SelfExeDir()));
  auto solution = kernels::ExportCudaCandidate(*def, files, knobs, options);
  if (!solution.ok()) return solution.status();
  return WriteFile(file, kernels::PublicSolutionToJson(*solution));
}

int RunImportCommand(int argc, char** argv, std::ostream& out, std::ostream& err) {
  const std::string cmd = "import";
  absl::StatusOr<Flags> flags = Flags::Parse(argc - 1, argv + 1, {"json", "help"});
  if (!flags.ok()) return UsageError(err, cmd, std::string(flags.status().message()));
  if (flags->Has("help")) {
    out << CommandUsage(cmd);
    return kExitOk;
  }
  if (auto unknown = flags->Unknown({"help", "json"}); !unknown.empty())
    return UsageError(err, cmd, absl::StrCat("unknown flag --", unknown[0]));
  const auto& pos = flags->positional();
  if (pos.size() != 2) return UsageError(err, cmd, "import needs a solution JSON file and a folder");
  const std::string text = kernels::ReadFileOrEmpty(pos[0]);
  if (text.empty()) return Fail(err, absl::StrCat(pos[0], ": cannot read"));
  auto solution = kernels::ParsePublicSolution(text);
  if (!solution.ok()) return Fail(err, absl::StrCat(pos[0], ": ", solution.status().message()));
  std::error_code ec;
  if (fs::exists(pos[1], ec) && !fs::is_empty(pos[1], ec))
    return Fail(err, absl::StrCat(pos[1], " exists and is not empty"));
  if (auto s = kernels::ImportPublicSolution(*solution, pos[1]); !s.ok())
    return Fail(err, std::string(s.message()));
  if (flags->Has("json")) {
    out << absl::StrFormat("{\"folder\": %s, \"solution\": %s}\n", JsonString(pos[1]),
                           JsonString(solution->name));
  } else {
    out << "imported " << solution->name << " into " << pos[1] << "\n";
  }
  return kExitOk;
}

// `ratchet report ID ID ...`: a suite's table (SuiteText).
int ReportSuite(const Flags& flags, const std::vector<std::string>& ids, std::ostream& out,
                std::ostream& err) {
  if (flags.Has("plot")) return UsageError(err, "report", "--plot draws one campaign");
  Client client(flags, err);
  std::vector<SummaryInput> suite;
  for (const std::string& text : ids) {
    int64_t id = 0;
    if (!ParseId(text, &id)) return UsageError(err, "report", absl::StrCat("'", text, "' is not an id"));
    SummaryInput& in = suite.emplace_back();
    if (!client.Campaign(id, &in.campaign) || !client.Leaderboard(id, &in.leaderboard))
      return kExitFailure;
    if (in.campaign.best_candidate_id() != 0 &&
        !client.Candidate(in.campaign.best_candidate_id(), &in.best))
      return kExitFailure;
  }
  out << (flags.Has("json") ? SuiteJson(suite) + "\n" : SuiteText(suite));
  return kExitOk;
}

bool IsResearchCommand(const std::string& name) {
  return name == "pause" || name == "resume" || name == "report" || name == "diff" ||
         name == "export" || name == "events";
}

int RunResearchCommand(int argc, char** argv, std::ostream& out, std::ostream& err) {
  const std::string cmd = argc > 0 ? argv[0] : "";
  absl::StatusOr<Flags> flags = Flags::Parse(argc - 1, argv + 1, {"json", "help", "follow"});
  if (!flags.ok()) return UsageError(err, cmd, std::string(flags.status().message()));
  if (flags->Has("help")) {
    out << CommandUsage(cmd);
    return kExitOk;
  }
  std::vector<std::string> known = {"coordinator", "help", "json"};
  known.insert(known.end(), std::begin(auth::kClientSecurityFlags),
               std::end(auth::kClientSecurityFlags));
  if (cmd == "report") known.push_back("plot");
  if (cmd == "diff") known.push_back("against");
  if (cmd == "export") known.push_back("format");
  if (cmd == "events") known.insert(known.end(), {"after", "limit", "follow"});
  if (auto unknown = flags->Unknown(known); !unknown.empty())
    return UsageError(err, cmd, absl::StrCat("unknown flag --", unknown[0]));
  const auto& pos = flags->positional();
  const size_t want = cmd == "export" ? 2 : 1;
  int64_t id = 0;
  if (cmd == "report" && pos.size() > 1) return ReportSuite(*flags, pos, out, err);
  if (pos.size() != want || !ParseId(pos[0], &id))
    return UsageError(err, cmd, cmd == "export" ? "export needs a candidate id and a folder"
                                                : absl::StrCat(cmd, " needs one id"));
  const std::string format = flags->Get("format", "folder");
  if (format != "folder" && format != "sol-execbench")
    return UsageError(err, cmd, "--format takes folder (the default) or sol-execbench");
  const bool json = flags->Has("json");
  Client client(*flags, err);

  if (cmd == "events") {
    const absl::StatusOr<long long> after = flags->GetInt("after", 0);
    if (!after.ok() || *after < 0)
      return UsageError(err, cmd, "--after takes a sequence number (0 or more)");
    const absl::StatusOr<long long> limit = flags->GetInt("limit", 0);
    if (!limit.ok() || *limit < 0) return UsageError(err, cmd, "--limit takes a count (0: all)");
    return PrintEvents(client, id, *after, *limit, flags->Has("follow"), json, out);
  }
  if (cmd == "pause" || cmd == "resume") {
    v1::Campaign campaign;
    if (!client.Pause(id, cmd == "pause", &campaign)) return kExitFailure;
    if (json) {
      out << ToJson(campaign) << "\n";
    } else {
      out << "campaign " << campaign.id() << ": " << CampaignStateName(campaign.state()) << "\n";
    }
    return kExitOk;
  }
  if (cmd == "report") {
    SummaryInput in;
    if (!client.Campaign(id, &in.campaign) || !client.Leaderboard(id, &in.leaderboard))
      return kExitFailure;
    if (in.campaign.best_candidate_id() != 0 &&
        !client.Candidate(in.campaign.best_candidate_id(), &in.best))
      return kExitFailure;
    if (flags->Has("plot")) {
      const std::string path = flags->Get("plot");
      if (path.empty()) return UsageError(err, cmd, "--plot takes a file name (FILE.svg)");
      // Every scored candidate's evaluations and verdicts: one call each.
      v1::Leaderboard all;
      if (!client.Leaderboard(id, &all, /*limit=*/0)) return kExitFailure;
      std::vector<v1::CandidateDetail> details;
      for (const auto& e : all.entries()) {
        details.emplace_back();
        if (!client.Candidate(e.candidate().id(), &details.back())) return kExitFailure;
      }
      if (auto s = WriteFile(path, ScorePlotSvg(HistoryOf(in.campaign, details))); !s.ok())
        return Fail(err, std::string(s.message()));
      if (!json) out << "plot of " << details.size() << " candidates written to " << path << "\n";
    }
    out << (json ? SummaryJson(in) + "\n" : SummaryText(in));
    return kExitOk;
  }

  v1::CandidateDetail detail;
  if (!client.Candidate(id, &detail)) return kExitFailure;
  v1::Campaign campaign;
  if (!client.Campaign(detail.candidate().campaign_id(), &campaign)) return kExitFailure;
  if (cmd == "export" && format == "sol-execbench") {
    if (auto s = ExportSolExecBench(campaign, detail, pos[1]); !s.ok())
      return Fail(err, std::string(s.message()));
    if (json) {
      out << absl::StrFormat("{\"candidate_id\": %d, \"file\": %s}\n", id, JsonString(pos[1]));
    } else {
      out << "exported #" << id << " as a SOL-ExecBench solution to " << pos[1] << "\n";
    }
    return kExitOk;
  }
  if (cmd == "export") {
    if (auto s = ExportCandidate(campaign, detail, pos[1]); !s.ok())
      return Fail(err, std::string(s.message()));
    if (json) {
      out << absl::StrFormat("{\"candidate_id\": %d, \"folder\": %s, \"run\": %s}\n", id,
                             JsonString(pos[1]), JsonString(pos[1] + "/run.sh"));
    } else {
      out << "exported #" << id << " to " << pos[1] << "; reproduce with " << pos[1]
          << "/run.sh\n";
    }
    return kExitOk;
  }
  // diff: against the parent (default), the baseline, or any candidate id.
  const std::string against = flags->Get("against", "parent");
  int64_t other_id = 0;
  if (against == "parent") {
    other_id = detail.candidate().parent_id();
    if (other_id == 0) other_id = campaign.baseline_candidate_id();
  } else if (against == "baseline") {
    other_id = campaign.baseline_candidate_id();
  } else if (!ParseId(against, &other_id)) {
    return UsageError(err, cmd, "--against takes parent, baseline or a candidate id");
  }
  v1::CandidateDetail other;
  if (!client.Candidate(other_id, &other)) return kExitFailure;
  std::string diff = DiffSolutions(other.candidate().solution(), detail.candidate().solution(),
                                   absl::StrCat("#", other_id), absl::StrCat("#", id));
  if (json) {
    out << absl::StrFormat("{\"candidate_id\": %d, \"against_id\": %d, \"diff\": %s}\n", id,
                           other_id, JsonString(diff));
  } else {
    out << (diff.empty() ? absl::StrCat("#", id, " and #", other_id, " are identical\n") : diff);
  }
  return kExitOk;
}

}  // namespace ratchet::cli
