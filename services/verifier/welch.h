// Welch's unequal-variances t-test, one-sided: is the mean of `a` greater than
// the mean of `b`? Used to accept an improvement only beyond its noise.
#ifndef RATCHET_SERVICES_VERIFIER_WELCH_H_
#define RATCHET_SERVICES_VERIFIER_WELCH_H_

#include <vector>

namespace ratchet::verifier {

struct WelchResult {
  double t = 0;        // (mean_a - mean_b) / standard error
  double df = 0;       // Welch-Satterthwaite degrees of freedom
  double p = 1;        // one-sided p-value, P(T >= t) under equal means
  double effect = 0;   // Cohen's d: difference of means over the pooled sd
};

// Needs at least two samples on each side; with no variance at all, p is 0
// when mean_a > mean_b and 1 otherwise.
WelchResult WelchGreater(const std::vector<double>& a, const std::vector<double>& b);

// P(T >= t) for Student's t with `df` degrees of freedom (df > 0).
double StudentTUpperTail(double t, double df);

}  // namespace ratchet::verifier

#endif  // RATCHET_SERVICES_VERIFIER_WELCH_H_
