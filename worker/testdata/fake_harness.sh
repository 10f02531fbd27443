#!/bin/sh
# Stands in for ratchet-harness in worker_loop_test: behaves as the solution's
# "mode" file says, and echoes its command line into the result message.
out=""; solution=""
args="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift ;;
    --solution) solution="$2"; shift ;;
  esac
  shift
done
mode=$(cat "$solution/mode" 2>/dev/null)
echo "stage: fake $mode" >&2
case "$mode" in
  ok) printf '{"outcome":"ok","score":0.75,"message":"%s","workloads":[{"index":0,"axes":"N=4","correct":true,"score":0.75}]}' "$args" > "$out" ;;
  sleep) sleep 100 ;;
  segv) kill -SEGV $$ ;;
  exit) exit 3 ;;
esac
exit 0
