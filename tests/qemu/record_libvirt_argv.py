#!/usr/bin/env python3
"""Records libvirt 9.0's QEMU -device objects for every valid conformance case.

Runs `libvirt-oracle argv` on each case's expected.xml (libvirt's own fully addressed output;
for a qemu-misplaces deviation, libvirt-of-plan.xml: libvirt's output of pciplan's plan) and writes tests/qemu/libvirt-argv/CASE.jsonl: the -machine value on the first line as a JSON
string, then one -device JSON object per line, in libvirt's order. Run by hand, as root, on a
machine where the oracle works; the test suite only reads the recorded files.
"""
import json, pathlib, shlex, subprocess, sys

here = pathlib.Path(__file__).resolve().parent
cases = here.parent / "conformance" / "cases"
oracle = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here.parents[2] / "shared/tools/libvirt-oracle"
out = here / "libvirt-argv"
out.mkdir(exist_ok=True)
only = set(sys.argv[2:])
for case in sorted(p for p in cases.iterdir() if (p / "expected.xml").exists()):
    if only and case.name not in only:
        continue
    dst = out / (case.name + ".jsonl")
    if dst.exists() and not only:
        continue
    xml = case / "libvirt-of-plan.xml"
    if not xml.exists():
        xml = case / "expected.xml"
    r = subprocess.run([str(oracle), "argv", str(xml)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"{case.name}: oracle failed: {r.stderr.strip()}", file=sys.stderr)
        continue
    line = [l for l in r.stdout.splitlines() if "qemu-system" in l][-1]
    argv = shlex.split(line)
    lines = []
    for i, a in enumerate(argv):
        if a == "-machine":
            lines.insert(0, json.dumps(argv[i + 1]))
        elif a == "-device":
            lines.append(json.dumps(json.loads(argv[i + 1]), separators=(",", ":")))
    dst.write_text("".join(l + "\n" for l in lines))
    print(case.name, len(lines) - 1, "devices", flush=True)
