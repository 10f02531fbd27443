#!/usr/bin/env bash
# GPU check of ratchet-harness-cuda: runs the harness on every candidate in
# kernels/testdata/cuda/solutions against the axpy problem and prints a table
# (candidate, expected, outcome, flags, T_k by the harness's round-trip clock,
# T_b, T_sol). Candidate code runs in ratchet-candidate-cuda, beside the harness.
#
# Run on the GPU machine from the repository root, with binaries built on a
# build machine and carried over:
#   kernels/cuda/gpu_check.sh [BIN_DIR]        # default build/bin
# BIN_DIR holds ratchet-harness-cuda, ratchet-candidate-cuda, kernel_abi.h and
# oracle.py; non-system
# libraries may sit in BIN_DIR/lib or BIN_DIR/../lib (added to LD_LIBRARY_PATH).
# Environment: RATCHET_PYTHON (oracle interpreter, default python3),
# REPS (default 50), WARMUPS (default 10), ROUNDS (default 3), ONLY (a regex
# of candidates), KEEP (keep result JSONs in this folder).
# Exit status: 0 when every candidate got its expected outcome and flag.
set -u
BIN=${1:-build/bin}
HARNESS=$BIN/ratchet-harness-cuda
DATA=kernels/testdata/cuda
for exe in "$HARNESS" "$BIN/ratchet-candidate-cuda"; do
  if [[ ! -x $exe ]]; then
    echo "gpu_check: $exe not found (pass the folder holding it)" >&2
    exit 2
  fi
done
for d in "$BIN/lib" "$BIN/../lib"; do
  [[ -d $d ]] && export LD_LIBRARY_PATH="$(cd "$d" && pwd)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/usr/local/cuda/lib64"
export RATCHET_PYTHON=${RATCHET_PYTHON:-$(command -v python3)}
OUT=${KEEP:-$(mktemp -d /tmp/ratchet-gpu-check-XXXXXX)}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/gpu: /'

# candidate | expected outcome | required flag (- for none) | message substring (- for any) | extra args
# Since the trust boundary (docs/verifier.md): caches keyed on pointers or
# sampled contents never hit with a wrong answer (new inputs at a new
# placement every call), hidden-stream work is inside T_k (the candidate
# process synchronises the device before it answers), and a candidate that
# stops working while timed leaves poisoned outputs (stale-output).
CASES=(
  "correct|ok|-|-|"
  "correct_cublas|ok|-|-|"
  "correct_two_streams|ok|-|-|"
  "correct|ok|below-sol|-|--peak-gbps 0.001 --peak-tflops 0.001"
  "lazy|wrong_answer|-|NaN|"
  "cache_pointer|ok|-|-|"
  "cache_content|ok|-|-|"
  "other_stream|ok|-|-|"
  "background_thread|wrong_answer|-|output 'c'|"
  "modifies_input|wrong_answer|modified-inputs|modified its inputs|"
  "nondeterministic|ok|-|-|"
  "out_of_bounds|out_of_bounds|-|output 'c'|"
  "illegal_address|crash|-|cudaErrorIllegalAddress|"
  "nonzero_return|crash|-|returned 7|"
  "host_segfault|crash|-|SIGSEGV|"
  "stops_when_timed|wrong_answer|stale-output|stale-output|"
  "probe_secrets|ok|-|-|"
  "compile_error|compile_error|-|this_is_not_declared|"
  "no_export|compile_error|-|ratchet_run_cuda|"
)
i=0
for c in "${CASES[@]}"; do
  IFS='|' read -r name expect flag msg extra <<<"$c"
  if [[ -n ${ONLY:-} && ! $name =~ $ONLY ]]; then continue; fi
  i=$((i + 1))
  res="$OUT/$i-$name.json"
  # shellcheck disable=SC2086
  RATCHET_RESULT_NONCE=gpu-check-$i timeout 600 "$HARNESS" --problem "$DATA/axpy" --solution "$DATA/solutions/$name" --out "$res" \
    --warmups "${WARMUPS:-10}" --repetitions "${REPS:-50}" --rounds "${ROUNDS:-3}" $extra \
    2>"$OUT/$i-$name.log"
  echo "$i|$name|$expect|$flag|$msg|$extra|$res|$?" >>"$OUT/cases.txt"
done

python3 - "$OUT/cases.txt" <<'PY'
import json, sys
rows, bad = [], 0
for line in open(sys.argv[1]):
    i, name, expect, flag, msg, extra, path, rc = line.rstrip("\n").split("|")
    try:
        r = json.load(open(path))
    except Exception as e:  # noqa: BLE001
        r = {"outcome": "no-result(rc=%s)" % rc, "message": str(e)}
    flags = r.get("flags", [])
    good = r.get("outcome") == expect and (flag == "-" or flag in flags) and \
        (msg == "-" or msg in r.get("message", "")) and r.get("nonce") == "gpu-check-" + i
    if expect == "ok" and flag == "-":
        good = good and not set(flags) & {"below-sol", "stale-output", "cached-answer",
                                          "work-after-return"}
    bad += not good
    ws = r.get("workloads", [])
    def us(k, w):
        return "%.1f" % (w.get(k, 0) / 1e3) if w else "-"
    w0 = ws[0] if ws else None
    w1 = ws[1] if len(ws) > 1 else None
    rows.append((("PASS" if good else "FAIL"), name + (" +peaks" if extra else ""), expect,
                 r.get("outcome", "?"), ",".join(flags) or "-",
                 us("t_k_ns", w0), ("%.3f" % w0["t_k_spread"]) if w0 else "-",
                 us("t_b_ns", w0), us("t_ref_kernel_ns", w0), us("t_sol_ns", w0),
                 us("t_k_ns", w1), "%.1f" % (r.get("round_trip_ns", 0) / 1e3),
                 (r.get("message", "") or "").replace("\n", " ")[:70]))
hdr = ("check", "candidate", "expected", "outcome", "flags", "Tk_us[0]", "spread[0]", "Tb_us[0]",
       "Tref_kernel_us[0]", "Tsol_us[0]", "Tk_us[1]", "round_trip_us", "message")
wid = [max(len(str(x[k])) for x in rows + [hdr]) for k in range(len(hdr))]
for row in [hdr] + rows:
    print("  ".join(str(v).ljust(wid[k]) for k, v in enumerate(row)))
print("\n%d of %d checks passed; results in %s" % (len(rows) - bad, len(rows), sys.argv[1].rsplit("/", 1)[0]))
sys.exit(1 if bad else 0)
PY
