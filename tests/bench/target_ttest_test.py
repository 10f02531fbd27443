#!/usr/bin/env python3
"""target_ttest.py's t distribution against closed forms, and its verdicts on
the three H100 runs of docs/results/gpu-h100-2026-12-06-train-target.txt
(scipy's ttest_1samp gave p = 0.0129 against 4.70 and 0.0067 against 4.75)."""
import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import target_ttest  # noqa: E402


class TDistribution(unittest.TestCase):
    def test_closed_forms(self):
        for t in (-6.0, -3.0, -1.0, -0.2, 0.5, 2.0, 7.0):
            # df = 1 is Cauchy's; df = 2 has 1/2 (1 + t / sqrt(t^2 + 2)).
            self.assertAlmostEqual(target_ttest.t_cdf(t, 1), 0.5 + math.atan(t) / math.pi, places=12)
            self.assertAlmostEqual(target_ttest.t_cdf(t, 2), 0.5 * (1 + t / math.sqrt(t * t + 2)),
                                   places=12)

    def test_large_df_nears_the_normal(self):
        normal = 0.5 * math.erfc(2.0 / math.sqrt(2))  # P(Z < -2)
        self.assertAlmostEqual(target_ttest.t_cdf(-2.0, 100000), normal, places=5)


class Verdicts(unittest.TestCase):
    LOSSES = [4.6163, 4.5580, 4.5530]

    def run_script(self, target, losses, extra=()):
        with tempfile.TemporaryDirectory() as d:
            paths = []
            for i, loss in enumerate(losses):
                paths.append(os.path.join(d, "target-%d.json" % i))
                with open(paths[-1], "w") as f:
                    json.dump({"training": {"training_seconds": 113.0, "steps": 1200},
                               "evaluation": {"loss": loss}}, f)
            return subprocess.run([sys.executable, os.path.join(HERE, "target_ttest.py"),
                                   "--target", str(target)] + paths + list(extra),
                                  capture_output=True, text=True)

    def test_the_h100_runs(self):
        t, p = target_ttest.one_sided_less(self.LOSSES, 4.70)
        self.assertAlmostEqual(t, -6.114, places=3)
        self.assertAlmostEqual(p, 0.0129, places=4)
        out = self.run_script(4.70, self.LOSSES)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("p=0.0129 (not below 0.01)", out.stdout)
        out = self.run_script(4.75, self.LOSSES)
        self.assertIn("p=0.00666 (below 0.01)", out.stdout)

    def test_an_unfinished_run_is_named_left_out_and_fails_the_call(self):
        out = self.run_script(4.75, self.LOSSES, extra=["/nonexistent/target-9.json"])
        self.assertEqual(out.returncode, 1)
        self.assertIn("not a finished run", out.stdout)
        self.assertIn("df=2", out.stdout)  # the three others still counted


if __name__ == "__main__":
    unittest.main()
