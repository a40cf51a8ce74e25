#!/usr/bin/env bash
# Instructions per device of read + plan + write (callgrind, so the figures do not depend on the
# machine's load): `pciplan plan` of a domain of N virtio disks and NICs, the catalogue's decoding
# left out (it is the same for every domain). Flat in N means linear cost.
#
# Three views of one set of runs, each with its first/last ratio:
#   given    all instructions / N (the devices of the input);
#   planned  all instructions / the devices of the planned domain (the N given, the machine's
#            defaults and the controllers the plan adds);
#   added    (all instructions - those of the same machine's empty domain) / N: what each device
#            given adds. The empty domain's cost is the machine's own: its default devices and
#            controllers (pc: 5, q35: 9) and the passes over them.
#
#   bench/per-device.sh [PCIPLAN]      (default build/pciplan; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
pciplan=${1:-build/pciplan}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The domains of bench/plan_bench.cc's BM_Whole: N devices, disks and NICs alternating.
domain() {  # MACHINE ARCH N
  python3 bench/domains.py devices "$@"
}

# Inclusive instructions of a function in a callgrind profile.
inclusive() {  # PROFILE FUNCTION-PATTERN
  callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
    awk -v pat="$2" '!done && index($0, pat) {gsub(",", "", $1); print $1; done = 1}'
}

# Prints "N PLANNED-DEVICES INSTRUCTIONS" for one domain.
run() {  # MACHINE ARCH N
  domain "$@" > "$work/d.xml"
  valgrind --tool=callgrind --callgrind-out-file="$work/cg" \
    "$pciplan" plan "$work/d.xml" -o "$work/out.xml" > /dev/null 2>&1
  local planned all cat
  planned=$(python3 -c 'import sys, xml.etree.ElementTree as E
print(len(list(E.parse(sys.argv[1]).getroot().find("devices"))))' "$work/out.xml")
  all=$(inclusive "$work/cg" "pciplan::cli::ReadAndPlan(")
  all=$((all + $(inclusive "$work/cg" "pciplan::PlannedXml")))
  cat=$(inclusive "$work/cg" "pciplan::BuiltinCatalog()")
  echo "$3 $planned $((all - cat))"
}

measure() {  # MACHINE ARCH N...
  local machine=$1 arch=$2
  shift 2
  { run "$machine" "$arch" 0; for n in "$@"; do run "$machine" "$arch" "$n"; done; } |
    awk -v m="$machine" '
      NR == 1 { empty = $3; empty_planned = $2; next }
      { n[++k] = $1; planned[k] = $2; all[k] = $3 }
      END {
        printf "%s: empty domain %d instructions (%d devices)\n", m, empty, empty_planned
        printf "  %-6s %9s %9s %9s\n", "N", "given", "planned", "added"
        for (i = 1; i <= k; ++i) {
          g[i] = all[i] / n[i]; p[i] = all[i] / planned[i]; a[i] = (all[i] - empty) / n[i]
          printf "  %-6d %9.0f %9.0f %9.0f\n", n[i], g[i], p[i], a[i]
        }
        printf "  %-6s %8.2fx %8.2fx %8.2fx\n", "first/last", g[1] / g[k], p[1] / p[k], a[1] / a[k]
        print ""
      }'
}

echo "instructions of read + plan + write, the catalogue's decoding left out"
measure pc x86_64 10 100 500 1000 2000
# q35 to its bus limit for these domains: pcie-root's 30 slots take 240 root ports, three of
# them the machine's own (USB controller, memory balloon, libvirt's spare): N = 237.
measure q35 x86_64 10 50 100 200 237
measure virt aarch64 10 50 100 200 237
