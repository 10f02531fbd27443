#include "services/cli/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/names.h"
#include "services/cli/commands.h"

namespace ratchet::cli {

double CampaignActiveSeconds(const v1::Campaign& c, int64_t now_ms) {
  if (c.created_unix_ms() <= 0) return 0;
  const int64_t end = c.finished_unix_ms() > 0 ? c.finished_unix_ms() : now_ms;
  double seconds = (end - c.created_unix_ms()) / 1000.0 - c.paused_seconds();
  if (c.paused_unix_ms() > 0 && c.finished_unix_ms() <= 0)
    seconds -= (now_ms - c.paused_unix_ms()) / 1000.0;
  return std::max(0.0, seconds);
}

ProgressFigures EstimateProgress(const v1::Campaign& c, double active_seconds) {
  ProgressFigures f;
  const v1::Budget& b = c.spec().budget();
  const double done = c.evaluations();
  if (done > 0 && active_seconds > 0) f.evals_per_minute = 60 * done / active_seconds;
  // Each limit: how much of it is used, and the seconds left at the rate so far.
  auto limit = [&](double used, double cap, double per_second) {
    if (cap <= 0) return;
    f.fraction = std::max(f.fraction, std::min(1.0, used / cap));
    if (per_second <= 0) return;
    const double left = std::max(0.0, cap - used) / per_second;
    f.eta_seconds = f.eta_seconds < 0 ? left : std::min(f.eta_seconds, left);
  };
  const double seconds = std::max(active_seconds, 1e-9);
  limit(done, b.max_evaluations(), done / seconds);
  limit(active_seconds, b.max_wall_seconds(), 1.0);
  limit(c.gpu_seconds(), b.max_gpu_seconds(), c.gpu_seconds() / seconds);
  return f;
}

std::string Duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%dh%02dm", s / 3600, (s % 3600) / 60);
}

std::string ProgressLine(const v1::Campaign& c, double active_seconds, int width) {
  const ProgressFigures f = EstimateProgress(c, active_seconds);
  constexpr int kBar = 20;
  const int filled = static_cast<int>(std::floor(f.fraction * kBar + 1e-9));
  std::string line = absl::StrCat("[", std::string(filled, '#'), std::string(kBar - filled, '.'),
                                  "] ");
  const int max_evals = c.spec().budget().max_evaluations();
  absl::StrAppend(&line, c.evaluations(), max_evals > 0 ? absl::StrCat("/", max_evals) : "",
                  " evals");
  if (c.state() != v1::CAMPAIGN_RUNNING) absl::StrAppend(&line, "  ", CampaignStateName(c.state()));
  if (c.best_candidate_id() != 0 && c.best_candidate_id() != c.baseline_candidate_id()) {
    std::string gain;
    if (c.baseline_score() > 0)
      gain = absl::StrFormat("%+.1f%%, ", 100 * (c.best_score() / c.baseline_score() - 1));
    absl::StrAppend(&line, absl::StrFormat("  best %.4f (%s%s #%d)", c.best_score(), gain,
                                           c.best_verified() ? "verified" : "unverified",
                                           c.best_candidate_id()));
  } else if (c.baseline_score() >= 0 && c.baseline_candidate_id() != 0) {
    absl::StrAppend(&line, absl::StrFormat("  best = baseline %.4f", c.baseline_score()));
  }
  if (f.evals_per_minute > 0)
    absl::StrAppend(&line, absl::StrFormat("  %.1f/min", f.evals_per_minute));
  if (c.state() == v1::CAMPAIGN_RUNNING && f.eta_seconds >= 0)
    absl::StrAppend(&line, "  ETA ", Duration(f.eta_seconds));
  absl::StrAppend(&line, "  ", Duration(active_seconds));
  if (width > 0 && static_cast<int>(line.size()) > width) line.resize(static_cast<size_t>(width));
  return line;
}

ProgressDisplay::ProgressDisplay(std::ostream& out, bool terminal, int width)
    : out_(out), terminal_(terminal), width_(std::max(20, width)) {}

void ProgressDisplay::ClearStatus() {
  if (terminal_ && !status_.empty()) out_ << "\r\x1b[K";
}

void ProgressDisplay::Line(const std::string& text) {
  std::lock_guard<std::mutex> lock(mu_);
  ClearStatus();
  out_ << text << "\n";
  if (terminal_ && !status_.empty()) out_ << status_;
  out_.flush();
}

void ProgressDisplay::Update(const v1::Campaign& c, double active_seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  if (terminal_) {
    // One column spare: a full line would make some terminals wrap.
    const std::string line = ProgressLine(c, active_seconds, width_ - 1);
    if (line == status_) return;
    ClearStatus();
    status_ = line;
    out_ << status_;
    out_.flush();
    return;
  }
  // Plain: the status line without the clock, so a line means news.
  std::string line = StatusLine(c, active_seconds);
  const std::string key = line.substr(line.find(']') + 1);
  const ProgressFigures f = EstimateProgress(c, active_seconds);
  if (f.evals_per_minute > 0)
    absl::StrAppend(&line, absl::StrFormat("  %.1f/min", f.evals_per_minute));
  if (c.state() == v1::CAMPAIGN_RUNNING && f.eta_seconds >= 0)
    absl::StrAppend(&line, "  ETA ", Duration(f.eta_seconds));
  if (key == last_key_ && active_seconds - last_plain_seconds_ < 60) return;
  last_key_ = key;
  last_plain_seconds_ = active_seconds;
  out_ << "          " << line << "\n";
  out_.flush();
}

void ProgressDisplay::Finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (terminal_ && !status_.empty()) out_ << "\n";
  status_.clear();
  out_.flush();
}

bool IsTerminal(int fd) { return isatty(fd) == 1; }

int TerminalWidth(int fd) {
  int columns = 0;
  if (const char* env = std::getenv("COLUMNS"); env != nullptr && absl::SimpleAtoi(env, &columns) &&
                                                columns > 0)
    return columns;
  struct winsize ws = {};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 100;
}

}  // namespace ratchet::cli
