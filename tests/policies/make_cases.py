#!/usr/bin/env python3
"""Writes the inputs of the policy corpus (tests/policies/cases/NAME/input.xml).

Each case is a domain on pc, q35 or virt planned under a policy other than libvirt's, named in
pciplan's metadata (policy="integrated"), sometimes with other wishes. The expected files are
written like the wish corpus's: PCIPLAN_UPDATE_GOLDEN=1 for pciplan's own outputs
(expected.addrmap, promise.txt) and record.sh for libvirt's define of the plan (libvirt.xml).
Re-running this script rewrites the inputs only.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "wishes"))
import make_cases as w  # noqa: E402  (the wish corpus's device helpers)

w.HERE = HERE


def disks(n, first=0):
    names = [f"vd{chr(ord('a') + i)}" if i < 26 else f"vda{chr(ord('a') + i - 26)}"
             for i in range(first, first + n)]
    return [w.disk(d, f"ua-disk{first + i}") for i, d in enumerate(names)]


def nics(n, model="virtio", first=1):
    return [w.nic(first + i, model, f"ua-net{first + i}") for i in range(n)]


USB2 = ["<controller type='usb' index='0' model='ich9-ehci1'/>",
        "<controller type='usb' index='0' model='ich9-uhci1'/>",
        "<controller type='usb' index='0' model='ich9-uhci2'/>",
        "<controller type='usb' index='0' model='ich9-uhci3'/>"]
VIDEO = "<video><model type='virtio'/></video>"
VGA = "<video><model type='vga'/></video>"
SCSI = "<controller type='scsi' model='virtio-scsi'/>"
SERIAL = ("<controller type='virtio-serial'/><channel type='unix'>"
          "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>")


def main():
    integrated = {"policy": "integrated"}
    for m in ("pc", "q35", "virt"):
        video = VGA if m != "virt" else VIDEO
        w.write(f"{m}-integrated-small", m, w.small(m), integrated)
        w.write(f"{m}-integrated-many", m, w.many(m), integrated)
        w.write(f"{m}-integrated-video-scsi-serial", m,
                w.small(m) + [video, SCSI, SERIAL], integrated)
        # Filling the root bus: one slot each, then packed as functions of the last slot,
        # then behind controllers.
        for n in (12, 24, 29, 36, 40):
            w.write(f"{m}-integrated-{n}-disks", m, disks(n) + nics(1), integrated)
        w.write(f"{m}-integrated-crowded", m, w.crowded(m) if m != "pc" else
                w.small(m) + [w.nic(0x40 + s, "e1000", f"ua-crowd{s}",
                                    f"<address type='pci' domain='0x0000' bus='0x00' "
                                    f"slot='{s:#04x}' function='0x0'/>")
                              for s in range(3, 31) if s != 5], integrated)
        # Device wishes and domain-wide wishes beside the policy.
        w.write(f"{m}-integrated-disk-hotpluggable", m, w.small(m), integrated,
                [("ua-disk0", {"hotpluggable": "yes"})])
        w.write(f"{m}-integrated-net-bus-pci", m, w.small(m), integrated,
                [("ua-net0", {"bus": "pci"})])
        if m == "pc":
            w.write("pc-integrated-pci-2", m, w.small(m), {**integrated, "pciHotplugSlots": 2})
        else:
            w.write(f"{m}-integrated-pcie-3", m, w.small(m),
                    {**integrated, "pcieHotplugSlots": 3})
            w.write(f"{m}-integrated-16-disks-pcie-2", m, disks(16),
                    {**integrated, "pcieHotplugSlots": 2})
        # Fixed addresses stay; the open ones around them.
        fixed = [w.disk("vda", "ua-disk0", "<address type='pci' domain='0x0000' bus='0x00' "
                        "slot='0x07' function='0x0'/>")] + nics(2) + [w.RNG]
        w.write(f"{m}-integrated-fixed-disk", m, fixed, integrated)
    w.write("q35-integrated-usb2-companions", "q35", USB2 + w.small("q35"), integrated)
    w.write("pc-integrated-usb2-companions", "pc", USB2 + w.small("pc"), integrated)
    w.write("virt-integrated-virtio-mmio", "virt", w.small("virt"),
            {**integrated, "defaultAddressType": "virtio-mmio"})
    w.write("virt-integrated-pci-over-mmio", "virt",
            [w.disk("vda", "ua-disk0", "<address type='virtio-mmio'/>")] + nics(2) + [w.RNG],
            {**integrated, "defaultAddressType": "pci"})


if __name__ == "__main__":
    main()
