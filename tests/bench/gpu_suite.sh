#!/bin/bash
# The GPU suite benchmark (issue: trustworthy kernel timing). On a GPU machine,
# from the repository root, with the bundle from deploy/bundle.sh:
#   OUT=/tmp/out tests/bench/gpu_suite.sh [bundle]
# 1. calibrates the GPU (ratchet-gpu-probe) and prints it next to the table;
# 2. runs `ratchet bench` (the CUDA harness) on every problem of tasks/kernels
#    with its baseline solution: T_b (eager, compile), the reference's kernel
#    time, T_sol, T_k by CUPTI and by events, SOL score;
# 3. repeats three problems three times (repeatability of the median);
# 4. times the same baselines independently with Triton's do_bench
#    (tasks/kernels/gpu_check.py) and prints harness/do_bench ratios.
# Everything lands in $OUT; the report is printed last.
set -uo pipefail
B=${1:-bundle}
OUT=${OUT:-/tmp/ratchet-gpu-suite}
mkdir -p "$OUT/raw"
export LD_LIBRARY_PATH="$B/lib:/usr/local/cuda/lib64:/usr/local/cuda/extras/CUPTI/lib64:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0 PYTHONUNBUFFERED=1
BENCH_FLAGS=${BENCH_FLAGS:-}

nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv \
  > "$OUT/raw/nvidia-smi.csv" 2>&1
"$B/bin/ratchet-gpu-probe" > "$OUT/raw/probe.json" 2> "$OUT/raw/probe.err" || echo "probe failed"

for p in tasks/kernels/*/; do
  name=$(basename "$p")
  if [ -n "${PROBLEMS:-}" ] && ! echo " $PROBLEMS " | grep -q " $name "; then continue; fi
  [ -f "$p/definition.json" ] || continue
  echo "bench $name ..."
  timeout ${BENCH_TIMEOUT:-240} "$B/bin/ratchet" bench "$p" "$p/baseline" --json $BENCH_FLAGS \
    > "$OUT/raw/bench_$name.json" 2> "$OUT/raw/bench_$name.err" \
    || echo "  $name: exit $? ($(tail -1 "$OUT/raw/bench_$name.err"))"
done
for name in ${REPEAT-rmsnorm_bf16 gemm_bf16 swiglu_bf16}; do
  for i in 1 2 3; do
    timeout ${BENCH_TIMEOUT:-240} "$B/bin/ratchet" bench "tasks/kernels/$name" "tasks/kernels/$name/baseline" --json \
      $BENCH_FLAGS > "$OUT/raw/repeat_${name}_$i.json" 2>> "$OUT/raw/repeat.err" || true
  done
done
[ "${CHECK_TIMEOUT:-400}" = 0 ] || timeout ${CHECK_TIMEOUT:-400} python3 tasks/kernels/gpu_check.py --rounds 1 ${CHECK_ARGS:-} --json "$OUT/raw/gpu_check.json" \
  > "$OUT/raw/gpu_check.txt" 2>&1 || echo "gpu_check: exit $?"
python3 tests/bench/gpu_suite_report.py "$OUT/raw" | tee "$OUT/report.txt"
tar -czf "$OUT/raw.tar.gz" -C "$OUT" raw
