#!/bin/bash
# Builds the libFuzzer targets of tests/fuzz with clang in a build folder of
# their own and runs each for a bounded time on a seed corpus taken from the
# repository (tasks/, kernels/testdata/, tests/, worker/testdata/). Prints the
# runs and the time of each fuzzer; exits non-zero if any of them crashed
# (the input that did it is kept under BUILD/artifacts/).
#
# usage: tests/fuzz/run_fuzzers.sh [--build-dir DIR] [--seconds N] [--runs N]
#                                   [--seed S] [FUZZER...]
#   --build-dir  default: build-fuzz in the repository
#   --seconds    per fuzzer (default 60), or until --runs inputs, if sooner
#   --runs       inputs per fuzzer (default: as many as the time allows)
#   --seed       libFuzzer's seed (default: a new one each run)
# ctest runs it as fuzz.all (label fuzz) with --build-dir build/fuzz, a fixed
# seed and a fixed number of inputs: the same inputs on every machine, however
# fast, so a run's outcome does not depend on the host's speed. Exploring
# further is a longer run by hand (--seconds 600, no --runs).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
build="$repo/build-fuzz"
seconds=60
runs=0
fuzz_seed=0
only=()
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build="$2"; shift 2 ;;
    --build-dir=*) build="${1#*=}"; shift ;;
    --seconds) seconds="$2"; shift 2 ;;
    --seconds=*) seconds="${1#*=}"; shift ;;
    --runs) runs="$2"; shift 2 ;;
    --runs=*) runs="${1#*=}"; shift ;;
    --seed) fuzz_seed="$2"; shift 2 ;;
    --seed=*) fuzz_seed="${1#*=}"; shift ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) only+=("$1"); shift ;;
  esac
done
fuzzers=(spec_fuzzer spec_validation_fuzzer problem_fuzzer solution_fuzzer result_fuzzer)
if [ ${#only[@]} -gt 0 ]; then fuzzers=("${only[@]}"); fi

for tool in clang clang++ cmake; do
  command -v "$tool" >/dev/null || { echo "run_fuzzers: $tool not found (scripts/install-deps.sh)"; exit 1; }
done
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi

start=$(date +%s)
mkdir -p "$build"
echo "run_fuzzers: configuring $build with clang"
if ! CC=clang CXX=clang++ cmake -S "$repo" -B "$build" "${generator[@]}" \
     -DRATCHET_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build/configure.log" 2>&1; then
  tail -40 "$build/configure.log"; exit 1
fi
echo "run_fuzzers: building ${fuzzers[*]}"
if ! cmake --build "$build" --target "${fuzzers[@]}" -j2 >"$build/build.log" 2>&1; then
  grep -E "error|Error" "$build/build.log" | head -40; exit 1
fi
echo "run_fuzzers: built in $(( $(date +%s) - start )) s"

# Seeds: copied into a working corpus per fuzzer, so that what the fuzzer
# adds stays in the build folder (and carries over to the next run there).
seed() {  # seed FUZZER FILE...
  local dir="$build/corpus/$1"; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/seed-$(echo "$f" | md5sum | cut -c1-12)"; done
  return 0
}
cd "$repo"
seed spec_fuzzer tasks/*.yaml
seed solution_fuzzer $(find tasks kernels/testdata tests/hacks tests/data -name solution.json | head -200)
seed result_fuzzer worker/testdata/*.json
mkdir -p "$build/corpus/problem_fuzzer" "$build/corpus/spec_validation_fuzzer"
for def in $(find tasks kernels/testdata tests/data -name definition.json | head -100); do
  d=$(dirname "$def")
  [ -f "$d/workload.jsonl" ] || continue
  { cat "$def"; printf '\n---\n'; cat "$d/workload.jsonl"; } \
    >"$build/corpus/problem_fuzzer/seed-$(echo "$d" | md5sum | cut -c1-12)"
done
# The validator's corpus starts empty: libFuzzer grows protobuf messages
# from nothing quickly (fields are a tag and a value).

failed=0
# The table also goes to BUILD/summary.txt (.ci/run prints it after ctest,
# which shows a passing test's output only on failure).
summary="$build/summary.txt"
printf '%-24s %12s %8s %8s  %s\n' fuzzer runs seconds corpus result | tee "$summary"
for f in "${fuzzers[@]}"; do
  log="$build/$f.log"
  mkdir -p "$build/artifacts"
  t0=$(date +%s)
  rc=0
  # -timeout: one input taking this long is a hang; -rss_limit_mb: a leak or
  # an allocation the input controls.
  "$build/bin/$f" -max_total_time="$seconds" -runs="$((runs > 0 ? runs : -1))" \
    -seed="$fuzz_seed" -timeout=20 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="$build/artifacts/$f-" \
    "$build/corpus/$f" >"$log" 2>&1 || rc=$?
  t=$(( $(date +%s) - t0 ))
  executed=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  files=$(ls "$build/corpus/$f" | wc -l)
  if [ $rc -eq 0 ]; then result=ok; else result="CRASH (exit $rc)"; failed=1; fi
  printf '%-24s %12s %8s %8s  %s\n' "$f" "${executed:-?}" "$t" "$files" "$result" | tee -a "$summary"
  if [ $rc -ne 0 ]; then
    grep -E "ERROR|SUMMARY|runtime error|Test unit written|==[0-9]+==" "$log" | head -20 | sed 's/^/    /'
  fi
done
echo "run_fuzzers: $(( $(date +%s) - start )) s in all (seed $fuzz_seed)" | tee -a "$summary"
exit $failed
