#!/usr/bin/env bash
# Installs what pciplan needs to build and test on Debian 12, idempotently (run as root).
# Only packages that are missing are installed; a second run does nothing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libpugixml-dev nlohmann-json3-dev libcli11-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev qemu-system-x86 qemu-system-arm python3
      clang libclang-rt-14-dev  # clang 14 and its libFuzzer runtime (libclang_rt.fuzzer)
      graphviz)  # dot, for pciplan tree --svg
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: missing packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
