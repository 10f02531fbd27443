#include "training/harness/train_scratch.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace ratchet::training {
namespace {

namespace fs = std::filesystem;

absl::Status Error(const std::string& what, const std::error_code& ec) {
  return absl::InternalError(absl::StrCat(what, ": ", ec.message()));
}

// A hard link costs nothing and names no other folder; across file systems a
// symbolic link, then a copy.
absl::Status PlaceShard(const fs::path& shard, const fs::path& to) {
  std::error_code ec;
  fs::create_hard_link(shard, to, ec);
  if (!ec) return absl::OkStatus();
  ec.clear();
  fs::create_symlink(shard, to, ec);
  if (!ec) return absl::OkStatus();
  ec.clear();
  fs::copy_file(shard, to, ec);
  if (ec) return Error(absl::StrCat("cannot place ", shard.string(), " in ", to.string()), ec);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TrainScratch> MakeTrainScratch(const std::string& requested,
                                              const std::string& project_dir,
                                              const std::vector<std::string>& train_shards) {
  std::error_code ec;
  fs::path root;
  if (requested.empty()) {
    const char* tmp = getenv("TMPDIR");
    std::string pattern = absl::StrCat(tmp != nullptr && *tmp ? tmp : "/tmp", "/ratchet-train-XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr)
      return absl::InternalError(absl::StrCat("cannot make ", pattern, ": ", std::strerror(errno)));
    root = pattern;
  } else {
    root = fs::absolute(requested, ec);
    fs::create_directories(root, ec);
    if (ec) return Error(absl::StrCat("cannot make --scratch=", requested), ec);
    if (!fs::is_empty(root, ec))
      return absl::InvalidArgumentError(
          absl::StrCat("--scratch=", requested, " is not empty; give a new or empty folder"));
  }
  TrainScratch s;
  s.root = root.string();
  s.project = (root / "project").string();
  s.train_data = (root / "train-data").string();
  s.home = (root / "home").string();
  s.tmp = (root / "tmp").string();
  s.checkpoint = (root / "checkpoint.pt").string();
  s.train_log = (root / "train.log").string();
  s.eval_out = (root / "eval.json").string();
  s.eval_log = (root / "eval.log").string();
  for (const std::string& dir : {s.train_data, s.home, s.tmp}) {
    fs::create_directories(dir, ec);
    if (ec) return Error(absl::StrCat("cannot make ", dir), ec);
  }
  fs::copy(project_dir, s.project, fs::copy_options::recursive | fs::copy_options::copy_symlinks,
           ec);
  if (ec) return Error(absl::StrCat("cannot copy the project ", project_dir, " to ", s.project), ec);
  for (const std::string& shard : train_shards) {
    absl::Status placed = PlaceShard(shard, fs::path(s.train_data) / fs::path(shard).filename());
    if (!placed.ok()) return placed;
  }
  return s;
}

}  // namespace ratchet::training
