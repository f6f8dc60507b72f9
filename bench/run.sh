#!/usr/bin/env bash
# The benchmark suite in one command: installs wrk, hyperfine, perf and kinesalite (scripts/install-deps.sh bench),
# makes a Release build in build-bench/, then runs bench/suite.py: kinesalite, kinesisd (durable and --in-memory) and
# the no-op ceiling under the same load on loopback, the client workloads, and the SigV4/fdatasync micro-benchmarks.
# Prints the table of figures and kinesisd/kinesalite ratios; everything lands in bench/results/<UTC time>/.
# About 10 minutes on a 2-core machine by default; the BENCH_* variables (documented in bench/suite.py) make it
# longer or narrower, e.g. BENCH_DURATION=30 bench/run.sh. Exit status 1 when any run was invalid or failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${BENCH_BUILD_DIR:-$root/build-bench}

"$root/scripts/install-deps.sh" build bench
# The benchmark's python is the one with boto3 and the aws CLI v1 (the pyenv build, first on PATH).
python3 -c 'import boto3' 2>/dev/null || { echo "bench: python3 has no boto3 (use the pyenv python)" >&2; exit 1; }
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DKN_SANITIZE=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
BENCH_BUILD_DIR=$build exec python3 "$root/bench/suite.py"
