#!/usr/bin/env bash
# libpciplan.so exports exactly the functions pciplan.h declares: every defined dynamic symbol
# is pciplan_* (or the version node of src/capi/pciplan.map), and each function of the header
# is one of them. Its soname carries the ABI version.
#   tests/capi/exports_test.sh LIBRARY HEADER
set -euo pipefail
lib=$1 header=$2
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
[ -n "$exported" ] || { echo "no symbol exported" >&2; exit 1; }
status=0
foreign=$(grep -v -e '^pciplan_' -e '^PCIPLAN_[0-9]*$' <<<"$exported" || true)
if [ -n "$foreign" ]; then
  echo "exported beyond the C interface:" >&2
  head -n 20 <<<"$foreign" >&2
  status=1
fi
declared=$(grep -o 'pciplan_[a-z_]*(' "$header" | tr -d '(' | sort -u)
missing=$(comm -23 <(echo "$declared") <(echo "$exported"))
if [ -n "$missing" ]; then
  echo "declared in $header but not exported: $missing" >&2
  status=1
fi
extra=$(comm -13 <(echo "$declared") <(grep '^pciplan_' <<<"$exported"))
if [ -n "$extra" ]; then
  echo "exported but not declared in $header: $extra" >&2
  status=1
fi
soname=$(objdump -p "$lib" | awk '/SONAME/ {print $2}')
if [[ ! $soname =~ ^libpciplan\.so\.[0-9]+$ ]]; then
  echo "soname '$soname' is not libpciplan.so.N" >&2
  status=1
fi
echo "$(wc -l <<<"$exported") symbols exported, soname $soname"
exit $status
