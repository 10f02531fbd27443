#include "spec/names.h"

#include "absl/types/span.h"

namespace ratchet::spec {
namespace {

template <typename E>
struct Word {
  E value;
  const char* word;
  bool in_spec = true;  // a spec may write it
};

// The tables: one per enum, in the order messages list the words.
constexpr Word<v1::Task> kTasks[] = {
    {v1::TASK_KERNEL, "kernel"},
    // Jobs that only sleep, for load tests of the coordinator (docs/cluster.md).
    {v1::TASK_SLEEP, "sleep"},
    // The training families (docs/training.md).
    {v1::TASK_TRAIN_BUDGET, "train-budget"},
    {v1::TASK_TRAIN_TARGET, "train-target"},
};
constexpr Word<v1::Device> kDevices[] = {
    {v1::DEVICE_CPU, "cpu"},
    {v1::DEVICE_CUDA, "cuda"},
};
constexpr Word<v1::Proposer> kProposers[] = {
    {v1::PROPOSER_EVOLVE, "evolve"}, {v1::PROPOSER_RANDOM, "random"},
    {v1::PROPOSER_GRID, "grid"},     {v1::PROPOSER_REPLAY, "replay"},
    {v1::PROPOSER_LLM, "llm"},
};
constexpr Word<v1::Screen> kScreens[] = {
    {v1::SCREEN_AUTO, "auto"},
    {v1::SCREEN_ON, "on"},
    {v1::SCREEN_OFF, "off"},
};
constexpr Word<v1::CandidateStatus> kCandidateStatuses[] = {
    {v1::CANDIDATE_PROPOSED, "proposed"},   {v1::CANDIDATE_EVALUATED, "evaluated"},
    {v1::CANDIDATE_FAILED, "failed"},       {v1::CANDIDATE_VERIFYING, "verifying"},
    {v1::CANDIDATE_ACCEPTED, "accepted"},   {v1::CANDIDATE_REJECTED, "rejected"},
    {v1::CANDIDATE_BASELINE, "baseline"},   {v1::CANDIDATE_STOPPED, "stopped"},
};

absl::Span<const Word<v1::Task>> Table(v1::Task) { return kTasks; }
absl::Span<const Word<v1::Device>> Table(v1::Device) { return kDevices; }
absl::Span<const Word<v1::Proposer>> Table(v1::Proposer) { return kProposers; }
absl::Span<const Word<v1::Screen>> Table(v1::Screen) { return kScreens; }
absl::Span<const Word<v1::CandidateStatus>> Table(v1::CandidateStatus) {
  return kCandidateStatuses;
}

template <typename E>
std::string NameOf(E value) {
  for (const Word<E>& w : Table(E{}))
    if (w.value == value) return w.word;
  return "";
}

template <typename E>
bool ParseWord(absl::string_view word, E* out) {
  for (const Word<E>& w : Table(E{})) {
    if (word == w.word) {
      *out = w.value;
      return true;
    }
  }
  return false;
}

// One legacy word: into the enum when unset and known; cleared unless it is
// an unknown word that the enum does not replace.
template <typename E, typename M>
void Upgrade(M* m, const std::string& legacy, void (M::*clear_legacy)(), E (M::*get)() const,
             void (M::*set)(E)) {
  if (legacy.empty()) return;
  E parsed;
  const bool known = ParseWord(legacy, &parsed);
  if ((m->*get)() == E{}) {
    if (!known) return;
    (m->*set)(parsed);
  }
  (m->*clear_legacy)();
}

}  // namespace

std::string Name(v1::Task task) { return NameOf(task); }
std::string Name(v1::Device device) { return NameOf(device); }
std::string Name(v1::Proposer proposer) { return NameOf(proposer); }
std::string Name(v1::Screen screen) { return NameOf(screen); }
std::string Name(v1::CandidateStatus status) { return NameOf(status); }

bool Parse(absl::string_view word, v1::Task* out) { return ParseWord(word, out); }
bool Parse(absl::string_view word, v1::Device* out) { return ParseWord(word, out); }
bool Parse(absl::string_view word, v1::Proposer* out) { return ParseWord(word, out); }
bool Parse(absl::string_view word, v1::Screen* out) { return ParseWord(word, out); }
bool Parse(absl::string_view word, v1::CandidateStatus* out) { return ParseWord(word, out); }

template <typename E>
const std::vector<std::string>& SpecWords() {
  static const auto* words = [] {
    auto* v = new std::vector<std::string>;
    for (const Word<E>& w : Table(E{}))
      if (w.in_spec) v->push_back(w.word);
    return v;
  }();
  return *words;
}
template const std::vector<std::string>& SpecWords<v1::Task>();
template const std::vector<std::string>& SpecWords<v1::Device>();
template const std::vector<std::string>& SpecWords<v1::Proposer>();
template const std::vector<std::string>& SpecWords<v1::Screen>();

// The legacy fields are deprecated for every other reader.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace {

void UpgradeScreen(v1::HarnessSettings* h) {
  using H = v1::HarnessSettings;
  Upgrade(h, h->legacy_screen(), &H::clear_legacy_screen, &H::screen, &H::set_screen);
}

}  // namespace

void UpgradeLegacyFields(v1::CampaignSpec* spec) {
  using S = v1::CampaignSpec;
  Upgrade(spec, spec->legacy_task(), &S::clear_legacy_task, &S::task, &S::set_task);
  Upgrade(spec, spec->legacy_proposer(), &S::clear_legacy_proposer, &S::proposer,
          &S::set_proposer);
  Upgrade(spec, spec->legacy_device(), &S::clear_legacy_device, &S::device, &S::set_device);
  if (spec->has_harness()) UpgradeScreen(spec->mutable_harness());
}

void UpgradeLegacyFields(v1::Candidate* candidate) {
  using C = v1::Candidate;
  Upgrade(candidate, candidate->legacy_status(), &C::clear_legacy_status, &C::status,
          &C::set_status);
}

void UpgradeLegacyFields(v1::Job* job) {
  using J = v1::Job;
  Upgrade(job, job->legacy_device(), &J::clear_legacy_device, &J::device, &J::set_device);
  if (job->has_harness()) UpgradeScreen(job->mutable_harness());
}

void AddLegacyWords(v1::Job* job) {
  job->set_legacy_device(Name(job->device()));
  if (job->has_harness())
    job->mutable_harness()->set_legacy_screen(Name(job->harness().screen()));
}

#pragma GCC diagnostic pop

}  // namespace ratchet::spec
