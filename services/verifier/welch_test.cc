#include "services/verifier/welch.h"

#include <cmath>

#include "gtest/gtest.h"

namespace ratchet::verifier {
namespace {

TEST(StudentT, MatchesClosedForms) {
  // df = 1 is the Cauchy distribution: P(T >= t) = 1/2 - atan(t)/pi.
  for (double t : {0.0, 0.5, 1.0, 3.0, 10.0})
    EXPECT_NEAR(StudentTUpperTail(t, 1), 0.5 - std::atan(t) / M_PI, 1e-10) << t;
  // df = 2: P(T >= t) = 1/2 - t / (2 sqrt(t^2 + 2)).
  for (double t : {-2.0, 0.3, 1.0, 3.0, 8.0})
    EXPECT_NEAR(StudentTUpperTail(t, 2), 0.5 - t / (2 * std::sqrt(t * t + 2)), 1e-10) << t;
  // Large df approaches the normal tail: P(Z >= 1.6449) = 0.05.
  EXPECT_NEAR(StudentTUpperTail(1.6448536, 1e6), 0.05, 1e-4);
}

TEST(Welch, SeparatedSamplesAreSignificant) {
  WelchResult r = WelchGreater({0.61, 0.63, 0.62}, {0.50, 0.52, 0.51});
  EXPECT_NEAR(r.t, 0.11 / std::sqrt(2 * 0.0001 / 3), 1e-9);
  EXPECT_NEAR(r.df, 4.0, 1e-9);  // equal variances and sizes: n_a + n_b - 2
  EXPECT_LT(r.p, 0.001);
  EXPECT_NEAR(r.effect, 11.0, 1e-9);
}

TEST(Welch, OverlappingSamplesAreNot) {
  WelchResult r = WelchGreater({0.55, 0.70, 0.49}, {0.50, 0.52, 0.56});
  EXPECT_GT(r.p, 0.1);
  EXPECT_LT(r.p, 0.5);
  // The other way round the p-value is the complement.
  EXPECT_NEAR(WelchGreater({0.50, 0.52, 0.56}, {0.55, 0.70, 0.49}).p, 1 - r.p, 1e-12);
}

TEST(Welch, DegenerateInputs) {
  EXPECT_EQ(WelchGreater({1.0}, {0.5, 0.6}).p, 1.0);       // too few samples
  EXPECT_EQ(WelchGreater({0.7, 0.7}, {0.5, 0.5}).p, 0.0);  // no noise, a is larger
  EXPECT_EQ(WelchGreater({0.5, 0.5}, {0.5, 0.5}).p, 1.0);
}

}  // namespace
}  // namespace ratchet::verifier
