#!/usr/bin/env bash
# Installs dependencies (scripts/setup.sh) and builds pciplan into build/ (Release, warnings as errors).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DPCIPLAN_WERROR=ON >/dev/null
cmake --build build -j"$(nproc)"
