#include "kernels/problem/expr.h"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace ratchet::kernels {
namespace {

// Recursive-descent parser that evaluates as it parses. With a null lookup it
// only collects identifiers (every value reads as 1).
class Parser {
 public:
  Parser(absl::string_view s, const ExprLookup* lookup,
         std::vector<std::string>* idents)
      : s_(s), lookup_(lookup), idents_(idents) {}

  absl::StatusOr<double> Parse() {
    auto v = Or();
    if (!v.ok()) return v;
    SkipSpace();
    if (pos_ != s_.size()) return Error("unexpected character");
    return v;
  }

 private:
  absl::Status Error(absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expression \"", s_, "\": ", what, " at offset ", pos_));
  }
  void SkipSpace() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Eat(absl::string_view tok) {
    SkipSpace();
    if (s_.substr(pos_, tok.size()) == tok) {
      // Keywords must not run into an identifier ("andx").
      if (std::isalpha(static_cast<unsigned char>(tok[0])) &&
          pos_ + tok.size() < s_.size() &&
          (std::isalnum(static_cast<unsigned char>(s_[pos_ + tok.size()])) ||
           s_[pos_ + tok.size()] == '_')) {
        return false;
      }
      pos_ += tok.size();
      return true;
    }
    return false;
  }
  bool Peek(absl::string_view tok) {
    SkipSpace();
    return s_.substr(pos_, tok.size()) == tok;
  }

  absl::StatusOr<double> Or() {
    auto l = And();
    if (!l.ok()) return l;
    double v = *l;
    while (Eat("or")) {
      auto r = And();
      if (!r.ok()) return r;
      v = (v != 0 || *r != 0) ? 1 : 0;
    }
    return v;
  }
  absl::StatusOr<double> And() {
    auto l = Compare();
    if (!l.ok()) return l;
    double v = *l;
    while (Eat("and")) {
      auto r = Compare();
      if (!r.ok()) return r;
      v = (v != 0 && *r != 0) ? 1 : 0;
    }
    return v;
  }
  absl::StatusOr<double> Compare() {
    auto l = Sum();
    if (!l.ok()) return l;
    double v = *l;
    for (;;) {
      int op;
      if (Eat("==")) op = 0;
      else if (Eat("!=")) op = 1;
      else if (Eat("<=")) op = 2;
      else if (Eat(">=")) op = 3;
      else if (Eat("<")) op = 4;
      else if (Eat(">")) op = 5;
      else break;
      auto r = Sum();
      if (!r.ok()) return r;
      bool b = false;
      switch (op) {
        case 0: b = v == *r; break;
        case 1: b = v != *r; break;
        case 2: b = v <= *r; break;
        case 3: b = v >= *r; break;
        case 4: b = v < *r; break;
        case 5: b = v > *r; break;
      }
      v = b ? 1 : 0;
    }
    return v;
  }
  absl::StatusOr<double> Sum() {
    auto l = Product();
    if (!l.ok()) return l;
    double v = *l;
    for (;;) {
      if (Eat("+")) {
        auto r = Product();
        if (!r.ok()) return r;
        v += *r;
      } else if (Eat("-")) {
        auto r = Product();
        if (!r.ok()) return r;
        v -= *r;
      } else {
        return v;
      }
    }
  }
  absl::StatusOr<double> Product() {
    auto l = Unary();
    if (!l.ok()) return l;
    double v = *l;
    for (;;) {
      int op;
      if (Eat("//")) op = 0;
      else if (Peek("**")) return v;
      else if (Eat("*")) op = 1;
      else if (Eat("/")) op = 2;
      else if (Eat("%")) op = 3;
      else return v;
      const size_t at = pos_;
      auto r = Unary();
      if (!r.ok()) return r;
      if (op != 1 && *r == 0 && lookup_ != nullptr) {
        pos_ = at;
        return Error("division by zero");
      }
      switch (op) {
        case 0: v = lookup_ ? std::floor(v / *r) : 1; break;
        case 1: v *= *r; break;
        case 2: v = lookup_ ? v / *r : 1; break;
        case 3: v = lookup_ ? v - *r * std::floor(v / *r) : 1; break;
      }
    }
  }
  absl::StatusOr<double> Unary() {
    if (Eat("-")) {
      auto r = Unary();
      if (!r.ok()) return r;
      return -*r;
    }
    if (Eat("+")) return Unary();
    return Power();
  }
  absl::StatusOr<double> Power() {
    auto base = Atom();
    if (!base.ok()) return base;
    if (Eat("**")) {
      auto e = Unary();  // Right-associative; binds tighter than unary on the left.
      if (!e.ok()) return e;
      return std::pow(*base, *e);
    }
    return base;
  }
  absl::StatusOr<double> Atom() {
    SkipSpace();
    if (pos_ >= s_.size()) return Error("unexpected end");
    const char c = s_[pos_];
    if (c == '(') {
      ++pos_;
      auto v = Or();
      if (!v.ok()) return v;
      if (!Eat(")")) return Error("expected ')'");
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
      const std::string rest(s_.substr(pos_));
      char* end = nullptr;
      const double v = std::strtod(rest.c_str(), &end);
      if (end == rest.c_str()) return Error("bad number");
      pos_ += static_cast<size_t>(end - rest.c_str());
      return v;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      const size_t start = pos_;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                  s_[pos_] == '_')) {
        ++pos_;
      }
      const absl::string_view name = s_.substr(start, pos_ - start);
      if (idents_ != nullptr) {
        bool seen = false;
        for (const auto& id : *idents_) seen = seen || id == name;
        if (!seen) idents_->emplace_back(name);
      }
      if (lookup_ == nullptr) return 1.0;
      std::optional<double> v = (*lookup_)(name);
      if (!v.has_value()) {
        pos_ = start;
        return Error(absl::StrCat("unknown name '", name, "'"));
      }
      return *v;
    }
    // One byte of a multi-byte character is not text: name it by its value,
    // so the message (which ends up in a JSON result) stays UTF-8.
    return Error(absl::StrCat("unexpected '", absl::CHexEscape(std::string(1, c)), "'"));
  }

  absl::string_view s_;
  size_t pos_ = 0;
  const ExprLookup* lookup_;
  std::vector<std::string>* idents_;
};

}  // namespace

absl::StatusOr<double> EvalExpr(absl::string_view expr, const ExprLookup& lookup) {
  Parser p(expr, &lookup, nullptr);
  return p.Parse();
}

absl::StatusOr<std::vector<std::string>> ExprIdentifiers(absl::string_view expr) {
  std::vector<std::string> ids;
  Parser p(expr, nullptr, &ids);
  auto v = p.Parse();
  if (!v.ok()) return v.status();
  return ids;
}

}  // namespace ratchet::kernels
