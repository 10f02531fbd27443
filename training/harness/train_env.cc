#include "training/harness/train_env.h"

#include <sched.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace ratchet::training {
namespace {

namespace fs = std::filesystem;

std::string SelfDir() {
  char buf[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  return fs::path(buf).parent_path().string();
}

}  // namespace

std::map<std::string, std::string> BaseEnvironment(const TrainScratch& scratch, int threads) {
  std::map<std::string, std::string> env = {
      {"PATH", "/usr/local/bin:/usr/bin:/bin"},
      {"HOME", scratch.home},
      {"TMPDIR", scratch.tmp},
      {"LANG", "C.UTF-8"},
      {"OMP_NUM_THREADS", std::to_string(threads < 1 ? 1 : threads)},
      {"NCCL_NVLS_ENABLE", "0"},
      {"PYTHONUNBUFFERED", "1"},  // train.log as it happens, also after a crash
  };
  if (const char* gpus = std::getenv("CUDA_VISIBLE_DEVICES")) env["CUDA_VISIBLE_DEVICES"] = gpus;
  return env;
}

bool IsKnobName(const std::string& name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

std::string FindEvaluatorDir(std::string* tried) {
  std::string dir;
  if (const char* var = std::getenv("RATCHET_TRAINING_EVAL"); var != nullptr && *var) {
    dir = var;
  } else {
    dir = SelfDir() + "/training_eval";
  }
  *tried = dir;
  std::error_code ec;
  for (const char* file : kEvaluatorFiles)
    if (!fs::is_regular_file(fs::path(dir) / file, ec)) return "";
  return fs::absolute(dir, ec).string();
}

}  // namespace ratchet::training
