#!/bin/sh
# Runs sdk_test.mjs (the official OpenAI Node SDK) against a fresh
# `switchyard serve` on a free loopback port.
# usage: run_sdk_test.sh SWITCHYARD_BIN NPM_PREFIX
# The SDK is installed once into NPM_PREFIX (npm install openai@4) and
# reused from there.
set -eu
bin=$1
prefix=$2
here=$(cd "$(dirname "$0")" && pwd)

if [ ! -f "$prefix/node_modules/openai/package.json" ]; then
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" openai@4 >&2
fi

work=$(mktemp -d /tmp/switchyard-sdk-test-XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

export SWITCHYARD_SDK_TEST_KEY="sk-sdk-test-$$"
"$bin" serve --config "$here/config.json" --port 0 >"$work/out" 2>"$work/err" &
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
