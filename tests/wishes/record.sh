#!/usr/bin/env bash
# record.sh: record libvirt 9.0's view of every plan of the wish corpus.
#
#   tests/wishes/record.sh [CASE...]     all cases, or only the named ones
#
# For each cases/CASE/ it plans input.xml with build/pciplan (under the wishes of its metadata,
# with --replan for each device its replan.txt names) and runs `libvirt-oracle define` on the
# planned XML, writing libvirt.xml: libvirt's inactive XML of the plan, with the oracle's
# temporary <name> put back and its random <uuid> line removed, so that re-recording is
# deterministic. The test checks that libvirt kept every address and the wishes. Needs the
# oracle (ORACLE, PCIPLAN to override the paths).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cases=${CASES:-$here/cases}  # tests/policies/record.sh sets it
ORACLE=${ORACLE:-$here/../../../shared/tools/libvirt-oracle}
PCIPLAN=${PCIPLAN:-$here/../../build/pciplan}
if [ $# -gt 0 ]; then list=("$@"); else
  list=(); for d in "$cases"/*/; do list+=("$(basename "$d")"); done
fi
record() {
  local d=$cases/$1 tmp
  tmp=$(mktemp -d)
  local replan=()
  if [ -f "$d/replan.txt" ]; then
    while read -r key; do [ -n "$key" ] && replan+=(--replan "$key"); done <"$d/replan.txt"
  fi
  "$PCIPLAN" plan "$d/input.xml" ${replan[@]+"${replan[@]}"} >"$tmp/planned.xml"
  if ! "$ORACLE" define "$tmp/planned.xml" >"$tmp/out.xml" 2>"$tmp/err.txt"; then
    echo "$1: libvirt refuses the plan: $(cat "$tmp/err.txt")" >&2
    rm -rf "$tmp"
    return 1
  fi
  python3 - "$d/input.xml" "$tmp/out.xml" "$d/libvirt.xml" <<'PY'
import re, sys
src, out, dst = sys.argv[1:]
name = re.search(r"<name>([^<]*)</name>", open(src).read()).group(1)
text = open(out).read()
text = re.sub(r"<name>[^<]*</name>", f"<name>{name}</name>", text, count=1)
text = re.sub(r"\n *<uuid>[^<]*</uuid>", "", text, count=1)
open(dst, "w").write(text if text.endswith("\n") else text + "\n")
PY
  rm -rf "$tmp"
}
export -f record
export here cases ORACLE PCIPLAN
printf '%s\n' "${list[@]}" | xargs -P 3 -I{} bash -c 'record {}'
