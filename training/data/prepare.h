// `ratchet data prepare`: plain text to the speedrun's token shards, split
// into training and validation documents (docs/training.md, "Data").
#ifndef RATCHET_TRAINING_DATA_PREPARE_H_
#define RATCHET_TRAINING_DATA_PREPARE_H_

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ratchet::training {

struct PrepareOptions {
  std::string vocab_dir;                 // holds encoder.json and vocab.bpe
  std::string out_dir;                   // made if missing
  std::vector<std::string> inputs;       // plain-text files, in this order
  double val_fraction = 0.1;             // of documents, in (0, 1)
  uint64_t seed = 1;
  // A held-out split, in [0, 1): the share of the documents not in
  // validation that go to holdout_*.bin instead of training, chosen by
  // holdout_seed (secret: ratchet's evaluator compares a run's validation
  // loss with its loss there, docs/training.md). 0: none.
  double holdout_fraction = 0;
  uint64_t holdout_seed = 0;
  int64_t shard_tokens = 100'000'000;    // the speedrun's shard size
  int paragraphs_per_document = 20;
  std::ostream* progress = nullptr;      // a line every few MB of input, or none
};

struct SplitSummary {
  int64_t documents = 0;
  int64_t tokens = 0;    // end-of-text tokens included
  int64_t bytes = 0;     // UTF-8 bytes of the documents' text: what BPB divides by
  std::vector<std::string> shards;  // file names in out_dir
};

struct PrepareSummary {
  SplitSummary train, val, holdout;
};

// Writes out_dir/{train,val,holdout}_NNNNNN.bin (holdout only with a
// holdout_fraction), token_bytes.bin and manifest.json; the same inputs and
// options give byte-identical files.
absl::StatusOr<PrepareSummary> PrepareData(const PrepareOptions& options);

// A file's documents: groups of `paragraphs` consecutive paragraphs (runs of
// non-blank lines; a blank line holds only spaces, tabs or '\r'). Each
// document runs up to the next one's first line, so that together they are
// the file byte for byte; a file without a non-blank line has none.
std::vector<absl::string_view> SplitDocuments(absl::string_view text, int paragraphs);

// Whether a document belongs to validation: a hash of its bytes and the
// seed, so that equal documents share a split.
bool InValidation(absl::string_view document, uint64_t seed, double val_fraction);

}  // namespace ratchet::training

#endif  // RATCHET_TRAINING_DATA_PREPARE_H_
