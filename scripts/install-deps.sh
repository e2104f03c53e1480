#!/usr/bin/env bash
# Installs the Debian 12 packages Switchyard builds with, when missing.
# Usage: scripts/install-deps.sh [extra packages...]
set -euo pipefail

packages=(cmake make g++ libcaf-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
          catch2 libssl-dev libyaml-cpp-dev libcurl4-openssl-dev libboost1.81-dev
          libhiredis-dev libjemalloc-dev pkg-config "$@")

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
