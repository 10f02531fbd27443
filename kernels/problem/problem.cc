#include "kernels/problem/problem.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/problem_check.h"
#include "kernels/problem/expr.h"

namespace ratchet::kernels {
namespace {

using Json = nlohmann::ordered_json;

// Prefix for every error: "file:line: field 'x': ".
class Where {
 public:
  Where(absl::string_view file, int line) : file_(file), line_(line) {}
  absl::Status Err(absl::string_view field, absl::string_view what) const {
    std::string loc = line_ > 0 ? absl::StrCat(file_, ":", line_) : std::string(file_);
    if (field.empty()) return absl::InvalidArgumentError(absl::StrCat(loc, ": ", what));
    return absl::InvalidArgumentError(
        absl::StrCat(loc, ": field '", field, "': ", what));
  }

 private:
  std::string file_;
  int line_;
};

const char* TypeName(const Json& j) { return j.type_name(); }

absl::StatusOr<std::string> GetString(const Json& obj, const char* key,
                                      const std::string& field, const Where& at,
                                      bool required) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    if (required) return at.Err(field, "missing (required)");
    return std::string();
  }
  if (!it->is_string()) {
    return at.Err(field, absl::StrCat("expected a string, got ", TypeName(*it)));
  }
  return it->get<std::string>();
}

// A tolerance field: a finite, non-negative number. (JSON has no NaN or Inf,
// and the parser refuses a literal that overflows, such as 1e999; the
// isfinite check is a second line.)
absl::StatusOr<double> ToleranceValue(const Json& v, const std::string& field,
                                      const Where& at) {
  if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0) {
    return at.Err(field, absl::StrCat("expected a non-negative number, got ", v.dump()));
  }
  return v.get<double>();
}

// 1-based line of the first key "key" (quoted, not escaped, followed by ':')
// after the first key "object" in `text`; 0 (no line) when not found.
size_t FindKey(absl::string_view text, absl::string_view key, size_t from) {
  const std::string quoted = absl::StrCat("\"", key, "\"");
  for (size_t at = text.find(quoted, from); at != absl::string_view::npos;
       at = text.find(quoted, at + 1)) {
    if (at > 0 && text[at - 1] == '\\') continue;
    size_t after = at + quoted.size();
    while (after < text.size() && absl::ascii_isspace(static_cast<unsigned char>(text[after]))) ++after;
    if (after < text.size() && text[after] == ':') return at;
  }
  return absl::string_view::npos;
}
int LineOfKey(absl::string_view text, absl::string_view object, absl::string_view key) {
  const size_t o = FindKey(text, object, 0);
  if (o == absl::string_view::npos) return 0;
  const size_t k = FindKey(text, key, o);
  if (k == absl::string_view::npos) return 0;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + k, '\n'));
}

// 1-based line of byte `offset` of `text`.
int LineAt(absl::string_view text, size_t offset) {
  return 1 + static_cast<int>(
                 std::count(text.begin(), text.begin() + std::min(offset, text.size()), '\n'));
}

absl::StatusOr<Json> ParseJsonText(absl::string_view text, const Where& at,
                                   absl::string_view file, bool whole_file) {
  if (const size_t bad = InvalidUtf8Offset(text); bad != absl::string_view::npos) {
    const Where where = whole_file ? Where(file, LineAt(text, bad)) : at;
    return where.Err("", absl::StrCat("not valid UTF-8 (byte ", bad, whole_file ? "" : " of the line",
                                      ")"));
  }
  try {
    return Json::parse(text.begin(), text.end());
  } catch (const Json::parse_error& e) {
    if (whole_file) {
      // Turn the byte offset into a line so that the message points at it.
      int line = 1;
      for (size_t i = 0; i < e.byte && i < text.size(); ++i) line += text[i] == '\n';
      return Where(file, line).Err("", absl::StrCat("invalid JSON: ", ToValidUtf8(e.what())));
    }
    return at.Err("", absl::StrCat("invalid JSON: ", ToValidUtf8(e.what())));
  } catch (const Json::exception& e) {
    // A number too large for a double (e.g. a tolerance of 1e999) is
    // out_of_range 406, not a parse_error, and carries no offset; uncaught,
    // it would end the process.
    return at.Err("", absl::StrCat("invalid JSON: ", ToValidUtf8(e.what())));
  }
}

absl::StatusOr<TensorSpec> ParseTensor(const std::string& name, const Json& j,
                                       const std::string& field, const Where& at,
                                       const Definition& def) {
  TensorSpec t;
  t.name = name;
  if (!j.is_object()) return at.Err(field, absl::StrCat("expected an object, got ", TypeName(j)));
  auto dt = GetString(j, "dtype", field + ".dtype", at, true);
  if (!dt.ok()) return dt.status();
  auto parsed = ParseDType(*dt);
  if (!parsed.ok()) return at.Err(field + ".dtype", parsed.status().message());
  t.dtype = *parsed;
  auto it = j.find("shape");
  if (it == j.end()) return at.Err(field + ".shape", "missing (required; null for a scalar)");
  if (it->is_null()) {
    t.scalar = true;
    return t;
  }
  if (!it->is_array()) {
    return at.Err(field + ".shape",
                  absl::StrCat("expected a list of axis names or null, got ", TypeName(*it)));
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& d = (*it)[i];
    const std::string df = absl::StrCat(field, ".shape[", i, "]");
    Dim dim;
    if (d.is_string()) {
      dim.axis = d.get<std::string>();
      if (def.FindAxis(dim.axis) == nullptr) {
        return at.Err(df, absl::StrCat("unknown axis \"", dim.axis,
                                       "\" (declare it under \"axes\"; expressions "
                                       "need an expr axis)"));
      }
    } else if (d.is_number_integer() && d.get<int64_t>() >= 0) {
      dim.literal = d.get<int64_t>();
    } else {
      return at.Err(df, absl::StrCat("expected an axis name or a non-negative integer, got ",
                                     d.dump()));
    }
    t.shape.push_back(dim);
  }
  return t;
}

absl::StatusOr<double> AsInteger(double v, const std::string& field, const Where& at) {
  if (!std::isfinite(v) || v != std::floor(v)) {
    return at.Err(field, absl::StrCat("evaluates to ", v, ", not an integer"));
  }
  if (v < 0) return at.Err(field, absl::StrCat("evaluates to ", v, ", a negative size"));
  // Past 2^53 a double no longer holds every integer, and past 2^63 it has no
  // int64_t (found by problem_fuzzer: 1.6e92).
  if (v > 9007199254740992.0)
    return at.Err(field, absl::StrCat("evaluates to ", v, ", larger than any size"));
  return v;
}

}  // namespace

const Axis* Definition::FindAxis(absl::string_view n) const {
  for (const Axis& a : axes) {
    if (a.name == n) return &a;
  }
  return nullptr;
}

namespace {

absl::StatusOr<Definition> ParseDefinitionUnguarded(absl::string_view text,
                                                    absl::string_view file) {
  const Where at(file, 0);
  auto parsed = ParseJsonText(text, at, file, /*whole_file=*/true);
  if (!parsed.ok()) return parsed.status();
  const Json& j = *parsed;
  if (!j.is_object()) return at.Err("", "top level must be a JSON object");
  Definition def;
  auto name = GetString(j, "name", "name", at, true);
  if (!name.ok()) return name.status();
  def.name = *name;
  auto op = GetString(j, "op_type", "op_type", at, false);
  if (!op.ok()) return op.status();
  def.op_type = *op;
  auto desc = GetString(j, "description", "description", at, false);
  if (!desc.ok()) return desc.status();
  def.description = *desc;

  auto axes = j.find("axes");
  if (axes == j.end()) return at.Err("axes", "missing (required)");
  if (!axes->is_object()) return at.Err("axes", "expected an object");
  for (auto it = axes->begin(); it != axes->end(); ++it) {
    const std::string f = "axes." + it.key();
    const Json& a = it.value();
    if (!a.is_object()) return at.Err(f, "expected an object with \"type\"");
    Axis axis;
    axis.name = it.key();
    auto type = GetString(a, "type", f + ".type", at, true);
    if (!type.ok()) return type.status();
    if (*type == "const") {
      axis.kind = Axis::Kind::kConst;
      auto v = a.find("value");
      if (v == a.end() || !v->is_number_integer() || v->get<int64_t>() < 0) {
        return at.Err(f + ".value", "a const axis needs a non-negative integer \"value\"");
      }
      axis.value = v->get<int64_t>();
    } else if (*type == "var") {
      axis.kind = Axis::Kind::kVar;
    } else if (*type == "expr") {
      axis.kind = Axis::Kind::kExpr;
      auto e = GetString(a, "expression", f + ".expression", at, true);
      if (!e.ok()) return e.status();
      axis.expression = *e;
    } else {
      return at.Err(f + ".type", absl::StrCat("unknown axis type \"", *type,
                                             "\" (expected const, var or expr)"));
    }
    def.axes.push_back(axis);
  }
  // Expr axes may only mention declared axes, and no cycles.
  for (const Axis& a : def.axes) {
    if (a.kind != Axis::Kind::kExpr) continue;
    const std::string f = "axes." + a.name + ".expression";
    auto ids = ExprIdentifiers(a.expression);
    if (!ids.ok()) return at.Err(f, ids.status().message());
    for (const std::string& id : *ids) {
      if (def.FindAxis(id) == nullptr) {
        return at.Err(f, absl::StrCat("unknown axis \"", id, "\""));
      }
    }
  }

  for (const char* which : {"inputs", "outputs"}) {
    auto t = j.find(which);
    if (t == j.end()) return at.Err(which, "missing (required)");
    if (!t->is_object()) return at.Err(which, "expected an object of name -> tensor");
    for (auto it = t->begin(); it != t->end(); ++it) {
      auto spec = ParseTensor(it.key(), it.value(), std::string(which) + "." + it.key(), at, def);
      if (!spec.ok()) return spec.status();
      (std::string(which) == "inputs" ? def.inputs : def.outputs).push_back(*spec);
    }
  }
  if (def.outputs.empty()) return at.Err("outputs", "at least one output is required");

  auto ref = GetString(j, "reference", "reference", at, true);
  if (!ref.ok()) return ref.status();
  def.reference = *ref;
  if (def.reference.find("def run") == std::string::npos) {
    return at.Err("reference", "must define a function run(...)");
  }
  auto entry = GetString(j, "custom_inputs_entrypoint", "custom_inputs_entrypoint", at, false);
  if (!entry.ok()) return entry.status();
  def.custom_inputs_entrypoint = *entry;
  if (!def.custom_inputs_entrypoint.empty() &&
      def.reference.find("def " + def.custom_inputs_entrypoint) == std::string::npos) {
    return at.Err("custom_inputs_entrypoint",
                  absl::StrCat("the reference defines no function \"",
                               def.custom_inputs_entrypoint, "\""));
  }

  if (auto c = j.find("constraints"); c != j.end() && !c->is_null()) {
    if (!c->is_array()) return at.Err("constraints", "expected a list of strings");
    for (size_t i = 0; i < c->size(); ++i) {
      const std::string f = absl::StrCat("constraints[", i, "]");
      if (!(*c)[i].is_string()) return at.Err(f, "expected a string");
      std::string expr = (*c)[i].get<std::string>();
      auto ids = ExprIdentifiers(expr);
      if (!ids.ok()) return at.Err(f, ids.status().message());
      def.constraints.push_back(expr);
    }
  }

  if (auto r = j.find("ratchet"); r != j.end() && !r->is_null()) {
    if (!r->is_object()) return at.Err("ratchet", "expected an object {\"flops\", \"bytes\"}");
    for (const char* key : {"flops", "bytes"}) {
      const std::string f = std::string("ratchet.") + key;
      auto v = r->find(key);
      if (v == r->end() || v->is_null()) continue;
      std::string expr;
      if (v->is_string()) {
        expr = v->get<std::string>();
      } else if (v->is_number()) {
        expr = v->dump();
      } else {
        return at.Err(f, "expected an expression string over axis names");
      }
      auto ids = ExprIdentifiers(expr);
      if (!ids.ok()) return at.Err(f, ids.status().message());
      for (const std::string& id : *ids) {
        if (def.FindAxis(id) == nullptr) return at.Err(f, absl::StrCat("unknown axis \"", id, "\""));
      }
      (std::string(key) == "flops" ? def.flops_expr : def.bytes_expr) = expr;
    }
  }
  if (auto tol = j.find("tolerance"); tol != j.end() && tol->is_object()) {
    for (const char* key : {"atol", "rtol", "max_error_factor"}) {
      auto v = tol->find(key);
      if (v == tol->end()) continue;
      // The parsed JSON keeps no positions: find the key's line in the text
      // so that the error points at it like a workload line's does.
      const Where key_at(file, LineOfKey(text, "tolerance", key));
      auto x = ToleranceValue(*v, std::string("tolerance.") + key, key_at);
      if (!x.ok()) return x.status();
      const std::string k = key;
      (k == "atol" ? def.atol : k == "rtol" ? def.rtol : def.max_error_factor) = *x;
    }
  }
  return def;
}

}  // namespace

absl::StatusOr<Definition> ParseDefinition(absl::string_view text, absl::string_view file) {
  // The field checks above test types before they read; this is the second
  // line for one they miss (an uncaught json exception ends the harness, and
  // the worker would blame the candidate).
  try {
    return ParseDefinitionUnguarded(text, file);
  } catch (const std::exception& e) {
    return Where(file, 0).Err("", absl::StrCat("malformed: ", ToValidUtf8(e.what())));
  }
}

namespace {

absl::StatusOr<Workload> ParseWorkloadLine(const Definition& def, const Json& line_json,
                                           const Where& at, absl::string_view problem_dir) {
  if (!line_json.is_object()) return at.Err("", "each line must be a JSON object");
  // Accept both a bare workload and a FlashInfer trace {"workload": {...}}.
  const Json* jp = &line_json;
  std::string pre;
  if (auto w = line_json.find("workload"); w != line_json.end() && w->is_object()) {
    jp = &*w;
    pre = "workload.";
  }
  const Json& j = *jp;
  Workload w;
  w.atol = def.atol.value_or(1e-2);
  w.rtol = def.rtol.value_or(1e-2);
  w.tolerance_given = def.atol.has_value() || def.rtol.has_value();
  w.max_error_factor = def.max_error_factor.value_or(kDefaultMaxErrorFactor);
  auto uuid = GetString(j, "uuid", pre + "uuid", at, false);
  if (!uuid.ok()) return uuid.status();
  w.uuid = *uuid;

  auto axes = j.find("axes");
  if (axes == j.end() || !axes->is_object()) {
    return at.Err(pre + "axes", "missing or not an object of var axis -> integer");
  }
  for (auto it = axes->begin(); it != axes->end(); ++it) {
    const std::string f = pre + "axes." + it.key();
    const Axis* a = def.FindAxis(it.key());
    if (a == nullptr) return at.Err(f, "no such axis in definition.json");
    if (!it->is_number_integer() || it->get<int64_t>() < 0) {
      return at.Err(f, absl::StrCat("expected a non-negative integer, got ", it->dump()));
    }
    const int64_t v = it->get<int64_t>();
    if (a->kind == Axis::Kind::kConst && v != a->value) {
      return at.Err(f, absl::StrCat("const axis is ", a->value, ", workload says ", v));
    }
    if (a->kind == Axis::Kind::kExpr) return at.Err(f, "expr axes are computed, not bound");
    w.axes[it.key()] = v;
  }
  std::vector<std::string> labels;
  for (const Axis& a : def.axes) {
    if (a.kind == Axis::Kind::kConst) w.axes[a.name] = a.value;
    if (a.kind != Axis::Kind::kVar) continue;
    if (w.axes.count(a.name) == 0) return at.Err(pre + "axes." + a.name, "var axis not bound");
    labels.push_back(absl::StrCat(a.name, "=", w.axes[a.name]));
  }
  w.axes_label = absl::StrJoin(labels, ",");
  // Expr axes, in dependency order: iterate until none is left.
  for (size_t pass = 0; pass <= def.axes.size(); ++pass) {
    bool progress = false, pending = false;
    for (const Axis& a : def.axes) {
      if (a.kind != Axis::Kind::kExpr || w.axes.count(a.name)) continue;
      auto ids = ExprIdentifiers(a.expression);
      bool ready = ids.ok();
      for (const auto& id : *ids) ready = ready && w.axes.count(id);
      if (!ready) {
        pending = true;
        continue;
      }
      auto v = EvalExpr(a.expression, [&](absl::string_view n) -> std::optional<double> {
        return static_cast<double>(w.axes.at(std::string(n)));
      });
      const std::string f = "axes." + a.name + ".expression";
      if (!v.ok()) return at.Err(f, v.status().message());
      auto iv = AsInteger(*v, f, at);
      if (!iv.ok()) return iv.status();
      w.axes[a.name] = static_cast<int64_t>(*iv);
      progress = true;
    }
    if (!pending) break;
    if (!progress) return at.Err("axes", "expr axes depend on each other in a cycle");
  }
  auto lookup = [&](absl::string_view n) -> std::optional<double> {
    auto it = w.axes.find(std::string(n));
    if (it == w.axes.end()) return std::nullopt;
    return static_cast<double>(it->second);
  };
  for (size_t i = 0; i < def.constraints.size(); ++i) {
    auto v = EvalExpr(def.constraints[i], lookup);
    const std::string f = absl::StrCat("constraints[", i, "]");
    if (!v.ok()) return at.Err(f, v.status().message());
    if (*v == 0) {
      return at.Err(pre + "axes", absl::StrCat("violates constraint \"", def.constraints[i],
                                               "\" of definition.json"));
    }
  }

  auto inputs = j.find("inputs");
  if (inputs == j.end() || !inputs->is_object()) {
    return at.Err(pre + "inputs", "missing or not an object of input name -> descriptor");
  }
  for (auto it = inputs->begin(); it != inputs->end(); ++it) {
    bool known = false;
    for (const auto& t : def.inputs) known = known || t.name == it.key();
    if (!known) return at.Err(pre + "inputs." + it.key(), "no such input in definition.json");
  }
  int custom = 0;
  for (const TensorSpec& t : def.inputs) {
    const std::string f = pre + "inputs." + t.name;
    InputSource src;
    auto d = inputs->find(t.name);
    if (d == inputs->end()) {
      return at.Err(f, "missing descriptor (every input needs one)");
    }
    if (!d->is_object()) return at.Err(f, "expected an object with \"type\"");
    auto type = GetString(*d, "type", f + ".type", at, true);
    if (!type.ok()) return type.status();
    if (*type == "random") {
      src.kind = InputSource::Kind::kRandom;
    } else if (*type == "scalar") {
      src.kind = InputSource::Kind::kScalar;
      auto v = d->find("value");
      if (v == d->end()) return at.Err(f + ".value", "missing (required for type scalar)");
      if (v->is_boolean()) {
        src.value = v->get<bool>() ? 1 : 0;
        src.value_is_bool = true;
      } else if (v->is_number()) {
        src.value = v->get<double>();
      } else {
        return at.Err(f + ".value", absl::StrCat("expected a number or bool, got ", v->dump()));
      }
    } else if (*type == "custom") {
      src.kind = InputSource::Kind::kCustom;
      ++custom;
      if (def.custom_inputs_entrypoint.empty()) {
        return at.Err(f + ".type",
                      "\"custom\" needs custom_inputs_entrypoint in definition.json");
      }
    } else if (*type == "safetensors") {
      src.kind = InputSource::Kind::kSafetensors;
      auto p = GetString(*d, "path", f + ".path", at, true);
      if (!p.ok()) return p.status();
      auto k = GetString(*d, "tensor_key", f + ".tensor_key", at, true);
      if (!k.ok()) return k.status();
      src.path = (!p->empty() && (*p)[0] == '/') ? *p : absl::StrCat(problem_dir, "/", *p);
      src.tensor_key = *k;
    } else {
      return at.Err(f + ".type", absl::StrCat("unknown input type \"", *type,
                                             "\" (expected random, scalar, custom or "
                                             "safetensors)"));
    }
    w.inputs.push_back(src);
  }
  (void)custom;  // Mixing custom with scalars is tolerated; the oracle fills the rest.

  if (auto tol = j.find("tolerance"); tol != j.end() && !tol->is_null()) {
    if (!tol->is_object()) {
      return at.Err(pre + "tolerance",
                    "expected {\"atol\": x, \"rtol\": y, \"max_error_factor\": k}");
    }
    for (const char* key : {"atol", "rtol", "max_error_factor"}) {
      auto v = tol->find(key);
      if (v == tol->end() || v->is_null()) continue;
      auto x = ToleranceValue(*v, pre + "tolerance." + key, at);
      if (!x.ok()) return x.status();
      const std::string k = key;
      (k == "atol" ? w.atol : k == "rtol" ? w.rtol : w.max_error_factor) = *x;
      if (k != "max_error_factor") w.tolerance_given = true;
    }
  }
  return w;
}

}  // namespace

absl::StatusOr<std::vector<Workload>> ParseWorkloads(const Definition& def,
                                                     absl::string_view text,
                                                     absl::string_view file,
                                                     absl::string_view problem_dir) {
  std::vector<Workload> out;
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_no;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    const Where at(file, line_no);
    auto j = ParseJsonText(line, at, file, /*whole_file=*/false);
    if (!j.ok()) return j.status();
    absl::StatusOr<Workload> w;
    try {  // As in ParseDefinition: a missed type check is an error, not an abort.
      w = ParseWorkloadLine(def, *j, at, problem_dir);
    } catch (const std::exception& e) {
      w = at.Err("", absl::StrCat("malformed: ", ToValidUtf8(e.what())));
    }
    if (!w.ok()) return w.status();
    w->index = static_cast<int>(out.size());
    w->line = line_no;
    out.push_back(std::move(*w));
  }
  if (out.empty()) return Where(file, 0).Err("", "no workloads (file is empty)");
  return out;
}

namespace {
absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

absl::StatusOr<Problem> LoadProblem(const std::string& dir) {
  Problem p;
  p.dir = dir;
  const std::string def_path = dir + "/definition.json";
  auto def_text = ReadFile(def_path);
  if (!def_text.ok()) return def_text.status();
  auto def = ParseDefinition(*def_text, def_path);
  if (!def.ok()) return def.status();
  p.definition = std::move(*def);
  const std::string wl_path = dir + "/workload.jsonl";
  auto wl_text = ReadFile(wl_path);
  if (!wl_text.ok()) return wl_text.status();
  auto wl = ParseWorkloads(p.definition, *wl_text, wl_path, dir);
  if (!wl.ok()) return wl.status();
  p.workloads = std::move(*wl);
  return p;
}

Tolerance ToleranceOf(const Workload& w) {
  Tolerance t;
  t.atol = w.atol;
  t.rtol = w.rtol;
  t.max_error_factor = w.max_error_factor;
  return t;
}

Tolerance ToleranceFor(const Workload& w, DType out_dtype) {
  Tolerance t = ToleranceOf(w);
  if (!w.tolerance_given) {
    const DefaultTolerance d = DefaultToleranceFor(out_dtype);
    t.atol = d.atol;
    t.rtol = d.rtol;
  }
  return t;
}

std::vector<int64_t> ResolveShape(const TensorSpec& spec, const Workload& w) {
  std::vector<int64_t> shape;
  for (const Dim& d : spec.shape) {
    shape.push_back(d.axis.empty() ? d.literal : w.axes.at(d.axis));
  }
  return shape;
}

int64_t NumElements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {
absl::StatusOr<double> EvalOver(const std::string& expr, const Workload& w,
                                const char* what) {
  auto v = EvalExpr(expr, [&](absl::string_view n) -> std::optional<double> {
    auto it = w.axes.find(std::string(n));
    if (it == w.axes.end()) return std::nullopt;
    return static_cast<double>(it->second);
  });
  if (!v.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("definition.json: field 'ratchet.", what, "': ", v.status().message()));
  }
  return *v;
}
}  // namespace

absl::Status CheckTensorSizes(const Definition& def, const std::vector<Workload>& workloads) {
  for (const Workload& w : workloads) {
    for (const auto* list : {&def.inputs, &def.outputs}) {
      for (const TensorSpec& t : *list) {
        // In double: the product of absurd axes overflows int64_t.
        double bytes = static_cast<double>(DTypeSize(t.dtype));
        std::string largest;
        int64_t largest_size = -1;
        for (const Dim& d : t.shape) {
          int64_t size = d.literal;
          if (!d.axis.empty()) {
            auto it = w.axes.find(d.axis);
            if (it == w.axes.end()) continue;
            size = it->second;
          }
          bytes *= static_cast<double>(size);
          if (size > largest_size) {
            largest_size = size;
            largest = d.axis.empty() ? absl::StrCat("a literal dimension") : "axis " + d.axis;
          }
        }
        if (bytes > static_cast<double>(kMaxTensorBytes))
          return absl::InvalidArgumentError(absl::StrCat(
              "workload.jsonl:", w.line, ": tensor '", t.name, "' would take ", bytes,
              " bytes (", largest, " = ", largest_size, "); at most ", kMaxTensorBytes,
              " (2^34) per tensor"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckProblemText(absl::string_view definition_json,
                              absl::string_view workload_jsonl) {
  auto def = ParseDefinition(definition_json, "definition.json");
  if (!def.ok()) return def.status();
  auto workloads = ParseWorkloads(*def, workload_jsonl, "workload.jsonl", "");
  if (!workloads.ok()) return workloads.status();
  return CheckTensorSizes(*def, *workloads);
}

namespace {
// Submit's check (spec::ValidateCampaignSpec) reads problems with this
// reader wherever it is linked (common/problem_check.h).
[[maybe_unused]] const bool kProblemCheckRegistered = [] {
  RegisteredProblemCheck() = &CheckProblemText;
  return true;
}();
}  // namespace

absl::StatusOr<double> WorkloadFlops(const Definition& def, const Workload& w) {
  if (def.flops_expr.empty()) return 0.0;
  return EvalOver(def.flops_expr, w, "flops");
}

absl::StatusOr<double> WorkloadBytes(const Definition& def, const Workload& w) {
  if (!def.bytes_expr.empty()) return EvalOver(def.bytes_expr, w, "bytes");
  double bytes = 0;
  for (const auto* list : {&def.inputs, &def.outputs}) {
    for (const TensorSpec& t : *list) {
      bytes += static_cast<double>(NumElements(ResolveShape(t, w))) *
               static_cast<double>(DTypeSize(t.dtype));
    }
  }
  return bytes;
}

}  // namespace ratchet::kernels
