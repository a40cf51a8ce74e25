#!/usr/bin/env bash
# Regenerates the seed part of the committed corpora from the conformance and attach cases
# (seed-*), beside the hand-written tiny seeds (tiny-*) and the regression inputs (crash-*,
# kept forever). Run after adding cases; the result is committed.
set -euo pipefail
cd "$(dirname "$0")"
tests=..
mkdir -p corpus/plan corpus/attach
for d in "$tests"/conformance/cases/*/; do
  cp "$d/input.xml" "corpus/plan/seed-$(basename "$d").xml"
done
for d in "$tests"/attach/cases/*/; do
  name=$(basename "$d")
  case "$name" in *-pc-*) base='\x00' ;; *-q35-*) base='\x01' ;; *) base='\x02' ;; esac
  for mode in 0 1; do  # --config, --live (and detach with --prune on the live one)
    { printf "$base"; printf "\\x0$((mode * 3))"; cat "$d/device.xml"; } \
      > "corpus/attach/seed-$name-$mode.bin"
  done
done
