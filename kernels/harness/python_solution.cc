#include "kernels/harness/python_solution.h"

#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "kernels/harness/subprocess.h"

namespace ratchet::kernels {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<std::string> TorchPython(const HarnessRun& run, const std::string& log) {
  bool configured = false;
  const std::vector<std::string> pythons = TorchPythonCandidates(run.args.python, &configured);
  for (const std::string& py : pythons) {
    auto rc = RunProcess({py, "-I", "-c", "import sys, torch; print(sys.executable)"}, log);
    if (!rc.ok() || *rc != 0) continue;
    std::string out(absl::StripTrailingAsciiWhitespace(ReadFileOrEmpty(log)));
    const size_t nl = out.rfind('\n');  // a warning printed before it
    if (nl != std::string::npos) out = out.substr(nl + 1);
    if (!out.empty() && out[0] == '/') return out;
  }
  return absl::FailedPreconditionError(
      "no python that can import torch for the Python solution (set --python or $RATCHET_PYTHON)");
}

// Copies the solution's sources under `to`, readable by the candidate
// process whoever it runs as (this process's umask is 077).
absl::Status CopySources(const Solution& s, const std::string& to) {
  std::error_code ec;
  for (const std::string& abs : s.sources) {
    const fs::path dst = fs::path(to) / fs::path(abs).lexically_relative(s.dir);
    fs::create_directories(dst.parent_path(), ec);
    fs::copy_file(abs, dst, fs::copy_options::overwrite_existing, ec);
    if (ec) return absl::InternalError(absl::StrCat("copying ", abs, ": ", ec.message()));
    fs::permissions(dst, fs::perms(0644), ec);
    for (fs::path d = dst.parent_path(); d != fs::path(to).parent_path(); d = d.parent_path())
      fs::permissions(d, fs::perms(0755), ec);
  }
  return absl::OkStatus();
}

}  // namespace

bool PythonSolutionHost::Prepare(const Solution& s, HarnessRun& run) {
  ReportStage("compile");
  const auto t0 = std::chrono::steady_clock::now();
  const std::string build = run.scratch + "/build";
  if (auto st = FreshDir(build); !st.ok())
    return run.Fail(kOutcomeHarnessError, std::string(st.message()));
  run.library = SelfExeDir() + "/candidate_host.py";
  if (ReadFileOrEmpty(run.library).empty())
    return run.Fail(kOutcomeHarnessError, "candidate_host.py not found beside the harness");
  auto py = TorchPython(run, build + "/python.log");
  if (!py.ok()) return run.Fail(kOutcomeHarnessError, std::string(py.status().message()));
  python_ = *py;
  solution_ = std::make_unique<Solution>(s);
  run.load_target = "solution/" + s.entry_point;
  if (!s.destination_passing_style) run.load_target += "\ndps=0";
  for (const auto& [k, v] : s.knobs) absl::StrAppend(&run.load_target, "\nknob ", k, "=", v);
  run.result.compile_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return true;
}

absl::StatusOr<std::unique_ptr<CandidateProcess>> PythonSolutionHost::Start(
    const HarnessRun& run, size_t arena_bytes, const std::string& log,
    const std::function<void(channel::ControlBlock*)>& prepare) {
  if (!active()) return absl::FailedPreconditionError("no Python solution prepared");
  const char* tmp = std::getenv("TMPDIR");
  std::string dir = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/ratchet-py-XXXXXX");
  if (mkdtemp(dir.data()) == nullptr)
    return absl::InternalError(absl::StrCat("mkdtemp ", dir, ": ", strerror(errno)));
  dirs_.push_back(dir);
  std::error_code ec;
  fs::permissions(dir, fs::perms(0711), ec);  // listable by the candidate's user only
  if (auto st = CopySources(*solution_, dir + "/solution"); !st.ok()) return st;
  return CandidateProcess::Start(python_, {"-I", "-B", "/proc/self/fd/4"}, run.library,
                                 arena_bytes, dir, log, prepare);
}

void PythonSolutionHost::Release() {
  std::error_code ec;
  for (const std::string& d : dirs_) fs::remove_all(d, ec);
  dirs_.clear();
}

}  // namespace ratchet::kernels
