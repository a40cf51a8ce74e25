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
# Wishes: byte 0 the base domain (0-2 unplanned pc, q35, virt; 3-5 planned), byte 1 odd for a
# policy file, even for the metadata element; the base devices are ua-vda, ua-net, ua-e1000.
mkdir -p corpus/wishes
ns='xmlns:p="https://pciplan.dev/xmlns/wishes/1" version="1"'
i=0
while IFS='|' read -r json xml; do
  for base in 0 1 2 3 4 5; do
    { printf "\\x0$base\\x01"; printf '%s' "$json"; } > "corpus/wishes/seed-$i-$base-json.bin"
    { printf "\\x0$base\\x00"; printf '%s' "<p:wishes $ns $xml"; } > "corpus/wishes/seed-$i-$base-xml.bin"
  done
  i=$((i + 1))
done <<'SEEDS'
{"version": 1}|/>
{"version": 1, "pcieHotplugSlots": 5}|pcieHotplugSlots="5"/>
{"version": 1, "pciHotplugSlots": 2}|pciHotplugSlots="2"/>
{"version": 1, "pcieHotplugSlots": 3, "pciHotplugSlots": 1, "defaultAddressType": "pci"}|pcieHotplugSlots="3" pciHotplugSlots="1" defaultAddressType="pci"/>
{"version": 1, "defaultAddressType": "virtio-mmio"}|defaultAddressType="virtio-mmio"/>
{"version": 1, "devices": {"ua-net": {"hotpluggable": "no"}}}|><p:device name="ua-net" hotpluggable="no"/></p:wishes>
{"version": 1, "devices": {"ua-vda": {"hotpluggable": "yes", "bus": "pcie"}}}|><p:device name="ua-vda" hotpluggable="yes" bus="pcie"/></p:wishes>
{"version": 1, "devices": {"ua-e1000": {"bus": "pci", "connection": "pci-bridge"}}}|><p:device name="ua-e1000" bus="pci" connection="pci-bridge"/></p:wishes>
{"version": 1, "devices": {"interface:52:54:00:00:00:01": {"connection": "pcie-root-port"}}}|><p:device name="interface:52:54:00:00:00:01" connection="pcie-root-port"/></p:wishes>
{"version": 1, "devices": {"disk:vda": {"connection": "pcie-switch-downstream-port"}}}|><p:device name="disk:vda" connection="pcie-switch-downstream-port"/></p:wishes>
{"version": 1, "pcieHotplugSlots": 64, "devices": {"controller:pci:0": {"bus": "pcie"}}}|pcieHotplugSlots="64"><p:device name="controller:pci:0" bus="pcie"/></p:wishes>
SEEDS
