#!/usr/bin/env bash
# record.sh: record the expected files of new conformance cases with the real libvirt 9.0.
#
#   tests/conformance/record.sh CASE...     the named cases (directory names under cases/)
#
# For each cases/CASE/ it runs
#   libvirt-oracle define input.xml
# (virsh define + dumpxml --inactive) and writes
#   expected.xml + expected.addrmap   when libvirt accepts the domain, or
#   expected.error                    when it refuses it (the first line of its message),
# removing the files of the other outcome, and adds the case to cases/INDEX.tsv when it is not
# listed there (machine pc, q35 or virt, outcome ok or error). Needs root and a machine where
# shared/tools/libvirt-oracle works (set ORACLE / ADDRMAP to override the paths). Recorded
# expectations are never edited by hand; re-run this script instead.
#
# The oracle gives the domain a temporary <name> and lets libvirt make up a random <uuid>;
# those two lines of libvirt's output (and only those) are put back to the <name> and <uuid> of
# input.xml, as in the rest of the corpus. Everything else in expected.xml is libvirt's output
# byte for byte.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ORACLE=${ORACLE:-$here/../../../shared/tools/libvirt-oracle}
ADDRMAP=${ADDRMAP:-$here/../../../shared/tools/addrmap.py}
cases=$here/cases
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || { sed -n '2,4p' "$0"; exit 2; }

for c in "$@"; do
  d=$cases/$c
  [ -f "$d/input.xml" ] || { echo "$c: no input.xml" >&2; exit 2; }
  if "$ORACLE" define "$d/input.xml" >"$tmp/out.xml" 2>"$tmp/err.txt"; then
    python3 "$here/../restore_name_uuid.py" "$d/input.xml" "$tmp/out.xml" "$d/expected.xml"
    python3 "$ADDRMAP" "$d/expected.xml" >"$d/expected.addrmap"
    rm -f "$d/expected.error"
    outcome=ok
  else
    grep -v -e '^[[:space:]]*$' "$tmp/err.txt" | head -n 1 | tr -d '\n' >"$d/expected.error"
    [ -s "$d/expected.error" ] || { echo "$c: oracle failed without a message" >&2; exit 1; }
    echo >>"$d/expected.error"
    rm -f "$d/expected.xml" "$d/expected.addrmap"
    outcome=error
  fi
  if grep -q "arch='aarch64'" "$d/input.xml"; then
    machine=virt
  elif grep -q q35 "$d/input.xml"; then
    machine=q35
  else
    machine=pc
  fi
  listed=$(awk -F'\t' -v c="$c" '$1 == c { print $3 }' "$cases/INDEX.tsv")
  if [ -z "$listed" ]; then
    printf '%s\t%s\t%s\n' "$c" "$machine" "$outcome" >>"$cases/INDEX.tsv"
  elif [ "$listed" != "$outcome" ]; then
    echo "$c: outcome is now $outcome, INDEX.tsv says $listed" >&2
    exit 1
  fi
  echo "$c $machine $outcome"
done
