"""Turns the raw output of tests/bench/gpu_suite.sh into the report tables."""
import glob
import json
import os
import statistics
import sys


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except Exception:  # noqa: BLE001 - a missing or broken file is a row that says so
        return None


def us(ns):
    return "-" if not ns else ("%.1f" % (ns / 1e3) if ns < 1e7 else "%.0f" % (ns / 1e3))


def main(raw):
    probe = load(os.path.join(raw, "probe.json")) or {}
    print("== GPU calibration vs peak table")
    for g in probe.get("gpus", probe if isinstance(probe, list) else []):
        print("  %s (%s): copy %.0f GB/s measured vs %.0f table; bf16 GEMM %.0f TFLOP/s "
              "measured vs %.0f table" % (
                  g.get("model"), g.get("sku"), g.get("measured_copy_gbps", 0),
                  g.get("table_dram_gbps", 0), g.get("measured_gemm_bf16_tflops", 0),
                  g.get("table_bf16_tflops", 0)))
    print("\n== Suite: baseline solutions through the CUDA harness (per workload)")
    print("%-22s %-34s %-8s %9s %9s %9s %9s %9s %9s %7s %s" % (
        "problem", "workload", "outcome", "T_b_eager", "T_b_comp", "T_refkern", "T_sol",
        "T_k", "T_k_evt", "score", "flags"))
    scores = {}
    harness_tk = {}
    for path in sorted(glob.glob(os.path.join(raw, "bench_*.json"))):
        name = os.path.basename(path)[6:-5]
        r = load(path)
        if not r:
            print("%-22s %-34s %s" % (name, "-", "no result"))
            continue
        for w in r.get("workloads", []):
            print("%-22s %-34s %-8s %9s %9s %9s %9s %9s %9s %7.3f %s" % (
                name[:22], w.get("axes", "")[:34], r.get("outcome"), us(w.get("t_b_eager_ns")),
                us(w.get("t_b_compile_ns")), us(w.get("t_ref_kernel_ns")), us(w.get("t_sol_ns")),
                us(w.get("t_k_ns")), us(w.get("t_k_events_ns")), w.get("score", 0),
                ",".join(w.get("flags", []))))
            harness_tk[(name, w.get("index"))] = w.get("t_k_ns")
        notes = sorted({n for w in r.get("workloads", []) for n in w.get("baseline_notes", [])})
        for n in notes:
            print("%-22s   baseline note: %s" % (name[:22], n[:240]))
        if r.get("outcome") != "ok":
            print("%-22s %-34s %-8s %s" % (name, "-", r.get("outcome"),
                                          (r.get("message") or "")[:200].replace("\n", " ")))
        scores[name] = r.get("score", 0)
    if scores:
        print("problem SOL scores: " + ", ".join("%s %.3f" % kv for kv in sorted(scores.items())))
        print("suite mean SOL score of the baselines: %.3f" % statistics.mean(scores.values()))

    print("\n== Repeatability: median T_k over 3 harness runs (spread = (max-min)/mean)")
    for name in sorted({os.path.basename(p)[7:-7] for p in glob.glob(os.path.join(raw, "repeat_*_*.json"))}):
        runs = [load(p) for p in sorted(glob.glob(os.path.join(raw, "repeat_%s_*.json" % name)))]
        runs = [r for r in runs if r and r.get("workloads")]
        for i in range(len(runs[0]["workloads"]) if runs else 0):
            vals = [r["workloads"][i]["t_k_ns"] for r in runs if i < len(r["workloads"])]
            m = statistics.mean(vals)
            print("  %-20s workload %d: %s us  spread %.2f%%" % (
                name, i, " ".join(us(v) for v in vals), 100 * (max(vals) - min(vals)) / m if m else 0))

    print("\n== Agreement: harness T_k (CUPTI) vs Triton do_bench on the same baseline")
    check = load(os.path.join(raw, "gpu_check.json")) or {}
    ratios = []
    index = {}
    for row in check.get("rows", []):
        index.setdefault(row.get("problem"), []).append(row)
    for (name, wi), tk in sorted(harness_tk.items()):
        rows = index.get(name, [])
        if wi is None or wi >= len(rows) or not tk:
            continue
        db = rows[wi].get("base_us_do_bench")
        if not db:
            continue
        ratio = (tk / 1e3) / db
        ratios.append(ratio)
        print("  %-22s workload %d: harness %9s us  do_bench %9.1f us  ratio %.3f" % (
            name, wi, us(tk), db, ratio))
    if ratios:
        print("  ratios: median %.3f, min %.3f, max %.3f over %d kernels" % (
            statistics.median(ratios), min(ratios), max(ratios), len(ratios)))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ratchet-gpu-suite/raw")
