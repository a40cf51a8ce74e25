#!/usr/bin/env python3
"""Writes the inputs of the wish corpus (tests/wishes/cases/NAME/input.xml).

Each case is a small domain on pc, q35 or virt with pciplan wishes in its metadata, and for some
a replan.txt: the devices planned with --replan (one name a line), whose fixed addresses the
wishes contradict, so that only replanning them gives a plan. The expected
files are written by the test (PCIPLAN_UPDATE_GOLDEN=1: expected.addrmap, promise.txt, pciplan's
own outputs) and by record.sh (libvirt.xml: libvirt 9.0's define of the planned domain).
Re-running this script rewrites the inputs only.
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
NS = "https://pciplan.dev/xmlns/wishes/1"

OS = {
    "pc": "<os>\n    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>",
    "q35": "<os>\n    <type arch='x86_64' machine='q35'>hvm</type>\n  </os>",
    "virt": "<os>\n    <type arch='aarch64' machine='virt'>hvm</type>\n  </os>\n"
            "  <cpu mode='custom'>\n    <model>cortex-a57</model>\n  </cpu>",
}


def disk(dev, alias, extra=""):
    return (f"<disk type='file' device='disk'><source file='/var/lib/pciplan/{dev}.img'/>"
            f"<target dev='{dev}' bus='virtio'/><alias name='{alias}'/>{extra}</disk>")


def nic(n, model, alias, extra=""):
    return (f"<interface type='user'><mac address='52:54:00:00:00:{n:02x}'/>"
            f"<model type='{model}'/><alias name='{alias}'/>{extra}</interface>")


RNG = ("<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
       "<alias name='ua-rng'/></rng>")


def small(machine):
    devs = [disk("vda", "ua-disk0"), nic(1, "virtio", "ua-net0"), RNG]
    if machine != "virt":
        devs.insert(2, nic(2, "e1000", "ua-e1000"))
    return devs


def many(machine):
    devs = [disk(f"vd{c}", f"ua-disk{i}") for i, c in enumerate("abcdef")]
    devs += [nic(i + 1, "virtio", f"ua-net{i}") for i in range(3)]
    return devs + [RNG]


def crowded(machine):
    """small() plus e1000s on every root-bus slot 1..30 but 5: room for 8 root ports on q35."""
    devs = small(machine)
    for s in range(1, 31):
        if s != 5:
            devs.append(nic(0x40 + s, "e1000", f"ua-crowd{s}",
                            f"<address type='pci' domain='0x0000' bus='0x00' slot='{s:#04x}' "
                            "function='0x0'/>"))
    return devs


def write(name, machine, devices, attrs=None, device_wishes=None, replan=None):
    attrs = attrs or {}
    device_wishes = device_wishes or []
    a = "".join(f" {k}=\"{v}\"" for k, v in attrs.items())
    lines = [f"    <pciplan:wishes xmlns:pciplan=\"{NS}\" version=\"1\"{a}"]
    if device_wishes:
        lines[0] += ">"
        for key, w in device_wishes:
            wa = "".join(f" {k}=\"{v}\"" for k, v in w.items())
            lines.append(f"      <pciplan:device name=\"{key}\"{wa}/>")
        lines.append("    </pciplan:wishes>")
    else:
        lines[0] += "/>"
    xml = (f"<domain type='qemu'>\n  <name>{name}</name>\n  <metadata>\n" + "\n".join(lines) +
           f"\n  </metadata>\n  <memory unit='KiB'>262144</memory>\n  {OS[machine]}\n"
           "  <devices>\n" + "".join(f"    {d}\n" for d in devices) + "  </devices>\n</domain>\n")
    d = os.path.join(HERE, "cases", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "input.xml"), "w") as f:
        f.write(xml)
    if replan:
        with open(os.path.join(d, "replan.txt"), "w") as f:
            f.write("".join(f"{key}\n" for key in replan))


def pci(bus, slot):
    return (f"<address type='pci' domain='0x0000' bus='0x{bus:02x}' slot='0x{slot:02x}' "
            "function='0x0'/>")


def main():
    # pc: conventional spares, device wishes.
    for n in (0, 1, 3, 27, 28, 31, 33, 62):
        write(f"pc-pci-{n}", "pc", small("pc"), {"pciHotplugSlots": n})
    write("pc-disk-not-hotpluggable", "pc", small("pc"), {}, [("ua-disk0", {"hotpluggable": "no"})])
    write("pc-disk-hotpluggable", "pc", small("pc"), {}, [("ua-disk0", {"hotpluggable": "yes"})])
    write("pc-net-bus-pci", "pc", small("pc"), {}, [("interface:52:54:00:00:00:01", {"bus": "pci"})])
    write("pc-rng-on-pci-bridge", "pc", small("pc"), {}, [("ua-rng", {"connection": "pci-bridge"})])
    write("pc-e1000-on-pci-root", "pc", small("pc"), {}, [("ua-e1000", {"connection": "pci-root"})])
    write("pc-pci-31-rng-on-bridge", "pc", small("pc"), {"pciHotplugSlots": 31},
          [("ua-rng", {"connection": "pci-bridge"})])
    write("pc-user-bridge-pci-40", "pc",
          ["<controller type='pci' index='1' model='pci-bridge'/>"] + small("pc"),
          {"pciHotplugSlots": 40})
    # q35: PCIe and PCI spares, device wishes, existing controllers and addresses.
    for n in (0, 1, 2, 4, 8, 9, 16, 30):
        write(f"q35-pcie-{n}", "q35", small("q35"), {"pcieHotplugSlots": n})
    for n in (0, 1, 31, 32):
        write(f"q35-pci-{n}", "q35", small("q35"), {"pciHotplugSlots": n})
    write("q35-pcie-4-pci-2", "q35", small("q35"), {"pcieHotplugSlots": 4, "pciHotplugSlots": 2})
    for name, key, w in [
        ("q35-disk-not-hotpluggable", "ua-disk0", {"hotpluggable": "no"}),
        ("q35-e1000-not-hotpluggable", "ua-e1000", {"hotpluggable": "no"}),
        ("q35-net-bus-pci", "ua-net0", {"bus": "pci"}),
        ("q35-rng-on-pcie-to-pci-bridge", "ua-rng", {"connection": "pcie-to-pci-bridge"}),
        ("q35-rng-on-root-port", "ua-rng", {"connection": "pcie-root-port"}),
        ("q35-disk-hotpluggable", "disk:vda", {"hotpluggable": "yes"}),
        ("q35-e1000-bus-pcie", "ua-e1000", {"bus": "pcie"}),
        ("q35-net-on-pcie-root", "ua-net0", {"connection": "pcie-root"}),
    ]:
        write(name, "q35", small("q35"), {}, [(key, w)])
    ports = [f"<controller type='pci' index='{i}' model='pcie-root-port'/>" for i in range(1, 7)]
    write("q35-user-ports-pcie-3", "q35", ports + small("q35"), {"pcieHotplugSlots": 3})
    fixed = [disk("vda", "ua-disk0", "<address type='pci' domain='0x0000' bus='0x00' "
                  "slot='0x05' function='0x0'/>"), nic(1, "virtio", "ua-net0"), RNG]
    write("q35-fixed-disk-pcie-5", "q35", fixed, {"pcieHotplugSlots": 5},
          [("ua-disk0", {"hotpluggable": "no"})])
    # virt: PCIe spares, the virtio transport, device wishes.
    for n in (0, 1, 3, 8, 12, 20, 64):
        write(f"virt-pcie-{n}", "virt", small("virt"), {"pcieHotplugSlots": n})
    mmio = [disk("vda", "ua-disk0", "<address type='virtio-mmio'/>"),
            nic(1, "virtio", "ua-net0"), RNG]
    write("virt-default-pci-over-mmio-trigger", "virt", mmio, {"defaultAddressType": "pci"})
    write("virt-default-virtio-mmio", "virt", small("virt"), {"defaultAddressType": "virtio-mmio"})
    write("virt-virtio-mmio-pcie-2", "virt", small("virt"),
          {"defaultAddressType": "virtio-mmio", "pcieHotplugSlots": 2})
    write("virt-disk-not-hotpluggable", "virt", small("virt"), {},
          [("ua-disk0", {"hotpluggable": "no"})])
    write("virt-net-bus-pci", "virt", small("virt"), {}, [("ua-net0", {"bus": "pci"})])
    write("virt-rng-on-root-port", "virt", small("virt"), {},
          [("ua-rng", {"connection": "pcie-root-port"})])
    write("virt-pci-1", "virt", small("virt"), {"pciHotplugSlots": 1})
    # Switches: past the root bus's room, and for devices wishing a downstream port.
    for machine in ("q35", "virt"):
        for n in (8, 9, 40, 64):
            write(f"{machine}-crowded-pcie-{n}", machine, crowded(machine), {"pcieHotplugSlots": n})
        write(f"{machine}-net-on-downstream-port", machine, small(machine), {},
              [("ua-net0", {"connection": "pcie-switch-downstream-port"})])
        write(f"{machine}-two-on-downstream-ports-pcie-3", machine, small(machine),
              {"pcieHotplugSlots": 3},
              [("ua-net0", {"connection": "pcie-switch-downstream-port"}),
               ("disk:vda", {"connection": "pcie-switch-downstream-port", "hotpluggable": "yes"})])
    switch = ["<controller type='pci' index='1' model='pcie-root-port'/>",
              "<controller type='pci' index='2' model='pcie-switch-upstream-port'/>",
              "<controller type='pci' index='3' model='pcie-switch-downstream-port'/>"]
    write("q35-user-switch-net-on-downstream-port", "q35", switch + small("q35"), {},
          [("ua-net0", {"connection": "pcie-switch-downstream-port"})])
    # Bigger domains.
    for n in (0, 3, 10, 40):
        write(f"q35-many-pcie-{n}", "q35", many("q35"), {"pcieHotplugSlots": n})
    for n in (0, 5, 64):
        write(f"virt-many-pcie-{n}", "virt", many("virt"), {"pcieHotplugSlots": n})
    for n in (0, 10, 31):
        write(f"pc-many-pci-{n}", "pc", many("pc"), {"pciHotplugSlots": n})
    # Replanned: a fixed address the wishes contradict, dropped with --replan; nothing else moves.
    port = "<controller type='pci' index='1' model='pcie-root-port'>" + pci(0, 2) + "</controller>"
    rng_on_port = RNG.replace("</rng>", pci(1, 0) + "</rng>")
    write("q35-replan-rng-not-hotpluggable", "q35",
          [port, disk("vda", "ua-disk0", pci(0, 5)), nic(1, "virtio", "ua-net0"), rng_on_port],
          {}, [("ua-rng", {"hotpluggable": "no"})], ["ua-rng"])
    write("q35-replan-disk-hotpluggable-pcie-2", "q35",
          [disk("vda", "ua-disk0", pci(0, 5)), nic(1, "virtio", "ua-net0", pci(0, 6)), RNG],
          {"pcieHotplugSlots": 2}, [("disk:vda", {"hotpluggable": "yes"})], ["disk:vda"])
    write("q35-replan-two-devices", "q35",
          [disk("vda", "ua-disk0", pci(0, 5)), nic(1, "virtio", "ua-net0", pci(0, 6)),
           nic(2, "e1000", "ua-e1000", pci(0, 7)), RNG],
          {}, [("ua-net0", {"connection": "pcie-root-port"}), ("ua-e1000", {"bus": "pci"})],
          ["ua-net0", "interface:52:54:00:00:00:02"])
    write("pc-replan-net-on-pci-bridge", "pc",
          [disk("vda", "ua-disk0", pci(0, 5)), nic(1, "virtio", "ua-net0", pci(0, 6)), RNG],
          {}, [("interface:52:54:00:00:00:01", {"connection": "pci-bridge"})],
          ["interface:52:54:00:00:00:01"])
    write("virt-replan-disk-hotpluggable", "virt",
          [disk("vda", "ua-disk0", pci(0, 2)), nic(1, "virtio", "ua-net0"), RNG],
          {}, [("ua-disk0", {"hotpluggable": "yes"})], ["ua-disk0"])


if __name__ == "__main__":
    main()
