#!/bin/bash
# A secure one-machine cluster, as docs/security.md sets one up, running one
# campaign end to end: a CA and certificates (ratchet pki), a submit token,
# a coordinator serving TLS on loopback, one worker forced into the bwrap
# sandbox, one verifier; the campaign is submitted and watched with the token,
# then its report, workers and best candidate are printed.
#   deploy/cluster_smoke.sh BIN_DIR SPEC.yaml [WORK_DIR]
# BIN_DIR holds ratchet (and the harnesses, bwrap if not installed);
# libraries in BIN_DIR/../lib are used. Exit 0 when the campaign finished,
# its worker ran jobs under bwrap, and an anonymous caller was refused; 77
# (a skip) when bwrap cannot run on this machine.
set -uo pipefail
BIN=$(cd "${1:?usage: deploy/cluster_smoke.sh BIN_DIR SPEC.yaml [WORK_DIR]}" && pwd)
SPEC=${2:?usage: deploy/cluster_smoke.sh BIN_DIR SPEC.yaml [WORK_DIR]}
WORK=${3:-$(mktemp -d /tmp/ratchet-cluster-XXXXXX)}
mkdir -p "$WORK"
[ -d "$BIN/../lib" ] && export LD_LIBRARY_PATH="$(cd "$BIN/../lib" && pwd):/usr/local/cuda/lib64:/usr/local/cuda/extras/CUPTI/lib64:${LD_LIBRARY_PATH:-}"
export PATH="$BIN:$PATH"
R="$BIN/ratchet"
bwrap=$(command -v "$BIN/bwrap" bwrap 2> /dev/null | head -1)
if [ -z "$bwrap" ] || ! "$bwrap" --ro-bind / / --unshare-all --die-with-parent true 2> /dev/null; then
  echo "cluster_smoke: SKIPPED: bwrap cannot run here (no user namespaces?)"; exit 77
fi
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM "$p" 2> /dev/null; done; wait 2> /dev/null; }
trap cleanup EXIT

"$R" pki init "$WORK/pki" --hosts=localhost,127.0.0.1 > /dev/null || exit 1
"$R" pki issue "$WORK/pki" worker:smoke-w1 > /dev/null || exit 1
"$R" pki issue "$WORK/pki" verifier:smoke-v1 > /dev/null || exit 1
"$R" token add --tokens="$WORK/pki/tokens" --role=submit --name=smoke --json \
  | sed -n 's/.*"token": *"\([^"]*\)".*/\1/p' > "$WORK/token"
[ -s "$WORK/token" ] || { echo "cluster_smoke: no token made" >&2; exit 1; }
P="$WORK/pki"
TLS_CLIENT=(--tls-ca="$P/ca.pem" --token-file="$WORK/token")

"$R" coordinator --listen=127.0.0.1:0 --port-file="$WORK/port" --db="$WORK/ratchet.db" \
  --tls-cert="$P/coordinator.pem" --tls-key="$P/coordinator.key" --tls-ca="$P/ca.pem" \
  --tokens="$P/tokens" > "$WORK/coordinator.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$WORK/port" ] && break; sleep 0.1; done
ADDR=localhost:$(cat "$WORK/port")
"$R" worker --coordinator="$ADDR" --name=smoke-w1 --sandbox=bwrap --scratch="$WORK/scratch" \
  --tls-ca="$P/ca.pem" --tls-cert="$P/smoke-w1.pem" --tls-key="$P/smoke-w1.key" \
  > "$WORK/worker.log" 2>&1 &
pids+=($!)
"$R" verifier --coordinator="$ADDR" --name=smoke-v1 \
  --tls-ca="$P/ca.pem" --tls-cert="$P/smoke-v1.pem" --tls-key="$P/smoke-v1.key" \
  > "$WORK/verifier.log" 2>&1 &
pids+=($!)

id=$("$R" submit "$SPEC" --coordinator="$ADDR" "${TLS_CLIENT[@]}") || { tail "$WORK"/*.log; exit 1; }
echo "cluster_smoke: campaign $id on $ADDR (TLS, token role submit), logs in $WORK"
"$R" watch "$id" --coordinator="$ADDR" "${TLS_CLIENT[@]}" > "$WORK/watch.log" 2>&1
watch_rc=$?
tail -n 3 "$WORK/watch.log"
"$R" report "$id" --coordinator="$ADDR" "${TLS_CLIENT[@]}"
"$R" workers --coordinator="$ADDR" "${TLS_CLIENT[@]}"
best=$("$R" status "$id" --json --coordinator="$ADDR" "${TLS_CLIENT[@]}" | python3 -c \
  'import json,sys; d=json.load(sys.stdin); print(d.get("best_candidate_id") or d.get("bestCandidateId") or "")')
[ -n "$best" ] && "$R" show "$best" --coordinator="$ADDR" "${TLS_CLIENT[@]}" | head -40
# An anonymous caller is refused.
if "$R" status --coordinator="$ADDR" --tls-ca="$P/ca.pem" > /dev/null 2>&1; then
  echo "cluster_smoke: FAIL: an anonymous status call was answered"; exit 1
fi
grep -m1 'sandbox:' "$WORK/worker.log"
jobs=$(grep -c 'worker: job .* start:' "$WORK/worker.log")
echo "cluster_smoke: the worker ran $jobs jobs"
[ $watch_rc -eq 0 ] || { echo "cluster_smoke: FAIL: the campaign did not finish (watch rc $watch_rc)"; exit 1; }
grep -q 'sandbox: bwrap' "$WORK/worker.log" && [ "$jobs" -gt 0 ] \
  || { echo "cluster_smoke: FAIL: no job ran under bwrap"; exit 1; }
echo "cluster_smoke: PASS"
