#!/usr/bin/env bash
# Installs what is missing, builds in Release and runs `switchyard demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build --target switchyard_cli -j "$(nproc)"
build/bin/switchyard demo "$@"
