#!/usr/bin/env bash
# Median wall time of `pciplan plan` against libvirt's round trip (`virsh define` + `dumpxml
# --inactive` + `undefine`, three processes, as ../shared/tools/libvirt-oracle runs them) and
# against an empty C++ program (`int main(){}`, g++ -O2, default linking: the process floor).
# Runs alternate (pciplan, libvirt, floor, pciplan, ...) so that load on the machine hits all
# alike; prints the medians and the ratios.
#
#   bench/vs-libvirt.sh [PCIPLAN] [RUNS]     (defaults: build/pciplan, 41)
# BASELINE=path/to/another/pciplan adds that binary to the rotation (an older build, side by side).
# Needs libvirt running: ../shared/tools/libvirt-oracle setup (root), virsh, g++, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
PCIPLAN=${1:-build/pciplan}
RUNS=${2:-41}
URI=${LIBVIRT_URI:-qemu:///system}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

printf 'int main() {}\n' > "$work/empty.cc"
g++ -O2 "$work/empty.cc" -o "$work/empty"

# A q35 domain of 150 virtio disks.
python3 bench/domains.py disks q35 150 > "$work/disks150.xml"

python3 - "$PCIPLAN" "$RUNS" "$URI" "$work" "${BASELINE:-}" examples/q35-server.xml \
    "$work/disks150.xml" <<'PY'
import os, re, statistics, subprocess, sys, time
pciplan, runs, uri, work, baseline, *inputs = sys.argv[1:]
runs = int(runs)
def timed(argvs):
    t = time.perf_counter_ns()
    for argv in argvs:
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter_ns() - t) / 1e6
for path in inputs:
    # libvirt needs a name of its own for the round trip.
    text = open(path).read()
    name = f"vs-libvirt-{os.getpid()}"
    text = re.sub(r"<name>[^<]*</name>", f"<name>{name}</name>", text, count=1)
    text = re.sub(r"<uuid>[^<]*</uuid>", "", text)
    dom = os.path.join(work, "libvirt.xml")
    open(dom, "w").write(text)
    virsh = ["virsh", "-q", "-c", uri]
    libvirt = [virsh + ["define", dom], virsh + ["dumpxml", "--inactive", name],
               virsh + ["undefine", name, "--nvram"]]
    ours = [[pciplan, "plan", path]]
    floor = [[os.path.join(work, "empty")]]
    rotation = {"pciplan": ours, "libvirt": libvirt, "floor": floor}
    if baseline:
        rotation["baseline"] = [[baseline, "plan", path]]
    samples = {k: [] for k in rotation}
    for _ in range(3):  # warm caches
        for argvs in rotation.values():
            timed(argvs)
    for _ in range(runs):
        for k, argvs in rotation.items():
            samples[k].append(timed(argvs))
    m = {k: statistics.median(v) for k, v in samples.items()}
    print(f"{os.path.basename(path)}: median of {runs} alternating runs")
    print(f"  pciplan plan           {m['pciplan']:8.3f} ms")
    print(f"  libvirt round trip     {m['libvirt']:8.3f} ms")
    print(f"  empty C++ program      {m['floor']:8.3f} ms")
    print(f"  libvirt / pciplan      {m['libvirt'] / m['pciplan']:8.1f}x")
    print(f"  pciplan / empty        {m['pciplan'] / m['floor']:8.2f}x")
    if baseline:
        print(f"  baseline pciplan plan  {m['baseline']:8.3f} ms ({baseline})")
        print(f"  libvirt / baseline     {m['libvirt'] / m['baseline']:8.1f}x")
        print(f"  baseline / empty       {m['baseline'] / m['floor']:8.2f}x")
PY
