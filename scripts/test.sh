#!/usr/bin/env bash
# The test command: installs what the tests need, then builds and runs the whole suite twice — a normal build and an
# AddressSanitizer + UndefinedBehaviorSanitizer build — each with the C unit tests (CTest) and the integration tests
# (pytest with boto3 against moto, kinesalite and kinesisd). Exits non-zero if anything fails.
# Last, a short fuzz run of every libFuzzer target (scripts/fuzz.sh, KN_FUZZ_SECONDS each, default 15 here).
#   scripts/test.sh            both builds, then the fuzz run
#   scripts/test.sh normal     only the normal build (quicker, while developing)
#   scripts/test.sh asan       only the sanitizer build
#   scripts/test.sh fuzz       only the fuzz run
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/install-deps.sh" build test

# The python that has boto3 and moto (pyenv's, first on PATH); pytest comes from Debian's packages in .deps/pylib.
PY=${KN_PYTHON:-$(command -v python3)}
"$PY" -c 'import boto3, moto' 2>/dev/null || { echo "test.sh: $PY lacks boto3/moto" >&2; exit 1; }
export PYTHONPATH="$root/.deps/pylib${PYTHONPATH:+:$PYTHONPATH}"
jobs=$(nproc)

run_suite() { # name, extra cmake args...
  local name=$1; shift
  local dir="$root/build-test-$name"
  echo "=== [$name] configure and build"
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >/dev/null
  cmake --build "$dir" -j"$jobs" >/dev/null
  echo "=== [$name] unit tests (ctest)"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs"
  echo "=== [$name] integration tests (pytest)"
  KN_BUILD_DIR="$dir" "$PY" -m pytest "$root/tests/integration" -q -p no:cacheprovider
}

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
case "${1:-all}" in
  normal) run_suite normal ;;
  asan) run_suite asan -DKN_SANITIZE=ON -DCMAKE_C_COMPILER=clang ;;
  fuzz) KN_FUZZ_SECONDS=${KN_FUZZ_SECONDS:-15} "$root/scripts/fuzz.sh" ;;
  all) run_suite normal; run_suite asan -DKN_SANITIZE=ON -DCMAKE_C_COMPILER=clang
       KN_FUZZ_SECONDS=${KN_FUZZ_SECONDS:-15} "$root/scripts/fuzz.sh" ;;
  *) echo "usage: scripts/test.sh [normal|asan|fuzz|all]" >&2; exit 2 ;;
esac
echo "=== all suites passed"
