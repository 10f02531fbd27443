// The oracle's rounds kept per campaign seed (docs/harness.md, "Rounds given
// by the worker"). A kernel campaign's evaluations share one input seed
// (Job.shared_inputs), so the worker runs the harness once with
// --oracle-only, in a sandbox of its own where no candidate code has ever
// run, keeps what it wrote, and hands a copy to every evaluation of that seed
// (--given-rounds): no oracle process per evaluation. A verification's
// replays come in pairs, candidate and incumbent on one fresh seed: the
// first of a pair on a worker makes that seed's rounds the same way, the
// second takes them.
//
// Nothing in the cache ever comes from a job's folder: a job's folder is
// writable by candidate code, so only the oracle-only run's output is kept.
// The harness itself checks that the given rounds were made for its request
// and reads them before the candidate is compiled.
#ifndef RATCHET_WORKER_ROUNDS_CACHE_H_
#define RATCHET_WORKER_ROUNDS_CACHE_H_

#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "kernels/harness/contract.h"
#include "ratchet/v1/ratchet.pb.h"
#include "worker/sandbox.h"

namespace ratchet::worker {

class RoundsCache {
 public:
  // `dir` empty: no cache (Provide always answers "").
  RoundsCache(std::string dir, int max_entries) : dir_(std::move(dir)), max_entries_(max_entries) {}

  // Whether a job may take given rounds: a kernel evaluation of shared
  // inputs, or a replay, whose T_b is given (a job that times T_b runs the
  // oracle).
  static bool Applies(const v1::Job& job, const kernels::HarnessArgs& args);

  // The folder, inside `job_scratch`, holding the rounds of the job's seed
  // (made first if the cache has none), or "" when there are none to give
  // (the harness then runs its oracle as usual); `seconds` gets the time
  // the oracle-only run and the copy took. `job_args` and `job_spec` are the
  // job's harness arguments and sandbox; `command_line` turns arguments into
  // the harness's argv.
  std::string Provide(const v1::Job& job, const kernels::HarnessArgs& job_args,
                      const SandboxSpec& job_spec, const Sandbox& sandbox, const RunHooks& hooks,
                      const std::filesystem::path& job_scratch,
                      const std::function<std::vector<std::string>(const kernels::HarnessArgs&)>&
                          command_line,
                      const std::function<void(const std::string&)>& log, double* seconds);

  // The entry's name for a job: its problem, seed and harness settings.
  static std::string Key(const v1::Job& job, const kernels::HarnessArgs& args);

 private:
  bool Make(const v1::Job& job, const kernels::HarnessArgs& job_args, const SandboxSpec& job_spec,
            const Sandbox& sandbox, const RunHooks& hooks, const std::filesystem::path& entry,
            const std::function<std::vector<std::string>(const kernels::HarnessArgs&)>&
                command_line,
            const std::function<void(const std::string&)>& log);
  void Evict(const std::filesystem::path& keep);

  const std::string dir_;
  const int max_entries_;
  std::mutex mu_;  // one entry made at a time; copies out under it too
};

}  // namespace ratchet::worker

#endif  // RATCHET_WORKER_ROUNDS_CACHE_H_
