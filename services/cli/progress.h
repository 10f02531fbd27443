// A campaign's progress as a person follows it (`ratchet local`, `ratchet
// watch`). On a terminal: one status line redrawn in place under the event
// lines (a bar, evaluations of the budget, best so far, rate, ETA).
// Elsewhere (a pipe, a log file): plain lines, one when something changed
// (the clock aside) or once a minute, so an hour is not 3,600 equal lines.
#ifndef RATCHET_SERVICES_CLI_PROGRESS_H_
#define RATCHET_SERVICES_CLI_PROGRESS_H_

#include <mutex>
#include <ostream>
#include <string>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::cli {

// Seconds the campaign has run: from creation to its end (or `now_ms`),
// pauses left out.
double CampaignActiveSeconds(const v1::Campaign& c, int64_t now_ms);

// How far the campaign is through its budget and when it should end at the
// rate so far. The budget is whichever of evaluations, wall time and
// device-seconds runs out first.
struct ProgressFigures {
  double fraction = 0;           // 0..1; 0 when the budget is unlimited
  double evals_per_minute = 0;   // 0 before the first evaluation
  double eta_seconds = -1;       // < 0: unknown
};
ProgressFigures EstimateProgress(const v1::Campaign& c, double active_seconds);

// "12m05s", "48s", "2h03m".
std::string Duration(double seconds);

// The one-line status: "[######....] 23/50 evals  best 0.8805 (+95.1%,
// verified #12)  2.1/min  ETA 11m", at most `width` columns.
std::string ProgressLine(const v1::Campaign& c, double active_seconds, int width);

class ProgressDisplay {
 public:
  // `terminal`: redraw in place (isatty); `width`: the terminal's columns.
  ProgressDisplay(std::ostream& out, bool terminal, int width = 100);

  // A line of its own (an event, a message), above the status line.
  void Line(const std::string& text);
  // The campaign as it is now.
  void Update(const v1::Campaign& c, double active_seconds);
  // Leaves the last status on its own line.
  void Finish();

 private:
  void ClearStatus();

  std::mutex mu_;
  std::ostream& out_;
  const bool terminal_;
  const int width_;
  std::string status_;        // the status line on screen (terminal)
  std::string last_key_;      // what the last plain line said, the clock aside
  double last_plain_seconds_ = -1e9;
};

// Whether standard output (fd 1) or standard error (fd 2) is a terminal, and
// its width (COLUMNS, else the ioctl, else 100).
bool IsTerminal(int fd);
int TerminalWidth(int fd);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_PROGRESS_H_
