#include "services/cli/commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <map>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/util/json_util.h"
#include "services/cli/progress.h"
#include "services/cli/spec.h"
#include "services/cli/summary.h"
#include "common/auth.h"
#include "common/clock.h"
#include "common/grpc_metrics.h"
#include "common/names.h"
#include "services/verifier/verdict.h"
#include "spec/defaults.h"
#include "spec/names.h"

namespace ratchet::cli {
namespace {

namespace v1 = ratchet::v1;

const std::vector<std::string> kSwitches = {"json", "files", "help"};

void SetDeadline(grpc::ClientContext* ctx, int seconds = kRpcDeadlineSeconds) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

std::string Score(double s) { return s < 0 ? "-" : absl::StrFormat("%.4f", s); }

std::string Ago(int64_t then_ms, int64_t now_ms) {
  if (then_ms <= 0) return "-";
  double s = (now_ms - then_ms) / 1000.0;
  if (s < 0) s = 0;
  if (s < 120) return absl::StrFormat("%.0fs ago", s);
  if (s < 7200) return absl::StrFormat("%.0fm ago", s / 60);
  if (s < 172800) return absl::StrFormat("%.1fh ago", s / 3600);
  return absl::StrFormat("%.1fd ago", s / 86400);
}

std::string LocalTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t t = unix_ms / 1000;
  std::tm tm;
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string ClockTime(int64_t unix_ms) {
  std::time_t t = unix_ms / 1000;
  std::tm tm;
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

std::string Nanos(double ns) {
  if (ns <= 0) return "-";
  if (ns < 1e3) return absl::StrFormat("%.0fns", ns);
  if (ns < 1e6) return absl::StrFormat("%.2fus", ns / 1e3);
  if (ns < 1e9) return absl::StrFormat("%.2fms", ns / 1e6);
  return absl::StrFormat("%.2fs", ns / 1e9);
}

std::string JobKindName(v1::JobKind k) {
  switch (k) {
    case v1::JOB_EVALUATE: return "evaluate";
    case v1::JOB_REPLAY: return "replay";
    default: return "-";
  }
}

std::string Truncate(const std::string& s, size_t n) {
  std::string one_line = s.substr(0, s.find('\n'));
  if (one_line.size() <= n && one_line.size() == s.size()) return one_line;
  if (one_line.size() > n) one_line = one_line.substr(0, n - 3);
  return one_line + "...";
}

std::string Indent(absl::string_view text, const std::string& prefix) {
  while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  std::string out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) absl::StrAppend(&out, prefix, line, "\n");
  return out;
}

std::string Scores(const google::protobuf::RepeatedField<double>& scores) {
  std::vector<std::string> parts;
  for (double s : scores) parts.push_back(absl::StrFormat("%.4f", s));
  return parts.empty() ? "-" : absl::StrJoin(parts, " ");
}

bool Terminal(v1::CampaignState s) {
  return s == v1::CAMPAIGN_FINISHED || s == v1::CAMPAIGN_FAILED || s == v1::CAMPAIGN_CANCELLED;
  // CAMPAIGN_PAUSED is not terminal: watch keeps following a paused campaign.
}

// Shared state of one command invocation.
struct Call {
  std::string cmd;
  const Flags& flags;
  std::ostream& out;
  std::ostream& err;
  std::string address;
  bool json;
  std::unique_ptr<v1::CoordinatorService::Stub> stub;

  int Fail(const grpc::Status& s) {
    err << "ratchet: " << RpcErrorLine(address, s) << "\n";
    return kExitFailure;
  }
  int UsageError(const std::string& what) {
    err << "ratchet " << cmd << ": " << what << "\n\n" << CommandUsage(cmd);
    return kExitUsage;
  }
  // The single positional id argument of most commands.
  bool Id(const std::string& what, int64_t* id, int* rc) {
    const auto& pos = flags.positional();
    if (pos.size() != 1) {
      *rc = UsageError(absl::StrCat("expected one ", what, " id"));
      return false;
    }
    if (!absl::SimpleAtoi(pos[0], id) || *id <= 0) {
      *rc = UsageError(absl::StrCat("'", pos[0], "' is not a ", what, " id"));
      return false;
    }
    return true;
  }
};

int Submit(Call& c) {
  if (c.flags.positional().size() != 1) return c.UsageError("submit needs one spec.yaml");
  // One campaign, or one per problem of a suite (LoadCampaignSuite).
  absl::StatusOr<std::vector<v1::CampaignSpec>> specs =
      LoadCampaignSuite(c.flags.positional()[0]);
  if (!specs.ok()) {
    c.err << "ratchet: " << specs.status().message() << "\n";
    return kExitFailure;
  }
  for (v1::CampaignSpec& spec : *specs) {
    v1::SubmitCampaignRequest req;
    *req.mutable_spec() = std::move(spec);
    v1::Campaign campaign;
    grpc::ClientContext ctx;
    SetDeadline(&ctx, 60);
    grpc::Status s = c.stub->SubmitCampaign(&ctx, req, &campaign);
    if (!s.ok()) return c.Fail(s);
    if (c.json) {
      c.out << ToJson(campaign) << "\n";
    } else {
      c.out << campaign.id() << "\n";  // just the ids, for $(ratchet submit ...)
    }
  }
  return kExitOk;
}

int Status(Call& c) {
  const int64_t now = NowUnixMs();
  if (c.flags.positional().empty()) {
    v1::ListCampaignsResponse resp;
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    grpc::Status s = c.stub->ListCampaigns(&ctx, v1::ListCampaignsRequest(), &resp);
    if (!s.ok()) return c.Fail(s);
    if (c.json) {
      c.out << ToJson(resp) << "\n";
    } else {
      c.out << FormatCampaignTable({resp.campaigns().begin(), resp.campaigns().end()}, now);
    }
    return kExitOk;
  }
  int64_t id;
  int rc;
  if (!c.Id("campaign", &id, &rc)) return rc;
  v1::GetCampaignRequest req;
  req.set_campaign_id(id);
  v1::Campaign campaign;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Status s = c.stub->GetCampaign(&ctx, req, &campaign);
  if (!s.ok()) return c.Fail(s);
  c.out << (c.json ? ToJson(campaign) + "\n" : FormatCampaign(campaign, now));
  return kExitOk;
}

int Watch(Call& c) {
  int64_t id;
  int rc;
  if (!c.Id("campaign", &id, &rc)) return rc;
  v1::Campaign last;
  const bool terminal = &c.out == &std::cout && IsTerminal(STDOUT_FILENO);
  ProgressDisplay progress(c.out, terminal, terminal ? TerminalWidth(STDOUT_FILENO) : 100);
  // The stream ends when the campaign does; if it ends early (coordinator
  // restarted), watch again rather than report a half-finished campaign.
  for (int attempt = 0;; ++attempt) {
    grpc::ClientContext ctx;
    v1::WatchCampaignRequest req;
    req.set_campaign_id(id);
    std::unique_ptr<grpc::ClientReader<v1::CampaignEvent>> reader =
        c.stub->WatchCampaign(&ctx, req);
    v1::CampaignEvent event;
    while (reader->Read(&event)) {
      last = event.campaign();
      if (c.json) {
        c.out << ToJson(event) << "\n";
      } else {
        int64_t when = event.unix_ms() > 0 ? event.unix_ms() : NowUnixMs();
        if (!event.text().empty()) progress.Line(ClockTime(when) + "  " + event.text());
        progress.Update(last, CampaignActiveSeconds(last, NowUnixMs()));
      }
      c.out.flush();
    }
    grpc::Status s = reader->Finish();
    if (!s.ok()) return c.Fail(s);
    if (Terminal(last.state()) || attempt >= 5) break;
    v1::GetCampaignRequest get;
    get.set_campaign_id(id);
    grpc::ClientContext gctx;
    SetDeadline(&gctx);
    s = c.stub->GetCampaign(&gctx, get, &last);
    if (!s.ok()) return c.Fail(s);
    if (Terminal(last.state())) break;
  }
  if (!c.json) {
    progress.Finish();
    c.out << "campaign " << id << " " << CampaignStateName(last.state());
    if (!last.message().empty()) c.out << ": " << last.message();
    c.out << "\n";
  }
  return last.state() == v1::CAMPAIGN_FINISHED ? kExitOk : kExitFailure;
}

// Thread ids (the store's) to the indices `status` shows, from the campaign;
// empty if it cannot be read (ids are shown then).
ThreadIndex ThreadIndices(Call& c, int64_t campaign_id) {
  ThreadIndex index;
  v1::GetCampaignRequest req;
  req.set_campaign_id(campaign_id);
  v1::Campaign campaign;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  if (!c.stub->GetCampaign(&ctx, req, &campaign).ok()) return index;
  for (const auto& t : campaign.threads()) index[t.id()] = t.index();
  return index;
}

int LeaderboardCmd(Call& c) {
  int64_t id;
  int rc;
  if (!c.Id("campaign", &id, &rc)) return rc;
  absl::StatusOr<long long> limit = c.flags.GetInt("limit", 20);
  if (!limit.ok()) return c.UsageError(std::string(limit.status().message()));
  v1::GetLeaderboardRequest req;
  req.set_campaign_id(id);
  req.set_limit(static_cast<int32_t>(*limit));
  v1::Leaderboard board;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Status s = c.stub->GetLeaderboard(&ctx, req, &board);
  if (!s.ok()) return c.Fail(s);
  c.out << (c.json ? ToJson(board) + "\n" : FormatLeaderboard(board, ThreadIndices(c, id)));
  return kExitOk;
}

int Show(Call& c) {
  int64_t id;
  int rc;
  if (!c.Id("candidate", &id, &rc)) return rc;
  v1::GetCandidateRequest req;
  req.set_candidate_id(id);
  v1::CandidateDetail detail;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Status s = c.stub->GetCandidate(&ctx, req, &detail);
  if (!s.ok()) return c.Fail(s);
  c.out << (c.json ? ToJson(detail) + "\n"
                   : FormatCandidate(detail, c.flags.Has("files"),
                                     ThreadIndices(c, detail.candidate().campaign_id())));
  return kExitOk;
}

int Workers(Call& c) {
  if (!c.flags.positional().empty()) return c.UsageError("workers takes no arguments");
  v1::ListWorkersResponse resp;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Status s = c.stub->ListWorkers(&ctx, v1::ListWorkersRequest(), &resp);
  if (!s.ok()) return c.Fail(s);
  c.out << (c.json ? ToJson(resp) + "\n" : FormatWorkers(resp));
  return kExitOk;
}

int Cancel(Call& c) {
  int64_t id;
  int rc;
  if (!c.Id("campaign", &id, &rc)) return rc;
  v1::CancelCampaignRequest req;
  req.set_campaign_id(id);
  v1::Campaign campaign;
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  grpc::Status s = c.stub->CancelCampaign(&ctx, req, &campaign);
  if (!s.ok()) return c.Fail(s);
  if (c.json) {
    c.out << ToJson(campaign) << "\n";
  } else {
    c.out << "campaign " << campaign.id() << ": " << CampaignStateName(campaign.state()) << "\n";
  }
  return kExitOk;
}

}  // namespace

std::string CoordinatorAddress(const Flags& flags) {
  if (flags.Has("coordinator")) return flags.Get("coordinator");
  const char* env = std::getenv("RATCHET_COORDINATOR");
  if (env != nullptr && *env != '\0') return env;
  return "127.0.0.1:50051";
}

std::unique_ptr<v1::CoordinatorService::Stub> MakeStub(const std::string& address) {
  grpc::ChannelArguments args;
  // Specs carry whole problems and solutions; do not cap replies at 4 MiB.
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  return v1::CoordinatorService::NewStub(
      grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
}

absl::StatusOr<std::unique_ptr<v1::CoordinatorService::Stub>> MakeStub(
    const std::string& address, const Flags& flags) {
  auto security = auth::ClientSecurityFromFlags(flags);
  if (!security.ok()) return security.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  auto channel = auth::Dial(address, *security, args);
  if (!channel.ok()) return channel.status();
  return v1::CoordinatorService::NewStub(*channel);
}

std::string RpcErrorLine(const std::string& address, const grpc::Status& status) {
  if (status.error_code() == grpc::UNAVAILABLE) {
    return absl::StrCat("cannot reach coordinator at ", address, ": ", status.error_message());
  }
  if (status.error_code() == grpc::DEADLINE_EXCEEDED) {
    return absl::StrCat("coordinator at ", address, " did not answer in time: ",
                        status.error_message());
  }
  return absl::StrCat("coordinator at ", address, ": ", StatusCodeName(status.error_code()), ": ",
                      status.error_message());
}

namespace {
void DropEmptyLegacyFields(nlohmann::ordered_json* j) {
  if (j->is_array()) {
    for (auto& e : *j) DropEmptyLegacyFields(&e);
  } else if (j->is_object()) {
    for (auto it = j->begin(); it != j->end();) {
      if (it.key().rfind("legacy_", 0) == 0 && it.value() == "") {
        it = j->erase(it);
      } else {
        DropEmptyLegacyFields(&it.value());
        ++it;
      }
    }
  }
}
}  // namespace

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) return absl::StrCat("{\"error\": \"", status.ToString(), "\"}");
  // Fields kept only so that older records parse (legacy_*, now enums) say
  // nothing when empty: leave them out rather than print "" beside the enum.
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(out, nullptr, false);
  if (j.is_discarded()) return out;
  DropEmptyLegacyFields(&j);
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool IsClientCommand(const std::string& name) {
  static const char* kCommands[] = {"submit", "status", "watch", "leaderboard",
                                    "show",   "workers", "cancel"};
  return std::find(std::begin(kCommands), std::end(kCommands), name) != std::end(kCommands);
}

int RunClientCommand(int argc, char** argv, std::ostream& out, std::ostream& err) {
  const std::string cmd = argc > 0 ? argv[0] : "";
  absl::StatusOr<Flags> flags = Flags::Parse(argc - 1, argv + 1, kSwitches);
  if (!flags.ok()) {
    err << "ratchet " << cmd << ": " << flags.status().message() << "\n\n" << CommandUsage(cmd);
    return kExitUsage;
  }
  if (flags->Has("help")) {
    out << CommandUsage(cmd);
    return kExitOk;
  }
  std::vector<std::string> known = {"coordinator", "json", "help"};
  known.insert(known.end(), std::begin(auth::kClientSecurityFlags),
               std::end(auth::kClientSecurityFlags));
  if (cmd == "leaderboard") known.push_back("limit");
  if (cmd == "show") known.push_back("files");
  std::vector<std::string> unknown = flags->Unknown(known);
  if (!unknown.empty()) {
    err << "ratchet " << cmd << ": unknown flag --" << unknown[0] << "\n\n" << CommandUsage(cmd);
    return kExitUsage;
  }
  Call c{cmd, *flags, out, err, CoordinatorAddress(*flags), flags->Has("json"), nullptr};
  auto stub = MakeStub(c.address, *flags);
  if (!stub.ok()) {
    err << "ratchet " << cmd << ": " << stub.status().message() << "\n";
    return kExitUsage;
  }
  c.stub = std::move(*stub);
  if (cmd == "submit") return Submit(c);
  if (cmd == "status") return Status(c);
  if (cmd == "watch") return Watch(c);
  if (cmd == "leaderboard") return LeaderboardCmd(c);
  if (cmd == "show") return Show(c);
  if (cmd == "workers") return Workers(c);
  if (cmd == "cancel") return Cancel(c);
  return c.UsageError(absl::StrCat("unknown command '", cmd, "'"));
}

std::string CommandUsage(const std::string& cmd) {
  static const char kConnection[] =
      "  --coordinator=HOST:PORT  default $RATCHET_COORDINATOR or 127.0.0.1:50051\n"
      "  --tls-ca=FILE --token-file=FILE  for a coordinator that serves TLS "
      "(docs/security.md)\n"
      "  --json                   the reply as JSON\n";
  struct Entry {
    const char* name;
    const char* synopsis;
    bool connects;  // takes the connection flags
  };
  static const Entry kEntries[] = {
      {"local",
       "local <spec.yaml> [--workers=2] [--data-dir=DIR [--resume] [--drain-after=SECONDS]]\n"
       "      [--llm-endpoints=FILE] [--json]\n"
       "  Runs a coordinator (SQLite), a verifier and N workers on this machine,\n"
       "  submits the spec, shows progress and prints a summary. A spec whose\n"
       "  problem is a folder of problems runs one campaign per problem side by\n"
       "  side and ends with the suite's table. Exit 0 if every campaign finished.\n"
       "  --resume: go on with the unfinished campaign of the spec's name that an\n"
       "  earlier run in DIR left (killed, or its machine gone); a finished one\n"
       "  stays as it is.\n"
       "  --drain-after: after SECONDS, pause the campaigns (no new leases), let\n"
       "  the running jobs finish, and stop: a campaign run in time slices (a\n"
       "  machine lent for minutes at a time) loses no job it started.\n",
       false},
      {"submit",
       "submit <spec.yaml>\n  Submits a campaign; prints its id. A spec whose problem is a folder of\n"
       "  problems submits one campaign per problem (a suite) and prints each id;\n"
       "  `ratchet report ID ID ...` gives the suite's table.\n",
       true},
      {"status", "status [campaign-id]\n  One campaign in detail, or a table of all.\n", true},
      {"watch",
       "watch <campaign-id>\n  Follows a campaign until it ends: events, and a progress line\n"
       "  (redrawn in place on a terminal). Exit 0 if it finished.\n",
       true},
      {"leaderboard", "leaderboard <campaign-id> [--limit=20]\n  The best candidates.\n", true},
      {"show",
       "show <candidate-id> [--files]\n  A candidate: what changed, knobs, files, evaluations,\n"
       "  verdicts with reasons and evidence.\n",
       true},
      {"workers", "workers\n  Registered workers and their hardware.\n", true},
      {"cancel", "cancel <campaign-id>\n  Cancels a running or paused campaign.\n", true},
      {"pause", "pause <campaign-id>\n  No new proposals or leases; running jobs finish.\n",
       true},
      {"resume", "resume <campaign-id>\n  Continues a paused campaign.\n", true},
      {"report",
       "report <campaign-id> [--plot=FILE.svg]\n  The campaign's summary; --plot also draws the "
       "best score over time\n  and over evaluations.\n",
       true},
      {"diff",
       "diff <candidate-id> [--against=parent|baseline|ID]\n  Unified diff of knobs and "
       "files.\n",
       true},
      {"export",
       "export <candidate-id> <dir> [--format=folder|sol-execbench]\n  A folder (problem, "
       "solution, README, run.sh) that reproduces the\n  candidate with `ratchet bench`; with "
       "--format=sol-execbench, <dir> is the\n  SOL-ExecBench solution JSON file to write "
       "(CUDA candidates).\n",
       true},
      {"import",
       "import <solution.json> <dir>\n  Writes a SOL-ExecBench solution's sources and a ratchet "
       "solution.json\n  into <dir> (docs/harness.md).\n",
       false},
      {"events",
       "events <campaign-id> [--after=SEQ] [--limit=N] [--follow]\n  The campaign's events, "
       "finished or not.\n",
       true},
  };
  for (const Entry& e : kEntries) {
    if (cmd != e.name) continue;
    return absl::StrCat("usage: ratchet ", e.synopsis, e.connects ? kConnection : "",
                        "(`ratchet help` lists every command)\n");
  }
  return Usage();
}

std::string Usage() {
  return R"(usage: ratchet <command> [flags]

Run everything on this machine:
  local <spec.yaml> [--workers=2] [--data-dir=DIR [--resume]] [--json]
                          coordinator (SQLite), a verifier and N workers as child
                          processes; submits the spec, shows progress, prints a
                          summary; exit 0 if the campaign finished

Talk to a coordinator (--coordinator=HOST:PORT, default $RATCHET_COORDINATOR
or 127.0.0.1:50051; --json prints the reply as JSON):
  submit <spec.yaml>      submit a campaign (one per problem for a folder of
                          problems); prints its id(s)
  status [campaign-id]    one campaign in detail, or a table of all
  watch <campaign-id>     stream progress until the campaign ends
  leaderboard <campaign-id> [--limit=20]
  show <candidate-id> [--files]
                          a candidate: what changed, knobs, files, evaluations,
                          verdicts with reasons and evidence
  workers                 registered workers and their hardware
  cancel <campaign-id>    cancel a running (or paused) campaign
  pause <campaign-id>     no new proposals or leases; running jobs finish
  resume <campaign-id>    continue a paused campaign
  report <campaign-id> [--plot=FILE.svg] [--json]
  report <id> <id> ...    a suite's table (one campaign per problem)
                          the campaign's summary (as printed when it ends);
                          --plot draws the best score over time
  diff <candidate-id> [--against=parent|baseline|ID]
                          unified diff of knobs and files
  export <candidate-id> <dir> [--format=folder|sol-execbench]
                          a folder (problem, solution, README, run.sh) that
                          reproduces the candidate with `ratchet bench`;
                          --format=sol-execbench writes a SOL-ExecBench
                          solution JSON file instead
  events <campaign-id> [--after=SEQ] [--limit=N] [--follow]
                          the campaign's stored events, finished or not

Credentials (docs/security.md): --tls-ca=FILE and --token-file=FILE (or
$RATCHET_TLS_CA, $RATCHET_TOKEN) for a coordinator that serves TLS.

Files, no coordinator:
  import <solution.json> <dir>
                          a SOL-ExecBench solution as a folder with a ratchet
                          solution.json (docs/harness.md)

Services:
  coordinator --listen=HOST:PORT --db=PATH|postgresql://... [--port-file=FILE]
              [--metrics=ADDR] [--tls-cert --tls-key --tls-ca --tokens | --insecure]
  verifier    --coordinator=ADDR [--name=NAME] [--metrics=ADDR] [--tls-ca --tls-cert --tls-key]
  worker      --coordinator=ADDR [--name=NAME] [--scratch=DIR] [--metrics=ADDR]
              [--tls-ca --tls-cert --tls-key]
  pki         init DIR | issue DIR ROLE:NAME: the cluster's CA and certificates
  token       add --tokens=FILE --role=read|submit|admin --name=NAME
  bench       the kernel harness benchmark (see ratchet bench --help)
  data        prepare --vocab=DIR --out=DIR FILE...: text into GPT-2 token shards
              for training targets (see ratchet data --help)
  train       PROJECT --data=DIR: train a training project under the launcher and
              score it with ratchet's evaluator (see ratchet train --help)
  launch      run by workers: a training program as N ranks inside a training
              job's sandbox (see ratchet launch --help)

`ratchet <command> --help` shows one command's usage; `ratchet --version`
which build this is.

Exit codes: 0 ok, 1 failed (unreachable coordinator, campaign not finished,
an evaluation that did not end ok), 2 usage error.
)";
}

std::string EscapedLine(const std::string& text) {
  std::string out;
  for (const char ch : text) {
    const unsigned char u = static_cast<unsigned char>(ch);
    if (ch == '\n') {
      out += "\\n";
    } else if (u < 0x20 || u == 0x7f) {
      out += absl::StrFormat("\\x%02x", u);
    } else {
      out += ch;
    }
  }
  return out;
}

std::string FormatTable(const std::vector<std::string>& header,
                        const std::vector<std::vector<std::string>>& raw_rows) {
  // A cell is one line: a name with a newline or an escape sequence in it
  // must not break the table (or the terminal).
  std::vector<std::vector<std::string>> rows = raw_rows;
  for (auto& row : rows)
    for (auto& cell : row) cell = EscapedLine(cell);
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : rows)
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s;
    for (size_t i = 0; i < cells.size() && i < width.size(); ++i) {
      s += cells[i];
      if (i + 1 < cells.size()) s += std::string(width[i] - cells[i].size() + 2, ' ');
    }
    return s + "\n";
  };
  std::string out = line(header);
  for (const auto& row : rows) out += line(row);
  return out;
}

namespace {

// Score() for kernels; BPB or time to target for training campaigns.
std::string ScoreOf(const v1::Campaign& c, double score) {
  const std::string training = TrainingScoreText(c, score);
  return training.empty() ? Score(score) : training;
}

}  // namespace

std::string StatusLine(const v1::Campaign& c, double elapsed_seconds) {
  std::string budget = c.spec().budget().max_evaluations() > 0
                           ? absl::StrCat("/", c.spec().budget().max_evaluations())
                           : "";
  std::string best = "-";
  if (c.best_candidate_id() != 0 && c.best_candidate_id() == c.baseline_candidate_id()) {
    best = "= baseline";
  } else if (c.best_candidate_id() != 0) {
    best = absl::StrCat(ScoreOf(c, c.best_score()), " #", c.best_candidate_id(),
                        c.best_verified() ? " verified" : " unverified");
  }
  std::string line = absl::StrFormat(
      "[%6.1fs] %s  evals %d%s  queued %d running %d  baseline %s  best %s", elapsed_seconds,
      CampaignStateName(c.state()), c.evaluations(), budget, c.jobs_queued(), c.jobs_running(),
      c.baseline_candidate_id() != 0 ? ScoreOf(c, c.baseline_score()) : "-", best);
  if (c.spec().proposer() == v1::PROPOSER_LLM)
    absl::StrAppend(&line, absl::StrFormat("  llm $%.4f, %d malformed", c.llm_cost_usd(),
                                           c.llm_malformed()));
  return line;
}

std::string FormatCampaign(const v1::Campaign& c, int64_t now_ms) {
  const v1::CampaignSpec& spec = c.spec();
  std::string out;
  absl::StrAppend(&out, "campaign ", c.id(), "  ", EscapedLine(spec.name()), "\n");
  absl::StrAppend(&out, "  state        ", CampaignStateName(c.state()),
                  c.message().empty() ? "" : " - " + c.message(), "\n");
  absl::StrAppend(&out, "  task         ", spec::Name(spec.task()), " on ",
                  spec.problem().name(), " (", spec::Name(spec.device()), "), proposer ",
                  spec::Name(spec.proposer()), ", ", spec.threads(),
                  " threads, seed ", spec.seed(), "\n");
  int64_t end = c.finished_unix_ms() > 0 ? c.finished_unix_ms() : now_ms;
  absl::StrAppend(&out, "  created      ", LocalTime(c.created_unix_ms()),
                  absl::StrFormat(" (%.0fs %s)", (end - c.created_unix_ms()) / 1000.0,
                                  c.finished_unix_ms() > 0 ? "total" : "so far"),
                  "\n");
  absl::StrAppend(&out, "  evaluations  ", c.evaluations(), " of ",
                  spec.budget().max_evaluations(),
                  spec.budget().max_wall_seconds() > 0
                      ? absl::StrFormat(" (wall budget %.0fs)", spec.budget().max_wall_seconds())
                      : "",
                  "; jobs queued ", c.jobs_queued(), ", running ", c.jobs_running(), "\n");
  absl::StrAppend(&out, "  baseline     ",
                  c.baseline_candidate_id() != 0
                      ? absl::StrCat(ScoreOf(c, c.baseline_score()), " (candidate ",
                                     c.baseline_candidate_id(), ")")
                      : "-",
                  "\n");
  absl::StrAppend(&out, "  best         ",
                  c.best_candidate_id() != 0
                      ? absl::StrCat(ScoreOf(c, c.best_score()), " (candidate ", c.best_candidate_id(),
                                     c.best_verified() ? ", verified)" : ", unverified)")
                      : "-",
                  "\n");
  std::vector<std::string> outcomes;
  std::map<std::string, int> sorted;
  for (const auto& [k, n] : c.outcomes()) sorted[OutcomeName(k)] += n;
  for (const auto& [k, n] : sorted) outcomes.push_back(absl::StrCat(k, " ", n));
  absl::StrAppend(&out, "  outcomes     ", outcomes.empty() ? "-" : absl::StrJoin(outcomes, ", "),
                  "\n");
  std::vector<std::string> verdicts;
  for (const auto& v : c.verdicts()) {
    verdicts.push_back(absl::StrCat(v.outcome(), v.reason().empty() ? "" : "/" + v.reason(), " ",
                                    v.count()));
  }
  absl::StrAppend(&out, "  verdicts     ", verdicts.empty() ? "-" : absl::StrJoin(verdicts, ", "),
                  "\n");
  if (std::string llm = LlmLine(c); !llm.empty()) absl::StrAppend(&out, "  llm          ", llm, "\n");
  if (c.threads_size() > 0) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& t : c.threads()) {
      rows.push_back({absl::StrCat(t.index()), absl::StrCat(t.incumbent_candidate_id()),
                      Score(t.incumbent_score()), absl::StrCat(t.evaluations()),
                      absl::StrCat(t.accepted())});
    }
    absl::StrAppend(&out, "\n",
                    FormatTable({"THREAD", "INCUMBENT", "SCORE", "EVALS", "ACCEPTED"}, rows));
  }
  return out;
}

std::string FormatCampaignTable(const std::vector<v1::Campaign>& campaigns, int64_t now_ms) {
  if (campaigns.empty()) return "no campaigns\n";
  std::vector<std::vector<std::string>> rows;
  for (const auto& c : campaigns) {
    rows.push_back({absl::StrCat(c.id()), c.spec().name(), CampaignStateName(c.state()),
                    absl::StrCat(c.evaluations(), "/", c.spec().budget().max_evaluations()),
                    c.baseline_candidate_id() != 0 ? Score(c.baseline_score()) : "-",
                    c.best_candidate_id() != 0 ? Score(c.best_score()) : "-",
                    c.best_candidate_id() == 0 ? "-" : c.best_verified() ? "yes" : "no",
                    absl::StrCat(c.jobs_queued(), "/", c.jobs_running()),
                    Ago(c.created_unix_ms(), now_ms)});
  }
  return FormatTable({"ID", "NAME", "STATE", "EVALS", "BASELINE", "BEST", "VERIFIED",
                      "QUEUED/RUNNING", "CREATED"},
                     rows);
}

std::string ThreadLabel(int64_t thread_id, const ThreadIndex& index) {
  if (thread_id == 0) return "-";
  auto it = index.find(thread_id);
  return it != index.end() ? absl::StrCat(it->second) : absl::StrCat("id ", thread_id);
}

std::string FormatLeaderboard(const v1::Leaderboard& board, const ThreadIndex& threads) {
  if (board.entries_size() == 0) {
    return absl::StrCat("campaign ", board.campaign_id(), ": no scored candidates yet\n");
  }
  std::vector<std::vector<std::string>> rows;
  int rank = 0;
  for (const auto& e : board.entries()) {
    const auto& cand = e.candidate();
    rows.push_back({absl::StrCat(++rank), absl::StrCat(cand.id()), Score(e.score()),
                    e.verified() ? "yes" : "no", spec::Name(cand.status()),
                    ThreadLabel(cand.thread_id(), threads),
                    cand.parent_id() == 0 ? "-" : absl::StrCat(cand.parent_id()),
                    Truncate(cand.thread_id() == 0 && cand.parent_id() == 0 &&
                                     cand.description().empty()
                                 ? "baseline"
                                 : cand.description(),
                             60)});
  }
  return FormatTable(
      {"RANK", "CANDIDATE", "SCORE", "VERIFIED", "STATUS", "THREAD", "PARENT", "WHAT CHANGED"},
      rows);
}

std::string FormatEvidence(const v1::Verification& v) {
  if (!v.has_evidence()) return "";
  const v1::VerdictEvidence& ev = v.evidence();
  // The policy as the verifier read it: defaults applied (spec/defaults.h).
  const v1::VerificationPolicy p = spec::AppliedVerification(v.policy());
  std::string out;
  if (ev.tiers_size() > 0 || ev.replays_requested() > 0)
    absl::StrAppend(&out, "      tiers    ", absl::StrJoin(ev.tiers(), ", "), "; ",
                    ev.replays_requested(), " replays a side requested",
                    ev.replay_workers_size() > 0
                        ? absl::StrCat(", candidate replayed on ",
                                       absl::StrJoin(ev.replay_workers(), ", "))
                        : "",
                    "\n");
  if (!ev.failed_check().empty())
    absl::StrAppend(&out, "      failed   ", ev.failed_check(), "\n",
                    ev.check_detail().empty() || ev.check_detail() == v.detail()
                        ? ""
                        : Indent(ev.check_detail(), "      | "));
  if (ev.candidate_median() > 0 || ev.incumbent_median() > 0) {
    absl::StrAppend(&out, "      medians  candidate ", Score(ev.candidate_median()),
                    " vs incumbent ", Score(ev.incumbent_median()),
                    absl::StrFormat(", gain %+.1f%% (required %.1f%%)\n",
                                    100 * ev.relative_gain(), 100 * ev.required_gain()));
    if (ev.welch_df() > 0) {
      // Sequential replays test each look at its share of the significance.
      const double needs =
          ev.look_significance() > 0 ? ev.look_significance() : p.significance();
      absl::StrAppend(&out, absl::StrFormat("      welch    t=%.2f df=%.1f p=%.3g (needs < %g), "
                                            "effect size d=%.2f",
                                            ev.welch_t(), ev.welch_df(), ev.p_value(), needs,
                                            ev.effect_size()));
      if (ev.planned_looks() > 1)
        absl::StrAppend(&out, absl::StrFormat("; look %d of %d at %d replays a side", ev.looks(),
                                              ev.planned_looks(), ev.replays_requested()));
      absl::StrAppend(&out, "\n");
    }
    absl::StrAppend(&out, absl::StrFormat("      noise    floor %.2f%% (%.0f df, %s) x %g sigmas\n",
                                          100 * ev.noise_floor(), ev.noise_floor_df(),
                                          ev.noise_floor_key().empty() ? "-"
                                                                       : ev.noise_floor_key(),
                                          p.noise_sigmas()));
  }
  for (const auto& f : ev.screening_flags()) absl::StrAppend(&out, "      screened ", f, "\n");
  if (ev.timings_size() > 0) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& t : ev.timings())
      rows.push_back({absl::StrCat(t.job_id()), absl::StrCat(t.workload()), t.axes(),
                      Nanos(t.t_k_ns()), Nanos(t.t_outside_ns()),
                      t.t_k_ns() > 0 ? absl::StrFormat("x%.2f", t.t_outside_ns() / t.t_k_ns())
                                     : "-",
                      absl::StrCat(t.calls())});
    absl::StrAppend(&out, absl::StrFormat("      independent timing (tolerance x%.2f):\n",
                                          1 + p.timing_tolerance()),
                    Indent(FormatTable({"JOB", "WL", "AXES", "IN-PROCESS", "OUTSIDE", "RATIO",
                                        "CALLS"},
                                       rows),
                           "        "));
  }
  return out;
}

std::string FormatCandidate(const v1::CandidateDetail& d, bool with_files,
                            const ThreadIndex& threads) {
  const v1::Candidate& c = d.candidate();
  std::string out;
  absl::StrAppend(&out, "candidate ", c.id(), "  (campaign ", c.campaign_id(), ", ",
                  c.thread_id() == 0 ? "baseline"
                                     : absl::StrCat("thread ", ThreadLabel(c.thread_id(), threads)),
                  c.parent_id() == 0 ? "" : absl::StrCat(", parent ", c.parent_id()), ")\n");
  absl::StrAppend(&out, "  status       ", spec::Name(c.status()), ", score ", Score(c.score()),
                  "\n");
  absl::StrAppend(&out, "  created      ", LocalTime(c.created_unix_ms()), "\n");
  absl::StrAppend(&out, "  hash         ", c.content_hash().empty() ? "-" : c.content_hash(),
                  "\n");
  absl::StrAppend(&out, "  what changed ", c.description().empty() ? "-" : c.description(), "\n");

  std::map<std::string, std::string> knobs(c.solution().knobs().begin(),
                                           c.solution().knobs().end());
  std::vector<std::string> kv;
  for (const auto& [k, v] : knobs) kv.push_back(k + "=" + v);
  absl::StrAppend(&out, "  knobs        ", kv.empty() ? "defaults" : absl::StrJoin(kv, " "), "\n");

  std::map<std::string, std::string> files(c.solution().files().begin(),
                                           c.solution().files().end());
  absl::StrAppend(&out, "  files        ", files.size(), "\n");
  for (const auto& [path, content] : files) {
    size_t lines = std::count(content.begin(), content.end(), '\n');
    absl::StrAppend(&out, "    ", path, "  (", content.size(), " bytes, ", lines, " lines)\n");
  }
  if (with_files) {
    for (const auto& [path, content] : files) {
      absl::StrAppend(&out, "\n--- ", path, "\n", content);
      if (!content.empty() && content.back() != '\n') out += "\n";
    }
  }

  absl::StrAppend(&out, "\nevaluations   ", d.evaluations_size(), "\n");
  for (const auto& e : d.evaluations()) {
    absl::StrAppend(&out, "  #", e.id(), " ", JobKindName(e.kind()), " (job ", e.job_id(),
                    ") on ", e.worker_id().empty() ? "-" : e.worker_id(), ": ",
                    OutcomeName(v1::Outcome_Name(e.outcome())), ", score ", Score(e.score()),
                    absl::StrFormat(", %.1fs", e.wall_seconds()),
                    e.sandbox().empty() ? "" : ", sandbox " + e.sandbox(), "\n");
    if (!e.message().empty()) absl::StrAppend(&out, Indent(e.message(), "      | "));
    if (e.workloads_size() > 0) {
      std::vector<std::vector<std::string>> rows;
      for (const auto& w : e.workloads()) {
        rows.push_back({absl::StrCat(w.index()), w.axes(), w.correct() ? "yes" : "NO",
                        absl::StrFormat("%.4f", w.matched_fraction()),
                        absl::StrFormat("%.3g", w.max_abs_error()), Nanos(w.t_k_ns()),
                        absl::StrFormat("%.1f%%", 100 * w.t_k_spread()), Nanos(w.t_b_ns()),
                        TbSource(w), Nanos(w.t_sol_ns()), Score(w.score())});
      }
      absl::StrAppend(&out, Indent(FormatTable({"WL", "AXES", "CORRECT", "MATCHED", "MAX_ERR",
                                                "T_K", "SPREAD", "T_B", "T_B_FROM", "T_SOL",
                                                "SCORE"},
                                               rows),
                                   "      "));
      for (const auto& w : e.workloads()) {
        if (w.flags_size() > 0)
          absl::StrAppend(&out, "      workload ", w.index(), " flags: ",
                          absl::StrJoin(w.flags(), ", "), "\n");
        if (w.t_k_independent_ns() > 0)
          absl::StrAppend(&out, "      workload ", w.index(), " timed from outside: ",
                          Nanos(w.t_k_independent_ns()), " per call over ",
                          w.independent_calls(), " back-to-back calls\n");
      }
    }
  }

  absl::StrAppend(&out, "\nverifications ", d.verifications_size(), "\n");
  for (const auto& v : d.verifications()) {
    absl::StrAppend(&out, "  #", v.id(), " ", VerdictName(v.outcome()),
                    v.reason().empty() ? "" : " (" + v.reason() + ")", ": claimed ",
                    Score(v.claimed_score()), " vs incumbent ", v.incumbent_candidate_id(), " at ",
                    Score(v.incumbent_score()), "\n");
    absl::StrAppend(&out, "      replays  candidate ", Scores(v.candidate_scores()),
                    "; incumbent ", Scores(v.incumbent_scores()), "\n");
    absl::StrAppend(&out, "      policy   ", v.policy().replays(), " replays, min gain ",
                    absl::StrFormat("%.1f%%", 100 * v.policy().min_gain()), "; claim from ",
                    v.claim_worker_id().empty() ? "-" : v.claim_worker_id(), ", verifier ",
                    v.verifier_id().empty() ? "-" : v.verifier_id(), "\n");
    absl::StrAppend(&out, FormatEvidence(v));
    if (!v.detail().empty()) absl::StrAppend(&out, Indent(v.detail(), "      | "));
  }
  return out;
}

std::string FormatWorkers(const v1::ListWorkersResponse& resp) {
  if (resp.workers_size() == 0) return "no workers registered\n";
  std::vector<std::vector<std::string>> rows, gpu_rows;
  auto rate = [](double measured, double table) {
    // Measured next to the datasheet: "4012 / 4800 (84%)".
    if (measured <= 0 && table <= 0) return std::string("-");
    std::string m = measured > 0 ? absl::StrFormat("%.0f", measured) : "-";
    std::string t = table > 0 ? absl::StrFormat("%.0f", table) : "?";
    std::string pct = measured > 0 && table > 0
                          ? absl::StrFormat(" (%.0f%%)", 100 * measured / table)
                          : "";
    return absl::StrCat(m, " / ", t, pct);
  };
  for (const auto& w : resp.workers()) {
    const auto& hw = w.hardware();
    std::string cpu = hw.cpu_model().empty() ? "-" : Truncate(hw.cpu_model(), 40);
    if (hw.gpus_size() > 0) {
      cpu += absl::StrCat(" + ", hw.gpus_size(), "x ", hw.gpus(0));
    }
    // NCCL all-reduce bus bandwidth over all its GPUs, measured at start
    // (docs/cluster.md, "NCCL bus bandwidth"); "-" when not measured or 1 GPU.
    const std::string nccl =
        hw.nccl_allreduce_busbw_gbps() > 0
            ? absl::StrFormat("%.0f GB/s (%d GPUs)", hw.nccl_allreduce_busbw_gbps(),
                              hw.nccl_ranks())
            : "-";
    rows.push_back({w.id(), w.name(), cpu, absl::StrCat(hw.cpu_cores()),
                    absl::StrFormat("%.1f", hw.peak_gbps()),
                    absl::StrFormat("%.1f", hw.peak_gflops()), nccl,
                    w.sandbox().empty() ? "-" : w.sandbox(), w.connected() ? "yes" : "no",
                    absl::StrCat(w.job_ids_size(), " running, ", w.jobs_done(), " done")});
    for (const auto& g : hw.gpu_info()) {
      gpu_rows.push_back({w.id(), absl::StrCat(g.index()), Truncate(g.model(), 28),
                          g.sku().empty() ? "unknown" : g.sku(),
                          g.compute_capability().empty() ? "-" : g.compute_capability(),
                          absl::StrCat(g.sm_count()),
                          absl::StrFormat("%.0f", g.memory_bytes() / double(1 << 30)),
                          rate(g.measured_copy_gbps(), g.table_dram_gbps()),
                          rate(g.measured_gemm_bf16_tflops(), g.table_bf16_tflops())});
    }
    // GPUs the driver lists but no probe described (no ratchet-gpu-probe).
    for (int i = hw.gpu_info_size(); i < hw.gpus_size(); ++i) {
      gpu_rows.push_back({w.id(), absl::StrCat(i), Truncate(hw.gpus(i), 28), "-", "-", "-", "-",
                          "not calibrated", "not calibrated"});
    }
  }
  std::string out = FormatTable(
      {"ID", "NAME", "CPU", "CORES", "PEAK_GB/S", "PEAK_GFLOP/S", "NCCL_BUSBW", "SANDBOX",
       "CONNECTED", "JOBS"},
      rows);
  if (!gpu_rows.empty()) {
    absl::StrAppend(&out, "\nGPUs (measured at worker start / datasheet peak)\n",
                    FormatTable({"WORKER", "GPU", "MODEL", "SKU", "CC", "SMS", "GIB",
                                 "COPY_GB/S", "GEMM_BF16_TFLOP/S"},
                                gpu_rows));
  }
  return out;
}

}  // namespace ratchet::cli
