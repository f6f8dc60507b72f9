#!/usr/bin/env bash
# Installs everything kinesis-c needs to build and test, from Debian's and npm's registries only.
# Idempotent and quiet when everything is present. Usage: scripts/install-deps.sh [build|test|bench]...
#   build  compilers and -dev libraries (default)
#   test   + cmocka, clang sanitizer runtime, aws CLI v2, valgrind, curl and openssl (TLS tests), pytest for the pyenv python (unpacked Debian packages),
#          and the npm peers and SDK used by the integration tests (kinesalite, @aws-sdk/client-kinesis)
#   bench  + wrk, hyperfine, perf, GNU time (peak RSS) and kinesalite
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
want_test=0 want_bench=0
for a in "${@:-build}"; do
  case "$a" in
    build) ;;
    test) want_test=1 ;;
    bench) want_bench=1 ;;
    *) echo "install-deps: unknown part '$a' (build, test, bench)" >&2; exit 2 ;;
  esac
done

pkgs=(build-essential cmake pkg-config libssl-dev libcurl4-openssl-dev libcjson-dev libuv1-dev libhttp-parser-dev
      libnghttp2-dev)
[ $want_test = 1 ] && pkgs+=(libcmocka-dev clang libclang-rt-14-dev awscli valgrind curl openssl)
[ $want_bench = 1 ] && pkgs+=(wrk hyperfine linux-perf time)

missing=()
# The machine may carry a Node.js with its own npm (not Debian's); take Debian's only when there is none.
if [ $want_test = 1 ] || [ $want_bench = 1 ]; then
  command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
fi
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_=sudo
  $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# pytest for the python that has boto3 and moto (the pyenv build first on PATH): unpacked from Debian's packages, so
# that python keeps its own boto3 (PyPI is not reachable here).
if [ $want_test = 1 ] && [ ! -f "$deps/pylib/.done" ]; then
  echo "install-deps: unpacking Debian's pytest into $deps/pylib"
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq python3-pytest python3-pluggy python3-iniconfig python3-packaging python3-py \
     >/dev/null 2>&1 || { apt-get update -qq && apt-get download -qq python3-pytest python3-pluggy \
     python3-iniconfig python3-packaging python3-py; })
  mkdir -p "$deps/pylib"
  for d in "$tmp"/*.deb; do dpkg -x "$d" "$tmp/x"; done
  cp -r "$tmp"/x/usr/lib/python3/dist-packages/. "$deps/pylib/"
  rm -rf "$tmp"
  touch "$deps/pylib/.done"
fi

# npm peers: kinesalite (a Kinesis emulator we test and benchmark against) and the JS SDK v3 (an unmodified client).
node_pkgs=()
[ $want_test = 1 ] && node_pkgs+=(kinesalite@3.3.3 @aws-sdk/client-kinesis@3 @smithy/node-http-handler)
[ $want_bench = 1 ] && node_pkgs+=(kinesalite@3.3.3)
# Installed when any of them is missing (a bench-only install must not hide the SDK that the tests need).
node_missing=()
for p in "${node_pkgs[@]}"; do
  name=${p%@*}; [ -n "$name" ] || name=$p  # kinesalite@3.3.3 -> kinesalite; @smithy/x stays @smithy/x
  [ -f "$deps/node/node_modules/$name/package.json" ] || node_missing+=("$p")
done
if [ ${#node_missing[@]} -gt 0 ]; then
  echo "install-deps: npm install ${node_pkgs[*]} into $deps/node"
  mkdir -p "$deps/node"
  (cd "$deps/node" && [ -f package.json ] || echo '{"private":true}' > "$deps/node/package.json")
  (cd "$deps/node" && npm install --silent --no-audit --no-fund "${node_pkgs[@]}" >/dev/null)
fi