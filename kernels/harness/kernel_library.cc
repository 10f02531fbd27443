#include "kernels/harness/kernel_library.h"

#include <cctype>
#include <cstdlib>
#include <regex>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "kernels/problem/dtype.h"

namespace ratchet::kernels {
namespace {

using Json = nlohmann::ordered_json;

// The value a reference fixes for `name` (`EPS = 1e-5`, `eps=1e-6` as a
// default argument), case-insensitive; false when it names none.
bool ConstantInReference(const std::string& reference, const std::string& name, double* value) {
  const std::regex assign("\\b" + name + "\\s*[:=]\\s*([-+]?[0-9]*\\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\\b",
                          std::regex::icase);
  std::smatch m;
  if (!std::regex_search(reference, m, assign)) return false;
  *value = std::strtod(m[1].str().c_str(), nullptr);
  return true;
}

// The problem tensor for a kernel tensor: same dtype, rank at least the
// kernel's (extra leading dimensions collapse into its first; a vector only
// for a vector), unused; by name first, then in order.
int PickTensor(const TensorSpec& want, const std::vector<TensorSpec>& have, std::vector<bool>* used,
               int* collapse) {
  auto fits = [&](size_t i) {
    const TensorSpec& t = have[i];
    if ((*used)[i] || t.scalar || t.dtype != want.dtype) return false;
    if (want.shape.empty()) return t.shape.empty();
    // A vector (a weight, a bias) is a vector: collapsing a whole tensor
    // into one would map a residual onto a bias.
    if (want.shape.size() == 1) return t.shape.size() == 1;
    return t.shape.size() >= want.shape.size();
  };
  int pick = -1;
  for (size_t i = 0; i < have.size() && pick < 0; ++i)
    if (fits(i) && have[i].name == want.name) pick = static_cast<int>(i);
  for (size_t i = 0; i < have.size() && pick < 0; ++i)
    if (fits(i)) pick = static_cast<int>(i);
  if (pick < 0) return -1;
  (*used)[pick] = true;
  *collapse = want.shape.empty()
                  ? 1
                  : static_cast<int>(have[pick].shape.size() - want.shape.size()) + 1;
  return pick;
}

bool Match(const Definition& problem, const Definition& kernel, LibraryMatch* out) {
  std::vector<bool> used_in(problem.inputs.size()), used_out(problem.outputs.size());
  for (const TensorSpec& k : kernel.inputs) {
    LibraryMatch::Argument a;
    a.dtype = DTypeName(k.dtype);
    a.scalar = k.scalar;
    if (!k.scalar) {
      a.problem_index = PickTensor(k, problem.inputs, &used_in, &a.collapse);
      if (a.problem_index < 0) return false;
    } else {
      // A scalar input of the problem's (same name, else same dtype), else
      // a constant its reference fixes.
      for (int pass = 0; pass < 2 && a.problem_index < 0; ++pass)
        for (size_t i = 0; i < problem.inputs.size() && a.problem_index < 0; ++i) {
          const TensorSpec& p = problem.inputs[i];
          if (used_in[i] || !p.scalar) continue;
          if (pass == 0 ? p.name == k.name : p.dtype == k.dtype) {
            a.problem_index = static_cast<int>(i);
            used_in[i] = true;
          }
        }
      if (a.problem_index < 0 && !ConstantInReference(problem.reference, k.name, &a.constant))
        return false;
    }
    out->inputs.push_back(a);
  }
  // Every input of the problem's must reach the kernel.
  for (bool u : used_in)
    if (!u) return false;
  if (kernel.outputs.size() != problem.outputs.size()) return false;
  for (const TensorSpec& k : kernel.outputs) {
    LibraryMatch::Argument a;
    a.dtype = DTypeName(k.dtype);
    a.problem_index = PickTensor(k, problem.outputs, &used_out, &a.collapse);
    if (a.problem_index < 0) return false;
    out->outputs.push_back(a);
  }
  return true;
}

}  // namespace

std::vector<LibraryMatch> MatchKernelLibrary(const Definition& problem,
                                             const std::vector<LibraryKernelFiles>& library) {
  std::vector<LibraryMatch> same_op, unnamed;
  const std::string op = absl::AsciiStrToLower(problem.op_type);
  for (const LibraryKernelFiles& lib : library) {
    auto def_it = lib.files.find("definition.json");
    auto sol_it = lib.files.find("baseline/solution.json");
    if (def_it == lib.files.end() || sol_it == lib.files.end()) continue;
    auto kernel = ParseDefinition(def_it->second, lib.name + "/definition.json");
    const Json sol = Json::parse(sol_it->second, nullptr, /*allow_exceptions=*/false);
    if (!kernel.ok() || !sol.is_object() || sol.value("language", "") != "cuda") continue;
    // An op type the problem names must be the kernel's; a problem that
    // names none is matched on its signature alone.
    const std::string kernel_op = absl::AsciiStrToLower(kernel->op_type);
    if (!op.empty() && op != kernel_op) continue;
    LibraryMatch m;
    m.kernel = lib.name;
    if (!Match(problem, *kernel, &m)) continue;
    if (sol.contains("sources") && sol["sources"].is_array())
      for (const Json& s : sol["sources"])
        if (s.is_string()) m.sources.push_back("baseline/" + s.get<std::string>());
    for (const auto& [path, content] : lib.files)
      if (absl::StartsWith(path, "baseline/") && path != "baseline/solution.json" &&
          std::find(m.sources.begin(), m.sources.end(), path) == m.sources.end())
        m.headers.push_back(path);
    if (sol.contains("libraries") && sol["libraries"].is_array())
      for (const Json& l : sol["libraries"])
        if (l.is_string()) m.libraries.push_back(l.get<std::string>());
    if (sol.contains("knobs") && sol["knobs"].is_object())
      for (auto it = sol["knobs"].begin(); it != sol["knobs"].end(); ++it)
        m.knobs_json.emplace_back(it.key(), it.value().dump());
    (op.empty() ? unnamed : same_op).push_back(std::move(m));
  }
  same_op.insert(same_op.end(), unnamed.begin(), unnamed.end());
  return same_op;
}

}  // namespace ratchet::kernels
