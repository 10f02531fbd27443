#include "training/harness/torch_python.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "training/harness/child_process.h"

namespace ratchet::training {

absl::StatusOr<std::string> FindTorchPython(const std::string& explicit_choice,
                                            const std::map<std::string, std::string>& env) {
  std::vector<std::string> pythons;
  bool configured = true;
  if (!explicit_choice.empty()) {
    pythons.push_back(explicit_choice);
  } else if (const char* var = std::getenv("RATCHET_PYTHON"); var != nullptr && *var) {
    pythons.push_back(var);
  } else {
    configured = false;
    // Every python3 on this process's PATH by its full name: the children
    // run with a scrubbed environment whose PATH may not reach the one the
    // user means (a virtual environment's, as on the GPU machines).
    pythons = {"/usr/bin/python3"};
    if (const char* path = std::getenv("PATH"); path != nullptr)
      for (absl::string_view dir : absl::StrSplit(path, ':', absl::SkipEmpty())) {
        std::string py = absl::StrCat(dir, "/python3");
        if (dir[0] == '/' && access(py.c_str(), X_OK) == 0 &&
            std::find(pythons.begin(), pythons.end(), py) == pythons.end())
          pythons.push_back(std::move(py));
      }
    pythons.push_back("python3");
  }
  std::string tried;
  for (const std::string& py : pythons) {
    ChildOptions probe;
    probe.argv = {py, "-c", "import sys, torch; print(sys.executable)"};
    probe.env = env;
    probe.timeout_seconds = 120;  // importing torch on a busy machine
    absl::StatusOr<ChildResult> r = RunChild(probe);
    if (r.ok() && r->status == 0 && !r->timed_out) {
      std::string path(absl::StripAsciiWhitespace(r->output));
      const size_t nl = path.rfind('\n');  // a warning printed before it
      if (nl != std::string::npos) path = path.substr(nl + 1);
      if (!path.empty() && path[0] == '/') return path;
    }
    absl::StrAppend(&tried, "\n  ", py, ": ",
                    !r.ok()              ? std::string(r.status().message())
                    : r->status == 127   ? std::string("not found")
                    : r->timed_out       ? std::string("the probe timed out")
                                         : std::string("cannot import torch"));
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no python that can import torch", configured ? " (as configured)" : "",
                   "; tried:", tried, "\nset --python=PATH or $RATCHET_PYTHON"));
}

}  // namespace ratchet::training
