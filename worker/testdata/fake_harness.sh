#!/bin/sh
# Stands in for ratchet-harness in worker_loop_test: behaves as the solution's
# "mode" file says, and echoes its command line into the result message.
# Like the harness, it echoes $RATCHET_RESULT_NONCE, and says it used the
# stored T_b when given --baseline FILE.
out=""; solution=""; given=false
args="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift ;;
    --solution) solution="$2"; shift ;;
    --baseline) [ -f "$2" ] && given=true; shift ;;
  esac
  shift
done
mode=$(cat "$solution/mode" 2>/dev/null)
echo "stage: fake $mode" >&2
case "$mode" in
  ok) printf '{"outcome":"ok","score":0.75,"nonce":"%s","software":"fake 1.0","message":"%s","workloads":[{"index":0,"axes":"N=4","correct":true,"score":0.75,"t_b_ns":1000,"t_b_spread":0.01,"t_b_given":%s}]}' "$RATCHET_RESULT_NONCE" "$args" "$given" > "$out" ;;
  sleep) sleep 100 ;;
  # As the sandbox's PID 1 (bwrap --as-pid-1) a shell cannot signal itself
  # to death; 139 is what bwrap reports for a command killed by SIGSEGV.
  segv) kill -SEGV $$; exit 139 ;;
  exit) exit 3 ;;
esac
exit 0
