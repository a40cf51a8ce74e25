#!/usr/bin/env bash
# Runs one libFuzzer target (tests/fuzz: plan, attach) for SECONDS from the committed corpus,
# under ASan and UBSan. New interesting inputs go to build-fuzz/corpus/TARGET, not into the
# repository. A crash or a broken invariant fails (exit 1); its input is copied into
# tests/fuzz/corpus/TARGET as crash-SHA1, a regression case to commit with the fix. Entropic
# scheduling is off: with these targets its bookkeeping took 25 times the time of the runs.
#   scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]}
seconds=${2:?usage: scripts/fuzz.sh TARGET SECONDS [libFuzzer options...]}
shift 2
if [ ! -x "build-fuzz/fuzz_$target" ]; then
  CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPCIPLAN_FUZZ=ON >/dev/null
fi
cmake --build build-fuzz -j"$(nproc)" --target "fuzz_$target" >/dev/null
rm -rf "build-fuzz/artifacts/$target"
mkdir -p "build-fuzz/corpus/$target" "build-fuzz/artifacts/$target"
log="build-fuzz/fuzz-$target.log"
status=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "build-fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -entropic=0 -dict=tests/fuzz/pciplan.dict \
  -artifact_prefix="build-fuzz/artifacts/$target/" "$@" \
  "build-fuzz/corpus/$target" "tests/fuzz/corpus/$target" >"$log" 2>&1 || status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
crashes=0
for a in "build-fuzz/artifacts/$target"/*; do
  [ -f "$a" ] || continue
  crashes=$((crashes + 1))
  cp "$a" "tests/fuzz/corpus/$target/crash-$(sha1sum "$a" | cut -c1-16)"
  echo "fuzz $target: failing input $a copied into tests/fuzz/corpus/$target" >&2
done
echo "fuzz $target: ${runs:-0} executions in ${seconds}s, coverage ${cov:-0} edges, ${ft:-0} features, $crashes crashes (exit $status)"
if [ "$status" -ne 0 ] || [ "$crashes" -ne 0 ]; then
  grep -E 'ERROR|invariant violated|runtime error|SUMMARY' "$log" | head -n 20 >&2 || true
  exit 1
fi
