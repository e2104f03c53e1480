#!/bin/sh
# Runs sdk_test.mjs (the official OpenAI Node SDK) against a fresh
# `switchyard serve` on a free loopback port.
# usage: run_sdk_test.sh SWITCHYARD_BIN NPM_PREFIX UPSTREAM_SCRIPT
# The `tools` group is served by the test upstream (tests/upstream), which
# this script starts too.
# The SDK is installed once into NPM_PREFIX (npm install openai@4) and
# reused from there.
set -eu
bin=$1
prefix=$2
upstream=$3
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -f "$prefix/node_modules/openai/package.json" ]; then
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" openai@4 >&2
fi

work=$(mktemp -d /tmp/switchyard-sdk-test-XXXXXX)
pid=
up_pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  if [ -n "$up_pid" ]; then kill -TERM "$up_pid" 2>/dev/null || true; wait "$up_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# The upstream exits when its stdin closes: a fifo whose writer is this
# shell, so it goes when the script goes, whatever happens.
mkfifo "$work/up.in"
# The files the loops below read exist before the background jobs open
# them (a job's redirections may run after the first read, and a failed
# read would end this `set -e` script).
: >"$work/up.out"
: >"$work/out"
: >"$work/err"
node "$upstream" --port 0 <"$work/up.in" >"$work/up.out" &
up_pid=$!
exec 3>"$work/up.in"
up_port=
i=0
while [ -z "$up_port" ] && [ $i -lt 600 ]; do
  up_port=$(sed -n 's/^LISTENING \([0-9]*\)$/\1/p' "$work/up.out")
  [ -n "$up_port" ] || sleep 0.1
  i=$((i + 1))
done
[ -n "$up_port" ] || { echo "the test upstream did not start" >&2; exit 1; }
sed "s|UPSTREAM_BASE|http://127.0.0.1:$up_port|" "$here/config.json" >"$work/config.json"

export SWITCHYARD_SDK_TEST_KEY="sk-sdk-test-$$"
"$bin" serve --config "$work/config.json" --port 0 >"$work/out" 2>"$work/err" 3>&- &
pid=$!
port=
i=0
while [ -z "$port" ] && [ $i -lt 600 ]; do
  port=$(sed -n 's/^switchyard: listening on http:\/\/127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/out")
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/err" >&2; exit 1; fi
  [ -n "$port" ] || sleep 0.1
  i=$((i + 1))
done
[ -n "$port" ] || { echo "switchyard serve did not start" >&2; cat "$work/err" >&2; exit 1; }

# The script imports `openai` from the prefix's node_modules.
cp "$here/sdk_test.mjs" "$prefix/sdk_test.mjs"
SWITCHYARD_BASE_URL="http://127.0.0.1:$port/v1" SWITCHYARD_KEY="$SWITCHYARD_SDK_TEST_KEY" \
  node "$prefix/sdk_test.mjs"
