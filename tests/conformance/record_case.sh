#!/usr/bin/env bash
# Records a new conformance case from the real libvirt 9.0 oracle:
#   tests/conformance/record_case.sh NNN-name MACHINE
# with cases/NNN-name/input.xml written by hand. Writes expected.xml and expected.addrmap (or
# expected.error) from libvirt, and the INDEX.tsv row. The oracle renames the domain; its name and
# uuid are put back from input.xml so that expected.xml holds nothing random.
set -euo pipefail
cd "$(dirname "$0")/cases"
case_dir=$1 machine=$2
oracle=/work/shared/tools/libvirt-oracle
test -f "$case_dir/input.xml"
test ! -e "$case_dir/expected.xml" && test ! -e "$case_dir/expected.error"
name=$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$case_dir/input.xml" | head -1)
uuid=$(sed -n 's:.*<uuid>\(.*\)</uuid>.*:\1:p' "$case_dir/input.xml" | head -1)
if "$oracle" define "$case_dir/input.xml" > "$case_dir/expected.xml" 2> "$case_dir/err.tmp"; then
  sed -i -e "0,/<name>/s:<name>.*</name>:<name>$name</name>:" \
         -e "0,/<uuid>/s:<uuid>.*</uuid>:<uuid>$uuid</uuid>:" "$case_dir/expected.xml"
  python3 /work/shared/tools/addrmap.py "$case_dir/expected.xml" > "$case_dir/expected.addrmap"
  outcome=ok
else
  rm -f "$case_dir/expected.xml"
  head -1 "$case_dir/err.tmp" > "$case_dir/expected.error"
  outcome=error
fi
rm -f "$case_dir/err.tmp"
printf '%s\t%s\t%s\n' "$case_dir" "$machine" "$outcome" >> INDEX.tsv
echo "$case_dir: $outcome"
