#!/usr/bin/env bash
# One-command check of the speed-of-light parts on a GPU machine (needs only
# the CUDA toolkit and python3 with torch; no Debian packages, no network):
#   1. builds ratchet-gpu-probe with g++ against /usr/local/cuda and runs it
#      (properties, peak-table entry, copy GB/s, cuBLAS bf16 GEMM TFLOP/s);
#   2. runs the oracle on tiny CUDA problems (T_b eager / compile / graph
#      kernel time, flops, a perturbed A' round), twice: the second run must
#      hit the T_b cache;
#   3. runs the oracle's CPU protocol test with this python.
# Prints a compact table at the end. Usage (repository root or anywhere):
#   bash kernels/sol/gpu_check.sh [--device N] [--python PY]
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CUDA="${CUDA_HOME:-/usr/local/cuda}"
DEV=0
PY="${RATCHET_PYTHON:-python3}"
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEV="$2"; shift 2 ;;
    --python) PY="$2"; shift 2 ;;
    *) echo "usage: $0 [--device N] [--python PY]"; exit 2 ;;
  esac
done
WORK="$(mktemp -d /tmp/ratchet-gpu-check-XXXXXX)"
echo "== work dir $WORK"
FAILS=0
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

echo "== 1. build ratchet-gpu-probe"
if ! g++ -O2 -std=c++17 -Wall -Wextra -I"$ROOT" -I"$CUDA/include" \
    "$ROOT/kernels/sol/gpu_calibration.cc" "$ROOT/kernels/sol/gpu_peaks.cc" \
    "$ROOT/kernels/sol/gpu_probe_main.cc" -L"$CUDA/lib64" -Wl,-rpath,"$CUDA/lib64" \
    -lcudart -lcublas -o "$WORK/ratchet-gpu-probe"; then
  fail "probe build"; exit 1
fi
echo "== run the probe (full calibration)"
T0=$(date +%s.%N)
"$WORK/ratchet-gpu-probe" > "$WORK/probe.json" || fail "probe exit status $?"
T1=$(date +%s.%N)
cat "$WORK/probe.json"
PROBE_S=$("$PY" -c "print(round($T1 - $T0, 2))" 2>/dev/null || echo 0)
echo "probe took ${PROBE_S}s"

echo "== 2. oracle on the GPU (device $DEV)"
mkdir -p "$WORK/oracle" "$WORK/cache"
"$PY" - "$ROOT" "$WORK" "$DEV" <<'PYEOF'
import json, os, subprocess, sys, time
root, work, dev = sys.argv[1], sys.argv[2], int(sys.argv[3])
problems = {
  # a GEMM (compute-bound, one kernel)
  "matmul_bf16": dict(
    reference="import torch\ndef run(a, b):\n    return a @ b\n",
    inputs=[("a", "bfloat16"), ("b", "bfloat16")], outputs=[("c", "bfloat16")],
    shapes=lambda n: ([[n, n], [n, n]], [[n, n]]), sizes=[256, 2048]),
  # an RMSNorm written the eager way (several small kernels: launch-bound)
  "rmsnorm_fp32": dict(
    reference="import torch\ndef run(x, w):\n    v = x.pow(2).mean(-1, keepdim=True)\n"
              "    return x * torch.rsqrt(v + 1e-6) * w\n",
    inputs=[("x", "float32"), ("w", "float32")], outputs=[("y", "float32")],
    shapes=lambda n: ([[n, 4096], [4096]], [[n, 4096]]), sizes=[8, 1024]),
}
rows = []
bad = 0
for name, p in problems.items():
    for attempt in ("miss", "hit"):
        out = os.path.join(work, "oracle", name + "-" + attempt)
        os.makedirs(out, exist_ok=True)
        ws = []
        for i, n in enumerate(p["sizes"]):
            ins, outs = p["shapes"](n)
            ws.append({"index": i, "uuid": "%s-%d" % (name, n), "axes": {"N": n},
                       "inputs": [{"kind": "random", "value": 0, "path": "", "tensor_key": "",
                                   "shape": s} for s in ins], "output_shapes": outs})
        req = {"reference": p["reference"], "entrypoint": "", "seed": 11, "rounds": 3,
               "round_specs": [{}, {}, {"perturb_of": 0}],
               "warmups": 10, "repetitions": 50, "flush_bytes": 0, "out_dir": out, "threads": 4,
               "device": "cuda", "device_index": dev, "cache_dir": os.path.join(work, "cache"),
               "input_specs": [{"name": a, "dtype": d, "scalar": False} for a, d in p["inputs"]],
               "output_specs": [{"name": a, "dtype": d, "scalar": False} for a, d in p["outputs"]],
               "workloads": ws}
        path = os.path.join(out, "req.json")
        json.dump(req, open(path, "w"))
        t0 = time.time()
        r = subprocess.run([sys.executable, os.path.join(root, "kernels/oracle/oracle.py"), path],
                           capture_output=True, text=True)
        wall = time.time() - t0
        try:
            m = json.load(open(os.path.join(out, "oracle_manifest.json")))
        except Exception as e:
            print("FAIL: %s %s: no manifest (%s)\n%s" % (name, attempt, e, r.stderr[-3000:]))
            bad += 1
            continue
        if r.returncode != 0 or "error" in m:
            print("FAIL: %s %s: rc %d %s\n%s" % (name, attempt, r.returncode, m.get("error"), r.stderr[-3000:]))
            bad += 1
            continue
        for i, w in enumerate(m["workloads"]):
            pert = w["rounds"][2].get("perturbed")
            rows.append((name, p["sizes"][i], attempt, wall, w.get("t_b_eager_ns", 0) / 1e3,
                         w.get("t_b_compile_ns", 0) / 1e3, w.get("t_b_ns", 0) / 1e3,
                         w.get("t_ref_kernel_ns", 0) / 1e3, w.get("flops"), w.get("cached"),
                         "yes" if pert else "NO", "; ".join(w.get("notes", []))[:120]))
            if attempt == "hit" and not w.get("cached"):
                print("FAIL: %s N=%d: second run did not hit the T_b cache" % (name, p["sizes"][i]))
                bad += 1
            if not pert:
                print("FAIL: %s N=%d: no perturbed round" % (name, p["sizes"][i]))
                bad += 1
        print("oracle %s (%s): %.1fs, gpu %s, torch %s, cuda %s" % (name, attempt, wall,
              m.get("gpu"), m.get("torch"), m.get("cuda")))
json.dump(rows, open(os.path.join(work, "oracle_rows.json"), "w"))
sys.exit(1 if bad else 0)
PYEOF
[ $? -eq 0 ] || fail "oracle GPU run"

echo "== 3. oracle CPU protocol test with $PY"
"$PY" "$ROOT/kernels/oracle/oracle_test.py" > "$WORK/oracle_test.log" 2>&1
RC=$?
tail -3 "$WORK/oracle_test.log"
[ $RC -eq 0 ] || fail "oracle_test.py (see $WORK/oracle_test.log)"

echo
echo "================ summary ================"
"$PY" - "$WORK" "$PROBE_S" <<'PYEOF'
import json, os, sys
work, probe_s = sys.argv[1], float(sys.argv[2])
probe = json.load(open(os.path.join(work, "probe.json")))
print("GPU calibration (probe took %.1fs; note: %s)" % (probe_s, probe.get("note") or "-"))
print("%-3s %-24s %-9s %-4s %5s %8s %14s %14s %s" % ("GPU", "MODEL", "SKU", "CC", "SMS", "L2_MIB",
      "COPY_GB/S", "GEMM_TFLOP/S", "ERROR"))
for g in probe["gpus"]:
    def pair(m, t):
        return "%.0f/%.0f(%.0f%%)" % (m, t, 100 * m / t) if t else "%.0f/?" % m
    print("%-3d %-24s %-9s %-4s %5d %8.0f %14s %14s %s" % (g["index"], g["model"][:24],
          g["sku"] or "unknown", g["compute_capability"], g["sm_count"], g["l2_bytes"] / 2**20,
          pair(g["measured_copy_gbps"], g["table_dram_gbps"]),
          pair(g["measured_gemm_bf16_tflops"], g["table_bf16_tflops"]), g["error"] or ""))
rows_path = os.path.join(work, "oracle_rows.json")
rows = json.load(open(rows_path)) if os.path.exists(rows_path) else []
print()
print("Oracle on the GPU (us; T_B = min(eager, compile); REF_KERNEL = CUDA-graph replay)")
print("%-13s %6s %-5s %7s %10s %10s %10s %11s %14s %-6s %-5s %s" % ("PROBLEM", "N", "RUN",
      "WALL_S", "T_B_EAGER", "T_B_COMP", "T_B", "REF_KERNEL", "FLOPS", "CACHED", "A'", "NOTES"))
for r in rows:
    print("%-13s %6d %-5s %7.1f %10.1f %10.1f %10.1f %11.1f %14s %-6s %-5s %s" % (
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11]))
PYEOF
echo
if [ $FAILS -eq 0 ]; then echo "gpu_check: ALL OK"; else echo "gpu_check: $FAILS FAILURE(S)"; fi
exit $FAILS
