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


def hostdev(n, alias):
    return (f"<hostdev mode='subsystem' type='pci' managed='yes'><source><address "
            f"domain='0x0000' bus='0x{0x10 + n:02x}' slot='0x00' function='0x0'/></source>"
            f"<alias name='{alias}'/></hostdev>")


def numa_case(name, machine, nodes, devices, device_wishes, attrs=None):
    """A domain with `nodes` guest NUMA cells (<cpu><numa>) and NUMA wishes."""
    w.write(name, machine, devices, attrs or {}, device_wishes)
    path = os.path.join(HERE, "cases", name, "input.xml")
    text = open(path).read()
    cells = "".join(f"<cell id='{i}' cpus='{i}' memory='131072' unit='KiB'/>"
                    for i in range(nodes))
    text = text.replace("  <memory unit='KiB'>262144</memory>\n",
                        f"  <memory unit='KiB'>{131072 * nodes}</memory>\n"
                        f"  <vcpu>{nodes}</vcpu>\n")
    if machine == "virt":
        text = text.replace("<model>cortex-a57</model>\n  </cpu>",
                            f"<model>cortex-a57</model>\n    <numa>{cells}</numa>\n  </cpu>")
    else:
        text = text.replace("  </os>\n", f"  </os>\n  <cpu>\n    <numa>{cells}</numa>\n  </cpu>\n")
    with open(path, "w") as f:
        f.write(text)


def numa_cases():
    for m in ("pc", "q35", "virt"):
        for nodes in (1, 2, 3, 4):
            # One disk per node, and a NIC on the last node.
            devs = disks(nodes) + nics(2)
            wishes = [(f"ua-disk{i}", {"numaNode": str(i)}) for i in range(nodes)]
            wishes.append(("ua-net1", {"numaNode": str(nodes - 1)}))
            numa_case(f"{m}-numa-{nodes}-nodes", m, nodes, devs, wishes)
        # Several devices per node.
        devs = disks(6) + nics(2)
        wishes = [(f"ua-disk{i}", {"numaNode": str(i % 2)}) for i in range(6)]
        numa_case(f"{m}-numa-2-nodes-3-disks-each", m, 2, devs, wishes)
        # Host devices (verify replaces them by stand-ins) with the emulated devices they use.
        devs = [hostdev(i, f"ua-hostdev{i}") for i in range(2)] + disks(2) + nics(1)
        wishes = [("ua-hostdev0", {"numaNode": "0"}), ("ua-hostdev1", {"numaNode": "1"}),
                  ("ua-disk0", {"numaNode": "0"}), ("ua-disk1", {"numaNode": "1"})]
        numa_case(f"{m}-numa-hostdevs", m, 2, devs, wishes)
        # A conventional NIC on a node (on q35 and virt it sits in the node's root port).
        numa_case(f"{m}-numa-3-nodes-e1000", m, 3, disks(1) + nics(2, "e1000"),
                  [("ua-net1", {"numaNode": "2"}), ("ua-net2", {"numaNode": "1"})])
        # A node wish beside other wishes and the integrated policy.
        numa_case(f"{m}-numa-integrated", m, 2, disks(3) + nics(1),
                  [("ua-disk0", {"numaNode": "1"})], {"policy": "integrated"})
        if m != "pc":
            numa_case(f"{m}-numa-pcie-2", m, 2, disks(2) + nics(1),
                      [("ua-disk0", {"numaNode": "0"}), ("ua-disk1", {"numaNode": "1"})],
                      {"pcieHotplugSlots": 2})
            numa_case(f"{m}-numa-8-on-one-node", m, 2, disks(8),
                      [(f"ua-disk{i}", {"numaNode": "1"}) for i in range(8)])
        else:
            numa_case("pc-numa-pci-2", m, 2, disks(2) + nics(1),
                      [("ua-disk0", {"numaNode": "0"}), ("ua-disk1", {"numaNode": "1"})],
                      {"pciHotplugSlots": 2})
            numa_case("pc-numa-33-on-one-node", m, 2, disks(33),
                      [(f"ua-disk{i}", {"numaNode": "1"}) for i in range(33)])
    # The user's own expander bus for a node keeps its busNr; pciplan's go below it.
    numa_case("q35-numa-user-expander", "q35", 2,
              ["<controller type='pci' index='1' model='pcie-expander-bus'><target busNr='200'>"
               "<node>0</node></target></controller>"] + disks(2),
              [("ua-disk0", {"numaNode": "1"}), ("ua-disk1", {"numaNode": "0"})])


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
    numa_cases()
    w.write("virt-integrated-pci-over-mmio", "virt",
            [w.disk("vda", "ua-disk0", "<address type='virtio-mmio'/>")] + nics(2) + [w.RNG],
            {**integrated, "defaultAddressType": "pci"})


if __name__ == "__main__":
    main()
