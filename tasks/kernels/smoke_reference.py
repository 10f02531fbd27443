#!/usr/bin/env python3
"""CPU smoke test of every reference in tasks/kernels/ (no GPU needed).

Parses each definition, resolves every workload's axes, then runs the reference on the
CPU with the var axes shrunk to at most 64 (real sizes need a GPU) and bfloat16/fp8
inputs given as float32 copies (CPU bf16 support is partial in older torch). Checks
that the outputs have the declared shapes and are finite.

    /usr/bin/python3 tasks/kernels/smoke_reference.py
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_check as gc  # noqa: E402  (reuses the loaders; no CUDA needed for them)

SMALL = 64


def smoke(folder):
    prob_dir, defn, workloads, sol = gc.load_problem(folder)
    ns = {"__name__": "reference"}
    exec(compile(defn["reference"], folder + ":reference", "exec"), ns)
    if "run" not in ns:
        return "FAIL no run()"
    for w in workloads:
        gc.resolve_axes(defn, w)  # every workload binds its axes
        for name in defn["inputs"]:
            if name not in w["inputs"]:
                return "FAIL workload %s gives no source for input %r" % (w["uuid"], name)
    notes = []
    if any(s["dtype"].startswith("float8") for s in
           list(defn["inputs"].values()) + list(defn["outputs"].values())) and \
            not hasattr(torch, "float8_e4m3fn"):
        notes.append("float8 needs torch>=2.1: parsed only")
        return "ok (" + "; ".join(notes) + ")"
    w = dict(workloads[0])
    w["axes"] = {k: min(v, SMALL) for k, v in w["axes"].items()}
    axes = gc.resolve_axes(defn, w)
    torch.manual_seed(0)
    ref_args, _ = make_cpu_inputs(defn, ns, w, axes)
    with torch.no_grad():
        out = ns["run"](*ref_args)
    if isinstance(out, dict):
        out = [out[n] for n in defn["outputs"]]
    elif not isinstance(out, (list, tuple)):
        out = [out]
    if len(out) != len(defn["outputs"]):
        return "FAIL run() returned %d outputs, definition has %d" % (len(out), len(defn["outputs"]))
    for (name, spec), o in zip(defn["outputs"].items(), out):
        shape = gc.shape_of(spec, axes) or []
        if list(o.shape) != shape:
            return "FAIL output %s shape %s, expected %s" % (name, list(o.shape), shape)
        if o.is_floating_point() and not torch.isfinite(o).all():
            return "FAIL output %s has NaN/Inf" % name
    return "ok (ran at %s)" % ",".join("%s=%s" % kv for kv in w["axes"].items())


def make_cpu_inputs(defn, ns, w, axes):
    saved = dict(gc.DTYPES)
    try:
        # bf16/fp16 inputs as float32 copies on the CPU
        for k in ("bfloat16", "float16"):
            gc.DTYPES[k] = torch.float32
        ref_args, kern = gc.make_inputs(defn, ns, w, axes, "cpu")
    finally:
        gc.DTYPES.clear()
        gc.DTYPES.update(saved)
    ref_args = [a.float() if isinstance(a, torch.Tensor) and a.dtype in
                (torch.bfloat16, torch.float16) else a for a in ref_args]
    return ref_args, kern


def main():
    folders = sorted(d for d in os.listdir(gc.HERE)
                     if os.path.isfile(os.path.join(gc.HERE, d, "definition.json")))
    bad = 0
    for f in folders:
        try:
            status = smoke(f)
        except Exception as e:  # noqa: BLE001
            status = "FAIL " + gc.one_line(e)
        bad += status.startswith("FAIL")
        print("%-24s %s" % (f, status))
    print("smoke_reference: %d/%d references ok (torch %s)" % (len(folders) - bad, len(folders),
                                                                torch.__version__))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
