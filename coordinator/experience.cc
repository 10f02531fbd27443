#include "coordinator/experience.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "spec/names.h"

namespace ratchet::coordinator {

std::string OpType(const v1::Problem& problem) {
  auto doc = nlohmann::json::parse(problem.definition_json(), nullptr, false);
  if (doc.is_object() && doc.contains("op_type") && doc["op_type"].is_string() &&
      !doc["op_type"].get<std::string>().empty())
    return doc["op_type"].get<std::string>();
  return problem.name();
}

Experience::Experience(store::Store* store, const Clock* clock, EventLog* events)
    : store_(store), clock_(clock), events_(events) {}

absl::StatusOr<std::vector<v1::Lesson>> Experience::Read(const v1::Campaign& campaign) {
  const v1::CampaignSpec& spec = campaign.spec();
  auto lessons = store_->ListLessons(OpType(spec.problem()),
                                     spec.experience() == "shared" ? 0 : campaign.id());
  if (absl::IsUnimplemented(lessons.status())) return std::vector<v1::Lesson>();
  return lessons;
}

absl::StatusOr<std::string> Experience::Note(v1::Campaign* campaign) {
  const std::string op_type = OpType(campaign->spec().problem());
  auto all = store_->ListLessons(op_type, 0);
  if (absl::IsUnimplemented(all.status())) all = std::vector<v1::Lesson>();
  if (!all.ok()) return all.status();
  int others = 0;
  std::set<int64_t> sources;
  for (const auto& l : *all) {
    if (l.campaign_id() == campaign->id()) continue;
    ++others;
    sources.insert(l.campaign_id());
  }
  const std::string what = absl::StrCat(others, " lessons of op type ", op_type, " from ",
                                        sources.size(), " other campaign",
                                        sources.size() == 1 ? "" : "s");
  if (campaign->spec().experience() == "shared") {
    campaign->set_lessons_from_other_campaigns(others);
    return absl::StrCat("experience: shared, reading ", what);
  }
  campaign->set_lessons_from_other_campaigns(0);
  return absl::StrCat("experience: this campaign's own lessons only; ", what,
                      " not read (`experience: shared` reads them)");
}

absl::Status Experience::RecordLessons(v1::Campaign& campaign, const v1::Candidate& candidate,
                                       double score, const std::string& outcome,
                                       const std::string& verdict) {
  if (candidate.parent_id() == 0) return absl::OkStatus();
  auto parent = store_->GetCandidate(candidate.parent_id());
  if (!parent.ok()) return parent.status();
  v1::Lesson lesson;
  lesson.set_campaign_id(campaign.id());
  lesson.set_candidate_id(candidate.id());
  lesson.set_problem(campaign.spec().problem().name());
  lesson.set_op_type(OpType(campaign.spec().problem()));
  lesson.set_hardware(spec::Name(campaign.spec().device()));
  lesson.set_outcome(outcome);
  lesson.set_verdict(verdict);
  lesson.set_created_unix_ms(clock_->NowUnixMs());
  // A failure (or a hack) is a lesson too: the worst effect there is.
  lesson.set_effect(score < 0 || parent->score() <= 0 ? -1.0 : score / parent->score() - 1.0);
  std::vector<v1::Lesson> lessons;
  for (const auto& [name, value] : candidate.solution().knobs()) {
    auto was = parent->solution().knobs().find(name);
    if (was != parent->solution().knobs().end() && was->second == value) continue;
    v1::Lesson l = lesson;
    l.set_knob(name);
    l.set_from_value(was == parent->solution().knobs().end() ? "" : was->second);
    l.set_to_value(value);
    lessons.push_back(std::move(l));
  }
  bool code_changed = false;
  for (const auto& [path, content] : candidate.solution().files()) {
    auto was = parent->solution().files().find(path);
    if (was == parent->solution().files().end() || was->second != content) code_changed = true;
  }
  if (code_changed || lessons.empty()) {
    lesson.set_idea(candidate.description().substr(0, 500));
    lessons.push_back(lesson);
  }
  for (const auto& l : lessons) {
    auto id = store_->AddLesson(l);
    if (absl::IsUnimplemented(id.status())) return absl::OkStatus();
    if (!id.ok()) return id.status();
  }
  campaign.set_lessons(campaign.lessons() + static_cast<int>(lessons.size()));
  return store_->UpdateCampaign(campaign);
}

absl::Status Experience::Migrate(v1::Campaign& campaign, const v1::ResearchThread& donor) {
  auto threads = store_->ListThreads(campaign.id());
  if (!threads.ok()) return threads.status();
  if (threads->size() < 2) return absl::OkStatus();
  const v1::ResearchThread* from = nullptr;
  for (const auto& t : *threads)
    if (t.id() == donor.id()) from = &t;
  if (from == nullptr) return absl::OkStatus();
  // A ring: thread i offers to thread i+1, so a good incumbent reaches every
  // island in N-1 migrations while the islands stay apart in between.
  v1::ResearchThread to = (*threads)[(from->index() + 1) % threads->size()];
  if (from->incumbent_candidate_id() == to.incumbent_candidate_id() ||
      from->incumbent_score() <= to.incumbent_score())
    return absl::OkStatus();
  const int64_t before = to.incumbent_candidate_id();
  const double before_score = to.incumbent_score();
  to.set_incumbent_candidate_id(from->incumbent_candidate_id());
  to.set_incumbent_score(from->incumbent_score());
  campaign.set_migrations(campaign.migrations() + 1);
  absl::Status s = store_->Transaction([&]() -> absl::Status {
    if (auto s = store_->UpdateThread(to); !s.ok()) return s;
    return store_->UpdateCampaign(campaign);
  });
  if (!s.ok()) return s;
  events_->Emit(campaign.id(),
                absl::StrCat("migration: t", to.index(), " adopts t", from->index(),
                             "'s incumbent #", from->incumbent_candidate_id(), " (",
                             ShortScore(from->incumbent_score()), " over #", before, " ",
                             ShortScore(before_score), ")"));
  return absl::OkStatus();
}

}  // namespace ratchet::coordinator
