#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite
# through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests also start redis-server, make certificates with openssl and run
# the test upstream and the OpenAI SDK on Node.js (Debian's nodejs only
# when no node is on the machine).
extra=(redis-server openssl)
command -v node >/dev/null || extra+=(nodejs npm)
scripts/install-deps.sh "${extra[@]}"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
