#include "spec/defaults.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/message_differencer.h"
#include "spec/validation.h"

namespace ratchet::spec {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using ::testing::ElementsAre;

// A spec as a gRPC client may send it: only what a kernel campaign cannot
// do without.
v1::CampaignSpec Bare() {
  v1::CampaignSpec spec;
  spec.mutable_problem()->set_definition_json("{\"name\": \"p\"}");
  spec.mutable_problem()->set_workload_jsonl("{\"axes\": {}}\n");
  (*spec.mutable_baseline()->mutable_files())["solution.json"] = "{\"sources\": [\"k.cc\"]}";
  (*spec.mutable_baseline()->mutable_files())["k.cc"] = "int x;\n";
  return spec;
}

// The number at `path` (repeated messages: the first element).
double GetNumber(const Message& message, const std::string& path) {
  const Message* m = &message;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts[i]);
    m = f->is_repeated() ? &m->GetReflection()->GetRepeatedMessage(*m, f, 0)
                         : &m->GetReflection()->GetMessage(*m, f);
  }
  const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts.back());
  const auto* r = m->GetReflection();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return r->GetInt32(*m, f);
    case FieldDescriptor::CPPTYPE_INT64: return static_cast<double>(r->GetInt64(*m, f));
    case FieldDescriptor::CPPTYPE_UINT32: return r->GetUInt32(*m, f);
    case FieldDescriptor::CPPTYPE_UINT64: return static_cast<double>(r->GetUInt64(*m, f));
    case FieldDescriptor::CPPTYPE_DOUBLE: return r->GetDouble(*m, f);
    case FieldDescriptor::CPPTYPE_FLOAT: return r->GetFloat(*m, f);
    default: return 0;
  }
}

TEST(SpecDefaults, FillsWhatAClientLeftOut) {
  v1::CampaignSpec spec = Bare();
  ApplyDefaults(&spec);
  EXPECT_EQ(spec.task(), kDefaultTask);
  EXPECT_EQ(spec.proposer(), kDefaultProposer);
  EXPECT_EQ(spec.device(), kDefaultDevice);
  EXPECT_EQ(spec.experience(), kDefaultExperience);
  EXPECT_EQ(spec.threads(), kDefaultThreads);
  EXPECT_EQ(spec.in_flight_per_thread(), kDefaultInFlightPerThread);
  EXPECT_EQ(spec.weight(), kDefaultWeight);
  EXPECT_EQ(spec.budget().max_evaluations(), kDefaultMaxEvaluations);
  EXPECT_EQ(spec.budget().max_wall_seconds(), 0);  // unlimited
  const v1::VerificationPolicy& v = spec.verification();
  EXPECT_EQ(v.replays(), kDefaultReplays);
  EXPECT_EQ(v.significance(), kDefaultSignificance);
  EXPECT_EQ(v.timing_tolerance(), kDefaultTimingTolerance);
  EXPECT_EQ(v.noise_sigmas(), kDefaultNoiseSigmas);
  EXPECT_EQ(v.max_replays(), kDefaultMaxReplays);
  EXPECT_THAT(v.tiers(), ElementsAre("guards", "replay", "adversarial", "independent-timing"));
  const v1::HarnessSettings& h = spec.harness();
  EXPECT_EQ(h.warmups(), kDefaultWarmups);
  EXPECT_EQ(h.repetitions(), kDefaultRepetitions);
  EXPECT_EQ(h.correctness_rounds(), kDefaultCorrectnessRounds);
  EXPECT_EQ(h.timeout_seconds(), kDefaultTimeoutSeconds);
  EXPECT_EQ(h.screen(), kDefaultScreen);
  // 0 is a setting of these: proto3 cannot say it was left out.
  EXPECT_EQ(spec.seed(), 0u);
  EXPECT_EQ(v.min_gain(), 0);
  // No llm section without the llm proposer.
  EXPECT_FALSE(spec.has_llm());
  // The defaults are a spec that submit takes.
  EXPECT_TRUE(ValidateCampaignSpec(spec).ok()) << ValidateCampaignSpec(spec);
}

TEST(SpecDefaults, KeepsWhatIsSetAndIsIdempotent) {
  v1::CampaignSpec spec = Bare();
  spec.set_threads(5);
  spec.set_device(v1::DEVICE_CUDA);
  spec.mutable_harness()->set_repetitions(7);
  spec.mutable_harness()->set_screen(v1::SCREEN_OFF);
  spec.mutable_verification()->set_replays(1);
  ApplyDefaults(&spec);
  EXPECT_EQ(spec.threads(), 5);
  EXPECT_EQ(spec.device(), v1::DEVICE_CUDA);
  EXPECT_EQ(spec.harness().repetitions(), 7);
  EXPECT_EQ(spec.harness().screen(), v1::SCREEN_OFF);
  EXPECT_EQ(spec.verification().replays(), 1);
  v1::CampaignSpec again = spec;
  ApplyDefaults(&again);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(again, spec))
      << again.DebugString() << "\nvs\n" << spec.DebugString();
}

// Named tiers: kTiers' order, the always-on ones added, repeats dropped.
TEST(SpecDefaults, Tiers) {
  v1::CampaignSpec spec = Bare();
  spec.mutable_verification()->add_tiers("independent-timing");
  spec.mutable_verification()->add_tiers("replay");
  spec.mutable_verification()->add_tiers("independent-timing");
  ApplyDefaults(&spec);
  EXPECT_THAT(spec.verification().tiers(), ElementsAre("guards", "replay", "independent-timing"));
  // An unknown one stays, for the validator to refuse.
  spec = Bare();
  spec.mutable_verification()->add_tiers("vibes");
  ApplyDefaults(&spec);
  EXPECT_FALSE(ValidateCampaignSpec(spec).ok());
}

TEST(SpecDefaults, Llm) {
  v1::CampaignSpec spec = Bare();
  spec.set_proposer(v1::PROPOSER_LLM);
  spec.mutable_llm()->set_endpoint("local");
  spec.mutable_llm()->add_models()->set_name("m");
  ApplyDefaults(&spec);
  const v1::LlmSettings& llm = spec.llm();
  EXPECT_EQ(llm.max_tokens(), kDefaultLlmMaxTokens);
  EXPECT_EQ(llm.timeout_seconds(), kDefaultLlmTimeoutSeconds);
  EXPECT_EQ(llm.max_concurrency(), kDefaultLlmMaxConcurrency);
  EXPECT_EQ(llm.models(0).weight(), kDefaultLlmModelWeight);
  EXPECT_EQ(llm.temperature(), 0);  // a setting: the CLI writes its default
  EXPECT_EQ(llm.max_retries(), 0);
  EXPECT_TRUE(ValidateCampaignSpec(spec).ok()) << ValidateCampaignSpec(spec);
}

// Where the validator lets 0 pass as "the default", ApplyDefaults has one:
// a bound marked zero_is_default without a default here fails this test.
TEST(SpecDefaults, EveryZeroThatMeansDefaultGetsOne) {
  v1::CampaignSpec spec = Bare();
  spec.set_proposer(v1::PROPOSER_LLM);
  spec.mutable_llm()->set_endpoint("local");
  spec.mutable_llm()->add_models()->set_name("m");
  ApplyDefaults(&spec);
  v1::CampaignSpec training = Bare();
  training.set_task(v1::TASK_TRAIN_BUDGET);
  ApplyDefaults(&training);
  for (const SpecBound& b : CampaignSpecBounds()) {
    if (!b.zero_is_default) continue;
    if (std::string(b.path).rfind("training.", 0) == 0) {
      EXPECT_NE(GetNumber(training, b.path), 0) << b.path;
      continue;
    }
    // gpus: 0 means one GPU of a cuda campaign, none of a cpu one; the
    // scheduler reads it so (docs/cluster.md).
    if (b.path == std::string("gpus")) continue;
    EXPECT_NE(GetNumber(spec, b.path), 0) << b.path;
  }
}

}  // namespace
}  // namespace ratchet::spec
