// SOL-ExecBench's public solution format: the validator's rules, export of a
// ratchet CUDA candidate and import back.
#include "kernels/harness/public_solution.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kernels/harness/python_solution.h"
#include "kernels/harness/solution.h"
#include "kernels/problem/problem.h"

namespace ratchet::kernels {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr char kPytorch[] = R"({
  "name": "swiglu_torch",
  "definition": "swiglu_h4096",
  "author": "tester",
  "spec": {
    "languages": ["pytorch"],
    "target_hardware": ["B200", "LOCAL"],
    "entry_point": "kernel.py::run",
    "dependencies": ["torch"],
    "destination_passing_style": false
  },
  "sources": [{"path": "kernel.py",
               "content": "import torch\ndef run(gate, up):\n    return torch.nn.functional.silu(gate) * up\n"}]
})";

constexpr char kTriton[] = R"({
  "name": "scale_triton",
  "definition": "scale",
  "author": "tester",
  "description": "one program per block",
  "spec": {
    "languages": ["triton", "pytorch"],
    "target_hardware": ["LOCAL"],
    "entry_point": "pkg/kernel.py::run",
    "dependencies": ["torch", "triton >= 2.3"]
  },
  "sources": [
    {"path": "pkg/kernel.py", "content": "import triton\nfrom pkg.util import grid\ndef run(x, s, out):\n    pass\n"},
    {"path": "pkg/util.py", "content": "def grid(n):\n    return (n,)\n"}
  ]
})";

constexpr char kCudaCpp[] = R"({
  "name": "add_cuda",
  "definition": "add",
  "author": "tester",
  "description": null,
  "spec": {
    "languages": ["cuda_cpp"],
    "target_hardware": ["B200"],
    "entry_point": "main.cu::run",
    "binding": "torch",
    "compile_options": {"cuda_cflags": ["-O3", "-std=c++17"], "ld_flags": ["-lcuda", "-lcublas"]}
  },
  "sources": [
    {"path": "main.cu", "content": "#include <torch/extension.h>\nvoid run(torch::Tensor a, torch::Tensor b, torch::Tensor c) {}\n"},
    {"path": "kernel.cuh", "content": "#pragma once\n"}
  ]
})";

// kCudaCpp with `from` replaced by `to` (once).
std::string CudaWith(const std::string& from, const std::string& to) {
  std::string s = kCudaCpp;
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? s : s.replace(at, from.size(), to);
}

std::string ErrorOf(const std::string& json) {
  auto s = ParsePublicSolution(json);
  EXPECT_FALSE(s.ok()) << json;
  return s.ok() ? "" : std::string(s.status().message());
}

std::string ReadFile(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

class TempDir {
 public:
  TempDir() {
    std::string t = (fs::temp_directory_path() / "public_solution_test.XXXXXX").string();
    path_ = mkdtemp(t.data()) ? t : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ParsePublicSolution, Pytorch) {
  auto s = ParsePublicSolution(kPytorch);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->name, "swiglu_torch");
  EXPECT_EQ(s->languages, std::vector<std::string>{"pytorch"});
  EXPECT_FALSE(s->destination_passing_style);
  EXPECT_FALSE(s->compile_options.has_value());
  ASSERT_EQ(s->sources.size(), 1u);
  EXPECT_EQ(s->sources[0].path, "kernel.py");
}

TEST(ParsePublicSolution, TritonWithSubfolderAndDefaults) {
  auto s = ParsePublicSolution(kTriton);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->destination_passing_style);  // The default.
  EXPECT_EQ(s->description, "one program per block");
  EXPECT_EQ(s->dependencies.size(), 2u);
  EXPECT_EQ(s->sources.size(), 2u);
}

TEST(ParsePublicSolution, CudaCpp) {
  auto s = ParsePublicSolution(kCudaCpp);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->binding, "torch");
  ASSERT_TRUE(s->compile_options.has_value());
  EXPECT_EQ(s->compile_options->cuda_cflags, (std::vector<std::string>{"-O3", "-std=c++17"}));
  EXPECT_TRUE(s->compile_options->cflags.empty());
  EXPECT_FALSE(s->description.has_value());
  EXPECT_EQ(s->source_json, kCudaCpp);
}

TEST(ParsePublicSolution, ToJsonParsesBackTheSame) {
  auto s = ParsePublicSolution(kCudaCpp);
  ASSERT_TRUE(s.ok());
  const std::string text = PublicSolutionToJson(*s);
  EXPECT_EQ(text.back(), '\n');
  EXPECT_LT(text.find("\"name\""), text.find("\"spec\""));
  auto again = ParsePublicSolution(text);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(PublicSolutionToJson(*again), text);
}

TEST(ParsePublicSolution, TwoSeparatorsInEntryPoint) {
  EXPECT_THAT(ErrorOf(CudaWith("\"main.cu::run\"", "\"main.cu::ns::run\"")),
              HasSubstr("field 'spec.entry_point': expected \"file::function\" with exactly one \"::\""));
}

TEST(ParsePublicSolution, EntryPointWithoutSeparatorOrFunction) {
  EXPECT_THAT(ErrorOf(CudaWith("\"main.cu::run\"", "\"main.cu\"")), HasSubstr("exactly one \"::\""));
  EXPECT_THAT(ErrorOf(CudaWith("\"main.cu::run\"", "\"main.cu::\"")), HasSubstr("must be non-empty"));
}

TEST(ParsePublicSolution, AbsolutePath) {
  EXPECT_THAT(ErrorOf(CudaWith("\"path\": \"kernel.cuh\"", "\"path\": \"/etc/kernel.cuh\"")),
              HasSubstr("field 'sources[1].path': absolute path not allowed: \"/etc/kernel.cuh\""));
}

TEST(ParsePublicSolution, ParentTraversalPath) {
  EXPECT_THAT(ErrorOf(CudaWith("\"path\": \"kernel.cuh\"", "\"path\": \"inc/../../kernel.cuh\"")),
              HasSubstr("field 'sources[1].path': parent directory traversal"));
}

TEST(ParsePublicSolution, MixedCppAndPython) {
  EXPECT_THAT(ErrorOf(CudaWith("[\"cuda_cpp\"]", "[\"cuda_cpp\", \"triton\"]")),
              HasSubstr("field 'spec.languages': C++ and Python languages cannot be mixed, got "
                        "cuda_cpp and triton"));
}

TEST(ParsePublicSolution, UnknownLanguage) {
  EXPECT_THAT(ErrorOf(CudaWith("[\"cuda_cpp\"]", "[\"cuda\"]")),
              HasSubstr("field 'spec.languages[0]': unknown language \"cuda\" (pytorch,"));
}

TEST(ParsePublicSolution, NoLanguage) {
  EXPECT_THAT(ErrorOf(CudaWith("[\"cuda_cpp\"]", "[]")),
              HasSubstr("field 'spec.languages': at least one language"));
}

TEST(ParsePublicSolution, EntryFileNotInSources) {
  EXPECT_THAT(ErrorOf(CudaWith("\"main.cu::run\"", "\"other.cu::run\"")),
              HasSubstr("field 'spec.entry_point': entry file \"other.cu\" is not among the sources"));
}

TEST(ParsePublicSolution, EntrySuffixMustMatchLanguage) {
  EXPECT_THAT(ErrorOf(CudaWith("\"main.cu::run\"", "\"main.py::run\"")),
              HasSubstr("C++ languages need a C++/CUDA entry file"));
}

TEST(ParsePublicSolution, DuplicatePaths) {
  EXPECT_THAT(ErrorOf(CudaWith("\"path\": \"kernel.cuh\"", "\"path\": \"main.cu\"")),
              HasSubstr("field 'sources[1].path': duplicate source path \"main.cu\""));
}

TEST(ParsePublicSolution, InvalidUtf8) {
  EXPECT_THAT(ErrorOf(CudaWith("add_cuda", "add\xff\xfe")), HasSubstr("not valid UTF-8"));
}

TEST(ParsePublicSolution, WrongTypes) {
  EXPECT_THAT(ErrorOf(CudaWith("\"name\": \"add_cuda\"", "\"name\": 7")),
              HasSubstr("field 'name': expected a string, got number"));
  EXPECT_THAT(ErrorOf(CudaWith("\"binding\": \"torch\"", "\"binding\": \"torch\", "
                                                         "\"destination_passing_style\": \"yes\"")),
              HasSubstr("field 'spec.destination_passing_style': expected true or false"));
  EXPECT_THAT(ErrorOf(CudaWith("[\"-O3\", \"-std=c++17\"]", "\"-O3\"")),
              HasSubstr("field 'spec.compile_options.cuda_cflags': expected a list of strings"));
  EXPECT_THAT(ErrorOf("[1, 2]"), HasSubstr("top level must be an object"));
  EXPECT_THAT(ErrorOf("{\"name\": "), HasSubstr("invalid JSON"));
}

TEST(ParsePublicSolution, MissingRequiredFields) {
  EXPECT_THAT(ErrorOf(CudaWith("\"author\": \"tester\",", "")), HasSubstr("field 'author': required"));
  EXPECT_THAT(ErrorOf(CudaWith("\"target_hardware\": [\"B200\"],", "")),
              HasSubstr("field 'spec.target_hardware': required"));
  EXPECT_THAT(ErrorOf(CudaWith("\"content\": \"#pragma once\\n\"", "\"content\": \"\"")),
              HasSubstr("field 'sources[1].content': must be a non-empty string"));
}

TEST(ParsePublicSolution, UnknownHardwareAndBinding) {
  EXPECT_THAT(ErrorOf(CudaWith("[\"B200\"]", "[\"local\"]")),
              HasSubstr("unknown hardware \"local\" (B200, LOCAL)"));
  EXPECT_THAT(ErrorOf(CudaWith("\"binding\": \"torch\"", "\"binding\": \"pybind\"")),
              HasSubstr("field 'spec.binding'"));
}

TEST(ParsePublicSolution, EmptyDependency) {
  EXPECT_THAT(ErrorOf(CudaWith("\"binding\": \"torch\"", "\"binding\": \"torch\", \"dependencies\": [\"\"]")),
              HasSubstr("field 'spec.dependencies[0]': must be a non-empty string"));
}

TEST(ParsePublicSolution, DuplicateKey) {
  EXPECT_THAT(ErrorOf(CudaWith("\"author\": \"tester\",", "\"author\": \"a\", \"author\": \"b\",")),
              HasSubstr("duplicate key \"author\""));
}

// --- Export and import ----------------------------------------------------

struct Candidate {
  Definition definition;
  std::map<std::string, std::string> files;
};

Candidate RmsnormBaseline() {
  const fs::path task = fs::path(RATCHET_SOURCE_DIR) / "tasks/kernels/rmsnorm_bf16";
  auto def = ParseDefinition(ReadFile(task / "definition.json"), "definition.json");
  EXPECT_TRUE(def.ok()) << def.status();
  Candidate c{def.ok() ? *def : Definition{}, {}};
  for (const char* f : {"solution.json", "kernel.cu"}) c.files[f] = ReadFile(task / "baseline" / f);
  return c;
}

CudaCandidateExport Options() {
  CudaCandidateExport o;
  o.name = "rmsnorm_bf16_ratchet_7";
  o.abi_header = ReadFile(fs::path(RATCHET_SOURCE_DIR) / "kernels/include/ratchet/kernel_abi.h");
  return o;
}

const PublicSourceFile* FindSource(const PublicSolution& s, const std::string& path) {
  for (const auto& f : s.sources)
    if (f.path == path) return &f;
  return nullptr;
}

TEST(ExportCudaCandidate, WritesATorchBindingAndKnobFlags) {
  Candidate c = RmsnormBaseline();
  auto s = ExportCudaCandidate(c.definition, c.files, {{"BLOCK", "512"}, {"VEC", "4"}}, Options());
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->definition, "rmsnorm_bf16");
  EXPECT_EQ(s->author, "ratchet");
  EXPECT_EQ(s->languages, std::vector<std::string>{"cuda_cpp"});
  EXPECT_EQ(s->entry_point, "binding.cu::run");
  EXPECT_TRUE(s->destination_passing_style);
  ASSERT_TRUE(s->compile_options.has_value());
  EXPECT_EQ(s->compile_options->cuda_cflags,
            (std::vector<std::string>{"-O3", "--use_fast_math", "-DVARIANT=0", "-DBLOCK=512",
                                      "-DVEC=4", "-DREDUCE=0"}));
  const PublicSourceFile* binding = FindSource(*s, "binding.cu");
  ASSERT_NE(binding, nullptr);
  EXPECT_EQ(binding->content.rfind(kRatchetBindingMarker, 0), 0u);
  // Inputs in definition order (the scalar eps as the double pybind11 passes),
  // then the output.
  EXPECT_THAT(binding->content,
              HasSubstr("void run(torch::Tensor hidden_states, torch::Tensor weight, double eps, "
                        "torch::Tensor output)"));
  EXPECT_THAT(binding->content, HasSubstr("at::scalar_tensor(eps, at::TensorOptions().dtype(at::kFloat)"));
  EXPECT_THAT(binding->content, HasSubstr("ratchet_run_cuda(ratchet_inputs, 3, ratchet_outputs, 1"));
  EXPECT_THAT(binding->content, HasSubstr("PYBIND11_MODULE(TORCH_EXTENSION_NAME, m)"));
  ASSERT_NE(FindSource(*s, "ratchet/kernel_abi.h"), nullptr);
  ASSERT_NE(FindSource(*s, "kernel.cu"), nullptr);
  EXPECT_EQ(FindSource(*s, "kernel.cu")->content, c.files["kernel.cu"]);
  EXPECT_EQ(FindSource(*s, "solution.json"), nullptr);  // Not one of its sources.
}

TEST(ExportCudaCandidate, JsonPassesTheValidatorAndRoundTrips) {
  Candidate c = RmsnormBaseline();
  auto s = ExportCudaCandidate(c.definition, c.files, {{"BLOCK", "128"}, {"REDUCE", "1"}}, Options());
  ASSERT_TRUE(s.ok()) << s.status();
  const std::string json = PublicSolutionToJson(*s);
  auto parsed = ParsePublicSolution(json);
  ASSERT_TRUE(parsed.ok()) << parsed.status();

  TempDir dir;
  ASSERT_FALSE(dir.path().empty());
  ASSERT_TRUE(ImportPublicSolution(*parsed, dir.path()).ok());
  const fs::path root(dir.path());
  EXPECT_EQ(ReadFile(root / "sol_execbench.json"), json);
  EXPECT_EQ(ReadFile(root / "kernel.cu"), c.files["kernel.cu"]);
  // The ratchet solution.json runs with the candidate's knob values.
  auto loaded = LoadSolution(dir.path(), {}, SolutionBackend::kCuda);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->language, "cuda");
  ASSERT_EQ(loaded->sources.size(), 1u);
  EXPECT_EQ(loaded->sources[0], dir.path() + "/kernel.cu");
  EXPECT_EQ(loaded->knobs, (std::vector<std::pair<std::string, std::string>>{
                               {"VARIANT", "0"}, {"BLOCK", "128"}, {"VEC", "1"}, {"REDUCE", "1"}}));
}

TEST(ExportCudaCandidate, CpuCandidateIsRefused) {
  Candidate c = RmsnormBaseline();
  c.files["solution.json"] = R"({"language": "cpp", "sources": ["kernel.cu"]})";
  auto s = ExportCudaCandidate(c.definition, c.files, {}, Options());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("SOL-ExecBench evaluates CUDA solutions"));
}

TEST(ExportCudaCandidate, UndeclaredOrUnsafeKnobIsRefused) {
  Candidate c = RmsnormBaseline();
  EXPECT_FALSE(ExportCudaCandidate(c.definition, c.files, {{"NOPE", "1"}}, Options()).ok());
  auto s = ExportCudaCandidate(c.definition, c.files, {{"BLOCK", "1 -o x"}}, Options());
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.status().message()), HasSubstr("cannot be a compiler flag"));
}

TEST(ImportPublicSolution, TritonSolutionIsAPythonSolutionOfTheCudaHarness) {
  auto s = ParsePublicSolution(kTriton);
  ASSERT_TRUE(s.ok());
  TempDir dir;
  ASSERT_TRUE(ImportPublicSolution(*s, dir.path()).ok());
  EXPECT_EQ(ReadFile(fs::path(dir.path()) / "sol_execbench.json"), kTriton);
  EXPECT_TRUE(fs::exists(fs::path(dir.path()) / "pkg/util.py"));
  const auto ratchet_json = nlohmann::json::parse(ReadFile(fs::path(dir.path()) / "solution.json"));
  EXPECT_EQ(ratchet_json["language"], "triton");
  EXPECT_EQ(ratchet_json["entry_point"], "pkg/kernel.py::run");
  EXPECT_EQ(ratchet_json["destination_passing_style"], true);
  auto loaded = LoadSolution(dir.path(), {}, SolutionBackend::kCuda);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(IsPython(*loaded));
  EXPECT_EQ(loaded->entry_point, "pkg/kernel.py::run");
  // Its kernels launch on a GPU only.
  auto on_cpu = LoadSolution(dir.path(), {}, SolutionBackend::kCpu);
  ASSERT_FALSE(on_cpu.ok());
  EXPECT_THAT(std::string(on_cpu.status().message()), HasSubstr("run on the CUDA harness"));
}

TEST(ImportPublicSolution, CudaCppSolutionIsATorchExtensionWithItsCompileOptions) {
  auto s = ParsePublicSolution(kCudaCpp);
  ASSERT_TRUE(s.ok());
  TempDir dir;
  ASSERT_TRUE(ImportPublicSolution(*s, dir.path()).ok());
  auto loaded = LoadSolution(dir.path(), {}, SolutionBackend::kCuda);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->torch_extension);
  EXPECT_TRUE(IsPython(*loaded));  // hosted by the Python host
  EXPECT_EQ(loaded->entry_point, "main.cu::run");
  EXPECT_EQ(loaded->cuda_cflags, (std::vector<std::string>{"-O3", "-std=c++17"}));
  EXPECT_EQ(loaded->ldflags, (std::vector<std::string>{"-lcuda", "-lcublas"}));
  ASSERT_EQ(loaded->headers.size(), 1u);  // kernel.cuh travels, uncompiled
  EXPECT_EQ(loaded->sources.size(), 1u);
  auto on_cpu = LoadSolution(dir.path(), {}, SolutionBackend::kCpu);
  ASSERT_FALSE(on_cpu.ok());
  EXPECT_THAT(std::string(on_cpu.status().message()), HasSubstr("CUDA torch extensions"));
  // Only the torch binding.
  std::string text = ReadFile(fs::path(dir.path()) / "solution.json");
  text.replace(text.find("\"torch\""), 7, "\"tvm\"");
  std::ofstream(fs::path(dir.path()) / "solution.json") << text;
  auto other = LoadSolution(dir.path(), {}, SolutionBackend::kCuda);
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("binding"));
}

TEST(ImportPublicSolution, PublicJsonSavedAsSolutionJsonPointsAtImport) {
  TempDir dir;
  std::ofstream(fs::path(dir.path()) / "solution.json") << kCudaCpp;
  auto loaded = LoadSolution(dir.path(), {}, SolutionBackend::kCuda);
  ASSERT_FALSE(loaded.ok());
  EXPECT_THAT(std::string(loaded.status().message()), HasSubstr("ratchet import"));
}

TEST(ImportPublicSolution, RefusesToLeaveTheFolder) {
  PublicSolution s = *ParsePublicSolution(kCudaCpp);
  s.sources[1].path = "inc/../../escape.h";  // Built in code, past the parser.
  TempDir dir;
  EXPECT_FALSE(ImportPublicSolution(s, dir.path() + "/out").ok());
  EXPECT_FALSE(fs::exists(fs::path(dir.path()) / "escape.h"));
  s = *ParsePublicSolution(kCudaCpp);
  s.sources[1].path = "./main.cu";  // The same file as main.cu.
  EXPECT_FALSE(ImportPublicSolution(s, dir.path() + "/out2").ok());
}

// CUTLASS's headers where SOL-ExecBench's build looks for them ($CUTLASS_DIR,
// else /usr/local/cutlass): include/ and tools/util/include/, those present.
TEST(CutlassIncludePaths, TheFoldersOfCutlassDirThatExist) {
  char tmpl[] = "/tmp/ratchet-cutlass-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const fs::path root = tmpl;
  fs::create_directories(root / "include" / "cutlass");
  EXPECT_EQ(CutlassIncludePaths(root.c_str()), std::vector<std::string>{(root / "include").string()});
  fs::create_directories(root / "tools" / "util" / "include");
  EXPECT_EQ(CutlassIncludePaths(root.c_str()),
            (std::vector<std::string>{(root / "include").string(),
                                      (root / "tools" / "util" / "include").string()}));
  EXPECT_TRUE(CutlassIncludePaths((root / "absent").c_str()).empty());
  EXPECT_TRUE(CutlassIncludePaths("relative/cutlass").empty());
  fs::remove_all(root);
}

}  // namespace
}  // namespace ratchet::kernels
