#!/usr/bin/env bash
# Installs what is missing, builds everything and runs the whole test suite
# through CTest.
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests also start redis-server, and make certificates with openssl.
scripts/install-deps.sh redis-server openssl
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
ctest --test-dir build --output-on-failure -j "$(nproc)"
