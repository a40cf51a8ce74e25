#!/usr/bin/env bash
# The boot-time benchmark of the integrated policy (issue 10): the same domain planned under
# libvirt's policy and under `integrated`, booted alternately with `pciplan verify --guest` (TCG,
# Debian's kernel, a busybox initramfs), RUNS times each; prints the median time from QEMU's start
# to the guest's /init, the ratio, and the PCI controllers and functions of each plan.
#   bench/boot.sh [RUNS] [DOMAIN.xml]     (default: 5 runs of bench/boot-16-virtio.xml)
# Not a test: timing belongs here. Needs what scripts/setup.sh installs, and build/pciplan.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
domain=${2:-bench/boot-16-virtio.xml}
pciplan=build/pciplan
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$pciplan" plan "$domain" -o "$work/libvirt.xml"
"$pciplan" plan "$domain" --policy integrated -o "$work/integrated.xml"
for policy in libvirt integrated; do : > "$work/$policy.ms"; done
for ((i = 0; i < runs; i++)); do
  for policy in libvirt integrated; do
    "$pciplan" verify --guest --json "$work/$policy.xml" > "$work/out.json" || {
      echo "boot.sh: $policy plan did not verify in the guest" >&2
      exit 1
    }
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["init_ms"])' \
      "$work/out.json" >> "$work/$policy.ms"
  done
done
python3 - "$work" "$runs" <<'PY'
import re, statistics, sys
work, runs = sys.argv[1], sys.argv[2]
def shape(path):
    text = open(path).read()
    controllers = len(re.findall(r"<controller type='pci'", text)) - 1  # less the root
    functions = len(re.findall(r"<address type='pci'", text))
    return controllers, functions
med = {}
for policy in ("libvirt", "integrated"):
    ms = [int(x) for x in open(f"{work}/{policy}.ms").read().split()]
    med[policy] = statistics.median(ms)
    c, f = shape(f"{work}/{policy}.xml")
    print(f"{policy:<11} median {med[policy] / 1000:.2f} s to /init over {runs} boots "
          f"(min {min(ms) / 1000:.2f}, max {max(ms) / 1000:.2f}); "
          f"{c} PCI controllers, {f} PCI functions")
print(f"integrated / libvirt: {med['integrated'] / med['libvirt']:.2f}")
PY
