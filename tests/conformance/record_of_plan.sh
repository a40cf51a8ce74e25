#!/usr/bin/env bash
# record_of_plan.sh: record what libvirt 9.0 makes of pciplan's plan of a deviation case.
#
#   tests/conformance/record_of_plan.sh CASE...     cases listed in DEVIATIONS.tsv
#
# For each cases/CASE/ it plans input.xml with build/pciplan (set PCIPLAN to override), runs
#   libvirt-oracle define PLAN.xml
# and writes libvirt-of-plan.xml (libvirt's output byte for byte, <name> and <uuid> put back
# as in record.sh) and libvirt-of-plan.addrmap. conformance_test.cc requires the address map
# of pciplan's plan to equal it for a qemu-misplaces case: libvirt keeps the plan unchanged.
# Re-run after a change to the plan of such a case; never edit the files by hand.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PCIPLAN=${PCIPLAN:-$here/../../build/pciplan}
ORACLE=${ORACLE:-$here/../../../shared/tools/libvirt-oracle}
ADDRMAP=${ADDRMAP:-$here/../../../shared/tools/addrmap.py}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || { sed -n '2,4p' "$0"; exit 2; }

for c in "$@"; do
  d=$here/cases/$c
  [ -f "$d/input.xml" ] || { echo "$c: no input.xml" >&2; exit 2; }
  "$PCIPLAN" plan "$d/input.xml" -o "$tmp/plan.xml"
  "$ORACLE" define "$tmp/plan.xml" >"$tmp/out.xml"
  python3 "$here/../restore_name_uuid.py" "$d/input.xml" "$tmp/out.xml" "$d/libvirt-of-plan.xml"
  python3 "$ADDRMAP" "$d/libvirt-of-plan.xml" >"$d/libvirt-of-plan.addrmap"
  echo "$c recorded"
done
