#include "spec/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"

namespace ratchet::spec {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using ::testing::HasSubstr;

// A spec like the demo's (tasks/demo.yaml), as the CLI sends it.
v1::CampaignSpec GoodSpec() {
  v1::CampaignSpec spec;
  spec.set_name("demo-matmul");
  spec.set_task(v1::TASK_KERNEL);
  spec.mutable_problem()->set_name("matmul");
  spec.mutable_problem()->set_definition_json("{\"name\": \"matmul\"}");
  spec.mutable_problem()->set_workload_jsonl("{\"axes\": {\"M\": 64}}\n");
  auto& files = *spec.mutable_baseline()->mutable_files();
  files["solution.json"] =
      "{\"name\": \"b\", \"language\": \"cpp\", \"sources\": [\"kernel.cc\", \"inc/util.h\"],"
      " \"knobs\": {\"VEC\": {\"choices\": [4, 8], \"default\": 4}}}";
  files["kernel.cc"] = "#include \"inc/util.h\"\nextern \"C\" int ratchet_run() { return 0; }\n";
  files["inc/util.h"] = "// util\n";
  (*spec.mutable_baseline()->mutable_knobs())["VEC"] = "4";
  spec.set_threads(2);
  spec.set_proposer(v1::PROPOSER_EVOLVE);
  spec.set_seed(7);
  spec.mutable_budget()->set_max_evaluations(40);
  spec.mutable_budget()->set_max_wall_seconds(300);
  spec.mutable_verification()->set_replays(2);
  spec.mutable_verification()->set_min_gain(0.05);
  spec.mutable_verification()->set_significance(0.05);
  spec.mutable_harness()->set_warmups(2);
  spec.mutable_harness()->set_repetitions(12);
  spec.mutable_harness()->set_correctness_rounds(2);
  spec.mutable_harness()->set_timeout_seconds(90);
  spec.mutable_harness()->set_screen(v1::SCREEN_AUTO);
  spec.set_device(v1::DEVICE_CPU);
  spec.set_in_flight_per_thread(2);
  return spec;
}

std::string Msg(const absl::Status& s) { return std::string(s.message()); }

// GoodSpec, with what the field at `path` needs to be used at all: the llm
// section its proposer, gpus the cuda device, sleep_ms a sleep task.
v1::CampaignSpec GoodTrainingSpec() {
  v1::CampaignSpec spec;
  spec.set_task(v1::TASK_TRAIN_BUDGET);
  (*spec.mutable_baseline()->mutable_files())["train.py"] = "loop\n";
  (*spec.mutable_baseline()->mutable_files())["model.py"] = "gpt\n";
  (*spec.mutable_baseline()->mutable_files())["solution.json"] = "{\"knobs\": {}}";
  spec.mutable_training()->set_data_dir("/data/books");
  spec.mutable_training()->set_budget_seconds(60);
  spec.mutable_training()->add_editable("*.py");
  return spec;
}

v1::CampaignSpec GoodSpecFor(const std::string& path) {
  v1::CampaignSpec spec = GoodSpec();
  if (path.rfind("llm.", 0) == 0) {
    spec.set_proposer(v1::PROPOSER_LLM);
    spec.mutable_llm()->set_endpoint("local-vllm");
    spec.mutable_llm()->add_models()->set_name("m");
  } else if (path == "gpus") {
    spec.set_device(v1::DEVICE_CUDA);
    (*spec.mutable_baseline()->mutable_files())["solution.json"] =
        "{\"language\": \"cuda\", \"sources\": [\"kernel.cc\"]}";
  } else if (path == "sleep_ms") {
    spec.Clear();
    spec.set_task(v1::TASK_SLEEP);
  } else if (path.rfind("training.", 0) == 0) {
    spec = GoodTrainingSpec();
    if (path == "training.target_loss") {
      spec.set_task(v1::TASK_TRAIN_TARGET);
      spec.mutable_training()->set_budget_seconds(0);
      spec.mutable_training()->set_target_loss(3.28);
    }
  }
  return spec;
}

// The field at `path` (repeated messages: the first element, made if need
// be) set to `v`, through reflection so that the table drives the test.
void SetNumber(Message* m, const std::string& path, double v) {
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts[i]);
    ASSERT_NE(f, nullptr) << path;
    if (f->is_repeated()) {
      if (m->GetReflection()->FieldSize(*m, f) == 0) m->GetReflection()->AddMessage(m, f);
      m = m->GetReflection()->MutableRepeatedMessage(m, f, 0);
    } else {
      m = m->GetReflection()->MutableMessage(m, f);
    }
  }
  const FieldDescriptor* f = m->GetDescriptor()->FindFieldByName(parts.back());
  ASSERT_NE(f, nullptr) << path;
  const auto* r = m->GetReflection();
  if (f->is_repeated()) {
    // training.fidelities, the one list of numbers: [v, 1] (the last must be 1).
    ASSERT_EQ(f->cpp_type(), FieldDescriptor::CPPTYPE_DOUBLE) << path;
    r->ClearField(m, f);
    r->AddDouble(m, f, v);
    if (v < 1) r->AddDouble(m, f, 1);
    return;
  }
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: r->SetInt32(m, f, static_cast<int32_t>(v)); break;
    case FieldDescriptor::CPPTYPE_INT64: r->SetInt64(m, f, static_cast<int64_t>(v)); break;
    case FieldDescriptor::CPPTYPE_UINT32: r->SetUInt32(m, f, static_cast<uint32_t>(v)); break;
    case FieldDescriptor::CPPTYPE_UINT64: r->SetUInt64(m, f, static_cast<uint64_t>(v)); break;
    case FieldDescriptor::CPPTYPE_DOUBLE: r->SetDouble(m, f, v); break;
    case FieldDescriptor::CPPTYPE_FLOAT: r->SetFloat(m, f, static_cast<float>(v)); break;
    default: FAIL() << path << " is not a number";
  }
}

bool IsInteger(const std::string& path) {
  v1::CampaignSpec spec;
  const Message* m = &spec;
  std::vector<std::string> parts = absl::StrSplit(path, '.');
  const FieldDescriptor* f = nullptr;
  const google::protobuf::Descriptor* d = m->GetDescriptor();
  for (const std::string& p : parts) {
    f = d->FindFieldByName(p);
    if (f->message_type() != nullptr) d = f->message_type();
  }
  return f->cpp_type() != FieldDescriptor::CPPTYPE_DOUBLE &&
         f->cpp_type() != FieldDescriptor::CPPTYPE_FLOAT;
}

// Every numeric field path of a message type, recursively.
void NumericPaths(const google::protobuf::Descriptor* d, const std::string& prefix,
                  std::set<std::string>* out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    if (f->is_map()) continue;  // string -> string only (checked by SpecValidation.Maps*)
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_MESSAGE: NumericPaths(f->message_type(), path, out); break;
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT: out->insert(path); break;
      default: break;
    }
  }
}

TEST(SpecValidation, DemoSpecPasses) {
  EXPECT_TRUE(ValidateCampaignSpec(GoodSpec()).ok()) << ValidateCampaignSpec(GoodSpec());
  // Proto3 zeros are "unset": the coordinator fills in its defaults.
  v1::CampaignSpec minimal;
  *minimal.mutable_problem() = GoodSpec().problem();
  *minimal.mutable_baseline() = GoodSpec().baseline();
  EXPECT_TRUE(ValidateCampaignSpec(minimal).ok()) << ValidateCampaignSpec(minimal);
  v1::CampaignSpec sleep;
  sleep.set_task(v1::TASK_SLEEP);
  sleep.set_sleep_ms(5);
  sleep.mutable_budget()->set_max_evaluations(60000);  // scale_bench's default
  EXPECT_TRUE(ValidateCampaignSpec(sleep).ok()) << ValidateCampaignSpec(sleep);
}

// The table covers every number of CampaignSpec and its messages: a field
// added to the proto without a bound fails here (and at submit).
TEST(SpecValidation, EveryNumberHasABound) {
  std::set<std::string> in_proto, in_table;
  NumericPaths(v1::CampaignSpec::descriptor(), "", &in_proto);
  for (const SpecBound& b : CampaignSpecBounds()) {
    EXPECT_TRUE(in_table.insert(b.path).second) << "twice: " << b.path;
    EXPECT_TRUE(in_proto.count(b.path)) << "not a numeric field of CampaignSpec: " << b.path;
  }
  for (const std::string& p : in_proto) EXPECT_TRUE(in_table.count(p)) << "no bound: " << p;
}

// Each bound: its ends pass, a step beyond fails with the field's name, and
// 0 passes only where it means "default" or lies in the range.
TEST(SpecValidation, TrainingCampaigns) {
  EXPECT_TRUE(ValidateCampaignSpec(GoodTrainingSpec()).ok())
      << ValidateCampaignSpec(GoodTrainingSpec());
  struct Case {
    void (*spoil)(v1::CampaignSpec*);
    const char* expect;
  };
  const Case cases[] = {
      {[](v1::CampaignSpec* s) { s->mutable_baseline()->mutable_files()->erase("model.py"); },
       "baseline: has no model.py"},
      {[](v1::CampaignSpec* s) { s->mutable_training()->set_data_dir("data/books"); },
       "training.data_dir: missing or not absolute"},
      {[](v1::CampaignSpec* s) { s->mutable_training()->set_budget_seconds(0); },
       "training.budget_seconds: missing (train-budget trains for this long)"},
      {[](v1::CampaignSpec* s) { s->mutable_training()->set_target_loss(3); },
       "training.target_loss: only used with task: train-target"},
      {[](v1::CampaignSpec* s) { s->set_task(v1::TASK_TRAIN_TARGET); },
       "training.target_loss: missing"},
      {[](v1::CampaignSpec* s) { s->mutable_training()->add_editable("../x.py"); },
       "training.editable[1]"},
      {[](v1::CampaignSpec* s) { s->mutable_training()->set_data_manifest_sha256("xyz"); },
       "training.data_manifest_sha256: expected 64 lower-case hex digits"},
      {[](v1::CampaignSpec* s) { s->mutable_problem()->set_definition_json("{}"); },
       "problem: not used by a training campaign"},
      {[](v1::CampaignSpec* s) {
         s->set_proposer(v1::PROPOSER_LLM);
         s->mutable_llm()->set_endpoint("local");
         s->mutable_training()->clear_editable();
       },
       "training.editable: empty"},
      {[](v1::CampaignSpec* s) {
         s->mutable_training()->add_fidelities(0.5);
         s->mutable_training()->add_fidelities(0.25);
         s->mutable_training()->add_fidelities(1);
       },
       "training.fidelities[1]: fidelities must rise"},
      {[](v1::CampaignSpec* s) { s->mutable_training()->add_fidelities(0.5); },
       "training.fidelities: the last fidelity must be 1"},
  };
  for (const Case& c : cases) {
    v1::CampaignSpec spec = GoodTrainingSpec();
    c.spoil(&spec);
    EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr(c.expect));
  }
}

TEST(SpecValidation, EachBoundIsEnforced) {
  for (const SpecBound& b : CampaignSpecBounds()) {
    SCOPED_TRACE(b.path);
    const bool integer = IsInteger(b.path);
    const double step = integer ? 1 : std::max(1e-9, std::abs(b.hi) * 1e-6);
    const double lo_in = b.lo_open ? b.lo + step : b.lo;
    const double hi_in = b.hi_open ? b.hi - step : b.hi;
    for (double v : {lo_in, hi_in}) {
      v1::CampaignSpec spec = GoodSpecFor(b.path);
      SetNumber(&spec, b.path, v);
      EXPECT_TRUE(ValidateCampaignSpec(spec).ok()) << v << ": " << ValidateCampaignSpec(spec);
    }
    if (b.hi < 1e18) {  // seed: all of uint64
      v1::CampaignSpec spec = GoodSpecFor(b.path);
      SetNumber(&spec, b.path, b.hi_open ? b.hi : b.hi + step);
      const absl::Status s = ValidateCampaignSpec(spec);
      EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << b.hi + step;
      EXPECT_THAT(Msg(s), HasSubstr("out of range"));
      // The field's place, e.g. "llm.models[0].weight".
      std::string where = b.path;
      if (where.rfind("llm.models.", 0) == 0) where.insert(10, "[0]");
      EXPECT_THAT(Msg(s), HasSubstr(where));
    }
    const bool unsigned_field = b.path == std::string("seed");
    // Below the range (but not 0 where 0 is the default), and -1.
    const double below = b.lo_open ? b.lo : b.lo - step;
    for (double v : {below, -1.0}) {
      if (unsigned_field || (v == 0 && b.zero_is_default)) continue;
      v1::CampaignSpec spec = GoodSpecFor(b.path);
      SetNumber(&spec, b.path, v);
      EXPECT_EQ(ValidateCampaignSpec(spec).code(), absl::StatusCode::kInvalidArgument) << v;
    }
    // 0 is proto3's "unset": in the range, or the default; except where the
    // task needs the field (TrainingCampaigns).
    const bool required = b.path == std::string("training.budget_seconds") ||
                          b.path == std::string("training.target_loss") ||
                          b.path == std::string("training.fidelities");  // a list: no unset
    if (!required) {
      v1::CampaignSpec spec = GoodSpecFor(b.path);
      SetNumber(&spec, b.path, 0);
      EXPECT_TRUE(ValidateCampaignSpec(spec).ok()) << ValidateCampaignSpec(spec);
    }
    if (!integer) {
      for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
        v1::CampaignSpec spec = GoodSpecFor(b.path);
        SetNumber(&spec, b.path, bad);
        EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("not a finite number"));
      }
    }
  }
}

// The attacks of issue 12, one by one.
TEST(SpecValidation, AbsurdValuesFromTheIssue) {
  struct Case {
    const char* what;
    void (*spoil)(v1::CampaignSpec*);
    const char* expect;
  };
  const Case cases[] = {
      {"in_flight", [](v1::CampaignSpec* s) { s->set_in_flight_per_thread(100000); },
       "in_flight_per_thread: 100000 is out of range [1, 16]"},
      {"timeout", [](v1::CampaignSpec* s) { s->mutable_harness()->set_timeout_seconds(1e12); },
       "harness.timeout_seconds: 1e+12 is out of range (0, 86400]"},
      {"repetitions", [](v1::CampaignSpec* s) { s->mutable_harness()->set_repetitions(2000000000); },
       "harness.repetitions: 2000000000 is out of range [1, 10000]"},
      {"jobs", [](v1::CampaignSpec* s) { s->mutable_budget()->set_max_evaluations(1000000); },
       "budget.max_evaluations: 1000000 is out of range [1, 100000]"},
      {"negative", [](v1::CampaignSpec* s) { s->set_threads(-3); },
       "threads: -3 is out of range [1, 64]"},
  };
  for (const Case& c : cases) {
    v1::CampaignSpec spec = GoodSpec();
    c.spoil(&spec);
    const absl::Status s = ValidateCampaignSpec(spec);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(Msg(s), HasSubstr(c.expect)) << c.what;
  }
  // A sleep campaign is jobs without research: the same cap.
  v1::CampaignSpec sleep;
  sleep.set_task(v1::TASK_SLEEP);
  sleep.mutable_budget()->set_max_evaluations(1000000);
  EXPECT_EQ(ValidateCampaignSpec(sleep).code(), absl::StatusCode::kInvalidArgument);
}

TEST(SpecValidation, FileNames) {
  for (const char* good : {"kernel.cc", "inc/util.h", "a-b_c.d/e.cuh", "x..y", ".hidden",
                           "\xc3\xa9t\xc3\xa9.cc"}) {
    EXPECT_TRUE(ValidateSolutionFileName(good).ok()) << good;
  }
  const std::string nul("a\0b", 3);
  for (const std::string& bad :
       {std::string(""), std::string("../kernel.cc"), std::string("a/../../etc/passwd"),
        std::string(".."), std::string("/etc/passwd"), std::string("a//b"), std::string("a/"),
        std::string("./a"), std::string("a/./b"), nul, std::string("a\nb"), std::string("a\tb"),
        std::string("a\\b"), std::string("\xff.cc"), std::string(256, 'a')}) {
    EXPECT_EQ(ValidateSolutionFileName(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_TRUE(ValidateSolutionFileName(std::string(255, 'a')).ok());
}

TEST(SpecValidation, SolutionFilesAreChecked) {
  auto with_file = [](const std::string& name, const std::string& content = "x") {
    v1::CampaignSpec spec = GoodSpec();
    (*spec.mutable_baseline()->mutable_files())[name] = content;
    return ValidateCampaignSpec(spec);
  };
  EXPECT_THAT(Msg(with_file("../evil.cc")), HasSubstr("baseline.files: file name '../evil.cc'"));
  EXPECT_THAT(Msg(with_file("/abs.cc")), HasSubstr("absolute"));
  EXPECT_THAT(Msg(with_file("ok.cc", std::string("a\0b", 3))), HasSubstr("NUL"));
  EXPECT_THAT(Msg(with_file("ok.cc", "\xc3\x28")), HasSubstr("not valid UTF-8"));
  EXPECT_THAT(Msg(with_file("big.cc", std::string(kMaxFileBytes + 1, 'x'))),
              HasSubstr("baseline.files[big.cc]"));
  EXPECT_TRUE(with_file("big.cc", std::string(kMaxFileBytes, 'x')).ok());

  v1::CampaignSpec many = GoodSpec();
  for (size_t i = 0; i < kMaxSolutionFiles; ++i)
    (*many.mutable_baseline()->mutable_files())[absl::StrCat("f", i, ".h")] = "x";
  EXPECT_THAT(Msg(ValidateCampaignSpec(many)), HasSubstr("files; at most 64"));

  v1::CampaignSpec total = GoodSpec();
  for (int i = 0; i < 9; ++i)
    (*total.mutable_baseline()->mutable_files())[absl::StrCat("f", i, ".h")] =
        std::string(kMaxFileBytes, 'x');
  EXPECT_THAT(Msg(ValidateCampaignSpec(total)), HasSubstr("bytes in all"));

  v1::CampaignSpec none = GoodSpec();
  none.mutable_baseline()->mutable_files()->erase("solution.json");
  EXPECT_THAT(Msg(ValidateCampaignSpec(none)), HasSubstr("baseline: has no solution.json"));
}

TEST(SpecValidation, SolutionJsonLanguageAndSources) {
  auto with_json = [](const std::string& json, v1::Device device = v1::DEVICE_CPU) {
    v1::CampaignSpec spec = GoodSpec();
    spec.set_device(device);
    (*spec.mutable_baseline()->mutable_files())["solution.json"] = json;
    return ValidateCampaignSpec(spec);
  };
  EXPECT_TRUE(with_json("{\"sources\": [\"kernel.cc\"]}").ok());  // cpp by default
  EXPECT_TRUE(with_json("{\"language\": \"c\", \"sources\": [\"kernel.cc\"]}").ok());
  EXPECT_TRUE(
      with_json("{\"language\": \"cuda\", \"sources\": [\"kernel.cc\"]}", v1::DEVICE_CUDA).ok());
  EXPECT_THAT(Msg(with_json("{\"language\": \"rust\", \"sources\": [\"kernel.cc\"]}")),
              HasSubstr("language 'rust' is not run on device cpu (known: cpp, c++, c, pytorch)"));
  EXPECT_THAT(Msg(with_json("{\"language\": \"cuda\", \"sources\": [\"kernel.cc\"]}")),
              HasSubstr("language 'cuda' is not run on device cpu"));
  EXPECT_THAT(
      Msg(with_json("{\"language\": \"cpp\", \"sources\": [\"kernel.cc\"]}", v1::DEVICE_CUDA)),
              HasSubstr("not run on device cuda (known: cuda, pytorch, triton"));
  EXPECT_THAT(Msg(with_json("{\"language\": 3, \"sources\": [\"kernel.cc\"]}")),
              HasSubstr("\"language\" must be a string"));
  EXPECT_THAT(Msg(with_json("{\"sources\": [\"../../x.cc\"]}")),
              HasSubstr("sources[0]: file name '../../x.cc'"));
  EXPECT_THAT(Msg(with_json("{\"sources\": [\"/etc/passwd\"]}")), HasSubstr("absolute"));
  EXPECT_THAT(Msg(with_json("{\"sources\": [\"missing.cc\"]}")),
              HasSubstr("'missing.cc' is not one of the solution's files"));
  EXPECT_THAT(Msg(with_json("{\"sources\": []}")), HasSubstr("non-empty list"));
  EXPECT_THAT(Msg(with_json("{\"sources\": [7]}")), HasSubstr("expected a file name"));
  EXPECT_THAT(Msg(with_json("[1]")), HasSubstr("not a JSON object"));
}

// The languages the CUDA harness runs (common/languages.h) pass submit on
// device cuda and only there; what the harness would refuse about an
// entry_point or a knob is refused at submit.
TEST(SpecValidation, LanguagesOfTheHarnessAndEntryPoints) {
  auto with = [](const std::string& json, v1::Device device, const std::string& file) {
    v1::CampaignSpec spec = GoodSpec();
    spec.set_device(device);
    spec.mutable_baseline()->clear_knobs();
    auto& files = *spec.mutable_baseline()->mutable_files();
    files["solution.json"] = json;
    files[file] = "x\n";
    return ValidateCampaignSpec(spec);
  };
  const std::string triton =
      "{\"language\": \"triton\", \"sources\": [\"kernel.py\"], \"entry_point\": \"kernel.py::run\"}";
  const std::string cuda_cpp =
      "{\"language\": \"cuda_cpp\", \"sources\": [\"k.cu\"], \"entry_point\": \"k.cu::run\"}";
  EXPECT_TRUE(with(triton, v1::DEVICE_CUDA, "kernel.py").ok()) << with(triton, v1::DEVICE_CUDA, "kernel.py");
  EXPECT_TRUE(with(cuda_cpp, v1::DEVICE_CUDA, "k.cu").ok()) << with(cuda_cpp, v1::DEVICE_CUDA, "k.cu");
  for (const char* lang : {"cute_dsl", "cutile", "cudnn_frontend", "pytorch"}) {
    const std::string j = absl::StrCat("{\"language\": \"", lang,
                                       "\", \"sources\": [\"m.py\"], \"entry_point\": \"m.py::f\"}");
    EXPECT_TRUE(with(j, v1::DEVICE_CUDA, "m.py").ok()) << lang;
  }
  EXPECT_THAT(Msg(with(triton, v1::DEVICE_CPU, "kernel.py")),
              HasSubstr("language 'triton' is not run on device cpu (it launches GPU kernels: "
                        "device: cuda)"));
  EXPECT_THAT(Msg(with(cuda_cpp, v1::DEVICE_CPU, "k.cu")),
              HasSubstr("language 'cuda_cpp' is not run on device cpu"));
  // entry_point: required, FILE::FUNCTION, FILE one of the sources.
  EXPECT_THAT(Msg(with("{\"language\": \"triton\", \"sources\": [\"kernel.py\"]}",
                       v1::DEVICE_CUDA, "kernel.py")),
              HasSubstr("\"entry_point\" is required for language 'triton'"));
  EXPECT_THAT(Msg(with("{\"language\": \"triton\", \"sources\": [\"kernel.py\"], "
                       "\"entry_point\": \"kernel.py\"}",
                       v1::DEVICE_CUDA, "kernel.py")),
              HasSubstr("entry_point 'kernel.py': expected \"FILE::FUNCTION\""));
  EXPECT_THAT(Msg(with("{\"language\": \"pytorch\", \"sources\": [\"kernel.py\"], "
                       "\"entry_point\": \"kernel.py::1run\"}",
                       v1::DEVICE_CPU, "kernel.py")),
              HasSubstr("expected \"FILE::FUNCTION\""));
  EXPECT_THAT(Msg(with("{\"language\": \"pytorch\", \"sources\": [\"kernel.py\"], "
                       "\"entry_point\": \"other.py::run\"}",
                       v1::DEVICE_CPU, "kernel.py")),
              HasSubstr("entry_point: 'other.py' is not one of the sources"));
  // Knobs: declared well, and the solution sets only declared ones.
  EXPECT_THAT(Msg(with("{\"sources\": [\"kernel.cc\"], \"knobs\": {\"B\": 3}}", v1::DEVICE_CPU,
                       "kernel.cc")),
              HasSubstr("baseline.files[solution.json]"));
}

TEST(SpecValidation, EnumsAreKnown) {
  struct Case {
    void (*spoil)(v1::CampaignSpec*);
    const char* expect;
  };
  const Case cases[] = {
      {[](v1::CampaignSpec* s) { s->set_device(static_cast<v1::Device>(9)); },
       "device: unknown enum value 9"},
      {[](v1::CampaignSpec* s) { s->set_task(static_cast<v1::Task>(42)); },
       "task: unknown enum value 42"},
      // A kernel campaign's baseline is not a training project.
      {[](v1::CampaignSpec* s) { s->set_task(v1::TASK_TRAIN_BUDGET); },
       "baseline: has no train.py (a training project: train.py, model.py)"},
      {[](v1::CampaignSpec* s) { s->mutable_training()->set_budget_seconds(60); },
       "training: only used with task: train-budget or train-target"},
      {[](v1::CampaignSpec* s) { s->set_proposer(static_cast<v1::Proposer>(-1)); },
       "proposer: unknown enum value -1"},
      {[](v1::CampaignSpec* s) { s->set_experience("all"); }, "experience: unknown experience"},
      // Every job of the campaign would fail on the worker (issue 13).
      {[](v1::CampaignSpec* s) { s->mutable_harness()->set_screen(static_cast<v1::Screen>(7)); },
       "harness.screen: unknown enum value 7"},
      {[](v1::CampaignSpec* s) { s->mutable_verification()->add_tiers("vibes"); },
       "verification.tiers[0]: unknown tier 'vibes' (known: guards, replay, adversarial, "
       "independent-timing)"},
  };
  for (const Case& c : cases) {
    v1::CampaignSpec spec = GoodSpec();
    c.spoil(&spec);
    EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr(c.expect));
  }
  v1::CampaignSpec cuda = GoodSpec();
  cuda.set_device(v1::DEVICE_CUDA);
  (*cuda.mutable_baseline()->mutable_files())["solution.json"] =
      "{\"language\": \"cuda\", \"sources\": [\"kernel.cc\"]}";
  EXPECT_TRUE(ValidateCampaignSpec(cuda).ok()) << ValidateCampaignSpec(cuda);
}

TEST(SpecValidation, StringsAreSizedAndOneLine) {
  v1::CampaignSpec spec = GoodSpec();
  spec.set_name("demo\nrm -rf ~");  // a live line of `ratchet export`'s run.sh once
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("name: control character 0x0a"));
  spec = GoodSpec();
  spec.set_name(std::string(kMaxNameBytes + 1, 'n'));
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("name: 129 bytes; at most 128"));
  spec = GoodSpec();
  spec.set_name("caf\xc3\xa9");
  EXPECT_TRUE(ValidateCampaignSpec(spec).ok());
  // Invalid UTF-8 cannot arrive over gRPC (protobuf refuses to parse it),
  // but an in-process caller (ratchet local) could pass it.
  spec.set_name("caf\xe9");
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("name: not valid UTF-8"));
  spec = GoodSpec();
  spec.set_gpu_model("H100\r");
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("gpu_model: control character"));
  spec = GoodSpec();
  spec.mutable_problem()->set_definition_json(std::string(kMaxDefinitionBytes + 1, ' '));
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("problem.definition_json"));
  spec = GoodSpec();
  spec.mutable_problem()->set_workload_jsonl(std::string("{}\n\0", 4));
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("problem.workload_jsonl: NUL"));
  spec = GoodSpec();
  spec.set_proposer(v1::PROPOSER_LLM);
  spec.mutable_llm()->set_base_url(std::string(kMaxUrlBytes + 1, 'u'));
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("llm.base_url"));
  spec = GoodSpec();
  spec.mutable_llm()->add_models()->set_name("m\x01");
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("llm.models[0].name"));
}

// Settings that only one device, task or proposer uses are refused with the
// others (a typo must not silently drop them), for every client.
TEST(SpecValidation, SettingsOfOneDeviceTaskOrProposer) {
  struct Case {
    void (*spoil)(v1::CampaignSpec*);
    const char* expect;
  };
  const Case cases[] = {
      {[](v1::CampaignSpec* s) { s->set_gpus(2); }, "gpus: needs device: cuda"},
      {[](v1::CampaignSpec* s) { s->set_gpu_model("H100"); }, "gpu_model: needs device: cuda"},
      {[](v1::CampaignSpec* s) { s->set_sleep_ms(5); }, "sleep_ms: only used with task: sleep"},
      {[](v1::CampaignSpec* s) { s->mutable_llm()->set_endpoint("e"); },
       "llm: only used with proposer: llm"},
      {[](v1::CampaignSpec* s) { (*s->add_replay()->mutable_knobs())["VEC"] = "8"; },
       "replay: only used with proposer: replay"},
      {[](v1::CampaignSpec* s) { s->mutable_problem()->clear_definition_json(); },
       "problem.definition_json: missing"},
      {[](v1::CampaignSpec* s) { s->mutable_problem()->clear_workload_jsonl(); },
       "problem.workload_jsonl: missing"},
  };
  for (const Case& c : cases) {
    v1::CampaignSpec spec = GoodSpec();
    c.spoil(&spec);
    EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr(c.expect));
  }
}

// The llm section names an endpoint of the coordinator's operator: never a
// URL or a key of the submitter's choosing (docs/llm.md).
TEST(SpecValidation, LlmSection) {
  v1::CampaignSpec spec = GoodSpec();
  spec.set_proposer(v1::PROPOSER_LLM);
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("llm.endpoint: missing"));
  spec.mutable_llm()->set_endpoint("local-vllm_2.b");
  EXPECT_TRUE(ValidateCampaignSpec(spec).ok()) << ValidateCampaignSpec(spec);
  for (const std::string& bad : {std::string("a b"), std::string("../x"), std::string("h:80"),
                                 std::string("x\n"), std::string(kMaxEndpointNameBytes + 1, 'e')}) {
    spec.mutable_llm()->set_endpoint(bad);
    EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("llm.endpoint: ")) << bad;
  }
  spec.mutable_llm()->set_endpoint("a b");
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)),
              HasSubstr("llm.endpoint: 'a b' is not a name (letters, digits, '-', '_' and '.')"));
  spec.mutable_llm()->set_endpoint("local");
  spec.mutable_llm()->set_base_url("http://evil.example");
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)),
              HasSubstr("llm.base_url: not allowed in a campaign spec; name an LLM endpoint"));
  spec.mutable_llm()->clear_base_url();
  spec.mutable_llm()->set_api_key_env("AWS_SECRET_ACCESS_KEY");
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("llm.api_key_env: not allowed"));
  spec.mutable_llm()->clear_api_key_env();
  spec.mutable_llm()->add_models()->set_weight(2);
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("llm.models[0].name: missing"));
  // The section alone, as LlmProposer::Create checks it: the same rules.
  EXPECT_THAT(Msg(ValidateLlmSettings(spec.llm())), HasSubstr("llm.models[0].name: missing"));
  v1::LlmSettings llm;
  llm.set_endpoint("local");
  EXPECT_TRUE(ValidateLlmSettings(llm).ok());
  llm.set_temperature(5);
  EXPECT_THAT(Msg(ValidateLlmSettings(llm)), HasSubstr("llm.temperature: 5 is out of range [0, 2]"));
}

// One field's rule, for a reader that knows the line (the CLI's YAML).
TEST(SpecValidation, FieldRulesForReaders) {
  // Written out, a 0 is a 0: refused where it is only the "unset" default.
  EXPECT_EQ(Msg(CheckNumber("threads", 0, "0", /*written=*/true)), "0 is out of range [1, 64]");
  EXPECT_TRUE(CheckNumber("threads", 0, "0", /*written=*/false).ok());
  EXPECT_EQ(Msg(CheckNumber("threads", 65, "65", false)), "65 is out of range [1, 64] (0 = default)");
  EXPECT_TRUE(CheckNumber("llm.models[3].weight", 2, "2", true).ok());  // indices: any
  EXPECT_EQ(Msg(CheckNumber("verification.significance", 0.5, "0.50", true)),
            "0.50 is out of range (0, 0.5)");
  EXPECT_EQ(Msg(CheckNumber("verification.replays", 21, "21", true)),
            "21 is out of range [1, 20]");
  EXPECT_THAT(Msg(CheckNumber("nope", 1, "1", true)), HasSubstr("no bound"));
  // The enums' words, as the YAML writes them.
  EXPECT_EQ(Msg(CheckString("harness.screen", "maybe")),
            "unknown screen 'maybe' (known: auto, on, off)");
  EXPECT_EQ(Msg(CheckString("device", "tpu")), "unknown device 'tpu' (known: cpu, cuda)");
  EXPECT_EQ(Msg(CheckString("task", "mine")),
            "unknown task 'mine' (known: kernel, sleep, train-budget, train-target)");
  EXPECT_EQ(Msg(CheckString("task", "train-budget")), "");
  EXPECT_EQ(Msg(CheckString("proposer", "oracle")),
            "unknown proposer 'oracle' (known: evolve, random, grid, replay, llm)");
  EXPECT_TRUE(CheckString("harness.screen", "").ok());  // the default
  EXPECT_THAT(Msg(CheckString("verification.tiers[2]", "vibes")), HasSubstr("unknown tier"));
  EXPECT_THAT(Msg(CheckString("name", "a\nb")), HasSubstr("control character 0x0a"));
  EXPECT_TRUE(CheckString("problem", std::string(100, 'p')).ok());  // no rule of its own
}

TEST(SpecValidation, KnobsAndReplayAreBounded) {
  v1::CampaignSpec spec = GoodSpec();
  (*spec.mutable_baseline()->mutable_knobs())["not-a-name"] = "1";
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("baseline.knobs: knob name"));
  spec = GoodSpec();
  (*spec.mutable_baseline()->mutable_knobs())["VEC"] = "4 -DX=1\n";
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("baseline.knobs[VEC]: control"));
  spec = GoodSpec();
  for (size_t i = 0; i <= kMaxKnobs; ++i)
    (*spec.mutable_baseline()->mutable_knobs())[absl::StrCat("K", i)] = "1";
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("knobs; at most 64"));
  spec = GoodSpec();
  (*spec.add_replay()->mutable_knobs())["VEC"] = std::string(300, '8');
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("replay[0].knobs[VEC]: 300 bytes"));
  spec = GoodSpec();
  for (size_t i = 0; i <= kMaxReplaySettings; ++i) (*spec.add_replay()->mutable_knobs())["VEC"] = "8";
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("replay: 10001 settings"));
  spec = GoodSpec();
  for (size_t i = 0; i <= kMaxLlmModels; ++i) spec.mutable_llm()->add_models()->set_name("m");
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("llm.models: 17 models"));
}

TEST(SpecValidation, WholeSpecSize) {
  v1::CampaignSpec spec = GoodSpec();
  // Each part within its own limit, the whole over kMaxSpecBytes.
  spec.mutable_problem()->set_workload_jsonl(std::string(kMaxWorkloadBytes, ' '));
  for (int i = 0; i < 8; ++i)
    (*spec.mutable_baseline()->mutable_files())[absl::StrCat("f", i, ".h")] =
        std::string(kMaxFileBytes - 100, 'x');
  spec.mutable_problem()->set_definition_json(std::string(kMaxDefinitionBytes, ' '));
  EXPECT_GT(spec.ByteSizeLong(), kMaxSpecBytes);
  EXPECT_THAT(Msg(ValidateCampaignSpec(spec)), HasSubstr("spec: "));
}

TEST(SpecValidation, Utf8) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
  for (const char* bad : {"\xff", "\xc3", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                          "\xe2\x82", "\x80"}) {
    EXPECT_FALSE(IsValidUtf8(bad)) << bad;
  }
}

}  // namespace
}  // namespace ratchet::spec
