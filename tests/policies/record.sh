#!/usr/bin/env bash
# record.sh: record libvirt 9.0's view of every plan of the policy corpus (see
# tests/wishes/record.sh, which does the work):  tests/policies/record.sh [CASE...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
CASES=$here/cases exec "$here/../wishes/record.sh" "$@"
