#include "training/harness/launch_main.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/flags.h"

extern char** environ;

namespace ratchet::training {
namespace {

namespace fs = std::filesystem;

constexpr char kNonceVar[] = "RATCHET_RESULT_NONCE";
constexpr size_t kMaxMessage = 2000;
constexpr int kExitPrinted = 0;
constexpr int kExitUsage = 2;

constexpr char kUsage[] =
    "usage: ratchet launch --nproc=N --log=FILE [--workdir=DIR] [--python=PATH]\n"
    "                      [--budget=SECONDS] [--max-steps=N] [--warmup-allowance=S]\n"
    "                      [--grace=S] [--timeout=S]\n"
    "\n"
    "Runs PYTHON train.py of the current folder (or --workdir) as N ranks (torchrun's\n"
    "variables, the control channel on descriptor 3 of rank 0) with this process's\n"
    "environment less $RATCHET_RESULT_NONCE, their output to FILE, and prints one line\n"
    "at the end:\n"
    "  ratchet-launch-result NONCE {json of the launcher's result}\n"
    "and before it rank 0's progress, at most a line a second (shown, never scored):\n"
    "  ratchet-launch-progress STEP LOSS TOKENS_PER_S SECONDS\n"
    "The worker runs it inside a training job's sandbox (docs/training.md).\n"
    "\n"
    "  --nproc=N               ranks (default 1)\n"
    "  --python=PATH           default: $RATCHET_PYTHON, else python3 on PATH\n"
    "  --budget=SECONDS        training time (warm-up left out); also RATCHET_BUDGET_SECONDS\n"
    "  --max-steps=N           RATCHET_MAX_STEPS for the ranks\n"
    "  --warmup-allowance=S    most seconds of a marked warm-up left out (default 0)\n"
    "  --grace=S               past the budget: SIGTERM, SIGKILL after S more (default 30)\n"
    "  --timeout=S             hard stop for runs without a budget (default 3600)\n"
    "  --log=FILE              every rank's stdout and stderr (appended)\n"
    "  --workdir=DIR           the ranks' folder, holding train.py (default: the current one)\n";

int Usage(const std::string& error) {
  std::cerr << "ratchet launch: " << error << "\n\n" << kUsage;
  return kExitUsage;
}

// Takes the nonce out of our environment and wipes its bytes where they
// were: /proc/PID/environ shows the original block, whatever unsetenv does.
std::string TakeNonce() {
  std::string nonce;
  if (char* value = std::getenv(kNonceVar); value != nullptr) {
    nonce = value;
    std::memset(value, 'x', std::strlen(value));
  }
  unsetenv(kNonceVar);
  return nonce;
}

std::string FindOnPath(const std::string& name, const std::map<std::string, std::string>& env) {
  if (name.find('/') != std::string::npos) return name;
  auto path = env.find("PATH");
  for (absl::string_view dir :
       absl::StrSplit(path == env.end() ? "/usr/bin:/bin" : path->second, ':', absl::SkipEmpty())) {
    const std::string candidate = absl::StrCat(dir, "/", name);
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return name;
}

}  // namespace

nlohmann::json LaunchResultJson(const LaunchResult& r) {
  nlohmann::json j = {
      {"outcome", r.outcome},
      {"message", r.message.size() > kMaxMessage ? r.message.substr(0, kMaxMessage) + "..."
                                                 : r.message},
      {"wall_seconds", r.wall_seconds},
      {"warmup_seconds", r.warmup_seconds},
      {"training_seconds", r.training_seconds},
      {"steps", r.steps},
      {"exit_codes", r.exit_codes},
      {"progress_lines", r.progress.size()},
  };
  if (!r.progress.empty()) {
    j["last_loss"] = r.progress.back().loss;
    j["last_tokens_per_s"] = r.progress.back().tokens_per_s;
  }
  return j;
}

std::string LaunchProgressLine(const Progress& p) {
  return absl::StrFormat("%s %d %.6g %.6g %.3f", kLaunchProgressPrefix, p.step, p.loss,
                         p.tokens_per_s, p.at_seconds);
}

int LaunchMain(int argc, char** argv) {
  // Before anything else: no same-uid process may read our memory,
  // environment or descriptors through /proc, or trace us.
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const std::string nonce = TakeNonce();

  absl::StatusOr<Flags> flags = Flags::Parse(argc - 1, argv + 1, {"help"});
  if (!flags.ok()) return Usage(std::string(flags.status().message()));
  if (flags->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  auto unknown = flags->Unknown({"nproc", "python", "budget", "max-steps", "warmup-allowance",
                                 "grace", "timeout", "log", "workdir", "help"});
  if (!unknown.empty()) return Usage(absl::StrCat("unknown flag --", unknown[0]));
  if (!flags->positional().empty())
    return Usage("no positional arguments (train.py is run from --workdir or the current folder)");
  auto nproc = flags->GetInt("nproc", 1);
  auto budget = flags->GetDouble("budget", 0);
  auto max_steps = flags->GetInt("max-steps", 0);
  auto allowance = flags->GetDouble("warmup-allowance", 0);
  auto grace = flags->GetDouble("grace", 30);
  auto timeout = flags->GetDouble("timeout", 3600);
  for (const absl::Status* s : {&nproc.status(), &budget.status(), &max_steps.status(),
                                &allowance.status(), &grace.status(), &timeout.status()})
    if (!s->ok()) return Usage(std::string(s->message()));
  if (*nproc < 1 || *nproc > 1024) return Usage("--nproc must be between 1 and 1024");
  if (*budget < 0 || *max_steps < 0 || *allowance < 0 || *grace < 0 || *timeout <= 0)
    return Usage("--budget, --max-steps, --warmup-allowance and --grace must not be negative, "
                 "--timeout must be positive");
  const std::string log = flags->Get("log");
  if (log.empty()) return Usage("--log=FILE is required");

  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env.erase(kNonceVar);  // gone already; never passed on in any case
  if (*budget > 0) env["RATCHET_BUDGET_SECONDS"] = absl::StrCat(*budget);
  if (*max_steps > 0) env["RATCHET_MAX_STEPS"] = std::to_string(*max_steps);
  std::string python = flags->Get("python");
  if (python.empty()) {
    auto var = env.find("RATCHET_PYTHON");
    python = var != env.end() && !var->second.empty() ? var->second : "python3";
  }
  std::error_code ec;
  std::string workdir = fs::absolute(flags->Get("workdir", "."), ec).lexically_normal().string();
  while (workdir.size() > 1 && workdir.back() == '/') workdir.pop_back();
  if (ec || !fs::is_directory(workdir, ec))
    return Usage(absl::StrCat("--workdir=", flags->Get("workdir", "."), " is not a folder"));

  LaunchOptions launch;
  launch.argv = {FindOnPath(python, env), workdir + "/train.py"};
  launch.workdir = workdir;
  launch.env = std::move(env);
  launch.nproc = static_cast<int>(*nproc);
  launch.budget_seconds = *budget;
  launch.warmup_allowance_seconds = *allowance;
  launch.grace_seconds = *grace;
  launch.timeout_seconds = *timeout;
  launch.log_path = log;
  // Progress for the worker to pass on (the campaign's events): shown only,
  // never used by a verdict, so it carries no nonce. At most one line a
  // second by the launcher's clock; one heard sooner waits as the latest,
  // printed when a later one may not be or before the result line.
  constexpr double kProgressEverySeconds = 1.0;
  double printed_at = -1;
  std::optional<Progress> held;
  auto print = [](const Progress& p) { std::cout << LaunchProgressLine(p) << std::endl; };
  launch.on_progress = [&](const Progress& p) {
    if (printed_at >= 0 && p.at_seconds - printed_at < kProgressEverySeconds) {
      held = p;
      return;
    }
    print(p);
    printed_at = p.at_seconds;
    held.reset();
  };
  const LaunchResult result = Launch(launch);
  if (held) print(*held);
  std::cout << kLaunchResultPrefix << " " << (nonce.empty() ? "-" : nonce) << " "
            << LaunchResultJson(result).dump() << std::endl;
  return kExitPrinted;
}

}  // namespace ratchet::training
