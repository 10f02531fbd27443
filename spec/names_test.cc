#include "spec/names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "google/protobuf/descriptor.h"
#include "spec/validation.h"

// The tests write the legacy fields as older versions did.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace ratchet::spec {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Every value but *_UNSPECIFIED has a word, and the word reads back as it.
template <typename E>
void EveryValueHasAWord(const google::protobuf::EnumDescriptor* type) {
  SCOPED_TRACE(type->name());
  EXPECT_EQ(Name(static_cast<E>(0)), "");
  for (int i = 0; i < type->value_count(); ++i) {
    const int number = type->value(i)->number();
    if (number == 0) continue;
    const std::string word = Name(static_cast<E>(number));
    EXPECT_FALSE(word.empty()) << type->value(i)->name();
    E parsed{};
    ASSERT_TRUE(Parse(word, &parsed)) << word;
    EXPECT_EQ(parsed, number) << word;
  }
  EXPECT_EQ(Name(static_cast<E>(1000)), "");
  E unchanged = static_cast<E>(1);
  EXPECT_FALSE(Parse("no-such-word", &unchanged));
  EXPECT_FALSE(Parse("", &unchanged));
  EXPECT_EQ(unchanged, 1);
}

TEST(SpecNames, EveryEnumValueHasAWord) {
  EveryValueHasAWord<v1::Task>(v1::Task_descriptor());
  EveryValueHasAWord<v1::Device>(v1::Device_descriptor());
  EveryValueHasAWord<v1::Proposer>(v1::Proposer_descriptor());
  EveryValueHasAWord<v1::Screen>(v1::Screen_descriptor());
  EveryValueHasAWord<v1::CandidateStatus>(v1::CandidateStatus_descriptor());
}

// The words of the YAML format and of the CLI's tables, unchanged.
TEST(SpecNames, Words) {
  EXPECT_EQ(Name(v1::TASK_KERNEL), "kernel");
  EXPECT_EQ(Name(v1::TASK_TRAIN_BUDGET), "train-budget");
  EXPECT_EQ(Name(v1::DEVICE_CUDA), "cuda");
  EXPECT_EQ(Name(v1::PROPOSER_LLM), "llm");
  EXPECT_EQ(Name(v1::SCREEN_OFF), "off");
  EXPECT_EQ(Name(v1::CANDIDATE_ACCEPTED), "accepted");
  EXPECT_EQ(Name(v1::CANDIDATE_BASELINE), "baseline");
  EXPECT_THAT(SpecWords<v1::Task>(),
              ElementsAre("kernel", "sleep", "train-budget", "train-target"));
  EXPECT_THAT(SpecWords<v1::Device>(), ElementsAre("cpu", "cuda"));
  EXPECT_THAT(SpecWords<v1::Proposer>(), ElementsAre("evolve", "random", "grid", "replay", "llm"));
  EXPECT_THAT(SpecWords<v1::Screen>(), ElementsAre("auto", "on", "off"));
}

TEST(SpecNames, UpgradesALegacySpec) {
  v1::CampaignSpec spec;
  spec.set_legacy_task("sleep");
  spec.set_legacy_proposer("grid");
  spec.set_legacy_device("cuda");
  spec.mutable_harness()->set_legacy_screen("off");
  UpgradeLegacyFields(&spec);
  EXPECT_EQ(spec.task(), v1::TASK_SLEEP);
  EXPECT_EQ(spec.proposer(), v1::PROPOSER_GRID);
  EXPECT_EQ(spec.device(), v1::DEVICE_CUDA);
  EXPECT_EQ(spec.harness().screen(), v1::SCREEN_OFF);
  EXPECT_EQ(spec.legacy_task(), "");
  EXPECT_EQ(spec.legacy_proposer(), "");
  EXPECT_EQ(spec.legacy_device(), "");
  EXPECT_EQ(spec.harness().legacy_screen(), "");

  // A set enum wins; the legacy word goes.
  spec.set_legacy_device("cpu");
  UpgradeLegacyFields(&spec);
  EXPECT_EQ(spec.device(), v1::DEVICE_CUDA);
  EXPECT_EQ(spec.legacy_device(), "");

  // Nothing to do: nothing changes (no harness appears).
  v1::CampaignSpec bare;
  UpgradeLegacyFields(&bare);
  EXPECT_EQ(bare.ByteSizeLong(), 0u);
}

// An older client's unknown word stays for the validator, which names it
// as it named an unknown word before the enums.
TEST(SpecNames, AnUnknownLegacyWordIsRefusedAtValidation) {
  v1::CampaignSpec spec;
  spec.set_legacy_task("mine");
  UpgradeLegacyFields(&spec);
  EXPECT_EQ(spec.task(), v1::TASK_UNSPECIFIED);
  EXPECT_EQ(spec.legacy_task(), "mine");
  EXPECT_THAT(std::string(ValidateCampaignSpec(spec).message()),
              HasSubstr("legacy_task: unknown task 'mine' (known: kernel, sleep, "
                        "train-budget, train-target)"));

  v1::CampaignSpec screen;
  screen.set_task(v1::TASK_SLEEP);
  screen.mutable_harness()->set_legacy_screen("maybe");
  UpgradeLegacyFields(&screen);
  EXPECT_THAT(std::string(ValidateCampaignSpec(screen).message()),
              HasSubstr("harness.legacy_screen: unknown screen 'maybe' (known: auto, on, off)"));
}

TEST(SpecNames, UpgradesALegacyCandidateAndJob) {
  v1::Candidate candidate;
  candidate.set_legacy_status("verifying");
  UpgradeLegacyFields(&candidate);
  EXPECT_EQ(candidate.status(), v1::CANDIDATE_VERIFYING);
  EXPECT_EQ(candidate.legacy_status(), "");

  v1::Job job;
  job.set_legacy_device("cuda");
  job.mutable_harness()->set_legacy_screen("on");
  UpgradeLegacyFields(&job);
  EXPECT_EQ(job.device(), v1::DEVICE_CUDA);
  EXPECT_EQ(job.harness().screen(), v1::SCREEN_ON);
  EXPECT_EQ(job.legacy_device(), "");
  EXPECT_EQ(job.harness().legacy_screen(), "");

  // Handed out with the words for older workers, read back the same.
  AddLegacyWords(&job);
  EXPECT_EQ(job.legacy_device(), "cuda");
  EXPECT_EQ(job.harness().legacy_screen(), "on");
  UpgradeLegacyFields(&job);
  EXPECT_EQ(job.device(), v1::DEVICE_CUDA);
  EXPECT_EQ(job.harness().screen(), v1::SCREEN_ON);
  EXPECT_EQ(job.legacy_device(), "");
}

}  // namespace
}  // namespace ratchet::spec
