// Scale benchmark of the coordinator and its store (issue 6): a real
// coordinator process (the `ratchet` binary) on SQLite and on PostgreSQL, and
// N simulated workers on loopback (gRPC clients in threads) that register,
// heartbeat, AcquireJob, "run" the job by sleeping its sleep_ms and report a
// fake ok evaluation with CompleteJob. The campaign is a `task: sleep` one
// whose jobs are all queued at submission.
//
// This measures the coordinator and the store, not the harness: no job
// compiles or times anything. It prints, per backend and with group commit on
// and off, the job state transitions per second (QUEUED->LEASED and
// LEASED->DONE; heartbeat renewals are not counted) and the AcquireJob
// latency p50/p99 seen by the workers, then pgbench's TPS on the same
// PostgreSQL server and the ratios.
//
// usage: scale_bench [--workers=256] [--seconds=10] [--sleep-ms=5] [--jobs=60000]
//                    [--ratchet=PATH] [--backends=sqlite,postgres] [--pgbench-seconds=10]
#include <sys/stat.h>
#include <unistd.h>

#include <glob.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "ratchet/v1/ratchet.grpc.pb.h"
#include "tests/support/postgres_server.h"
#include "tests/support/process.h"

namespace ratchet::bench {
namespace {

namespace v1 = ::ratchet::v1;
using Clock = std::chrono::steady_clock;
using ratchet::testing::PostgresServer;
using ratchet::testing::Process;

struct Settings {
  int workers = 256;
  int seconds = 10;
  int warmup_seconds = 2;
  int sleep_ms = 5;
  int jobs = 60000;
  int pgbench_seconds = 10;
  std::string ratchet;
  std::vector<std::string> backends = {"sqlite", "postgres"};
};

struct Result {
  std::string name;
  double transitions_per_s = 0;
  double jobs_per_s = 0;
  double acquire_p50_ms = 0;
  double acquire_p99_ms = 0;
  double batch_size = 0;  // transitions per commit, from /metrics
  int64_t jobs = 0;
  int64_t errors = 0;
  std::string first_error;  // what the first failed call said, for the smoke's log
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * (v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double MetricValue(const std::string& text, const std::string& name) {
  std::regex re("(^|\n)" + name + "(\\{\\})? ([0-9.e+]+)");
  std::smatch m;
  if (!std::regex_search(text, m, re)) return 0;
  return std::atof(m[3].str().c_str());
}

std::string SelfDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  std::string path(buf, n);
  return path.substr(0, path.rfind('/'));
}

// pgbench from the same installation as the server programs.
std::string FindPgbench() {
  if (const char* dir = std::getenv("RATCHET_PG_BIN"); dir != nullptr) {
    std::string p = std::string(dir) + "/pgbench";
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  glob_t g;
  std::string found;
  if (glob("/usr/lib/postgresql/*/bin/pgbench", 0, nullptr, &g) == 0 && g.gl_pathc > 0)
    found = g.gl_pathv[g.gl_pathc - 1];
  globfree(&g);
  if (!found.empty()) return found;
  auto r = ratchet::testing::RunCommand({"/bin/sh", "-c", "command -v pgbench"}, 5000);
  std::string out = r.out;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

// One coordinator run: start it on `db`, submit a sleep campaign, let the
// simulated workers loose, measure after a warm-up.
std::optional<Result> RunOnce(const Settings& settings, const std::string& name,
                              const std::string& db, bool group_commit,
                              const std::string& dir) {
  const std::string port_file = dir + "/" + name + ".port";
  const std::string log = dir + "/" + name + ".log";
  Process coordinator({settings.ratchet, "coordinator", "--listen=127.0.0.1:0",
                       "--db=" + db, "--port-file=" + port_file, "--metrics=127.0.0.1:0",
                       absl::StrCat("--group-commit=", group_commit ? 1 : 0),
                       "--lease-seconds=30", "--heartbeat-seconds=2",
                       // One client queues every job at once, by design.
                       "--max-queued-jobs-per-client=0"},
                      log);
  if (!ratchet::testing::WaitForFile(port_file, 60'000)) {
    std::fprintf(stderr, "%s: coordinator did not start; log:\n%s\n", name.c_str(),
                 ratchet::testing::ReadFile(log).c_str());
    return std::nullopt;
  }
  int port = 0;
  (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(ratchet::testing::ReadFile(port_file)),
                         &port);
  const int metrics_port = ratchet::testing::MetricsPortFromLog(log);
  const std::string target = absl::StrCat("127.0.0.1:", port);

  // A few connections shared by the workers, as hosts would have.
  const int kChannels = 16;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  for (int i = 0; i < kChannels; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", i);  // distinct connections
    channels.push_back(
        grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args));
  }

  {
    auto client = v1::CoordinatorService::NewStub(channels[0]);
    v1::SubmitCampaignRequest req;
    auto* spec = req.mutable_spec();
    spec->set_name("scale-bench");
    spec->set_task(v1::TASK_SLEEP);
    spec->set_sleep_ms(settings.sleep_ms);
    spec->mutable_budget()->set_max_evaluations(settings.jobs);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(300));
    v1::Campaign campaign;
    grpc::Status s = client->SubmitCampaign(&ctx, req, &campaign);
    if (!s.ok()) {
      std::fprintf(stderr, "%s: submit: %s\n", name.c_str(), s.error_message().c_str());
      return std::nullopt;
    }
  }

  std::atomic<bool> stop{false}, measuring{false};
  std::atomic<int64_t> completed{0}, acquired{0}, errors{0};
  std::mutex error_mu;
  std::string first_error;
  auto fail = [&](const std::string& what) {
    ++errors;
    std::lock_guard<std::mutex> lock(error_mu);
    if (first_error.empty()) first_error = what;
  };
  std::mutex latency_mu;
  std::vector<double> latencies_ms;
  std::vector<std::string> ids(settings.workers);
  std::mutex ids_mu;

  auto worker_main = [&](int index) {
    auto stub = v1::WorkerService::NewStub(channels[index % kChannels]);
    std::string id;
    {
      v1::RegisterWorkerRequest req;
      req.set_name(absl::StrCat("sim", index));
      req.mutable_hardware()->set_cpu_model("simulated");
      req.mutable_hardware()->set_cpu_cores(1);
      req.set_sandbox("none");
      v1::RegisterWorkerResponse resp;
      grpc::ClientContext ctx;
      // As a real worker retries: a connection refused while 16 channels
      // open at once on a busy host is not the coordinator's error.
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      if (grpc::Status st = stub->RegisterWorker(&ctx, req, &resp); !st.ok()) {
        fail("RegisterWorker: " + st.error_message());
        return;
      }
      id = resp.worker_id();
      std::lock_guard<std::mutex> lock(ids_mu);
      ids[index] = id;
    }
    std::vector<double> mine;
    while (!stop.load()) {
      v1::AcquireJobRequest req;
      req.set_worker_id(id);
      req.set_wait_ms(500);
      v1::AcquireJobResponse resp;
      grpc::ClientContext ctx;
      ctx.set_wait_for_ready(true);
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      const auto t0 = Clock::now();
      grpc::Status s = stub->AcquireJob(&ctx, req, &resp);
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      if (!s.ok()) {
        fail("AcquireJob: " + s.error_message());
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      if (!resp.has_job()) continue;  // queue empty: long-polled
      const bool counted = measuring.load();
      if (counted) {
        mine.push_back(ms);
        ++acquired;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(resp.job().sleep_ms()));
      v1::CompleteJobRequest done;
      done.set_worker_id(id);
      done.set_job_id(resp.job().id());
      done.mutable_evaluation()->set_outcome(v1::OUTCOME_OK);
      done.mutable_evaluation()->set_score(1.0);
      done.mutable_evaluation()->set_wall_seconds(resp.job().sleep_ms() / 1000.0);
      v1::CompleteJobResponse ack;
      grpc::ClientContext cctx;
      cctx.set_wait_for_ready(true);
      cctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
      s = stub->CompleteJob(&cctx, done, &ack);
      if (!s.ok() || !ack.accepted()) {
        fail(absl::StrCat("CompleteJob of job ", resp.job().id(), ": ",
                          s.ok() ? "not accepted (its lease had lapsed?)" : s.error_message()));
        continue;
      }
      if (counted && measuring.load()) ++completed;
    }
    std::lock_guard<std::mutex> lock(latency_mu);
    latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
  };

  // Heartbeats: one thread renews every worker's lease (its one job, if any
  // is known to it: the coordinator only needs the id list to renew).
  std::thread heartbeats([&] {
    auto stub = v1::WorkerService::NewStub(channels[0]);
    while (!stop.load()) {
      std::vector<std::string> snapshot;
      {
        std::lock_guard<std::mutex> lock(ids_mu);
        snapshot = ids;
      }
      for (const auto& id : snapshot) {
        if (id.empty() || stop.load()) continue;
        v1::HeartbeatRequest req;
        req.set_worker_id(id);
        v1::HeartbeatResponse resp;
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        if (grpc::Status st = stub->Heartbeat(&ctx, req, &resp); !st.ok())
          fail("Heartbeat: " + st.error_message());
      }
      for (int i = 0; i < 20 && !stop.load(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });

  std::vector<std::thread> workers;
  for (int i = 0; i < settings.workers; ++i) workers.emplace_back(worker_main, i);
  std::this_thread::sleep_for(std::chrono::seconds(settings.warmup_seconds));
  const std::string before = ratchet::testing::HttpGet(metrics_port, "/metrics");
  measuring = true;
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(settings.seconds));
  measuring = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  // The coordinator folds its commit counters into /metrics once a second.
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const std::string after = ratchet::testing::HttpGet(metrics_port, "/metrics");
  stop = true;
  for (auto& t : workers) t.join();
  heartbeats.join();
  coordinator.Stop(SIGTERM, 20'000);

  Result r;
  r.name = name;
  r.jobs = completed.load();
  r.jobs_per_s = completed.load() / elapsed;
  r.transitions_per_s = (acquired.load() + completed.load()) / elapsed;
  r.acquire_p50_ms = Percentile(latencies_ms, 0.50);
  r.acquire_p99_ms = Percentile(latencies_ms, 0.99);
  r.errors = errors.load();
  r.first_error = first_error;
  const double batches = MetricValue(after, "ratchet_commit_batches_total") -
                         MetricValue(before, "ratchet_commit_batches_total");
  const double transitions = MetricValue(after, "ratchet_commit_transitions_total") -
                             MetricValue(before, "ratchet_commit_transitions_total");
  r.batch_size = batches > 0 ? transitions / batches : 0;
  return r;
}

std::optional<double> Pgbench(const Settings& settings, PostgresServer& server,
                              const std::string& pgbench) {
  if (!server.CreateDatabase("pgbench").ok()) return std::nullopt;
  const std::string url = server.Url("pgbench");
  auto init = ratchet::testing::RunCommand({pgbench, "-i", "-q", url}, 300'000);
  if (init.exit_code != 0) {
    std::fprintf(stderr, "pgbench -i failed:\n%s%s\n", init.out.c_str(), init.err.c_str());
    return std::nullopt;
  }
  auto run = ratchet::testing::RunCommand(
      {pgbench, "-c", "16", "-j", "2", "-T", std::to_string(settings.pgbench_seconds), url},
      (settings.pgbench_seconds + 120) * 1000);
  if (run.exit_code != 0) {
    std::fprintf(stderr, "pgbench failed:\n%s%s\n", run.out.c_str(), run.err.c_str());
    return std::nullopt;
  }
  std::smatch m;
  if (!std::regex_search(run.out, m, std::regex("tps = ([0-9.]+)"))) return std::nullopt;
  std::printf("%s", run.out.c_str());
  return std::atof(m[1].str().c_str());
}

void PrintResult(const Result& r) {
  std::printf("%-26s %12.0f %10.0f %10.2f %10.2f %8.1f %9lld %7lld\n", r.name.c_str(),
              r.transitions_per_s, r.jobs_per_s, r.acquire_p50_ms, r.acquire_p99_ms,
              r.batch_size, static_cast<long long>(r.jobs), static_cast<long long>(r.errors));
  if (!r.first_error.empty()) std::printf("  first error: %s\n", r.first_error.c_str());
}

int Main(int argc, char** argv) {
  Settings settings;
  settings.ratchet = SelfDir() + "/ratchet";
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag, int* out) {
      std::string prefix = std::string("--") + flag + "=";
      if (arg.rfind(prefix, 0) != 0) return false;
      return absl::SimpleAtoi(arg.substr(prefix.size()), out);
    };
    if (value("workers", &settings.workers) || value("seconds", &settings.seconds) ||
        value("sleep-ms", &settings.sleep_ms) || value("jobs", &settings.jobs) ||
        value("warmup-seconds", &settings.warmup_seconds) ||
        value("pgbench-seconds", &settings.pgbench_seconds))
      continue;
    if (arg.rfind("--ratchet=", 0) == 0) {
      settings.ratchet = arg.substr(10);
      continue;
    }
    if (arg.rfind("--backends=", 0) == 0) {
      settings.backends = absl::StrSplit(arg.substr(11), ',');
      continue;
    }
    std::fprintf(stderr,
                 "usage: scale_bench [--workers=256] [--seconds=10] [--sleep-ms=5] "
                 "[--jobs=60000] [--warmup-seconds=2] [--pgbench-seconds=10] "
                 "[--ratchet=PATH] [--backends=sqlite,postgres]\n");
    return 2;
  }
  const std::string dir = ratchet::testing::MakeTempDir("ratchet-scale-bench");
  std::printf("scale_bench: %d simulated workers, jobs sleep %d ms, %d s measured after %d s "
              "warm-up; %u CPUs\n",
              settings.workers, settings.sleep_ms, settings.seconds, settings.warmup_seconds,
              std::thread::hardware_concurrency());
  std::printf("(coordinator + store only: simulated workers run no harness)\n");

  std::vector<Result> results;
  std::optional<double> tps;
  std::unique_ptr<PostgresServer> server;
  for (const std::string& backend : settings.backends) {
    for (bool group : {true, false}) {
      const std::string name = absl::StrCat(backend, group ? " group-commit" : " one-per-txn");
      std::string db;
      if (backend == "sqlite") {
        db = absl::StrCat(dir, "/", group ? "group" : "single", ".db");
      } else if (backend == "postgres") {
        std::string why;
        if (!PostgresServer::Available(&why)) {
          std::fprintf(stderr, "postgres: skipped: %s\n", why.c_str());
          break;
        }
        if (server == nullptr) {
          auto started = PostgresServer::Start();
          if (!started.ok()) {
            std::fprintf(stderr, "postgres: %s\n", started.status().ToString().c_str());
            break;
          }
          server = std::move(*started);
        }
        const std::string database = group ? "bench_group" : "bench_single";
        if (auto s = server->CreateDatabase(database); !s.ok()) {
          std::fprintf(stderr, "postgres: %s\n", s.ToString().c_str());
          break;
        }
        db = server->Url(database);
      } else {
        std::fprintf(stderr, "unknown backend %s\n", backend.c_str());
        return 2;
      }
      std::fprintf(stderr, "running %s ...\n", name.c_str());
      auto r = RunOnce(settings, name, db, group, dir);
      if (r) results.push_back(*r);
    }
  }
  if (server != nullptr) {
    const std::string pgbench = FindPgbench();
    if (pgbench.empty()) {
      std::fprintf(stderr, "pgbench not found\n");
    } else {
      std::printf("\npgbench -c 16 -j 2 -T %d (TPC-B-like, same server):\n",
                  settings.pgbench_seconds);
      tps = Pgbench(settings, *server, pgbench);
    }
  }

  std::printf("\n%-26s %12s %10s %10s %10s %8s %9s %7s\n", "run", "transitions/s", "jobs/s",
              "acq p50ms", "acq p99ms", "batch", "jobs", "errors");
  for (const auto& r : results) PrintResult(r);
  std::map<std::string, double> by_name;
  for (const auto& r : results) by_name[r.name] = r.transitions_per_s;
  std::printf("\n");
  for (const char* backend : {"sqlite", "postgres"}) {
    const double g = by_name[absl::StrCat(backend, " group-commit")];
    const double one = by_name[absl::StrCat(backend, " one-per-txn")];
    if (g > 0 && one > 0)
      std::printf("%s: group commit / one transaction per transition = %.2f\n", backend,
                  g / one);
  }
  if (tps && *tps > 0) {
    std::printf("pgbench TPS %.0f\n", *tps);
    for (const auto& r : results)
      std::printf("%-26s transitions/s / pgbench TPS = %.2f\n", r.name.c_str(),
                  r.transitions_per_s / *tps);
  }
  server.reset();
  std::system(("rm -rf " + dir).c_str());
  // A run that moved no job or saw errors is a failure (the ctest smoke).
  bool failed = results.empty();
  for (const auto& r : results) failed = failed || r.jobs == 0 || r.errors > 0;
  return failed ? 1 : 0;
}

}  // namespace
}  // namespace ratchet::bench

int main(int argc, char** argv) { return ratchet::bench::Main(argc, argv); }
