#!/usr/bin/env python3
"""The speedrun's significance test over train-target runs, from the JSON that
`ratchet train --json` writes (one file a run, possibly from several device
calls): the table of runs, then the one-sided one-sample t-test that the
mean validation loss is under the target (p < 0.01 needed).

  tests/bench/target_ttest.py --target 4.75 OUT1/target-4.json OUT2/target-5.json ...

Standard library only (the t distribution through the regularized incomplete
beta function), so it runs where scipy is not installed.
"""
import argparse
import json
import math
import statistics
import sys


def _betacf(a, b, x):
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def regularized_beta(a, b, x):
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log(1.0 - x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t, df):
    """P(T <= t) for Student's t with df degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * regularized_beta(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def one_sided_less(samples, target):
    """t and p of H1: mean(samples) < target (scipy's ttest_1samp, 'less')."""
    n = len(samples)
    sd = statistics.stdev(samples)
    if sd == 0:
        return (-math.inf, 0.0) if statistics.mean(samples) < target else (math.inf, 1.0)
    t = (statistics.mean(samples) - target) / (sd / math.sqrt(n))
    return t, t_cdf(t, n - 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, required=True, help="the target validation loss")
    parser.add_argument("runs", nargs="+", help="ratchet train --json outputs, one a run")
    args = parser.parse_args()
    times, losses, unfinished = [], [], 0
    print("%-40s %10s %10s %8s" % ("run", "train s", "val loss", "steps"))
    for path in args.runs:
        try:
            with open(path) as f:
                d = json.load(f)
            seconds = float(d["training"]["training_seconds"])
            loss = float(d["evaluation"]["loss"])
        except (OSError, ValueError, KeyError, TypeError) as e:
            # Left out, and said: a run that failed is not a run under the target.
            print("%-40s not a finished run (%s: %s)" % (path[-40:], type(e).__name__, e))
            unfinished += 1
            continue
        times.append(seconds)
        losses.append(loss)
        print("%-40s %10.1f %10.4f %8s" % (path[-40:], seconds, loss, d["training"].get("steps", "")))
    if not losses:
        print("no finished run")
        return 1
    print("time to target: mean %.1f s; loss: mean %.4f" % (statistics.mean(times), statistics.mean(losses)))
    if len(losses) < 2:
        print("one run: no t-test (the speedrun's rule needs several)")
    else:
        t, p = one_sided_less(losses, args.target)
        print("one-sided one-sample t-test, mean loss < %.4f: t=%.3f df=%d p=%.3g (%s 0.01)" % (
            args.target, t, len(losses) - 1, p, "below" if p < 0.01 else "not below"))
    return 1 if unfinished else 0


if __name__ == "__main__":
    sys.exit(main())
