#!/usr/bin/env bash
# Compiles every baseline solution in tasks/kernels/ with nvcc, for the default knobs and
# a sweep of other knob combinations, and fails on any error or warning.
#
#   tasks/kernels/compile_all.sh            # default + each knob choice one at a time
#                                           #   + all-smallest + all-largest
#   tasks/kernels/compile_all.sh --quick    # default + all-smallest + all-largest
#   ARCH=sm_100a tasks/kernels/compile_all.sh   # another target (default sm_90a)
#   JOBS=8 NVCC=/path/to/nvcc ...
#
# Runs on the build machines (no GPU needed) and on the GPU machines. Prints one line per
# compile and a summary; exit status 0 only when every combination compiled cleanly.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
NVCC="${NVCC:-/usr/local/cuda/bin/nvcc}"
ARCH="${ARCH:-sm_90a}"
JOBS="${JOBS:-$(nproc)}"
MODE="full"
[[ "${1:-}" == "--quick" ]] && MODE="quick"
PY="${PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || PY=/usr/bin/python3

if [[ ! -x "$NVCC" ]]; then
  echo "compile_all: nvcc not found at $NVCC (set NVCC=...)" >&2
  exit 2
fi
OUT="$(mktemp -d /tmp/ratchet-compile-all.XXXXXX)"
trap 'rm -rf "$OUT"' EXIT
COMPUTE="compute_${ARCH#sm_}"

# One line per job: problem<TAB>label<TAB>-DA=1 -DB=2<TAB>libraries
"$PY" - "$HERE" "$MODE" > "$OUT/jobs.tsv" <<'PYEOF'
import json, os, sys
here, mode = sys.argv[1], sys.argv[2]
for prob in sorted(os.listdir(here)):
    sol = os.path.join(here, prob, "baseline", "solution.json")
    if not os.path.isfile(sol):
        continue
    with open(sol) as f:
        s = json.load(f)
    knobs = s.get("knobs", {})
    libs = " ".join("-l" + l for l in s.get("libraries", []))
    default = {k: v["default"] for k, v in knobs.items()}
    combos = [("default", dict(default))]
    combos.append(("all-min", {k: min(v["choices"]) for k, v in knobs.items()}))
    combos.append(("all-max", {k: max(v["choices"]) for k, v in knobs.items()}))
    if mode == "full":
        for k, v in knobs.items():
            for c in v["choices"]:
                if c != v["default"]:
                    combos.append(("%s=%s" % (k, c), dict(default, **{k: c})))
        # Each VARIANT with the largest tiles/blocks too, where a VARIANT knob exists.
        if "VARIANT" in knobs:
            for c in knobs["VARIANT"]["choices"]:
                d = {k: max(v["choices"]) for k, v in knobs.items()}
                d["VARIANT"] = c
                combos.append(("all-max,VARIANT=%s" % c, d))
    seen = set()
    for label, d in combos:
        flags = " ".join("-D%s=%s" % kv for kv in sorted(d.items()))
        if flags in seen:
            continue
        seen.add(flags)
        print("%s\t%s\t%s\t%s" % (prob, label, flags, libs))
PYEOF

compile_one() {
  local prob="$1" label="$2" flags="$3" libs="$4"
  local tag; tag="$(echo "$prob-$label" | tr -c 'A-Za-z0-9_.-' '_')"
  local log="$OUT/$tag.log"
  # shellcheck disable=SC2086
  if "$NVCC" -O3 -std=c++17 -shared -Xcompiler -fPIC \
      -gencode=arch=$COMPUTE,code=$ARCH -I"$ROOT/kernels/include" $flags \
      "$HERE/$prob/baseline/kernel.cu" -o "$OUT/$tag.so" $libs >"$log" 2>&1; then
    if [[ -s "$log" ]]; then
      echo "WARN  $prob [$label] $flags"; sed 's/^/      /' "$log" | head -20; return 1
    fi
    echo "ok    $prob [$label]"
  else
    echo "FAIL  $prob [$label] $flags"; sed 's/^/      /' "$log" | head -30; return 1
  fi
}
export -f compile_one
export NVCC COMPUTE ARCH ROOT HERE OUT

total=$(wc -l < "$OUT/jobs.tsv")
echo "compile_all: $total compiles ($MODE) for $ARCH with $JOBS jobs"
set +e
tr '\t' '\037' < "$OUT/jobs.tsv" |
  xargs -P "$JOBS" -d '\n' -I{} bash -c 'IFS=$'"'"'\037'"'"' read -r p l f b <<< "{}"; compile_one "$p" "$l" "$f" "$b"' \
  | tee "$OUT/results.txt"
set -e
ok=$(grep -c '^ok ' "$OUT/results.txt" || true)
bad=$((total - ok))
echo "compile_all: $ok/$total compiled cleanly, $bad failed or warned"
[[ $bad -eq 0 ]]
