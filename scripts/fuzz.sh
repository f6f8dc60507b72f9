#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.c) with clang into build-fuzz and runs each for a bounded time over a copy
# of its seed corpus (fuzz/corpus/<name>/). Fails if any target crashes, leaks, trips a sanitizer or breaks one of
# its properties; the input is then left in build-fuzz/findings/<name>/ (replay it with the printed command).
#   scripts/fuzz.sh                 every target, KN_FUZZ_SECONDS (default 20) seconds each
#   scripts/fuzz.sh sigv4 base64    only these targets (names without the fuzz_ prefix)
# Environment: KN_FUZZ_SECONDS (per target), KN_FUZZ_BUILD_DIR (default <repo>/build-fuzz), KN_FUZZ_JOBS (parallel
# builds, default 2). New inputs found during a run stay in build-fuzz/corpus/<name>/; the committed seeds are not
# touched.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${KN_FUZZ_BUILD_DIR:-$root/build-fuzz}
seconds=${KN_FUZZ_SECONDS:-20}
jobs=${KN_FUZZ_JOBS:-2}

command -v clang >/dev/null || { echo "fuzz.sh: clang is needed (scripts/install-deps.sh test installs it)" >&2; exit 1; }

names=()
if [ $# -gt 0 ]; then
  names=("$@")
else
  for src in "$root"/fuzz/fuzz_*.c; do
    n=$(basename "$src" .c)
    names+=("${n#fuzz_}")
  done
fi
targets=("${names[@]/#/fuzz_}")

echo "=== build (clang, libFuzzer + ASan + UBSan) in $build"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DKN_FUZZ=ON -DKN_BUILD_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$jobs" --target "${targets[@]}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
summary=()
for name in "${names[@]}"; do
  seeds="$root/fuzz/corpus/$name"
  work="$build/corpus/$name"
  findings="$build/findings/$name"
  log="$build/fuzz-$name.log"
  mkdir -p "$work" "$findings"
  [ -d "$seeds" ] || { echo "fuzz.sh: no seed corpus $seeds" >&2; exit 1; }
  echo "=== fuzz_$name for ${seconds}s (seeds: fuzz/corpus/$name, log: $log)"
  # Run from the findings folder so crash-* files land there; the seed folder is read-only input.
  if (cd "$findings" && "$build/fuzz/fuzz_$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 "$work" "$seeds" >"$log" 2>&1); then
    status=ok
  else
    status=FAILED
    failed+=("$name")
    grep -E "ERROR|SUMMARY|fuzz property failed|Test unit written" "$log" | head -20 >&2 || true
    echo "    replay: $build/fuzz/fuzz_$name $findings/<crash file>" >&2
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 || true)
  summary+=("$(printf '%-10s %-6s %10s execs %8s execs/s  %s' "$name" "$status" "${runs:-?}" "${speed:-?}" "$cov")")
done

echo "=== summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: failed: ${failed[*]}" >&2
  exit 1
fi
