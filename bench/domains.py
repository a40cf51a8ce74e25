"""The generated domains of the benchmark scripts (the same as bench/plan_bench.cc's).

  domains.py disks MACHINE N          a domain of N virtio disks (vs-libvirt.sh: q35, 150)
  domains.py devices MACHINE ARCH N   BM_Whole's domain: N devices, disks and NICs alternating
"""
import sys


def disk_name(i):
    """vda, vdb, ..., vdz, vdaa, ... as libvirt names virtio disks."""
    s = ''
    while True:
        s = chr(ord('a') + i % 26) + s
        i = i // 26 - 1
        if i < 0:
            return 'vd' + s


def disks(machine, n):
    body = ''.join(f"<disk type='file' device='disk'><source file='/x{i}'/>"
                   f"<target dev='{disk_name(i)}' bus='virtio'/></disk>\n" for i in range(n))
    return ("<domain type='qemu'><name>bench-disks150</name><memory>1048576</memory>"
            f"<os><type arch='x86_64' machine='{machine}'>hvm</type></os><devices>\n"
            f"<emulator>/usr/bin/qemu-system-x86_64</emulator>\n{body}</devices></domain>\n")


def devices(machine, arch, n):
    out = ["<domain type='qemu'>\n  <name>bench</name>\n  <memory>1048576</memory>\n",
           f"  <os>\n    <type arch='{arch}' machine='{machine}'>hvm</type>\n  </os>\n"
           "  <devices>\n"]
    for i in range(n):
        if i % 2 == 0:
            out.append(f"    <disk type='file' device='disk'>\n      <source file='/x{i}'/>\n"
                       f"      <target dev='{disk_name(i // 2)}' bus='virtio'/>\n    </disk>\n")
        else:
            out.append("    <interface type='user'>\n      <model type='virtio'/>\n"
                       "    </interface>\n")
    out.append("  </devices>\n</domain>\n")
    return ''.join(out)


if __name__ == '__main__':
    kind, args = sys.argv[1], sys.argv[2:]
    if kind == 'disks':
        sys.stdout.write(disks(args[0], int(args[1])))
    elif kind == 'devices':
        sys.stdout.write(devices(args[0], args[1], int(args[2])))
    else:
        sys.exit(f'domains.py: unknown kind {kind}')
