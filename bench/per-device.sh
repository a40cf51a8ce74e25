#!/usr/bin/env bash
# Instructions per device of read + plan + write (callgrind, so the figures do not depend on the
# machine's load): `pciplan plan` of a domain of N virtio disks and NICs, the catalogue's decoding
# left out (it is the same for every domain). Flat in N means linear cost.
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
  callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
    awk -v pat="$2" '!done && index($0, pat) {gsub(",", "", $1); print $1; done = 1}'
}

measure() {  # MACHINE ARCH N...
  local machine=$1 arch=$2 first=""
  shift 2
  printf '%-4s' "$machine"
  for n in "$@"; do
    domain "$machine" "$arch" "$n" > "$work/d.xml"
    valgrind --tool=callgrind --callgrind-out-file="$work/cg" \
      "$pciplan" plan "$work/d.xml" -o "$work/out.xml" > /dev/null 2>&1
    # Devices of the planned domain: the N given, the machine's defaults, the controllers added.
    local planned
    planned=$(python3 -c 'import sys, xml.etree.ElementTree as E
print(len(list(E.parse(sys.argv[1]).getroot().find("devices"))))' "$work/out.xml")
    local all cat
    all=$(inclusive "$work/cg" "pciplan::cli::ReadAndPlan(")
    all=$((all + $(inclusive "$work/cg" "pciplan::PlannedXml")))
    cat=$(inclusive "$work/cg" "pciplan::BuiltinCatalog()")
    local per=$(((all - cat) / n)) per_planned=$(((all - cat) / planned))
    [ -z "$first" ] && first=$per && first_planned=$per_planned
    printf '  N=%-5s %6d (%d)' "$n" "$per" "$per_planned"
    last=$per last_planned=$per_planned
  done
  awk -v a="$first" -v b="$last" -v c="$first_planned" -v d="$last_planned" \
    'BEGIN {printf "   first/last %.2fx (%.2fx)\n", a / b, c / d}'
}

echo "instructions per device given (per device of the planned domain) of read + plan + write,"
echo "the catalogue's decoding left out"
measure pc x86_64 10 100 500 1000 2000
measure q35 x86_64 10 50 100 200
measure virt aarch64 10 50 100 200
