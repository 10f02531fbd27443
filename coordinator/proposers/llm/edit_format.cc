#include "coordinator/proposers/llm/edit_format.h"

#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace ratchet::llm {
namespace {

constexpr absl::string_view kOpen = "<<<<<<<";
constexpr absl::string_view kDivider = "=======";
constexpr absl::string_view kClose = ">>>>>>>";
constexpr absl::string_view kManifest = "solution.json";

absl::Status Malformed(int line, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

bool IsMarker(absl::string_view line) {
  return absl::StartsWith(line, kOpen) || absl::StartsWith(line, kDivider) ||
         absl::StartsWith(line, kClose);
}

std::string JoinLines(const std::vector<absl::string_view>& lines) {
  std::string out;
  for (absl::string_view l : lines) absl::StrAppend(&out, l, "\n");
  return out;
}

// Where `needle` (whole lines) occurs in `haystack` starting at a line start.
std::vector<size_t> LineAlignedMatches(const std::string& haystack, const std::string& needle) {
  std::vector<size_t> at;
  for (size_t p = haystack.find(needle); p != std::string::npos; p = haystack.find(needle, p + 1))
    if (p == 0 || haystack[p - 1] == '\n') at.push_back(p);
  return at;
}

}  // namespace

absl::StatusOr<ParsedAnswer> ParseAnswer(const std::string& answer) {
  std::string text = answer;
  text.erase(std::remove(text.begin(), text.end(), '\r'), text.end());
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  ParsedAnswer out;
  size_t i = 0;
  // Reads lines up to a closing marker (returned in *end_marker).
  auto read_until = [&](int start_line, std::vector<absl::string_view> ends,
                        std::vector<absl::string_view>* body,
                        std::string* end_marker) -> absl::Status {
    for (; i < lines.size(); ++i) {
      absl::string_view l = absl::StripTrailingAsciiWhitespace(lines[i]);
      if (std::find(ends.begin(), ends.end(), l) != ends.end()) {
        *end_marker = std::string(l);
        ++i;
        return absl::OkStatus();
      }
      if (IsMarker(l))
        return Malformed(static_cast<int>(i + 1),
                         absl::StrCat("unexpected marker '", l, "' (expected ",
                                      absl::StrJoin(ends, " or "), ")"));
      body->push_back(lines[i]);
    }
    return Malformed(start_line, absl::StrCat("block is not terminated (expected ",
                                              absl::StrJoin(ends, " or "), ")"));
  };

  while (i < lines.size()) {
    const int line_no = static_cast<int>(i + 1);
    absl::string_view l = absl::StripTrailingAsciiWhitespace(lines[i]);
    if (!IsMarker(l)) {
      absl::string_view stripped = absl::StripLeadingAsciiWhitespace(l);
      if (out.idea.empty() && absl::ConsumePrefix(&stripped, "IDEA:"))
        out.idea = std::string(absl::StripAsciiWhitespace(stripped));
      ++i;
      continue;
    }
    if (!absl::StartsWith(l, kOpen))
      return Malformed(line_no, absl::StrCat("marker '", l, "' outside a block"));
    std::vector<absl::string_view> words =
        absl::StrSplit(l.substr(kOpen.size()), ' ', absl::SkipEmpty());
    if (words.empty())
      return Malformed(line_no, "block opener without a kind (SEARCH, FILE or KNOBS)");
    const std::string kind(words[0]);
    ++i;
    if (kind == "SEARCH" || kind == "FILE") {
      if (words.size() != 2)
        return Malformed(line_no, absl::StrCat(kind, " needs exactly one file name, got '", l,
                                               "'"));
      Edit edit;
      edit.path = std::string(words[1]);
      edit.line = line_no;
      std::string end;
      if (kind == "SEARCH") {
        edit.kind = Edit::Kind::kSearchReplace;
        std::vector<absl::string_view> search, replace;
        if (auto s = read_until(line_no, {kDivider}, &search, &end); !s.ok()) return s;
        if (auto s = read_until(line_no, {">>>>>>> REPLACE"}, &replace, &end); !s.ok())
          return s;
        if (search.empty())
          return Malformed(line_no, "SEARCH text is empty (use a FILE block to rewrite a file)");
        edit.search = JoinLines(search);
        edit.content = JoinLines(replace);
      } else {
        edit.kind = Edit::Kind::kWholeFile;
        std::vector<absl::string_view> content;
        if (auto s = read_until(line_no, {">>>>>>> END"}, &content, &end); !s.ok()) return s;
        edit.content = JoinLines(content);
        if (absl::StripAsciiWhitespace(edit.content).empty())
          return Malformed(line_no, absl::StrCat("FILE ", edit.path, " would be empty"));
      }
      out.edits.push_back(std::move(edit));
    } else if (kind == "KNOBS") {
      if (words.size() != 1) return Malformed(line_no, "KNOBS takes no argument");
      std::vector<absl::string_view> body;
      std::string end;
      if (auto s = read_until(line_no, {">>>>>>> END"}, &body, &end); !s.ok()) return s;
      std::set<std::string> names;
      for (size_t k = 0; k < body.size(); ++k) {
        absl::string_view setting = absl::StripAsciiWhitespace(body[k]);
        if (setting.empty()) continue;
        std::pair<std::string, std::string> kv = absl::StrSplit(setting, absl::MaxSplits('=', 1));
        absl::StripAsciiWhitespace(&kv.first);
        absl::StripAsciiWhitespace(&kv.second);
        const int at = line_no + 1 + static_cast<int>(k);
        if (setting.find('=') == absl::string_view::npos || kv.first.empty() ||
            kv.second.empty())
          return Malformed(at, absl::StrCat("knob setting '", setting, "' is not NAME=value"));
        if (!names.insert(kv.first).second)
          return Malformed(at, absl::StrCat("knob ", kv.first, " is set twice"));
        out.knobs.push_back(std::move(kv));
      }
      if (names.empty()) return Malformed(line_no, "KNOBS block sets no knob");
    } else {
      return Malformed(line_no, absl::StrCat("unknown block kind '", kind,
                                             "' (known: SEARCH, FILE, KNOBS)"));
    }
  }
  if (out.edits.empty() && out.knobs.empty())
    return absl::InvalidArgumentError(
        "the answer has no SEARCH/REPLACE, FILE or KNOBS block");
  return out;
}

absl::StatusOr<v1::Solution> ApplyAnswer(const ParsedAnswer& answer, const v1::Solution& parent,
                                         const proposers::KnobSpace& space) {
  v1::Solution out = parent;
  std::vector<std::string> editable;
  for (const auto& [path, content] : parent.files())
    if (path != kManifest) editable.push_back(path);
  std::sort(editable.begin(), editable.end());
  auto& files = *out.mutable_files();
  int n = 0;
  for (const Edit& edit : answer.edits) {
    ++n;
    const std::string where = absl::StrCat("block ", n, " (line ", edit.line, ")");
    if (edit.path == kManifest)
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": solution.json is not editable; change knobs with a KNOBS block"));
    auto it = files.find(edit.path);
    if (it == files.end())
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": unknown file '", edit.path,
                       "' (editable: ", absl::StrJoin(editable, ", "), ")"));
    if (edit.kind == Edit::Kind::kWholeFile) {
      it->second = edit.content;
      continue;
    }
    std::string& content = it->second;
    // Blocks are whole lines, so the file is compared with a final newline.
    if (!content.empty() && content.back() != '\n') content += '\n';
    const std::vector<size_t> matches = LineAlignedMatches(content, edit.search);
    const int found = static_cast<int>(matches.size());
    if (found != 1)
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": the SEARCH text ",
          found == 0 ? "is not in " : absl::StrCat("occurs ", found, " times in "), edit.path,
          found == 0 ? " (it must match the current file exactly, whitespace included)"
                     : " (include more lines so that it matches exactly once)"));
    content.replace(matches[0], edit.search.size(), edit.content);
  }
  for (const auto& [name, value] : answer.knobs) {
    const proposers::Knob* knob = space.Find(name);
    if (knob == nullptr) {
      std::vector<std::string> names;
      for (const auto& k : space.knobs) names.push_back(k.name);
      return absl::InvalidArgumentError(
          absl::StrCat("KNOBS: ", name, " is not a declared knob (declared: ",
                       names.empty() ? "none" : absl::StrJoin(names, ", "), ")"));
    }
    if (std::find(knob->choices.begin(), knob->choices.end(), value) == knob->choices.end())
      return absl::InvalidArgumentError(absl::StrCat("KNOBS: ", name, "=", value,
                                                     " is not one of its choices (",
                                                     absl::StrJoin(knob->choices, ", "), ")"));
    (*out.mutable_knobs())[name] = value;
  }
  if (proposers::ContentHash(out) == proposers::ContentHash(parent))
    return absl::InvalidArgumentError("the answer changes nothing");
  return out;
}

std::string EditFormatGuide() {
  return R"(Answer format (parsed by a program; follow it exactly):

IDEA: <one line: what you change and why it should be faster>

Then one or more blocks. To change part of a file:

<<<<<<< SEARCH <file>
<lines copied exactly from the current file, whitespace included>
=======
<the lines that replace them>
>>>>>>> REPLACE

To rewrite a whole file:

<<<<<<< FILE <file>
<the complete new content of the file>
>>>>>>> END

To change knob values (only declared knobs, only their listed choices):

<<<<<<< KNOBS
NAME=value
>>>>>>> END

Rules:
- Marker lines stand alone on their line, exactly as shown; never put them
  inside a code fence and never nest blocks.
- <file> is one of the solution's source files listed above; solution.json
  cannot be edited (use KNOBS).
- Each SEARCH text must occur exactly once in the file as it is after the
  blocks before it; copy enough lines to make it unique.
- Blocks apply in order. If any block is wrong the whole answer is discarded.
- Text outside blocks is ignored; keep it short.
)";
}

}  // namespace ratchet::llm
