#include "services/verifier/welch.h"

#include <cmath>
#include <limits>

namespace ratchet::verifier {
namespace {

// Continued fraction of the incomplete beta function (modified Lentz).
double BetaContinuedFraction(double a, double b, double x) {
  constexpr int kMaxIterations = 300;
  constexpr double kEpsilon = 1e-15, kTiny = 1e-300;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double step = d * c;
    h *= step;
    if (std::fabs(step - 1) < kEpsilon) break;
  }
  return h;
}

// I_x(a, b), the regularized incomplete beta function.
double RegularizedIncompleteBeta(double a, double b, double x) {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  // The fraction converges fast only on its side of the mean.
  if (x < (a + 1) / (a + b + 2)) return front * BetaContinuedFraction(a, b, x) / a;
  return 1 - front * BetaContinuedFraction(b, a, 1 - x) / b;
}

void MeanVariance(const std::vector<double>& v, double* mean, double* var) {
  double sum = 0;
  for (double x : v) sum += x;
  *mean = sum / v.size();
  double ss = 0;
  for (double x : v) ss += (x - *mean) * (x - *mean);
  *var = v.size() > 1 ? ss / (v.size() - 1) : 0;
}

}  // namespace

double StudentTUpperTail(double t, double df) {
  const double tail = 0.5 * RegularizedIncompleteBeta(df / 2, 0.5, df / (df + t * t));
  return t >= 0 ? tail : 1 - tail;
}

WelchResult WelchGreater(const std::vector<double>& a, const std::vector<double>& b) {
  WelchResult r;
  if (a.size() < 2 || b.size() < 2) return r;
  double ma, va, mb, vb;
  MeanVariance(a, &ma, &va);
  MeanVariance(b, &mb, &vb);
  const double na = a.size(), nb = b.size();
  const double sa = va / na, sb = vb / nb;
  const double pooled = std::sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2));
  r.effect = pooled > 0 ? (ma - mb) / pooled
                        : (ma > mb ? std::numeric_limits<double>::infinity() : 0);
  if (sa + sb == 0) {  // no noise at all: the means decide
    r.t = ma > mb ? std::numeric_limits<double>::infinity() : 0;
    r.df = na + nb - 2;
    r.p = ma > mb ? 0 : 1;
    return r;
  }
  r.t = (ma - mb) / std::sqrt(sa + sb);
  r.df = (sa + sb) * (sa + sb) / (sa * sa / (na - 1) + sb * sb / (nb - 1));
  r.p = StudentTUpperTail(r.t, r.df);
  return r;
}

}  // namespace ratchet::verifier
