#include "training/harness/train_report.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ratchet::training {
namespace {

std::string Number(const nlohmann::json& v) {
  return v.is_number() ? absl::StrFormat("%.4f", v.get<double>()) : "-";
}

}  // namespace

nlohmann::json ReportJson(const TrainReport& r) {
  nlohmann::json progress = nlohmann::json::array();
  for (const Progress& p : r.training.progress)
    progress.push_back({{"step", p.step}, {"loss", p.loss}, {"tokens_per_s", p.tokens_per_s},
                        {"at_seconds", p.at_seconds}});
  nlohmann::json training = {
      {"outcome", r.training.outcome},
      {"message", r.training.message},
      {"wall_seconds", r.training.wall_seconds},
      {"warmup_seconds", r.training.warmup_seconds},
      {"training_seconds", r.training.training_seconds},
      {"steps", r.training.steps},
      {"exit_codes", r.training.exit_codes},
      {"progress", progress},
  };
  return {
      {"outcome", r.outcome},
      {"message", r.message},
      {"training", training},
      {"evaluation", r.evaluated ? r.evaluation : nlohmann::json(nullptr)},
      {"project", r.project},
      {"data", r.data},
      {"scratch", r.scratch},
      {"python", r.python},
      {"device", r.device},
      {"nproc", r.nproc},
      {"budget_seconds", r.budget_seconds > 0 ? nlohmann::json(r.budget_seconds) : nullptr},
      {"max_steps", r.max_steps > 0 ? nlohmann::json(r.max_steps) : nullptr},
      {"run_seed", r.run_seed >= 0 ? nlohmann::json(r.run_seed) : nullptr},
      {"knobs", r.knobs},
  };
}

std::string ReportTable(const TrainReport& r) {
  std::string out;
  auto row = [&out](const std::string& name, const std::string& value) {
    absl::StrAppend(&out, absl::StrFormat("%-18s %s\n", name, value));
  };
  const LaunchResult& t = r.training;
  row("outcome", r.outcome);
  if (!r.message.empty()) row("message", r.message);
  row("training", t.outcome + (t.message.empty() ? "" : ": " + t.message));
  row("training seconds", absl::StrFormat("%.2f", t.training_seconds));
  row("warm-up seconds", absl::StrFormat("%.2f marked, %.2f left out (wall %.2f)", t.warmup_seconds,
                                         t.wall_seconds - t.training_seconds, t.wall_seconds));
  row("steps", absl::StrCat(t.steps));
  if (r.evaluated) {
    const nlohmann::json& e = r.evaluation;
    const std::string outcome = e.value("outcome", std::string("?"));
    const std::string message = e.value("message", std::string());
    row("evaluation", outcome + (message.empty() ? "" : ": " + message));
    row("bpb", Number(e.value("bpb", nlohmann::json())));
    row("loss", Number(e.value("loss", nlohmann::json())));
    row("tokens evaluated",
        absl::StrCat(e.value("tokens", 0), " (", e.value("windows", 0), " windows of ",
                     e.value("seq_len", 0), ")"));
    // Where the evaluator's time went (reported by it, used by nothing).
    std::string stages;
    if (auto it = e.find("stage_seconds"); it != e.end() && it->is_object())
      for (const auto& [name, seconds] : it->items())
        if (seconds.is_number())
          absl::StrAppend(&stages, stages.empty() ? " (" : ", ", name, " ",
                          absl::StrFormat("%.2f", seconds.get<double>()));
    const nlohmann::json seconds = e.value("seconds", nlohmann::json());
    row("evaluation seconds",
        (seconds.is_number() ? absl::StrFormat("%.2f", seconds.get<double>()) : "-") +
            (stages.empty() ? "" : stages + ")"));
  } else {
    row("evaluation", "not run");
  }
  row("scratch", r.scratch);
  return out;
}

}  // namespace ratchet::training
