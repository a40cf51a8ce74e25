#!/usr/bin/env bash
# Writes cmake/pciplan-cli.order: the functions the CLI runs for its everyday commands, which the
# static CLI's link places side by side (lld --symbol-ordering-file). A process touches its code
# a 64 KiB block at a time (the kernel's fault-around); scattered over the 4 MiB of text, `plan`
# took ~55 such faults, contiguous ~15. Run it after larger changes of the code paths of plan,
# check, qemu-args, tree, attach or detach; a stale list only costs start-up time (names no longer
# in the binary are skipped), never correctness.
#
#   scripts/hot-order.sh [PCIPLAN]      (default build/pciplan; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
pciplan=${1:-build/pciplan}
out=cmake/pciplan-cli.order
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cases=tests/conformance/cases
inputs=(examples/q35-server.xml "$cases"/103-pc-fixed/input.xml
        "$cases"/102-virt-rp-fixed-root-ports/input.xml)
printf "<interface type='network'><source network='default'/><model type='virtio'/></interface>\n" \
  > "$work/nic.xml"
"$pciplan" plan examples/q35-server.xml -o "$work/planned.xml"

n=0
run() {
  n=$((n + 1))
  valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg.$n" \
    "$pciplan" "$@" >/dev/null 2>&1 || true
}
for f in "${inputs[@]}"; do
  run plan "$f" -o /dev/null
  run qemu-args "$f"
done
run check examples/q35-server.xml
run tree examples/q35-server.xml
run plan --batch -j 1 -O "$work" "${inputs[@]}"
run attach "$work/planned.xml" "$work/nic.xml" -o /dev/null
run detach "$work/planned.xml" "$work/nic.xml" -o /dev/null

# Every function named in the profiles (callgrind names each once as fn= or cfn=), in the order
# first seen; "'2" marks a recursion level, addresses are functions without a symbol.
cat "$work"/cg.* | sed -nE "s/^c?fn=\([0-9]+\) (.+)$/\1/p" | sed -E "s/'[0-9]+$//" |
  grep -vE '^0x[0-9a-f]+$|^\(below main\)$' | awk '!seen[$0]++' > "$work/order"
# What valgrind cannot show: it replaces the C library's string functions with its own, and its
# CPU lacks AVX-512, so the variants the real CPU picks (AVX2, EVEX, AVX-512) and their ifunc
# resolvers are added by name, with the start-up code that maps the vDSO.
nm "$pciplan" | awk '{print $NF}' |
  grep -E '^__(mem|str|stp|wmem|wcs|rawmem|wcp)[a-z0-9]*_(avx|avx2|evex|avx512)|_ifunc$|^(frame_dummy|register_tm_clones|_dl_new_object|setup_vdso|_dl_add_to_namespace_list)$' |
  awk 'NR == FNR {seen[$0] = 1; next} !seen[$0]++' "$work/order" - >> "$work/order"
{
  echo "# Functions the CLI's everyday commands run, placed side by side by the static link."
  echo "# Written by scripts/hot-order.sh; regenerate after larger changes of those paths."
  cat "$work/order"
} > "$out"
echo "hot-order.sh: $(wc -l < "$work/order") functions into $out"
