#include "kernels/harness/oracle_client.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "kernels/harness/subprocess.h"
#include "kernels/harness/tensors.h"

namespace ratchet::kernels {

using Json = nlohmann::ordered_json;

namespace {

// The oracle output an earlier run left in `dir` for the same request, its
// files moved into `scratch`; an error saying why not otherwise. "The same"
// is the same data: the reference, the problem, the seed, the device. Round
// r of a workload is a function of those alone, so how many rounds there
// are may differ (the round budget follows the memory free at the time; the
// pipeline uses what there is); and without T_b timed, neither the timing's
// settings nor the L2 flush's size (known only once the device is up) matter.
absl::StatusOr<std::string> ReuseOracleOutput(Json req, const std::string& dir,
                                              const std::string& scratch) {
  Json given = Json::parse(ReadFileOrEmpty(dir + "/oracle_request.json"), nullptr,
                           /*allow_exceptions=*/false);
  if (!given.is_object()) return absl::NotFoundError("no oracle_request.json");
  const bool untimed = req.value("time_reference", true) == false &&
                       given.value("time_reference", true) == false;
  for (Json* r : {&req, &given}) {
    for (const char* key : {"out_dir", "cache_dir", "flush_bytes", "rounds", "rounds_by_workload"})
      r->erase(key);
    if (untimed)
      for (const char* key : {"warmups", "repetitions", "compile", "compile_timeout_s"})
        r->erase(key);
  }
  if (given != req) return absl::FailedPreconditionError("its request is another");
  const std::string manifest_text = ReadFileOrEmpty(dir + "/oracle_manifest.json");
  const Json manifest = Json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
  if (!manifest.is_object() || manifest.contains("error") || !manifest.contains("workloads"))
    return absl::FailedPreconditionError("its manifest is unreadable or an error");
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == "oracle_request.json") continue;
    std::filesystem::rename(entry.path(), std::filesystem::path(scratch) / name, ec);
    if (ec) return absl::InternalError(absl::StrCat("moving ", name, ": ", ec.message()));
  }
  return manifest_text;
}

}  // namespace

absl::StatusOr<std::string> RunOracle(const Problem& problem, const OracleOptions& o) {
  const Definition& def = problem.definition;
  Json req;
  req["reference"] = def.reference;
  req["entrypoint"] = def.custom_inputs_entrypoint;
  req["seed"] = o.seed;
  req["rounds"] = o.rounds;
  if (!o.rounds_by_workload.empty()) req["rounds_by_workload"] = o.rounds_by_workload;
  req["warmups"] = o.warmups;
  req["repetitions"] = o.repetitions;
  req["flush_bytes"] = o.flush_bytes;
  req["out_dir"] = o.scratch;
  req["threads"] = o.threads;
  if (!o.device.empty()) {
    req["device"] = o.device;
    req["device_index"] = o.device_index;
    req["op_type"] = def.op_type;
  }
  // Operator settings for T_b, from the environment so that they reach the
  // oracle through `ratchet bench` and the worker alike.
  if (!o.cache_dir.empty()) {
    req["cache_dir"] = o.cache_dir;
  } else if (const char* dir = std::getenv("RATCHET_TB_CACHE"); dir && *dir) {
    req["cache_dir"] = dir;
  }
  if (const char* c = std::getenv("RATCHET_TB_COMPILE"); c && std::string(c) == "0")
    req["compile"] = false;
  if (const char* t = std::getenv("RATCHET_TB_COMPILE_TIMEOUT_S"); t && *t)
    req["compile_timeout_s"] = std::atof(t);
  if (!o.time_reference) req["time_reference"] = false;
  if (!o.perturb_of.empty()) {
    Json extra = Json::array();
    for (int r : o.perturb_of) extra.push_back({{"perturb_of", r}});
    req["extra_rounds"] = extra;
  }
  for (const char* which : {"input_specs", "output_specs"}) {
    Json specs = Json::array();
    for (const TensorSpec& t : std::string(which) == "input_specs" ? def.inputs : def.outputs) {
      specs.push_back({{"name", t.name}, {"dtype", DTypeName(t.dtype)}, {"scalar", t.scalar}});
    }
    req[which] = specs;
  }
  Json ws = Json::array();
  for (const Workload& w : problem.workloads) {
    Json x;
    x["index"] = w.index;
    Json axes = Json::object();
    for (const auto& [k, v] : w.axes) axes[k] = v;
    x["axes"] = axes;
    Json ins = Json::array();
    for (size_t i = 0; i < def.inputs.size(); ++i) {
      const InputSource& s = w.inputs[i];
      static const char* kKinds[] = {"random", "scalar", "custom", "safetensors"};
      ins.push_back({{"kind", kKinds[static_cast<int>(s.kind)]},
                     {"value", s.value},
                     {"path", s.path},
                     {"tensor_key", s.tensor_key},
                     {"shape", ResolveShape(def.inputs[i], w)}});
    }
    x["inputs"] = ins;
    Json outs = Json::array();
    for (const TensorSpec& t : def.outputs) outs.push_back(ResolveShape(t, w));
    x["output_shapes"] = outs;
    ws.push_back(x);
  }
  req["workloads"] = ws;
  const std::string req_path = o.scratch + "/oracle_request.json";
  std::ofstream(req_path) << req.dump();
  if (o.reused != nullptr) *o.reused = false;
  if (!o.reuse_dir.empty()) {
    auto given = ReuseOracleOutput(req, o.reuse_dir, o.scratch);
    if (given.ok()) {
      if (o.reused != nullptr) *o.reused = true;
      return given;
    }
    std::fprintf(stderr, "oracle: the given rounds in %s are not used: %s\n", o.reuse_dir.c_str(),
                 std::string(given.status().message()).c_str());
    if (o.reuse_only) return given.status();
  }

  const std::string exe_dir = SelfExeDir();
  const std::string script = exe_dir + "/oracle.py";
  if (ReadFileOrEmpty(script).empty()) {
    return absl::NotFoundError(absl::StrCat("oracle.py not found beside ", exe_dir));
  }
  // Explicit choices are used as given; the defaults are tried in order.
  bool explicit_choice = true;
  const std::vector<std::string> pythons = TorchPythonCandidates(o.python, &explicit_choice);
  const std::string log = o.scratch + "/oracle.log";
  const std::string manifest_path = o.scratch + "/oracle_manifest.json";
  std::string tried;
  for (const std::string& py : pythons) {
    std::remove(log.c_str());
    std::remove(manifest_path.c_str());
    std::vector<std::string> cmd = {py, script, req_path};
    if (o.isolated) {
      // A home, temporary folder and caches made with the oracle's folder,
      // and Python's isolated mode (no user site, no PYTHON* variables):
      // nothing a candidate could have written before reaches the reference.
      for (const char* sub : {"/home", "/tmp"}) mkdir((o.scratch + sub).c_str(), 0700);
      cmd = {"env", "HOME=" + o.scratch + "/home", "TMPDIR=" + o.scratch + "/tmp",
             "XDG_CACHE_HOME=" + o.scratch + "/home/.cache", py, "-I", script, req_path};
    }
    auto rc = RunProcess(cmd, log);
    if (!rc.ok() || *rc == 3) {
      absl::StrAppend(&tried, "\n  ", py, ": ",
                      rc.ok() ? "cannot import torch" : std::string(rc.status().message()));
      continue;
    }
    const std::string manifest_text = ReadFileOrEmpty(manifest_path);
    Json manifest;
    try {
      manifest = Json::parse(manifest_text);
    } catch (const std::exception&) {
      return absl::InternalError(absl::StrCat("oracle (", py, ") exited with ", *rc,
                                              " and no manifest:\n",
                                              Tail(ReadFileOrEmpty(log), 8000)));
    }
    if (manifest.contains("error")) {
      return absl::InternalError(
          absl::StrCat("reference oracle: ", manifest["error"].get<std::string>()));
    }
    if (*rc != 0) {
      return absl::InternalError(absl::StrCat("oracle exited with ", *rc, ":\n",
                                              Tail(ReadFileOrEmpty(log), 8000)));
    }
    return manifest_text;
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no python that can import torch", explicit_choice ? " (as configured)" : "",
      "; tried:", tried, "\nset --python or $RATCHET_PYTHON"));
}

bool ParseScreenMode(const std::string& text, ScreenMode* mode) {
  if (text == "auto") *mode = ScreenMode::kAuto;
  else if (text == "on") *mode = ScreenMode::kOn;
  else if (text == "off") *mode = ScreenMode::kOff;
  else return false;
  return true;
}

std::optional<Workload> ScreenWorkload(const Problem& problem, ScreenMode mode) {
  if (mode == ScreenMode::kOff || problem.workloads.size() < 2) return std::nullopt;
  auto tensor_bytes = [&](const Workload& w) {
    double bytes = 0;
    for (const auto* specs : {&problem.definition.inputs, &problem.definition.outputs}) {
      for (const Tensor& t : MakeTensors(*specs, w)) bytes += static_cast<double>(t.bytes);
    }
    return bytes;
  };
  const Workload* smallest = &problem.workloads.front();
  double smallest_bytes = tensor_bytes(*smallest), largest_bytes = smallest_bytes;
  for (const Workload& w : problem.workloads) {
    const double bytes = tensor_bytes(w);
    if (bytes < smallest_bytes) {
      smallest = &w;
      smallest_bytes = bytes;
    }
    largest_bytes = std::max(largest_bytes, bytes);
  }
  if (mode == ScreenMode::kAuto && largest_bytes < kScreenAutoBytes) return std::nullopt;
  return *smallest;
}

absl::StatusOr<std::string> RunScreenOracle(const Problem& problem, const Workload& w,
                                            OracleOptions full) {
  Problem one = problem;
  one.workloads = {w};
  full.seed ^= 0x9e3779b97f4a7c15ull;  // Any fixed change gives other inputs.
  full.rounds = 1;
  full.rounds_by_workload.clear();
  full.perturb_of.clear();
  full.time_reference = false;
  return RunOracle(one, full);
}

namespace {

// Round r of workload w: its files read, each reference replaced on disk by
// its decoy (a new file, never a write into this one: given rounds are
// links to the worker's cache, worker/rounds_cache.cc).
absl::Status ReadRound(const Definition& def, const std::string& dir, const Workload& w,
                       const Json& round, std::vector<std::string>* in,
                       std::vector<std::string>* out, std::vector<std::string>* decoy) {
  const std::vector<Tensor> ins = MakeTensors(def.inputs, w);
  const std::vector<Tensor> outs = MakeTensors(def.outputs, w);
  for (size_t i = 0; i < ins.size(); ++i) {
    std::string b(ins[i].bytes, '\0');
    auto st = LoadInto(dir + "/" + round["inputs"][i].get<std::string>(), b.data(), b.size());
    if (!st.ok()) return st;
    in->push_back(std::move(b));
  }
  for (size_t j = 0; j < outs.size(); ++j) {
    const std::string path = dir + "/" + round["outputs"][j].get<std::string>();
    std::string b(outs[j].bytes, '\0');
    auto st = LoadInto(path, b.data(), b.size());
    if (!st.ok()) return st;
    const Tolerance tol = ToleranceFor(w, outs[j].dtype);
    decoy->push_back(MakeDecoy(b, outs[j].dtype, tol.atol, tol.rtol));
    std::error_code ec;
    std::filesystem::remove(path, ec);
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << decoy->back();
    if (!file.flush()) return absl::InternalError(absl::StrCat("cannot write the decoy ", path));
    out->push_back(std::move(b));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadOracleRounds(const Definition& def, const std::string& dir,
                              const std::string& manifest_text,
                              const std::vector<Workload>& workloads,
                              std::vector<WorkloadRounds>* rounds) {
  const Json manifest = Json::parse(manifest_text, nullptr, /*allow_exceptions=*/false);
  if (manifest.is_discarded() || !manifest.contains("workloads") ||
      manifest["workloads"].size() != workloads.size())
    return absl::InternalError("the oracle's manifest is unreadable");
  // Rounds are independent: read (and decoyed) on several cores, since a
  // GPU problem's rounds are gigabytes.
  std::vector<WorkloadRounds> all(workloads.size());
  std::vector<std::pair<size_t, size_t>> tasks;  // (workload, round)
  for (size_t k = 0; k < workloads.size(); ++k) {
    const size_t n = manifest["workloads"][k]["rounds"].size();
    if (n == 0)
      return absl::InternalError(
          absl::StrCat("the oracle wrote no rounds for workload ", workloads[k].index));
    all[k].inputs.resize(n);
    all[k].outputs.resize(n);
    all[k].decoys.resize(n);
    for (size_t r = 0; r < n; ++r) tasks.emplace_back(k, r);
  }
  std::atomic<size_t> next{0};
  std::mutex mu;
  absl::Status first_error;
  auto work = [&] {
    for (size_t t = next++; t < tasks.size(); t = next++) {
      const auto [k, r] = tasks[t];
      const absl::Status st =
          ReadRound(def, dir, workloads[k], manifest["workloads"][k]["rounds"][r],
                    &all[k].inputs[r], &all[k].outputs[r], &all[k].decoys[r]);
      if (st.ok()) continue;
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.ok()) first_error = st;
    }
  };
  const size_t cores = std::max(1u, std::thread::hardware_concurrency());
  const size_t n_threads = std::min<size_t>({cores, 16, tasks.size()});
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n_threads; ++i) threads.emplace_back(work);
  work();
  for (std::thread& t : threads) t.join();
  if (!first_error.ok()) return first_error;
  for (WorkloadRounds& wr : all) rounds->push_back(std::move(wr));
  return absl::OkStatus();
}

}  // namespace ratchet::kernels
