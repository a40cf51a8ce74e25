#!/usr/bin/env bash
# record.sh: re-record the expected files of the attach corpus with the real libvirt 9.0.
#
#   tests/attach/record.sh [CASE...]     all cases, or only the named ones (directory names)
#
# For each cases/CASE/ it runs
#   libvirt-oracle attach domain.xml device.xml
# (virsh define + attach-device --config + dumpxml --inactive) and writes
#   expected.xml + expected.addrmap   when libvirt accepts the device, or
#   expected.error                    when it refuses it,
# removing the files of the other outcome. Needs root and a machine where
# shared/tools/libvirt-oracle works (set ORACLE / ADDRMAP to override the paths).
#
# The oracle gives the domain a temporary <name> and lets libvirt make up a
# random <uuid>; those two lines of libvirt's output (and only those) are put
# back to the <name> and <uuid> of domain.xml, so that re-recording is
# deterministic. Everything else in expected.xml is libvirt's output byte for byte.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
ORACLE=${ORACLE:-$here/../../../shared/tools/libvirt-oracle}
ADDRMAP=${ADDRMAP:-$here/../../../shared/tools/addrmap.py}
cases=$here/cases
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ $# -gt 0 ]; then list=("$@"); else
  list=(); for d in "$cases"/[0-9]*/; do list+=("$(basename "$d")"); done
fi

changed=0
for c in "${list[@]}"; do
  d=$cases/$c
  [ -f "$d/domain.xml" ] && [ -f "$d/device.xml" ] || { echo "$c: no domain.xml/device.xml" >&2; exit 2; }
  if "$ORACLE" attach "$d/domain.xml" "$d/device.xml" >"$tmp/out.xml" 2>"$tmp/err.txt"; then
    python3 "$here/../restore_name_uuid.py" "$d/domain.xml" "$tmp/out.xml" "$d/expected.xml"
    python3 "$ADDRMAP" "$d/expected.xml" >"$d/expected.addrmap"
    rm -f "$d/expected.error"
    outcome=ok
  else
    # first meaningful line: drop "Failed to attach device" lines and the "error: " prefix
    sed -e 's/^error: //' "$tmp/err.txt" | grep -v -e '^Failed to attach device' -e '^[[:space:]]*$' | head -n 1 >"$d/expected.error"
    [ -s "$d/expected.error" ] || { echo "$c: oracle failed without a message" >&2; exit 1; }
    rm -f "$d/expected.xml" "$d/expected.addrmap"
    outcome=error
  fi
  # compare with INDEX.tsv, if the case is listed there
  listed=$(awk -F'\t' -v c="$c" '$1 == c { print $3 }' "$cases/INDEX.tsv" 2>/dev/null || true)
  if [ -n "$listed" ] && [ "$listed" != "$outcome" ]; then
    echo "$c: outcome is now $outcome, INDEX.tsv says $listed" >&2; changed=1
  fi
  echo "$c $outcome"
done
exit $changed
