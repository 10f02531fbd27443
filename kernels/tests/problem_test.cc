#include "kernels/problem/problem.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <ostream>
#include <string>

#include "common/problem_check.h"
#include "kernels/problem/expr.h"

namespace ratchet::kernels {
namespace {

using ::testing::HasSubstr;

constexpr char kDef[] = R"({
  "name": "rmsnorm_test",
  "op_type": "norm",
  "axes": {
    "batch": {"type": "var"},
    "hidden": {"type": "const", "value": 64},
    "heads": {"type": "const", "value": 4},
    "head_dim": {"type": "expr", "expression": "hidden // heads"},
    "twice": {"type": "expr", "expression": "2 * head_dim"}
  },
  "constraints": ["hidden % heads == 0"],
  "inputs": {
    "x": {"shape": ["batch", "hidden"], "dtype": "bfloat16"},
    "w": {"shape": ["hidden"], "dtype": "float32"},
    "eps": {"shape": null, "dtype": "float32"},
    "idx": {"shape": [3, "twice"], "dtype": "int64"}
  },
  "outputs": {"y": {"shape": ["batch", "heads", "head_dim"], "dtype": "float16"}},
  "reference": "import torch\ndef run(x, w, eps, idx):\n    return x\n",
  "ratchet": {"flops": "3 * batch * hidden"}
})";

Definition MustDef(const std::string& text = kDef) {
  auto d = ParseDefinition(text, "definition.json");
  EXPECT_TRUE(d.ok()) << d.status();
  return d.ok() ? *d : Definition{};
}

TEST(DefinitionTest, ParsesAxesTensorsAndExtension) {
  Definition d = MustDef();
  EXPECT_EQ(d.name, "rmsnorm_test");
  ASSERT_EQ(d.axes.size(), 5u);
  EXPECT_EQ(d.axes[3].kind, Axis::Kind::kExpr);
  // Definition order, not alphabetical.
  ASSERT_EQ(d.inputs.size(), 4u);
  EXPECT_EQ(d.inputs[0].name, "x");
  EXPECT_EQ(d.inputs[0].dtype, DType::kBFloat16);
  EXPECT_TRUE(d.inputs[2].scalar);
  EXPECT_EQ(d.inputs[3].shape[0].literal, 3);
  EXPECT_EQ(d.flops_expr, "3 * batch * hidden");
}

TEST(WorkloadTest, ResolvesExprAxesShapesAndBytes) {
  Definition d = MustDef();
  auto w = ParseWorkloads(
      d,
      "{\"uuid\":\"a\",\"axes\":{\"batch\":8},\"inputs\":{\"x\":{\"type\":\"random\"},"
      "\"w\":{\"type\":\"random\"},\"eps\":{\"type\":\"scalar\",\"value\":1e-6},"
      "\"idx\":{\"type\":\"random\"}},\"tolerance\":{\"atol\":0.5}}\n\n",
      "workload.jsonl", "/p");
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->size(), 1u);
  const Workload& wl = (*w)[0];
  EXPECT_EQ(wl.axes.at("head_dim"), 16);
  EXPECT_EQ(wl.axes.at("twice"), 32);
  EXPECT_EQ(wl.axes_label, "batch=8");
  EXPECT_DOUBLE_EQ(wl.atol, 0.5);
  EXPECT_DOUBLE_EQ(wl.rtol, 1e-2);
  EXPECT_EQ(wl.inputs[2].kind, InputSource::Kind::kScalar);
  EXPECT_DOUBLE_EQ(wl.inputs[2].value, 1e-6);
  EXPECT_EQ(ResolveShape(d.outputs[0], wl), (std::vector<int64_t>{8, 4, 16}));
  EXPECT_EQ(ResolveShape(d.inputs[3], wl), (std::vector<int64_t>{3, 32}));
  EXPECT_TRUE(ResolveShape(d.inputs[2], wl).empty());
  // x bf16 8*64*2 + w 64*4 + eps 4 + idx 96*8 + y fp16 8*64*2.
  EXPECT_DOUBLE_EQ(*WorkloadBytes(d, wl), 1024 + 256 + 4 + 768 + 1024);
  EXPECT_DOUBLE_EQ(*WorkloadFlops(d, wl), 3 * 8 * 64);
}

TEST(WorkloadTest, AcceptsTraceWrapperAndSafetensors) {
  Definition d = MustDef();
  auto w = ParseWorkloads(
      d,
      "{\"definition\":\"rmsnorm_test\",\"workload\":{\"uuid\":\"u\",\"axes\":{\"batch\":2},"
      "\"inputs\":{\"x\":{\"type\":\"safetensors\",\"path\":\"data/x.safetensors\","
      "\"tensor_key\":\"x\"},\"w\":{\"type\":\"random\"},\"eps\":{\"type\":\"scalar\","
      "\"value\":true},\"idx\":{\"type\":\"random\"}}},\"solution\":null}",
      "workload.jsonl", "/prob");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ((*w)[0].inputs[0].path, "/prob/data/x.safetensors");
  EXPECT_EQ((*w)[0].inputs[0].tensor_key, "x");
  EXPECT_TRUE((*w)[0].inputs[2].value_is_bool);
}

// Each malformed definition must name the file and the field at fault.
struct BadDef {
  std::string from, to, expect;
};

// Test names and ctest's listing show the expected error, letters, digits and
// underscores only (CMake lists choke on quotes and semicolons).
std::string Readable(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool word = std::isalnum(static_cast<unsigned char>(c));
    if (word) out += c;
    else if (!out.empty() && out.back() != '_') out += '_';
    if (out.size() >= 48) break;
  }
  return out;
}
void PrintTo(const BadDef& b, std::ostream* os) { *os << Readable(b.expect); }

class MalformedDefinitionTest : public ::testing::TestWithParam<BadDef> {};

TEST_P(MalformedDefinitionTest, NamesFileAndField) {
  std::string text = kDef;
  const size_t at = text.find(GetParam().from);
  ASSERT_NE(at, std::string::npos) << GetParam().from;
  text.replace(at, GetParam().from.size(), GetParam().to);
  auto d = ParseDefinition(text, "p/definition.json");
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("p/definition.json"));
  EXPECT_THAT(std::string(d.status().message()), HasSubstr(GetParam().expect));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedDefinitionTest,
    ::testing::Values(
        BadDef{"\"name\": \"rmsnorm_test\",", "", "field 'name': missing"},
        BadDef{"{\"type\": \"var\"}", "{\"type\": \"variable\"}", "field 'axes.batch.type'"},
        BadDef{"\"value\": 64", "\"value\": \"64\"", "field 'axes.hidden.value'"},
        BadDef{"hidden // heads", "hidden // nope", "field 'axes.head_dim.expression'"},
        BadDef{"hidden // heads", "hidden // (heads", "field 'axes.head_dim.expression'"},
        BadDef{"\"dtype\": \"bfloat16\"", "\"dtype\": \"bf16\"", "field 'inputs.x.dtype'"},
        BadDef{"\"dtype\": \"bfloat16\"", "\"dtype\": \"float8_e4m3fnuz\"",
               "not supported by the harness"},
        BadDef{"[\"batch\", \"hidden\"]", "[\"batch\", \"hiden\"]", "field 'inputs.x.shape[1]'"},
        BadDef{"[\"batch\", \"hidden\"]", "\"batch\"", "field 'inputs.x.shape'"},
        BadDef{"\"shape\": null, ", "", "field 'inputs.eps.shape': missing"},
        BadDef{"def run(", "def other(", "field 'reference'"},
        BadDef{"\"3 * batch * hidden\"", "\"3 * batch * M\"", "field 'ratchet.flops'"},
        BadDef{"\"op_type\": \"norm\",", "\"op_type\": \"norm\",,", "definition.json:3: invalid JSON"},
        BadDef{"\"constraints\": [\"hidden % heads == 0\"]", "\"constraints\": [\"hidden %\"]",
               "field 'constraints[0]'"},
        BadDef{"\"ratchet\":", "\"tolerance\": {\"max_error_factor\": -2},\n  \"ratchet\":",
               "definition.json:20: field 'tolerance.max_error_factor': expected a non-negative "
               "number, got -2"},
        BadDef{"\"ratchet\":", "\"tolerance\": {\"max_error_factor\": 1e400},\n  \"ratchet\":",
               "invalid JSON: [json.exception.out_of_range.406] number overflow"},
        BadDef{"\"ratchet\":",
               "\"tolerance\": {\"atol\": 0.1,\n    \"max_error_factor\": null},\n  \"ratchet\":",
               "definition.json:21: field 'tolerance.max_error_factor'"}));

struct BadLine {
  std::string line, expect;
};
void PrintTo(const BadLine& b, std::ostream* os) { *os << Readable(b.expect); }

class MalformedWorkloadTest : public ::testing::TestWithParam<BadLine> {};

constexpr char kGood[] =
    "{\"uuid\":\"a\",\"axes\":{\"batch\":8},\"inputs\":{\"x\":{\"type\":\"random\"},"
    "\"w\":{\"type\":\"random\"},\"eps\":{\"type\":\"scalar\",\"value\":1e-6},"
    "\"idx\":{\"type\":\"random\"}}}";

TEST_P(MalformedWorkloadTest, NamesFileLineAndField) {
  Definition d = MustDef();
  // Two good lines and a blank one first: the bad one is line 4.
  const std::string text = std::string(kGood) + "\n\n" + kGood + "\n" + GetParam().line + "\n";
  auto w = ParseWorkloads(d, text, "p/workload.jsonl", "p");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("p/workload.jsonl:4:"));
  EXPECT_THAT(std::string(w.status().message()), HasSubstr(GetParam().expect));
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  s.replace(s.find(from), from.size(), to);
  return s;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MalformedWorkloadTest,
    ::testing::Values(
        BadLine{"{\"uuid\": ", "invalid JSON"},
        BadLine{"[1, 2]", "must be a JSON object"},
        BadLine{Replace(kGood, "{\"batch\":8}", "{}"), "field 'axes.batch': var axis not bound"},
        BadLine{Replace(kGood, "\"batch\":8", "\"batch\":-1"), "field 'axes.batch'"},
        BadLine{Replace(kGood, "\"batch\":8", "\"batch\":8,\"rows\":2"), "field 'axes.rows'"},
        BadLine{Replace(kGood, "\"batch\":8", "\"batch\":8,\"hidden\":32"),
                "field 'axes.hidden': const axis is 64"},
        BadLine{Replace(kGood, "\"x\":{\"type\":\"random\"}", "\"x\":{\"type\":\"rand\"}"),
                "field 'inputs.x.type': unknown input type"},
        BadLine{Replace(kGood, "\"x\":{\"type\":\"random\"},", ""),
                "field 'inputs.x': missing descriptor"},
        BadLine{Replace(kGood, "\"type\":\"scalar\",\"value\":1e-6", "\"type\":\"scalar\""),
                "field 'inputs.eps.value'"},
        BadLine{Replace(kGood, "\"x\":{\"type\":\"random\"}", "\"x\":{\"type\":\"custom\"}"),
                "field 'inputs.x.type': \"custom\" needs custom_inputs_entrypoint"},
        BadLine{Replace(kGood, "\"x\":{\"type\":\"random\"}",
                        "\"x\":{\"type\":\"safetensors\",\"path\":\"a\"}"),
                "field 'inputs.x.tensor_key'"},
        BadLine{Replace(kGood, "}}}", "}},\"tolerance\":{\"atol\":-1}}"),
                "field 'tolerance.atol'"},
        BadLine{Replace(kGood, "}}}", "}},\"tolerance\":{\"max_error_factor\":-1}}"),
                "field 'tolerance.max_error_factor': expected a non-negative number, got -1"},
        // JSON's parser refuses a number that overflows a double before the
        // field is read (this used to escape as an exception).
        BadLine{Replace(kGood, "}}}", "}},\"tolerance\":{\"max_error_factor\":1e999}}"),
                "invalid JSON: [json.exception.out_of_range.406] number overflow parsing '1e999'"},
        BadLine{Replace(kGood, "}}}", "}},\"tolerance\":{\"max_error_factor\":\"8\"}}"),
                "field 'tolerance.max_error_factor': expected a non-negative number, got \"8\""},
        BadLine{Replace(kGood, "\"w\":{", "\"zz\":{\"type\":\"random\"},\"w\":{"),
                "field 'inputs.zz': no such input"},
        // Invalid UTF-8 inside a string: named before nlohmann's error could
        // quote the bytes (a message the harness then could not write).
        BadLine{Replace(kGood, "\"a\"", "\"a\xff\""), "not valid UTF-8 (byte 10 of the line)"},
        BadLine{Replace(kGood, "\"a\"", "\"\xed\xa0\x80\""), "not valid UTF-8"}));

// Issue 11: "max_error_factor" sits in the tolerance object of the definition
// (default for every workload) and of a workload line (overrides it).
TEST(WorkloadTest, MaxErrorFactorPerDefinitionAndPerWorkload) {
  const std::string line2 =
      Replace(kGood, "}}}", "}},\"tolerance\":{\"max_error_factor\":100,\"atol\":0.5}}");
  const std::string line3 = Replace(kGood, "}}}", "}},\"tolerance\":{\"rtol\":0.02}}");
  const std::string text = std::string(kGood) + "\n" + line2 + "\n" + line3 + "\n";

  Definition d = MustDef();  // No tolerance: the default, 8.
  EXPECT_FALSE(d.max_error_factor.has_value());
  auto w = ParseWorkloads(d, text, "workload.jsonl", "p");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_DOUBLE_EQ((*w)[0].max_error_factor, kDefaultMaxErrorFactor);
  EXPECT_DOUBLE_EQ((*w)[0].max_error_factor, 8);
  EXPECT_DOUBLE_EQ((*w)[1].max_error_factor, 100);
  EXPECT_DOUBLE_EQ((*w)[1].atol, 0.5);
  EXPECT_DOUBLE_EQ((*w)[2].max_error_factor, 8);

  std::string def_text = kDef;
  def_text.replace(def_text.find("\"ratchet\":"), 10,
                   "\"tolerance\": {\"max_error_factor\": 2.5},\n  \"ratchet\":");
  d = MustDef(def_text);
  ASSERT_TRUE(d.max_error_factor.has_value());
  EXPECT_DOUBLE_EQ(*d.max_error_factor, 2.5);
  EXPECT_FALSE(d.atol.has_value());  // Only the field given is set.
  w = ParseWorkloads(d, text, "workload.jsonl", "p");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_DOUBLE_EQ((*w)[0].max_error_factor, 2.5);   // The definition's.
  EXPECT_DOUBLE_EQ((*w)[1].max_error_factor, 100);   // The line's.
  EXPECT_DOUBLE_EQ((*w)[2].max_error_factor, 2.5);   // Tolerance without the field.
  EXPECT_DOUBLE_EQ((*w)[2].rtol, 0.02);

  // Applied: the workload's tolerance, as CompareOutputs takes it, decides
  // whether one element 20 tolerances off (1 of 200) passes.
  std::vector<float> ref(200, 1.0f), out(200, 1.0f);
  auto run = [&](const Workload& wl) {
    const Tolerance t = ToleranceOf(wl);
    out[9] = static_cast<float>(1 + 20 * (t.atol + t.rtol));
    return CompareOutputs(out.data(), DType::kFloat32, ref.data(), DType::kFloat32, 200, {200}, t);
  };
  EXPECT_DOUBLE_EQ(ToleranceOf((*w)[1]).atol, 0.5);
  EXPECT_DOUBLE_EQ(ToleranceOf((*w)[2]).rtol, 0.02);
  const CompareResult r0 = run((*w)[0]);
  EXPECT_FALSE(r0.ok);
  EXPECT_THAT(r0.message, HasSubstr("2.5 x tolerance"));
  EXPECT_TRUE(run((*w)[1]).ok);
  EXPECT_FALSE(run((*w)[2]).ok);
}

TEST(WorkloadTest, ConstraintViolationNamesLine) {
  std::string def = kDef;
  def.replace(def.find("\"value\": 4}"), 11, "\"value\": 5}");
  // hidden // heads is still an integer, but the constraint fails.
  auto d = ParseDefinition(def, "definition.json");
  ASSERT_TRUE(d.ok()) << d.status();
  auto w = ParseWorkloads(*d, kGood, "workload.jsonl", "p");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("workload.jsonl:1:"));
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("hidden % heads == 0"));
}

TEST(WorkloadTest, NonIntegerExprAxisFails) {
  std::string def = kDef;
  def.replace(def.find("hidden // heads"), 15, "hidden / 3");
  auto d = ParseDefinition(def, "definition.json");
  ASSERT_TRUE(d.ok()) << d.status();
  def.clear();
  auto w = ParseWorkloads(*d, kGood, "workload.jsonl", "p");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()),
              HasSubstr("field 'axes.head_dim.expression': evaluates to 21.3"));
}

TEST(WorkloadTest, AHugeExprAxisFails) {
  std::string def = kDef;
  def.replace(def.find("hidden // heads"), 15, "hidden ** 40");
  auto d = ParseDefinition(def, "definition.json");
  ASSERT_TRUE(d.ok()) << d.status();
  auto w = ParseWorkloads(*d, kGood, "workload.jsonl", "p");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()),
              HasSubstr("field 'axes.head_dim.expression': evaluates to"));
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("larger than any size"));
}

TEST(WorkloadTest, ExprAxisCycleFails) {
  std::string def = kDef;
  def.replace(def.find("hidden // heads"), 15, "twice // 2");
  auto d = ParseDefinition(def, "definition.json");
  ASSERT_TRUE(d.ok()) << d.status();
  auto w = ParseWorkloads(*d, kGood, "workload.jsonl", "p");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("cycle"));
}

TEST(DefinitionTest, InvalidUtf8NamesFileAndLine) {
  const std::string text = Replace(kDef, "\"op_type\": \"norm\"", "\"op_type\": \"n\xc0\xafrm\"");
  auto d = ParseDefinition(text, "p/definition.json");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr("p/definition.json:3: not valid UTF-8 (byte"));
}

// Found by tests/fuzz/problem_fuzzer: valid UTF-8 outside a string makes
// nlohmann quote the token up to the first byte of the character, so the
// message held half a character (and could not be written as JSON).
TEST(DefinitionTest, ParseErrorQuotingHalfACharacterIsStillUtf8) {
  auto d = ParseDefinition("{\"name\": \"x\",\n \xc3\x89t\xc3\xa9: 1}", "definition.json");
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("definition.json:2: invalid JSON"));
  EXPECT_EQ(InvalidUtf8Offset(d.status().message()), absl::string_view::npos)
      << d.status().message();
  EXPECT_EQ(ToValidUtf8("a\xc3" "b\xff\xc3\xa9"), "a\xef\xbf\xbd" "b\xef\xbf\xbd\xc3\xa9");
}

// Wrong types anywhere are errors, never exceptions (the fuzzer's inputs).
TEST(DefinitionTest, WrongTypesAreErrorsNotExceptions) {
  for (const std::string& text :
       {std::string("{\"name\": 1}"), std::string("{\"name\": \"x\", \"axes\": []}"),
        std::string("{\"name\": \"x\", \"axes\": {\"a\": 3}}"),
        Replace(kDef, "\"constraints\": [\"hidden % heads == 0\"]", "\"constraints\": [1]"),
        Replace(kDef, "\"ratchet\": {\"flops\": \"3 * batch * hidden\"}", "\"ratchet\": 7"),
        std::string("[]"), std::string("\"\"")}) {
    absl::StatusOr<Definition> d;
    EXPECT_NO_THROW(d = ParseDefinition(text, "definition.json")) << text;
    EXPECT_FALSE(d.ok()) << text;
  }
}

TEST(Utf8Test, InvalidUtf8Offset) {
  EXPECT_EQ(InvalidUtf8Offset(""), absl::string_view::npos);
  EXPECT_EQ(InvalidUtf8Offset("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            absl::string_view::npos);
  EXPECT_EQ(InvalidUtf8Offset("ab\xff"), 2u);
  EXPECT_EQ(InvalidUtf8Offset("ab\xc3"), 2u);                // truncated
  EXPECT_EQ(InvalidUtf8Offset("\xc0\xaf"), 0u);              // overlong '/'
  EXPECT_EQ(InvalidUtf8Offset("x\xed\xa0\x80"), 1u);         // surrogate
  EXPECT_EQ(InvalidUtf8Offset("\xf4\x90\x80\x80"), 0u);     // past U+10FFFF
  EXPECT_EQ(InvalidUtf8Offset("\xe2\x82"), 0u);
}

TEST(WorkloadTest, EmptyFileFails) {
  Definition d = MustDef();
  auto w = ParseWorkloads(d, "\n  \n", "workload.jsonl", "p");
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()), HasSubstr("workload.jsonl: no workloads"));
}

double Eval(const std::string& e) {
  auto v = EvalExpr(e, [](absl::string_view n) -> std::optional<double> {
    if (n == "M") return 10;
    if (n == "N") return 3;
    return std::nullopt;
  });
  EXPECT_TRUE(v.ok()) << e << ": " << v.status();
  return v.ok() ? *v : -12345;
}

TEST(ExprTest, PythonSemantics) {
  EXPECT_EQ(Eval("M // N"), 3);
  EXPECT_DOUBLE_EQ(Eval("M / 4"), 2.5);
  EXPECT_EQ(Eval("-M // N"), -4);  // Floors, like Python.
  EXPECT_EQ(Eval("-7 % 3"), 2);    // Sign of the divisor.
  EXPECT_EQ(Eval("2 ** 3 ** 2"), 512);  // Right-associative.
  EXPECT_EQ(Eval("-2 ** 2"), -4);
  EXPECT_EQ(Eval("2 ** -1"), 0.5);
  EXPECT_EQ(Eval("(M + N) * 2 - +1"), 25);
  EXPECT_EQ(Eval("2*M*N*M"), 600);
  EXPECT_EQ(Eval("M == 10 and N < 4"), 1);
  EXPECT_EQ(Eval("M != 10 or N >= 4"), 0);
}

TEST(ExprTest, Errors) {
  auto lookup = [](absl::string_view) -> std::optional<double> { return std::nullopt; };
  EXPECT_THAT(std::string(EvalExpr("M + 1", lookup).status().message()), HasSubstr("unknown name 'M'"));
  EXPECT_THAT(std::string(EvalExpr("1 // 0", lookup).status().message()), HasSubstr("division by zero"));
  EXPECT_FALSE(EvalExpr("1 +", lookup).ok());
  EXPECT_FALSE(EvalExpr("(1", lookup).ok());
  EXPECT_FALSE(EvalExpr("1 $ 2", lookup).ok());
  // A character of several bytes is named by its first byte's value, so the
  // message stays UTF-8 (it goes into the harness's JSON result).
  const std::string message(EvalExpr("2 *\xDF\xB1", lookup).status().message());
  EXPECT_THAT(message, HasSubstr("unexpected '\\xdf'"));
  EXPECT_EQ(InvalidUtf8Offset(message), absl::string_view::npos) << message;
  auto ids = ExprIdentifiers("a * (b + a) // c_1");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"a", "b", "c_1"}));
}

// Submit's check: the reader, every line, and each tensor at most 2^34 bytes;
// registered for spec::ValidateCampaignSpec wherever this reader is linked.
TEST(CheckProblemText, BoundsEveryTensorOfEveryWorkload) {
  const std::string def = R"({"name": "vadd", "axes": {"n": {"type": "var"}, "k": {"type": "const", "value": 4}},
    "inputs": {"a": {"shape": ["n", "k"], "dtype": "float32"}},
    "outputs": {"c": {"shape": ["n", "k"], "dtype": "float32"}},
    "reference": "def run(a):\n    return a\n"})";
  const std::string ok = "{\"axes\": {\"n\": 1024}, \"inputs\": {\"a\": {\"type\": \"random\"}}}\n";
  EXPECT_TRUE(CheckProblemText(def, ok).ok()) << CheckProblemText(def, ok);
  // 2^32 x 4 floats = 2^36 bytes, on line 2.
  const std::string big = ok + "{\"axes\": {\"n\": 4294967296}, \"inputs\": {\"a\": {\"type\": \"random\"}}}\n";
  absl::Status s = CheckProblemText(def, big);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("workload.jsonl:2: tensor 'a' would take 6.87195e+10 bytes (axis n = "
                        "4294967296); at most 17179869184 (2^34) per tensor"));
  // Axes whose product overflows int64_t are still refused.
  const std::string overflow =
      "{\"axes\": {\"n\": 9223372036854775807}, \"inputs\": {\"a\": {\"type\": \"random\"}}}\n";
  EXPECT_THAT(std::string(CheckProblemText(def, overflow).message()), HasSubstr("workload.jsonl:1"));
  EXPECT_THAT(std::string(CheckProblemText(def, ok + "{\"axes\": 3}\n").message()),
              HasSubstr("workload.jsonl:2"));
  EXPECT_THAT(std::string(CheckProblemText("{", ok).message()), HasSubstr("definition.json"));
  EXPECT_EQ(RegisteredProblemCheck(), &CheckProblemText);
}

}  // namespace
}  // namespace ratchet::kernels
