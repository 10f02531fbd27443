#!/usr/bin/env python3
"""Planted training hacks against `ratchet train` (ctest training_hacks).

Each case copies tasks/train/gpt_tiny, plants one change, trains it for a
few steps on synthetic shards with one process and checks the outcome
ratchet gives. The numbers the verdict would use (training time by the
launcher's clock, BPB by ratchet's evaluator) must not move with what the
candidate says, and each planted hack must end as its named outcome:

  honest               ok
  causal_leak          evaluation causal-leak (the model peeks at the next token)
  progress_in_warmup   training bad-marks (training hidden inside the warm-up)
  overrun              training over-budget (ignores the budget; stopped)
  fake_loss            ok, but the reported loss 0.0001 is nowhere in the score

usage: run_train_hacks.py --ratchet=PATH --source-dir=DIR [--python=PATH]
Exit 0 when every case ends as expected; 77 (skipped) without torch.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

PLANTS = {
    "honest": [],
    "causal_leak": [(
        "model.py",
        "        return self.lm_head(rms_norm(x)).float()",
        "        logits = self.lm_head(rms_norm(x)).float()\n"
        "        peek = torch.roll(idx, -1, dims=1)  # the next token, which it must not see\n"
        "        return logits + 8.0 * F.one_hot(peek, logits.size(-1)).float()")],
    "progress_in_warmup": [(
        "train.py",
        '    control.send("phase", "warmup-begin")',
        '    control.send("phase", "warmup-begin")\n'
        '    control.send("progress", 1, "2.0000", "1000")')],
    "overrun": [(
        "train.py",
        "    while True:",
        "    time.sleep(3600)  # never stops by itself\n    while True:")],
    "fake_loss": [(
        "train.py",
        '            control.send("progress", step, "%.4f" % loss.item(), "%.0f" % rate)',
        '            control.send("progress", step, "0.0001", "%.0f" % rate)')],
}

EXPECT = {
    "honest": ("ok", "ok", None),
    "causal_leak": ("ok", "causal-leak", None),
    "progress_in_warmup": ("bad-marks", None, None),
    "overrun": ("over-budget", None, None),
    "fake_loss": ("ok", "ok", None),
}


def write_data(folder, source_dir):
    sys.path.insert(0, os.path.join(source_dir, "training", "eval"))
    import shards
    shards.write_repeating_pattern(folder)


def plant(project, edits):
    for name, old, new in edits:
        path = os.path.join(project, name)
        text = open(path).read()
        if old not in text:
            raise SystemExit("cannot plant in %s: %r not found (the baseline changed?)" % (name, old))
        open(path, "w").write(text.replace(old, new, 1))


def run_case(name, args, work, data):
    project = os.path.join(work, name)
    shutil.copytree(os.path.join(args.source_dir, "tasks", "train", "gpt_tiny"), project,
                    ignore=shutil.ignore_patterns("__pycache__"))
    plant(project, PLANTS[name])
    limit = ["--budget=3", "--grace=3", "--warmup-allowance=60"] if name == "overrun" \
        else ["--max-steps=6", "--timeout=300"]
    cmd = [args.ratchet, "train", project, "--data=" + data, "--nproc=1", "--windows=4",
           "--seq-len=64", "--knob", "PROGRESS_EVERY=1", "--json",
           "--scratch=" + os.path.join(work, name + "-scratch")] + limit
    if args.python:
        cmd.append("--python=" + args.python)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    try:
        result = json.loads(done.stdout)
    except ValueError:
        return False, "no JSON result (exit %d): %s" % (done.returncode, done.stderr[-400:])
    training = result["training"]["outcome"]
    evaluation = (result.get("evaluation") or {}).get("outcome")
    want_training, want_evaluation, _ = EXPECT[name]
    ok = training == want_training and evaluation == want_evaluation
    ok = ok and done.returncode == (0 if want_training == "ok" and want_evaluation == "ok" else 1)
    if name == "fake_loss" and ok:
        # The candidate said 0.0001; the score is ratchet's own loss.
        ok = abs(result["evaluation"]["loss"] - 0.0001) > 0.5
    detail = "training %s, evaluation %s, exit %d%s" % (
        training, evaluation, done.returncode,
        (", bpb %.3f loss %.3f" % (result["evaluation"]["bpb"], result["evaluation"]["loss"])
         if evaluation == "ok" else ""))
    if not ok:
        detail += "; " + (result.get("message") or "") + " " + done.stderr[-300:]
    return ok, detail


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--ratchet", required=True)
    p.add_argument("--source-dir", required=True)
    p.add_argument("--python", default="")
    p.add_argument("--only", default="", help="comma-separated case names")
    args = p.parse_args()
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        print("SKIPPED: this python cannot import torch and numpy")
        return 77
    work = tempfile.mkdtemp(prefix="ratchet-train-hacks-")
    data = os.path.join(work, "data")
    write_data(data, args.source_dir)
    names = args.only.split(",") if args.only else list(PLANTS)
    failures = 0
    for name in names:
        ok, detail = run_case(name, args, work, data)
        failures += not ok
        print("%-20s %-4s %s" % (name, "ok" if ok else "FAIL", detail), flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print("training hacks: %d of %d as expected" % (len(names) - failures, len(names)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
