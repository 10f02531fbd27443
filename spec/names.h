// The words people read and write for five enums of the API: in a spec's
// YAML (`task: kernel`, `device: cuda`, `proposer: evolve`, `screen: off`),
// in the CLI's tables, reports, events and logs ("accepted"). One table per
// enum (names.cc), read by the YAML reader, by the validator's messages and
// by every printer, so that a word is spelled in one place.
//
// Each of these enums replaced a string field holding the word; the string
// is kept as `legacy_NAME` under its old number so that records and requests
// of older versions still parse. UpgradeLegacyFields reads them as if
// written now.
#ifndef RATCHET_SPEC_NAMES_H_
#define RATCHET_SPEC_NAMES_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::spec {

// The word for a value: "kernel", "cuda", "evolve", "off", "accepted"; ""
// for *_UNSPECIFIED and for a number the table does not know.
std::string Name(v1::Task task);
std::string Name(v1::Device device);
std::string Name(v1::Proposer proposer);
std::string Name(v1::Screen screen);
std::string Name(v1::CandidateStatus status);

// The value a word names, exact match; false (and *out unchanged) for a
// word the table does not know.
bool Parse(absl::string_view word, v1::Task* out);
bool Parse(absl::string_view word, v1::Device* out);
bool Parse(absl::string_view word, v1::Proposer* out);
bool Parse(absl::string_view word, v1::Screen* out);
bool Parse(absl::string_view word, v1::CandidateStatus* out);

// The words a spec may write for E (v1::Task, Device, Proposer or Screen),
// in table order. Tasks: only those that run ("kernel", "sleep");
// "train-budget" and "train-target" are named but refused at submit.
template <typename E>
const std::vector<std::string>& SpecWords();

// A record or request of an older version: each legacy word that a table
// knows moves into its enum where the enum is unset, and the legacy field is
// cleared. A word no table knows stays where it is, so that the validator
// can name it (a store never holds one: what it holds was validated).
void UpgradeLegacyFields(v1::CampaignSpec* spec);
void UpgradeLegacyFields(v1::Candidate* candidate);
void UpgradeLegacyFields(v1::Job* job);  // device and harness.screen

// The other way, for a job handed to a worker: its device and screen also as
// legacy words, which a worker of an older version reads instead (a worker
// of this version upgrades them away).
void AddLegacyWords(v1::Job* job);

}  // namespace ratchet::spec

#endif  // RATCHET_SPEC_NAMES_H_
