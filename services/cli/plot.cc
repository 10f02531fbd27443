#include "services/cli/plot.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"

namespace ratchet::cli {
namespace {

std::string Escape(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

// Round tick steps (1, 2, 5 x 10^k) covering [lo, hi] with about n ticks.
std::vector<double> Ticks(double lo, double hi, int n) {
  const double span = std::max(hi - lo, 1e-12);
  const double raw = span / n;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push_back(t);
  return ticks;
}

std::string TickLabel(double v) {
  if (std::fabs(v) >= 100 || v == std::floor(v)) return absl::StrFormat("%.0f", v);
  return absl::StrFormat("%.3g", v);
}

// One panel: x from `x_of(point)`, y the score.
void Panel(std::string* svg, const ScoreHistory& h, double left, double top, double width,
           double height, const std::string& x_label,
           const std::function<double(const ScorePoint&)>& x_of, double x_max) {
  double y_lo = h.baseline >= 0 ? h.baseline : 1.0, y_hi = h.baseline >= 0 ? h.baseline : 0.0;
  for (const auto* series : {&h.evaluations, &h.verified})
    for (const ScorePoint& p : *series) {
      y_lo = std::min(y_lo, p.score);
      y_hi = std::max(y_hi, p.score);
    }
  if (y_hi <= y_lo) {
    y_lo = std::max(0.0, y_lo - 0.1);
    y_hi = y_hi + 0.1;
  }
  const double pad = (y_hi - y_lo) * 0.08;
  y_lo = std::max(0.0, y_lo - pad);
  y_hi += pad;
  x_max = std::max(x_max, 1.0);
  auto X = [&](double x) { return left + width * x / x_max; };
  auto Y = [&](double y) { return top + height * (1 - (y - y_lo) / (y_hi - y_lo)); };

  absl::StrAppend(svg, absl::StrFormat(
                           "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                           "fill=\"#fcfcfc\" stroke=\"#999\"/>\n",
                           left, top, width, height));
  for (double t : Ticks(y_lo, y_hi, 5)) {
    absl::StrAppend(svg, absl::StrFormat(
                             "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"#e4e4e4\"/><text x=\"%.1f\" y=\"%.1f\" "
                             "text-anchor=\"end\" class=\"tick\">%s</text>\n",
                             left, left + width, Y(t), Y(t), left - 6, Y(t) + 4, TickLabel(t)));
  }
  for (double t : Ticks(0, x_max, 6)) {
    absl::StrAppend(svg, absl::StrFormat(
                             "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"#e4e4e4\"/><text x=\"%.1f\" y=\"%.1f\" "
                             "text-anchor=\"middle\" class=\"tick\">%s</text>\n",
                             X(t), X(t), top, top + height, X(t), top + height + 16,
                             TickLabel(t)));
  }
  absl::StrAppend(svg, absl::StrFormat("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                                       "class=\"label\">%s</text>\n",
                                       left + width / 2, top + height + 36, Escape(x_label)));
  if (h.baseline >= 0)
    absl::StrAppend(svg, absl::StrFormat(
                             "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
                             "stroke=\"#777\" stroke-dasharray=\"6 4\"/>\n",
                             left, left + width, Y(h.baseline), Y(h.baseline)));
  // Every evaluation, and the best evaluated so far.
  std::string best_path;
  double best = -1;
  for (const ScorePoint& p : h.evaluations) {
    absl::StrAppend(svg, absl::StrFormat("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" "
                                         "fill=\"#7aa6d6\"/>\n",
                                         X(x_of(p)), Y(p.score)));
    if (p.score > best) {
      absl::StrAppend(&best_path, best_path.empty() ? "M" : " L",
                      absl::StrFormat("%.1f %.1f", X(x_of(p)), Y(best < 0 ? p.score : best)));
      if (best >= 0) absl::StrAppend(&best_path, absl::StrFormat(" L%.1f %.1f", X(x_of(p)), Y(p.score)));
      best = p.score;
    }
  }
  if (!best_path.empty()) {
    absl::StrAppend(&best_path, absl::StrFormat(" L%.1f %.1f", X(x_max), Y(best)));
    absl::StrAppend(svg, "<path d=\"", best_path,
                    "\" fill=\"none\" stroke=\"#3b78c2\" stroke-width=\"1.2\"/>\n");
  }
  // The best verified: a step line from the baseline.
  if (h.baseline >= 0 || !h.verified.empty()) {
    double level = h.baseline >= 0 ? h.baseline : h.verified.front().score;
    std::string path = absl::StrFormat("M%.1f %.1f", X(0), Y(level));
    for (const ScorePoint& p : h.verified) {
      if (p.score <= level) continue;
      absl::StrAppend(&path, absl::StrFormat(" L%.1f %.1f L%.1f %.1f", X(x_of(p)), Y(level),
                                             X(x_of(p)), Y(p.score)));
      level = p.score;
    }
    absl::StrAppend(&path, absl::StrFormat(" L%.1f %.1f", X(x_max), Y(level)));
    absl::StrAppend(svg, "<path d=\"", path,
                    "\" fill=\"none\" stroke=\"#d2572b\" stroke-width=\"3\"/>\n");
  }
}

}  // namespace

ScoreHistory HistoryOf(const v1::Campaign& campaign,
                       const std::vector<v1::CandidateDetail>& candidates) {
  ScoreHistory h;
  h.title = absl::StrCat("campaign ", campaign.id(), "  ", campaign.spec().name());
  h.baseline = campaign.baseline_candidate_id() != 0 ? campaign.baseline_score() : -1;
  const int64_t start = campaign.created_unix_ms();
  struct Timed {
    int64_t unix_ms;
    double score;
  };
  std::vector<Timed> evals, accepted;
  for (const v1::CandidateDetail& d : candidates) {
    for (const v1::Evaluation& e : d.evaluations())
      if (e.kind() == v1::JOB_EVALUATE && e.outcome() == v1::OUTCOME_OK)
        evals.push_back({e.created_unix_ms(), e.score()});
    for (const v1::Verification& v : d.verifications())
      if (v.outcome() == v1::VERDICT_ACCEPTED)
        accepted.push_back({v.decided_unix_ms() > 0 ? v.decided_unix_ms() : v.created_unix_ms(),
                            d.candidate().score()});
  }
  auto by_time = [](const Timed& a, const Timed& b) { return a.unix_ms < b.unix_ms; };
  std::stable_sort(evals.begin(), evals.end(), by_time);
  std::stable_sort(accepted.begin(), accepted.end(), by_time);
  for (size_t i = 0; i < evals.size(); ++i)
    h.evaluations.push_back({std::max(0.0, (evals[i].unix_ms - start) / 1000.0),
                             static_cast<int>(i) + 1, evals[i].score});
  for (const Timed& a : accepted) {
    // The evaluations reported by the time of the verdict.
    const int n = static_cast<int>(
        std::upper_bound(evals.begin(), evals.end(), a, by_time) - evals.begin());
    h.verified.push_back({std::max(0.0, (a.unix_ms - start) / 1000.0), n, a.score});
  }
  return h;
}

std::string ScorePlotSvg(const ScoreHistory& h) {
  constexpr double kWidth = 1100, kHeight = 470;
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
      "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\">\n"
      "<style>.tick{font-size:11px;fill:#444}.label{font-size:13px;fill:#222}"
      ".title{font-size:16px;font-weight:bold}.legend{font-size:12px}</style>\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n",
      kWidth, kHeight, kWidth, kHeight);
  absl::StrAppend(&svg, "<text x=\"20\" y=\"28\" class=\"title\">", Escape(h.title),
                  ": best SOL score</text>\n");
  double t_max = 0;
  int n_max = 0;
  for (const auto* series : {&h.evaluations, &h.verified})
    for (const ScorePoint& p : *series) {
      t_max = std::max(t_max, p.seconds / 60);
      n_max = std::max(n_max, p.evaluation);
    }
  Panel(&svg, h, 70, 60, 460, 330, "minutes since the campaign began",
        [](const ScorePoint& p) { return p.seconds / 60; }, t_max);
  Panel(&svg, h, 610, 60, 460, 330, "research evaluations (ended ok)",
        [](const ScorePoint& p) { return static_cast<double>(p.evaluation); }, n_max);
  // Legend.
  absl::StrAppend(
      &svg,
      "<g class=\"legend\" transform=\"translate(70,440)\">"
      "<line x1=\"0\" x2=\"24\" y1=\"0\" y2=\"0\" stroke=\"#d2572b\" stroke-width=\"3\"/>"
      "<text x=\"30\" y=\"4\">best verified</text>"
      "<line x1=\"140\" x2=\"164\" y1=\"0\" y2=\"0\" stroke=\"#3b78c2\" stroke-width=\"1.2\"/>"
      "<text x=\"170\" y=\"4\">best evaluated (claimed, not yet verified)</text>"
      "<circle cx=\"472\" cy=\"0\" r=\"2.5\" fill=\"#7aa6d6\"/>"
      "<text x=\"480\" y=\"4\">an evaluation</text>"
      "<line x1=\"600\" x2=\"624\" y1=\"0\" y2=\"0\" stroke=\"#777\" stroke-dasharray=\"6 4\"/>"
      "<text x=\"630\" y=\"4\">baseline</text></g>\n");
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

}  // namespace ratchet::cli
