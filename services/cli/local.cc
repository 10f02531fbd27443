#include "services/cli/local.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "services/cli/commands.h"
#include "services/cli/progress.h"
#include "services/cli/spec.h"
#include "services/cli/summary.h"
#include "common/clock.h"
#include "common/flags.h"

namespace ratchet::cli {
namespace {

namespace fs = std::filesystem;
namespace v1 = ratchet::v1;

constexpr int kPortFileTimeoutSeconds = 60;
constexpr int kStopGraceSeconds = 5;
constexpr int kTailLines = 20;

volatile std::sig_atomic_t g_stop_signal = 0;

void OnStopSignal(int sig) { g_stop_signal = sig; }

struct Child {
  std::string name;
  pid_t pid = -1;
  std::string log;
  bool exited = false;
  int status = 0;
  bool reported = false;
};

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return absl::StrCat("exited with status ", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return absl::StrCat("killed by signal ", WTERMSIG(status));
  return "stopped";
}

std::string SelfExe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "/proc/self/exe" : p.string();
}

// Starts `exe args...` with stdout and stderr appended to `log`. The child
// gets its own process group (so Ctrl-C reaches only us, and we stop it
// cleanly) and dies with us if we are killed outright.
absl::StatusOr<Child> Spawn(const std::string& name, const std::string& exe,
                            const std::vector<std::string>& args, const std::string& log) {
  int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot open log ", log, ": ", strerror(errno)));
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>("ratchet"));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fd);
    return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(1);  // parent already gone
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    ::execv(exe.c_str(), argv.data());
    const char msg[] = "ratchet local: exec failed\n";
    (void)!::write(2, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here, so it holds before we might signal it
  ::close(fd);
  Child c;
  c.name = name;
  c.pid = pid;
  c.log = log;
  return c;
}

// Non-blocking reap; true if it has exited (now or before).
bool Reap(Child& c) {
  if (c.exited) return true;
  int status;
  pid_t r = ::waitpid(c.pid, &status, WNOHANG);
  if (r == c.pid) {
    c.exited = true;
    c.status = status;
  }
  return c.exited;
}

// SIGTERM to each child's process group (its sandboxes and harness runs
// too), SIGKILL to whatever is left after the grace period.
void StopChildren(std::vector<Child*> children) {
  for (Child* c : children)
    if (!Reap(*c)) ::kill(-c->pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kStopGraceSeconds);
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (Child* c : children) all = Reap(*c) && all;
    if (all) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (Child* c : children) {
    if (!Reap(*c)) {
      ::kill(-c->pid, SIGKILL);
      ::waitpid(c->pid, &c->status, 0);
      c->exited = true;
    }
  }
}

std::string Timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::string ClockNow() {
  std::time_t t = std::time(nullptr);
  std::tm tm;
  localtime_r(&t, &tm);
  char buf[16];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

bool Terminal(v1::CampaignState s) {
  return s == v1::CAMPAIGN_FINISHED || s == v1::CAMPAIGN_FAILED || s == v1::CAMPAIGN_CANCELLED;
}

class LocalRun {
 public:
  // Progress goes to `progress` (fd `progress_fd`), redrawn in place when
  // that is a terminal.
  LocalRun(std::ostream& progress, int progress_fd, bool json)
      : progress_(progress, IsTerminal(progress_fd), TerminalWidth(progress_fd)), json_(json) {}
  // `llm_endpoints`: the operator's endpoints file for the coordinator
  // (docs/llm.md); "" = none.
  // `resume`: go on with the unfinished campaign of the spec's name in
  // `data_dir_flag`'s store (one an earlier run left: killed, or its machine
  // gone) instead of submitting a new one.
  // `drain_after_seconds` > 0: after that long, pause the unfinished
  // campaigns (no new leases), let the running jobs finish, then stop, so
  // that a run cut into time slices loses no job it started.
  int Run(const std::string& spec_path, int workers, const std::string& data_dir_flag,
          const std::string& llm_endpoints, bool resume, double drain_after_seconds);

 private:
  int Fail(const std::string& what) {
    progress_.Line("ratchet local: " + what);
    return kExitFailure;
  }
  void ReportDeath(Child& c) {
    if (c.reported) return;
    c.reported = true;
    std::string tail = TailFile(c.log, kTailLines);
    progress_.Line(absl::StrCat("ratchet local: ", c.name, " (pid ", c.pid, ") ",
                                DescribeExit(c.status), "; last lines of ", c.log, ":\n",
                                tail.empty() ? "  (empty log)\n" : tail));
  }
  absl::StatusOr<int> WaitForPort(Child& coordinator, const std::string& port_file);
  void StopAll();
  // The coordinator (on loopback, its store in `data_dir`), a verifier and
  // `workers` workers: the coordinator's address.
  absl::StatusOr<std::string> StartServices(const fs::path& data_dir, int workers,
                                            const std::string& llm_endpoints);
  // `resume`: the newest unfinished campaign of the spec's name, else the
  // newest finished one, else (and without `resume`) the spec submitted.
  absl::StatusOr<v1::Campaign> FindOrSubmit(v1::CoordinatorService::Stub* stub,
                                            const std::string& address,
                                            const v1::CampaignSpec& spec, bool resume,
                                            const std::string& dir);
  // Shows the campaigns' events and progress until every one has ended, a
  // signal comes, a service dies or (drain_after_seconds > 0) the campaigns,
  // paused after that long, have no job running: "" or what stopped it. A
  // suite's event lines carry their campaign's name.
  std::string WatchUntilDone(v1::CoordinatorService::Stub* stub, const std::string& address,
                             std::vector<v1::Campaign>* campaigns, double drain_after_seconds);
  // Pauses every campaign not yet ended (best effort: the coordinator may be gone).
  void PauseUnfinished(v1::CoordinatorService::Stub* stub, std::vector<v1::Campaign>* campaigns);
  // The campaign, its leaderboard and best candidate as the coordinator has
  // them now (left as they are when it is gone).
  void FinalFigures(v1::CoordinatorService::Stub* stub, SummaryInput* in);

  ProgressDisplay progress_;
  bool json_;
  Child coordinator_;
  std::vector<Child> services_;  // verifier and workers
};

absl::StatusOr<int> LocalRun::WaitForPort(Child& coordinator, const std::string& port_file) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kPortFileTimeoutSeconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (g_stop_signal) return absl::CancelledError("interrupted");
    std::ifstream in(port_file);
    std::string text;
    if (in && std::getline(in, text)) {
      int port;
      if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) return port;
    }
    if (Reap(coordinator)) {
      return absl::UnavailableError(absl::StrCat(
          "the coordinator ", DescribeExit(coordinator.status), " before serving; last lines of ",
          coordinator.log, ":\n", TailFile(coordinator.log, kTailLines)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "the coordinator did not write ", port_file, " within ", kPortFileTimeoutSeconds,
      "s; last lines of ", coordinator.log, ":\n", TailFile(coordinator.log, kTailLines)));
}

void LocalRun::StopAll() {
  std::vector<Child*> first;
  for (Child& c : services_) first.push_back(&c);
  StopChildren(first);  // workers and verifier before the coordinator they talk to
  if (coordinator_.pid > 0) StopChildren({&coordinator_});
}

// The data folder: the flag's, else a new .ratchet/local-TIMESTAMP.
absl::StatusOr<fs::path> MakeDataDir(const std::string& data_dir_flag) {
  fs::path data_dir = data_dir_flag;
  if (data_dir.empty()) {
    data_dir = fs::path(".ratchet") / ("local-" + Timestamp());
    for (int n = 2; fs::exists(data_dir); ++n)
      data_dir = fs::path(".ratchet") / absl::StrCat("local-", Timestamp(), "-", n);
  }
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot create ", data_dir.string(), ": ",
                                                  ec.message()));
  return data_dir;
}

absl::StatusOr<std::string> LocalRun::StartServices(const fs::path& data_dir, int workers,
                                                    const std::string& llm_endpoints) {
  std::error_code ec;
  const std::string port_file = (data_dir / "coordinator.port").string();
  fs::remove(port_file, ec);
  const std::string exe = SelfExe();
  std::vector<std::string> coordinator_args = {
      "coordinator", "--listen=127.0.0.1:0", "--db=" + (data_dir / "ratchet.db").string(),
      "--port-file=" + port_file, "--metrics=127.0.0.1:0"};
  if (!llm_endpoints.empty())
    coordinator_args.push_back("--llm-endpoints=" + fs::absolute(llm_endpoints).string());
  absl::StatusOr<Child> coordinator = Spawn("coordinator", exe, coordinator_args,
                                            (data_dir / "coordinator.log").string());
  if (!coordinator.ok()) return coordinator.status();
  coordinator_ = *coordinator;

  absl::StatusOr<int> port = WaitForPort(coordinator_, port_file);
  if (!port.ok()) return port.status();
  const std::string address = absl::StrCat("127.0.0.1:", *port);
  progress_.Line(absl::StrCat("ratchet local: coordinator at ", address));

  std::vector<std::pair<std::string, std::vector<std::string>>> launches;
  launches.push_back({"verifier",
                      {"verifier", "--coordinator=" + address, "--name=local-verifier",
                       "--metrics=127.0.0.1:0"}});
  for (int i = 1; i <= workers; ++i) {
    fs::path scratch = data_dir / absl::StrCat("worker-", i, "-scratch");
    fs::create_directories(scratch, ec);
    launches.push_back({absl::StrCat("worker-", i),
                        {"worker", "--coordinator=" + address,
                         absl::StrCat("--name=local-worker-", i), "--scratch=" + scratch.string(),
                         "--metrics=127.0.0.1:0"}});
  }
  for (const auto& [name, args] : launches) {
    absl::StatusOr<Child> c = Spawn(name, exe, args, (data_dir / (name + ".log")).string());
    if (!c.ok()) return c.status();
    services_.push_back(*c);
  }
  progress_.Line(absl::StrCat("ratchet local: started a verifier and ", workers, " worker",
                              workers == 1 ? "" : "s"));
  return address;
}

absl::StatusOr<v1::Campaign> LocalRun::FindOrSubmit(v1::CoordinatorService::Stub* stub,
                                                    const std::string& address,
                                                    const v1::CampaignSpec& spec, bool resume,
                                                    const std::string& dir) {
  v1::Campaign campaign;
  if (resume) {
    v1::ListCampaignsResponse list;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    grpc::Status s = stub->ListCampaigns(&ctx, v1::ListCampaignsRequest(), &list);
    if (!s.ok()) return absl::UnavailableError(RpcErrorLine(address, s));
    v1::Campaign finished;  // the newest one that ended, when none is unfinished
    for (const v1::Campaign& c : list.campaigns()) {
      if (c.spec().name() != spec.name()) continue;
      if (!Terminal(c.state()) && c.id() > campaign.id()) campaign = c;
      if (c.state() == v1::CAMPAIGN_FINISHED && c.id() > finished.id()) finished = c;
    }
    if (campaign.id() > 0) {
      progress_.Line(absl::StrCat("ratchet local: resuming campaign ", campaign.id(), " (",
                                  spec.name(), ", ", campaign.evaluations(),
                                  " evaluations so far)"));
      // Paused by an interrupted run (or by hand): its research goes on.
      if (campaign.state() == v1::CAMPAIGN_PAUSED) {
        v1::ResumeCampaignRequest req;
        req.set_campaign_id(campaign.id());
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
        grpc::Status s = stub->ResumeCampaign(&ctx, req, &campaign);
        if (!s.ok()) return absl::UnavailableError(RpcErrorLine(address, s));
      }
      return campaign;
    }
    // A suite resumed after some of its campaigns finished: those stay done.
    if (finished.id() > 0) {
      progress_.Line(absl::StrCat("ratchet local: campaign ", finished.id(), " (", spec.name(),
                                  ") already finished, with ", finished.evaluations(),
                                  " evaluations"));
      return finished;
    }
    progress_.Line(absl::StrCat("ratchet local: no unfinished campaign named ", spec.name(),
                                " in ", dir, ": submitting it"));
  }
  v1::SubmitCampaignRequest req;
  *req.mutable_spec() = spec;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  grpc::Status s = stub->SubmitCampaign(&ctx, req, &campaign);
  if (!s.ok()) return absl::UnavailableError(RpcErrorLine(address, s));
  if (!resume)
    progress_.Line(absl::StrCat("ratchet local: submitted campaign ", campaign.id(), " (",
                                spec.name(), ")"));
  return campaign;
}

std::string LocalRun::WatchUntilDone(v1::CoordinatorService::Stub* stub,
                                     const std::string& address,
                                     std::vector<v1::Campaign>* campaigns,
                                     double drain_after_seconds) {
  const bool suite = campaigns->size() > 1;
  const auto watch_start = std::chrono::steady_clock::now();
  bool draining = false;
  // Event lines come from the streams; the status line from polling, so it
  // keeps moving (elapsed time) even when nothing happens.
  std::vector<std::unique_ptr<grpc::ClientContext>> watch_ctx;
  std::vector<std::thread> watchers;
  for (const v1::Campaign& c : *campaigns) {
    watch_ctx.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* ctx = watch_ctx.back().get();
    const std::string prefix = suite ? absl::StrCat("[", c.spec().name(), "] ") : "";
    watchers.emplace_back([this, stub, ctx, prefix, id = c.id()] {
      v1::WatchCampaignRequest req;
      req.set_campaign_id(id);
      auto reader = stub->WatchCampaign(ctx, req);
      v1::CampaignEvent event;
      while (reader->Read(&event)) {
        if (!event.text().empty()) progress_.Line(ClockNow() + "  " + prefix + event.text());
      }
      reader->Finish();
    });
  }

  int rpc_failures = 0;
  std::string failure;
  while (true) {
    if (g_stop_signal) {
      failure = absl::StrCat("interrupted by signal ", static_cast<int>(g_stop_signal),
                             "; stopping the services");
      break;
    }
    if (Reap(coordinator_)) {
      ReportDeath(coordinator_);
      failure = "the coordinator died";
      break;
    }
    int workers_alive = 0;
    for (Child& c : services_) {
      if (Reap(c)) {
        ReportDeath(c);
      } else if (c.name != "verifier") {
        ++workers_alive;
      }
    }
    if (workers_alive == 0) {
      failure = "every worker died";
      break;
    }
    grpc::Status s;
    for (v1::Campaign& campaign : *campaigns) {
      if (Terminal(campaign.state())) continue;
      v1::GetCampaignRequest req;
      req.set_campaign_id(campaign.id());
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
      v1::Campaign now;
      s = stub->GetCampaign(&ctx, req, &now);
      if (!s.ok()) break;
      campaign = now;
    }
    if (s.ok()) {
      rpc_failures = 0;
      // The status line follows the first campaign still running (a suite's
      // own lines say which).
      const v1::Campaign* shown = &campaigns->back();
      for (const v1::Campaign& c : *campaigns)
        if (!Terminal(c.state())) {
          shown = &c;
          break;
        }
      progress_.Update(*shown, CampaignActiveSeconds(*shown, NowUnixMs()));
      if (Terminal(shown->state())) break;
      if (draining) {
        int running = 0;
        for (const v1::Campaign& c : *campaigns)
          if (!Terminal(c.state())) running += c.jobs_running();
        if (running == 0) {
          progress_.Line("ratchet local: drained: no job running; stopping the services");
          break;
        }
      } else if (drain_after_seconds > 0 &&
                 std::chrono::steady_clock::now() - watch_start >=
                     std::chrono::duration<double>(drain_after_seconds)) {
        draining = true;
        progress_.Line(absl::StrCat("ratchet local: draining after ", drain_after_seconds,
                                    " s: no new leases; the running jobs finish"));
        PauseUnfinished(stub, campaigns);
      }
    } else if (++rpc_failures >= 20) {
      failure = RpcErrorLine(address, s);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  for (auto& ctx : watch_ctx) ctx->TryCancel();
  for (std::thread& t : watchers) t.join();
  progress_.Finish();
  return failure;
}

void LocalRun::PauseUnfinished(v1::CoordinatorService::Stub* stub,
                               std::vector<v1::Campaign>* campaigns) {
  if (Reap(coordinator_)) return;
  for (v1::Campaign& c : *campaigns) {
    if (Terminal(c.state()) || c.state() == v1::CAMPAIGN_PAUSED) continue;
    v1::PauseCampaignRequest req;
    req.set_campaign_id(c.id());
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    if (stub->PauseCampaign(&ctx, req, &c).ok())
      progress_.Line(absl::StrCat("ratchet local: paused campaign ", c.id(), " (", c.spec().name(),
                                  "); go on with --resume --data-dir=<this run's folder>"));
  }
}

void LocalRun::FinalFigures(v1::CoordinatorService::Stub* stub, SummaryInput* in) {
  if (Reap(coordinator_)) return;
  const int64_t id = in->campaign.id();
  const v1::Campaign last = in->campaign;
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(5);
  {
    v1::GetCampaignRequest req;
    req.set_campaign_id(id);
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    if (!stub->GetCampaign(&ctx, req, &in->campaign).ok()) in->campaign = last;
  }
  {
    v1::GetLeaderboardRequest req;
    req.set_campaign_id(id);
    req.set_limit(10);
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    stub->GetLeaderboard(&ctx, req, &in->leaderboard);
  }
  if (in->campaign.best_candidate_id() != 0) {
    v1::GetCandidateRequest req;
    req.set_candidate_id(in->campaign.best_candidate_id());
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    if (!stub->GetCandidate(&ctx, req, &in->best).ok()) in->best.Clear();
  }
}

int LocalRun::Run(const std::string& spec_path, int workers, const std::string& data_dir_flag,
                  const std::string& llm_endpoints, bool resume, double drain_after_seconds) {
  // One campaign, or one per problem of a suite (a spec whose problem is a
  // folder of problems), run side by side on the same services.
  absl::StatusOr<std::vector<v1::CampaignSpec>> specs = LoadCampaignSuite(spec_path);
  if (!specs.ok()) return Fail(std::string(specs.status().message()));
  absl::StatusOr<fs::path> data_dir = MakeDataDir(data_dir_flag);
  if (!data_dir.ok()) return Fail(std::string(data_dir.status().message()));
  const std::string dir = data_dir->string();
  progress_.Line(absl::StrCat("ratchet local: data and logs in ", dir, "/"));

  // Signals only set a flag; the loops below notice it and stop the children.
  struct sigaction sa = {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  absl::StatusOr<std::string> address = StartServices(*data_dir, workers, llm_endpoints);
  if (!address.ok()) {
    StopAll();
    return Fail(std::string(address.status().message()));
  }
  auto stub = MakeStub(*address);
  std::vector<v1::Campaign> campaigns;
  for (const v1::CampaignSpec& spec : *specs) {
    absl::StatusOr<v1::Campaign> campaign = FindOrSubmit(stub.get(), *address, spec, resume, dir);
    if (!campaign.ok()) {
      StopAll();
      return Fail(std::string(campaign.status().message()));
    }
    campaigns.push_back(*std::move(campaign));
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string failure =
      WatchUntilDone(stub.get(), *address, &campaigns, drain_after_seconds);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!failure.empty()) progress_.Line("ratchet local: " + failure);
  // Interrupted (Ctrl-C, a timeout's SIGTERM): the unfinished campaigns are
  // paused, so that the time until `--resume` does not count against their
  // wall budget.
  if (g_stop_signal) PauseUnfinished(stub.get(), &campaigns);

  // Final figures, while the coordinator is still up.
  std::vector<SummaryInput> suite(campaigns.size());
  bool all_finished = true;
  for (size_t i = 0; i < campaigns.size(); ++i) {
    suite[i].campaign = campaigns[i];
    suite[i].wall_seconds = wall;
    suite[i].logs = dir;
    FinalFigures(stub.get(), &suite[i]);
    all_finished = all_finished && suite[i].campaign.state() == v1::CAMPAIGN_FINISHED;
  }
  StopAll();
  progress_.Line("ratchet local: services stopped");
  if (suite.size() == 1) {
    std::cout << (json_ ? SummaryJson(suite[0]) + "\n" : "\n" + SummaryText(suite[0]));
  } else if (json_) {
    // The suite's table, and each campaign's summary as one campaign's run prints it.
    nlohmann::json j = nlohmann::json::parse(SuiteJson(suite));
    j["campaigns"] = nlohmann::json::array();
    for (const SummaryInput& in : suite) j["campaigns"].push_back(nlohmann::json::parse(SummaryJson(in)));
    j["wall_seconds"] = wall;
    std::cout << j.dump(2) << "\n";
  } else {
    for (const SummaryInput& in : suite) std::cout << "\n" << SummaryText(in);
    std::cout << "\n" << SuiteText(suite);
  }
  std::cout.flush();
  return failure.empty() && all_finished ? kExitOk : kExitFailure;
}

}  // namespace

std::string TailFile(const std::string& path, int lines) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  // Only the end matters; logs can be large.
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff from = size > 64 * 1024 ? size - 64 * 1024 : 0;
  in.seekg(from);
  std::deque<std::string> tail;
  std::string line;
  bool first = from > 0;  // a partial first line
  while (std::getline(in, line)) {
    if (first) {
      first = false;
      continue;
    }
    tail.push_back(line);
    if (static_cast<int>(tail.size()) > lines) tail.pop_front();
  }
  std::string out;
  for (const auto& l : tail) absl::StrAppend(&out, "  | ", l, "\n");
  return out;
}

int LocalMain(int argc, char** argv) {
  absl::StatusOr<Flags> flags = Flags::Parse(argc - 1, argv + 1, {"json", "resume", "help"});
  if (!flags.ok()) {
    std::cerr << "ratchet local: " << flags.status().message() << "\n\n" << CommandUsage("local");
    return kExitUsage;
  }
  if (flags->Has("help")) {
    std::cout << CommandUsage("local");
    return kExitOk;
  }
  std::vector<std::string> unknown =
      flags->Unknown({"json", "workers", "data-dir", "llm-endpoints", "resume", "drain-after", "help"});
  if (!unknown.empty()) {
    std::cerr << "ratchet local: unknown flag --" << unknown[0] << "\n\n" << CommandUsage("local");
    return kExitUsage;
  }
  if (flags->positional().size() != 1) {
    std::cerr << "ratchet local: expected one spec.yaml\n\n" << CommandUsage("local");
    return kExitUsage;
  }
  absl::StatusOr<long long> workers = flags->GetInt("workers", 2);
  if (!workers.ok() || *workers < 1 || *workers > 64) {
    std::cerr << "ratchet local: --workers wants a number from 1 to 64\n";
    return kExitUsage;
  }
  if (flags->Has("resume") && flags->Get("data-dir").empty()) {
    std::cerr << "ratchet local: --resume needs --data-dir (the folder of the run to go on with)\n";
    return kExitUsage;
  }
  absl::StatusOr<double> drain_after = flags->GetDouble("drain-after", 0);
  if (flags->Has("drain-after") && (!drain_after.ok() || !(*drain_after > 0) || *drain_after > 1e7)) {
    std::cerr << "ratchet local: --drain-after wants seconds, more than 0\n";
    return kExitUsage;
  }
  if (flags->Has("drain-after") && flags->Get("data-dir").empty()) {
    std::cerr << "ratchet local: --drain-after needs --data-dir (the folder to --resume from)\n";
    return kExitUsage;
  }
  const bool json = flags->Has("json");
  LocalRun run(json ? std::cerr : std::cout, json ? STDERR_FILENO : STDOUT_FILENO, json);
  return run.Run(flags->positional()[0], static_cast<int>(*workers), flags->Get("data-dir"),
                 flags->Get("llm-endpoints"), flags->Has("resume"), *drain_after);
}

}  // namespace ratchet::cli
