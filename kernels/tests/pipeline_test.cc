// The trusted pipeline over a fake backend: which call gets which round, and
// which check names which misbehaviour. The real backend (the candidate
// process) is exercised by harness_test and the hack corpus.
#include "kernels/harness/pipeline.h"

#include <cstring>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kernels/problem/dtype.h"

namespace ratchet::kernels {
namespace {

using ::testing::HasSubstr;

constexpr char kDefinition[] = R"({
  "name": "scale", "op_type": "elementwise",
  "axes": {"N": {"type": "var"}},
  "inputs": {"x": {"shape": ["N"], "dtype": "float32"}},
  "outputs": {"y": {"shape": ["N"], "dtype": "float32"}},
  "reference": "def run(x):\n    return 2 * x\n"})";

enum class Behaviour {
  kHonest, kStale, kCacheFirst, kLate, kLowPrecision, kCopyDecoy, kModifyInput, kWrongWhenTimed,
  kNoWorkBackToBack, kContentCache
};

// Computes y = 2x in-process, or misbehaves as told; records the inputs it saw.
class FakeBackend : public CandidateBackend {
 public:
  explicit FakeBackend(Behaviour b) : b_(b) {}
  const WorkloadRounds* rounds = nullptr;  // for kCopyDecoy
  std::vector<std::string> seen;           // first input of every call
  int calls = 0;

  Observation Call(const CallRequest& req) override {
    Observation ob;
    if (req.on_send) req.on_send();
    if (req.on_answer) req.on_answer();
    const std::string& x = *req.inputs[0];
    seen.push_back(x);
    const size_t n = x.size() / 4;
    std::string y(x.size(), '\0');
    Poison(y.data(), DType::kFloat32, n);
    ++calls;
    const bool timed = calls > 2;  // the tests use two correctness rounds
    const float* in = reinterpret_cast<const float*>(x.data());
    float* out = reinterpret_cast<float*>(y.data());
    switch (b_) {
      case Behaviour::kStale:
        break;
      case Behaviour::kCacheFirst:
        if (first_.empty()) {
          for (size_t i = 0; i < n; ++i) out[i] = 2 * in[i];
          first_ = y;
        }
        y = first_;
        break;
      case Behaviour::kCopyDecoy:
        for (size_t r = 0; r < rounds->inputs.size(); ++r)
          if (rounds->inputs[r][0] == x) y = rounds->decoys[r][0];
        // Flipping the lowest bit of every element does not hide the copy.
        for (size_t i = 0; i < n; ++i) reinterpret_cast<uint32_t*>(y.data())[i] ^= 1;
        break;
      case Behaviour::kContentCache:
        // Answers contents seen before at once (right, since they are the
        // same): a cache keyed on the whole input.
        if (memo_.count(x)) {
          ob.outputs = {memo_[x]};
          ob.ns = 1;
          return ob;
        }
        for (size_t i = 0; i < n; ++i) out[i] = 2 * in[i];
        memo_[x] = y;
        break;
      case Behaviour::kNoWorkBackToBack:
        if (req.repeat > 1) break;
        [[fallthrough]];
      default:
        for (size_t i = 0; i < n; ++i) out[i] = 2 * in[i];
    }
    if (b_ == Behaviour::kLowPrecision && timed)
      for (size_t i = 0; i < n; ++i) out[i] *= 1.04f;
    if (b_ == Behaviour::kWrongWhenTimed && timed)
      for (size_t i = 0; i < n; ++i) out[i] = -out[i];
    later_ = y;
    if (b_ == Behaviour::kLate && timed) std::memcpy(y.data(), x.data(), 4);  // finished later
    if (b_ == Behaviour::kModifyInput) ob.modified_input = 0;
    ob.outputs = {y};
    ob.ns = 1000 + calls;
    return ob;
  }
  std::vector<std::string> OutputsNow() override { return {later_}; }

 private:
  Behaviour b_;
  std::string first_, later_;
  std::map<std::string, std::string> memo_;
};

struct Fixture {
  Definition def;
  std::vector<Workload> ws;
  std::vector<WorkloadRounds> rounds;
  Fixture(int num_rounds) {
    def = *ParseDefinition(kDefinition, "definition.json");
    ws = *ParseWorkloads(def, R"({"axes": {"N": 64}, "inputs": {"x": {"type": "random"}}})",
                         "workload.jsonl", ".");
    WorkloadRounds wr;
    for (int r = 0; r < num_rounds; ++r) {
      std::string x(64 * 4, '\0'), y(64 * 4, '\0');
      for (int i = 0; i < 64; ++i) {
        reinterpret_cast<float*>(x.data())[i] = static_cast<float>(r * 100 + i) * 0.25f + 1;
        reinterpret_cast<float*>(y.data())[i] = 2 * reinterpret_cast<float*>(x.data())[i];
      }
      wr.inputs.push_back({x});
      wr.outputs.push_back({y});
      wr.decoys.push_back({MakeDecoy(y, DType::kFloat32, ws[0].atol, ws[0].rtol)});
    }
    rounds.push_back(wr);
  }
};

PipelineOptions Options() {
  PipelineOptions o;
  o.correctness_rounds = 2;
  o.warmups = 2;
  o.repetitions = 6;
  o.late_work_ms = 0;
  return o;
}

PipelineResult RunWith(Behaviour b, int num_rounds = 10, PipelineOptions o = Options(),
                       FakeBackend* out = nullptr) {
  Fixture f(num_rounds);
  FakeBackend fake(b);
  fake.rounds = &f.rounds[0];
  EvaluationPipeline p(f.def, &fake, o);
  PipelineResult r = p.Run(f.ws, f.rounds);
  if (out != nullptr) {
    out->seen = fake.seen;
    out->calls = fake.calls;
  }
  return r;
}

TEST(PipelineTest, EveryTimedCallGetsARoundOfItsOwn) {
  FakeBackend seen(Behaviour::kHonest);
  const PipelineResult r = RunWith(Behaviour::kHonest, 10, Options(), &seen);
  ASSERT_EQ(r.outcome, "ok") << r.message;
  ASSERT_EQ(seen.calls, 2 + 2 + 6);  // correctness rounds, warm-ups, timed calls
  // The warm-ups go round the correctness rounds...
  EXPECT_EQ(seen.seen[2], seen.seen[0]);
  EXPECT_EQ(seen.seen[3], seen.seen[1]);
  // ...and no timed call saw inputs an earlier call saw.
  const std::set<std::string> timed(seen.seen.begin() + 4, seen.seen.end());
  EXPECT_EQ(timed.size(), 6u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(timed.count(seen.seen[static_cast<size_t>(i)]), 0u);
  EXPECT_EQ(r.workloads[0].timed_rounds, 6);
  EXPECT_GT(r.workloads[0].t_k, 1000);
}

TEST(PipelineTest, FewerRoundsThanRepetitionsMeanFewerTimedCallsNeverARepeat) {
  FakeBackend seen(Behaviour::kHonest);
  const PipelineResult r = RunWith(Behaviour::kHonest, 5, Options(), &seen);
  ASSERT_EQ(r.outcome, "ok") << r.message;
  EXPECT_EQ(seen.calls, 2 + 2 + 3);
  EXPECT_EQ(r.workloads[0].timed_rounds, 3);
}

TEST(PipelineTest, ACacheKeyedOnContentsNeverHitsWhileTimed) {
  // It answers repeated contents in 1 ns; the warm-ups repeat the correctness
  // rounds (hits, untimed), the timed calls never do, even with fewer rounds
  // than warm-ups and repetitions together.
  const PipelineResult r = RunWith(Behaviour::kContentCache, 5);
  ASSERT_EQ(r.outcome, "ok") << r.message;
  EXPECT_GT(r.workloads[0].t_k, 1000);
  EXPECT_GT(r.workloads[0].t_k_p10, 1000);
}

TEST(PipelineTest, StaleOutputIsAWrongAnswerInCorrectness) {
  const PipelineResult r = RunWith(Behaviour::kStale);
  EXPECT_EQ(r.outcome, "wrong_answer");
  EXPECT_THAT(r.message, HasSubstr("round 0"));
}

TEST(PipelineTest, CachedAnswerIsNamedAsSuch) {
  const PipelineResult r = RunWith(Behaviour::kCacheFirst);
  EXPECT_EQ(r.outcome, "wrong_answer");
  // Caught in the second correctness round: an honest wrong answer there,
  // the cache is named only when a timed call shows it.
  EXPECT_THAT(r.message, HasSubstr("round 1"));
}

TEST(PipelineTest, TimedChecksNameTheHack) {
  struct Case {
    Behaviour b;
    const char* flag;
  } cases[] = {{Behaviour::kLate, "work-after-return"},
               {Behaviour::kLowPrecision, "precision-downgrade"},
               {Behaviour::kWrongWhenTimed, "wrong-while-timed"},
               {Behaviour::kCopyDecoy, "read-reference"}};
  for (const Case& c : cases) {
    const PipelineResult r = RunWith(c.b);
    EXPECT_EQ(r.outcome, "wrong_answer") << c.flag;
    ASSERT_EQ(r.workloads[0].flags.size(), 1u) << c.flag << ": " << r.message;
    EXPECT_EQ(r.workloads[0].flags[0], c.flag) << r.message;
  }
}

// Large outputs: timed calls are checked at random positions, and in full at
// random; half an output left undone is caught either way, honest passes.
TEST(PipelineTest, SpotChecksAndRandomAuditsOfLargeOutputs) {
  PipelineOptions o = Options();
  o.full_check_elements = 16;  // the fixture's 64 elements count as large
  o.audit_one_in = 1000;       // nearly every timed call by spot check only
  const PipelineResult honest = RunWith(Behaviour::kHonest, 10, o);
  EXPECT_EQ(honest.outcome, "ok") << honest.message;
  const PipelineResult half = RunWith(Behaviour::kWrongWhenTimed, 10, o);
  EXPECT_EQ(half.outcome, "wrong_answer");
  EXPECT_THAT(half.message, HasSubstr("timed call"));
}

TEST(PipelineTest, ModifiedInputsAreCaught) {
  const PipelineResult r = RunWith(Behaviour::kModifyInput);
  EXPECT_EQ(r.outcome, "wrong_answer");
  EXPECT_THAT(r.message, HasSubstr("modified its inputs"));
}

TEST(PipelineTest, BackToBackOutputsAreChecked) {
  PipelineOptions o = Options();
  o.back_to_back_seconds = 0.01;
  const PipelineResult honest = RunWith(Behaviour::kHonest, 10, o);
  ASSERT_EQ(honest.outcome, "ok") << honest.message;
  EXPECT_GE(honest.workloads[0].calls, 8);
  const PipelineResult lazy = RunWith(Behaviour::kNoWorkBackToBack, 10, o);
  EXPECT_EQ(lazy.outcome, "wrong_answer");
  EXPECT_THAT(lazy.message, HasSubstr("back-to-back"));
  EXPECT_EQ(lazy.workloads[0].flags, std::vector<std::string>{"stale-output"});
}

TEST(PipelineTest, BackToBackMarksBracketEachBatchOfCalls) {
  // Pairs "ratchet-mark 0 FIRST" / "ratchet-mark 0 FIRST+N": the harness's
  // own work between batches lies in windows with no calls.
  PipelineOptions o = Options();
  o.back_to_back_seconds = 0.01;
  testing::internal::CaptureStdout();
  const PipelineResult honest = RunWith(Behaviour::kHonest, 10, o);
  const std::string out = testing::internal::GetCapturedStdout();
  ASSERT_EQ(honest.outcome, "ok") << honest.message;
  std::vector<long long> counts;
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    int w = -1;
    long long n = -1;
    if (std::sscanf(line.c_str(), "ratchet-mark %d %lld", &w, &n) == 2) counts.push_back(n);
  }
  ASSERT_GE(counts.size(), 4u);
  ASSERT_EQ(counts.size() % 2, 0u);
  EXPECT_EQ(counts.front(), 0);
  for (size_t i = 0; i + 1 < counts.size(); i += 2) {
    EXPECT_LT(counts[i], counts[i + 1]) << "batch " << i / 2;
    if (i + 2 < counts.size()) {
      EXPECT_EQ(counts[i + 1], counts[i + 2]) << "batch " << i / 2;
    }
  }
  EXPECT_EQ(counts.back(), honest.workloads[0].calls);
}

TEST(PipelineTest, DecoyStaysWithinToleranceYetIsRecognised) {
  Fixture f(1);
  const std::string& ref = f.rounds[0].outputs[0][0];
  const std::string& decoy = f.rounds[0].decoys[0][0];
  EXPECT_NE(ref, decoy);
  EXPECT_FALSE(NearerDecoy(ref, ref, decoy, DType::kFloat32));
  EXPECT_TRUE(NearerDecoy(decoy, ref, decoy, DType::kFloat32));
}

}  // namespace
}  // namespace ratchet::kernels
