// `ratchet report --plot`: the best score of a campaign over time and over
// evaluations, as an SVG a browser opens. Two panels side by side; in each,
// every research evaluation as a dot, the best evaluated so far (a claim,
// not yet verified) as a thin line, the best verified as a thick step line
// from the baseline, and the baseline as a dashed line.
#ifndef RATCHET_SERVICES_CLI_PLOT_H_
#define RATCHET_SERVICES_CLI_PLOT_H_

#include <string>
#include <vector>

#include "ratchet/v1/ratchet.pb.h"

namespace ratchet::cli {

struct ScorePoint {
  double seconds = 0;  // since the campaign began
  int evaluation = 0;  // research evaluations reported by then
  double score = 0;
};

struct ScoreHistory {
  std::string title;
  double baseline = -1;                  // < 0: not evaluated
  std::vector<ScorePoint> evaluations;   // research evaluations that ended ok, in order
  std::vector<ScorePoint> verified;      // each accepted verdict, in order
};

// From the campaign and the details of its candidates (GetCandidate of every
// scored one): research evaluations by the time they were stored, accepted
// verdicts by the time they were decided.
ScoreHistory HistoryOf(const v1::Campaign& campaign,
                       const std::vector<v1::CandidateDetail>& candidates);

// The SVG document.
std::string ScorePlotSvg(const ScoreHistory& history);

}  // namespace ratchet::cli

#endif  // RATCHET_SERVICES_CLI_PLOT_H_
