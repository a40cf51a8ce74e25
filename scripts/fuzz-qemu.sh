#!/usr/bin/env bash
# The differential fuzzer against QEMU, long run: scripts/fuzz-qemu.sh N [SEED]
# Generates N random domains from SEED (default 1), plans each with the default policy and runs
# verify in the real QEMU on every plan pciplan accepts, one QEMU per core at a time.
# Prints the figures; each domain whose accepted plan QEMU refused or misplaced is saved, with
# QEMU's message, to $FUZZ_OUT (default fuzz-findings/) for reproduction:
#   build/pciplan verify fuzz-findings/seedS-NNNNNN.xml
# Extra options after SEED go to build/pciplan_fuzz_qemu (--first K, --jobs J, --no-probes).
# Exit status: 0 when QEMU agreed with every accepted plan, 1 otherwise, 2 on usage errors.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -lt 1 ]]; then
  echo "usage: scripts/fuzz-qemu.sh N [SEED] [--first K] [--jobs J] [--no-probes]" >&2
  exit 2
fi
n=$1; shift
seed=1
if [[ $# -gt 0 && $1 != -* ]]; then seed=$1; shift; fi
if [[ ! -x build/pciplan_fuzz_qemu ]]; then
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target pciplan_fuzz_qemu
fi
exec build/pciplan_fuzz_qemu "$n" "$seed" --out "${FUZZ_OUT:-fuzz-findings}" "$@"
