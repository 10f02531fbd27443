#!/bin/bash
# The CUDA planted-hack corpus on a GPU machine, from the repository root,
# with binaries built elsewhere (deploy/bundle.sh puts hack_corpus_test,
# ratchet-harness(-cuda), ratchet-gpu-probe, oracle.py and kernel_abi.h in
# BIN_DIR and the shared libraries they need in BIN_DIR/../lib):
#   tests/hacks/cuda/run_corpus.sh bundle/bin
# Prints the corpus table, the catch and false-positive rates and a last
# line "corpus: PASS", "corpus: FAIL (rc N)" or "corpus: SKIPPED" (no GPU). Bounded: TIMEOUT seconds
# (default 700; the full corpus took about 560 s on an H100) for the whole run. T_b is eager PyTorch (torch.compile off,
# RATCHET_TB_COMPILE=1 to turn it on): the corpus compares candidates with
# each other, not with the baseline.
set -uo pipefail
BIN=${1:?usage: tests/hacks/cuda/run_corpus.sh BIN_DIR}
BIN=$(cd "$BIN" && pwd)
ROOT=$PWD
if [ ! -f "$ROOT/tests/hacks/cuda/corpus.json" ]; then
  echo "run from the repository root (tests/hacks/cuda/corpus.json not found)" >&2
  exit 2
fi
for f in hack_corpus_test ratchet-harness-cuda ratchet-gpu-probe oracle.py; do
  if [ ! -e "$BIN/$f" ]; then echo "missing $BIN/$f" >&2; exit 2; fi
done
export LD_LIBRARY_PATH="$BIN/../lib:/usr/local/cuda/lib64:/usr/local/cuda/extras/CUPTI/lib64:${LD_LIBRARY_PATH:-}"
export PATH="$BIN:$PATH"
export RATCHET_HACKS_DIR="$ROOT/tests/hacks"
export RATCHET_HARNESS="$BIN/ratchet-harness"
export RATCHET_HARNESS_CUDA="$BIN/ratchet-harness-cuda"
export RATCHET_GPU_PROBE="$BIN/ratchet-gpu-probe"
export RATCHET_TB_COMPILE=${RATCHET_TB_COMPILE:-0}
export PYTHONUNBUFFERED=1
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
start=$(date +%s)
# The compile check first (seconds), then the corpus itself.
timeout 120 "$BIN/hack_corpus_test" --gtest_filter=CudaCorpus.Compiles 2>&1 | grep -E '^\[ *(OK|FAILED|SKIPPED|PASSED) *\]|Failure|error' 
log=$(mktemp)
timeout "${TIMEOUT:-700}" "$BIN/hack_corpus_test" --gtest_filter=HackCorpus.Cuda > "$log" 2>&1
rc=$?
# The worker's per-job lines are long; the table and the verdicts are what count.
grep -v ' worker: \[job ' "$log" | grep -v ' worker: job .* start:' | tail -n 120
echo "corpus log: $log ($(( $(date +%s) - start )) s)"
if [ $rc -eq 0 ] && grep -q '^\[  SKIPPED \]' "$log"; then
  echo "corpus: SKIPPED (no usable GPU; see above)"
  exit 1
fi
if [ $rc -eq 0 ]; then echo "corpus: PASS"; else echo "corpus: FAIL (rc $rc)"; fi
exit $rc
