#!/usr/bin/env bash
# The main job on a fresh machine: build kinesis-c, start a local kinesisd with a 3-shard stream "Testing", put the
# Put Record step's worked example with the `kinesis` tool, and print the shard id it landed in.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install-deps.sh" build
cmake -S "$root" -B "$root/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$root/build" -j"$(nproc)" >/dev/null

port=${KN_DEMO_PORT:-4567}
data=$(mktemp -d)
"$root/build/server/kinesisd" --port "$port" --data-dir "$data" --create-stream Testing:3 --log-level warn &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "demo: kinesisd did not start" >&2; exit 1; }
  sleep 0.05
done

# kinesisd started without --credentials accepts any well-formed signature: these keys are placeholders.
AWS_ACCESS_KEY_ID=AKIDLOCALDEMO AWS_SECRET_ACCESS_KEY=local-demo-secret \
  "$root/build/cli/kinesis" put-record --endpoint-url "http://127.0.0.1:$port" --region us-east-1 \
  --stream-name Testing --partition-key 123456 --data-base64 SGVsbG8slFRoaXMgaXMgYSB0ZXN0IHN0cmluZw
