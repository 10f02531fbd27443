#include "kernels/harness/python_solution.h"

#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "kernels/harness/candidate_channel.h"
#include "nlohmann/json.hpp"
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
  std::vector<std::string> files = s.sources;
  files.insert(files.end(), s.headers.begin(), s.headers.end());
  for (const std::string& abs : files) {
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
  if (s.torch_extension) absl::StrAppend(&run.load_target, "\nextension=solution/", kExtensionFile);
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
  if (solution_->torch_extension) {
    if (auto st = WriteExtensionSpec(dir + "/solution/" + kExtensionFile); !st.ok()) return st;
  }
  return CandidateProcess::Start(python_, {"-I", "-B", "/proc/self/fd/4"}, run.library,
                                 arena_bytes, dir, log, prepare);
}

void PythonSolutionHost::Release() {
  std::error_code ec;
  for (const std::string& d : dirs_) fs::remove_all(d, ec);
  dirs_.clear();
}

PythonSolutionHost::~PythonSolutionHost() {
  Release();
  std::error_code ec;
  if (!extension_dir_.empty()) fs::remove_all(extension_dir_, ec);
}

std::vector<std::string> CutlassIncludePaths(const char* cutlass_dir) {
  const fs::path root = cutlass_dir != nullptr && *cutlass_dir ? cutlass_dir : "/usr/local/cutlass";
  std::vector<std::string> paths;
  for (const fs::path& dir : {root / "include", root / "tools" / "util" / "include"}) {
    std::error_code ec;
    if (dir.is_absolute() && fs::is_directory(dir, ec)) paths.push_back(dir.lexically_normal().string());
  }
  return paths;
}

absl::Status PythonSolutionHost::WriteExtensionSpec(const std::string& path) {
  // One build folder for every candidate process of this run (the screen's
  // and the full evaluation's): torch rebuilds only when the sources change.
  // It belongs to the candidate's user, as the build is the candidate's.
  if (extension_dir_.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string dir = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/ratchet-ext-XXXXXX");
    if (mkdtemp(dir.data()) == nullptr)
      return absl::InternalError(absl::StrCat("mkdtemp ", dir, ": ", strerror(errno)));
    extension_dir_ = dir;
    if (geteuid() == 0 && chown(dir.c_str(), channel::kNobody, channel::kNobody) != 0)
      return absl::InternalError(absl::StrCat("chown ", dir, ": ", strerror(errno)));
  }
  nlohmann::json spec;
  nlohmann::json sources = nlohmann::json::array();
  for (const std::string& abs : solution_->sources)
    sources.push_back((fs::path("solution") / fs::path(abs).lexically_relative(solution_->dir)).string());
  spec["sources"] = sources;
  spec["cflags"] = solution_->cflags;
  spec["cuda_cflags"] = solution_->cuda_cflags;
  spec["ldflags"] = solution_->ldflags;
  spec["build_dir"] = extension_dir_;
  spec["include_paths"] = CutlassIncludePaths(std::getenv("CUTLASS_DIR"));
  {
    std::ofstream f(path, std::ios::trunc);
    f << spec.dump(2) << "\n";
    if (!f) return absl::InternalError(absl::StrCat("cannot write ", path));
  }
  std::error_code ec;
  fs::permissions(path, fs::perms(0644), ec);
  return absl::OkStatus();
}

}  // namespace ratchet::kernels
