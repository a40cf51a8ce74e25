#!/usr/bin/env python3
"""Validates pciplan's JSON documents against schema/*.schema.json (python3-jsonschema).

Usage: validate_json.py PCIPLAN SOURCE_DIR

Runs `plan --batch --json` and `check --batch --json` over every conformance case (valid and
rejected) and the wishes corpus, one process each, and single runs of plan, check, attach,
detach, qemu-args (single and batch) and verify (also with a QEMU that cannot start); every
document must validate against the schema of its kind, and documents broken on purpose must
not. Prints 'N passed, N failed'; exits 1 on any failure.
"""
import copy
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import jsonschema

PCIPLAN, SOURCE = sys.argv[1], sys.argv[2]
KINDS = ["plan", "check", "attach", "detach", "qemu-args", "verify", "verify-guest"]

schemas = {}
for name in ["common"] + KINDS:
    with open(os.path.join(SOURCE, "schema", name + ".schema.json")) as f:
        schemas[name] = json.load(f)
for s in schemas.values():
    jsonschema.Draft202012Validator.check_schema(s)

try:  # jsonschema >= 4.18 resolves references through 'referencing'
    from referencing import Registry, Resource

    registry = Registry().with_resources(
        [(s["$id"], Resource.from_contents(s)) for s in schemas.values()])

    def make_validator(schema):
        return jsonschema.Draft202012Validator(schema, registry=registry)
except ImportError:  # Debian 12's 4.10
    store = {s["$id"]: s for s in schemas.values()}

    def make_validator(schema):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        return jsonschema.Draft202012Validator(schema, resolver=resolver)

validators = {k: make_validator(schemas[k]) for k in KINDS}
passed, failed = 0, 0


def fail(what, why):
    global failed
    failed += 1
    print(f"FAIL {what}: {why}")


def check(what, doc, kind=None):
    """One document must be valid for its kind (or `kind`)."""
    global passed
    kind = kind or doc.get("kind")
    if kind not in validators:
        fail(what, f"unknown kind {kind!r}")
        return
    errors = sorted(validators[kind].iter_errors(doc), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        fail(what, f"{kind}: /{'/'.join(map(str, e.path))}: {e.message[:300]}")
    else:
        passed += 1


def must_reject(what, doc, kind):
    """A document broken on purpose must not validate: the schema checks something."""
    global passed
    if validators[kind].is_valid(doc):
        fail(what, "a broken document validated")
    else:
        passed += 1


def run(args, stdin=None):
    return subprocess.run([PCIPLAN] + args, capture_output=True, text=True, input=stdin,
                          cwd=work)


def lines_of(args, count, kind):
    r = run(args)
    lines = [l for l in r.stdout.split("\n") if l]
    if len(lines) != count:
        fail(" ".join(args[:3]), f"{len(lines)} lines for {count} files: {r.stderr[:300]}")
    docs = []
    for line in lines:
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as e:
            fail(" ".join(args[:3]), f"not JSON: {e}")
            continue
        if doc.get("kind") != kind:
            fail(doc.get("file"), f"kind {doc.get('kind')!r}, expected {kind!r}")
        check(f"{kind} {doc.get('file')}", doc)
        docs.append(doc)
    return docs


def single(args, kind, status=None):
    r = run(args)
    what = " ".join(args)
    if status is not None and r.returncode != status:
        fail(what, f"exit {r.returncode}, expected {status}: {r.stderr[:300]}")
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError as e:
        fail(what, f"not one JSON document: {e}: {r.stdout[:200]!r}")
        return None
    if doc.get("kind") != kind:
        fail(what, f"kind {doc.get('kind')!r}, expected {kind!r}")
    check(what, doc)
    return doc


with tempfile.TemporaryDirectory(prefix="pciplan-schema-") as work:
    def named(corpus):
        """Copies of the corpus's inputs named after their cases (batch outputs need distinct
        names). Copies, not links: pciplan writes through a link, into the corpus."""
        folder = os.path.join(work, "in-" + os.path.basename(os.path.dirname(corpus)))
        os.mkdir(folder)
        copies = []
        for case in sorted(glob.glob(os.path.join(SOURCE, corpus, "*/input.xml"))):
            copies.append(os.path.join(folder, os.path.basename(os.path.dirname(case)) + ".xml"))
            shutil.copyfile(case, copies[-1])
        return copies

    cases = named("tests/conformance/cases")
    wishes = named("tests/wishes/cases")
    # Batch over the corpora: one process each, one document per line.
    plans = lines_of(["plan", "--batch", "--json", "-O", "out-plan"] + cases, len(cases), "plan")
    checks = lines_of(["check", "--batch", "--json"] + cases, len(cases), "check")
    lines_of(["plan", "--batch", "--json", "-O", "out-wishes"] + wishes, len(wishes), "plan")
    if sum(1 for d in checks if d["ok"]) < 200 or sum(1 for d in checks if not d["ok"]) < 80:
        fail("check corpus", "expected both valid and rejected cases")
    for p, c in zip(plans, checks):
        if p["ok"] != c["ok"] or (p["ok"] and p["devices"] != c["devices"]):
            fail(p["file"], "plan and check disagree")
        elif not c["ok"] and c["diagnostics"][0] != p["diagnostics"][0]:
            fail(p["file"], "check's first problem is not plan's")
    lines_of(["qemu-args", "--batch", "--json", "-O", "out-args"] + cases[:40], 40, "qemu-args")

    # Single runs of each command, succeeding and failing.
    example = os.path.join(SOURCE, "examples/q35-server.xml")
    # Three independent problems (tests/cli/json_test.cc has the same domain).
    rejected = os.path.join(work, "three.xml")
    with open(rejected, "w") as f:
        f.write("""<domain type='qemu'><name>three</name><os><type arch='x86_64' machine='pc'>hvm</type></os>
<devices>
<disk type='file' device='disk'><target dev='vda' bus='virtio'/>
<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></disk>
<interface type='user'><model type='e1000'/>
<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></interface>
<interface type='user'><model type='virtio'/>
<address type='pci' domain='0x0001' bus='0x00' slot='0x06' function='0x0'/></interface>
<rng model='virtio'><address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></rng>
</devices></domain>
""")
    good = single(["plan", "--json", example], "plan", 0)
    single(["plan", "--json", "-o", "out.xml", example], "plan", 0)
    single(["plan", "--json", "--all-errors", rejected], "plan", 1)
    single(["check", "--json", example], "check", 0)
    three = single(["check", "--json", rejected], "check", 1)
    if three and [d["line"] for d in three["diagnostics"]] != [5, 7, 9]:
        fail("check --json three.xml", f"diagnostics {three['diagnostics']}")
    single(["check", "--json", "missing.xml"], "check", 2)
    single(["qemu-args", "--json", example], "qemu-args", 0)
    single(["qemu-args", "--json", rejected], "qemu-args", 1)
    with open(os.path.join(work, "disk.xml"), "w") as f:
        f.write("<disk type='file' device='disk'><target dev='vdz' bus='virtio'/></disk>\n")
    single(["attach", "--json", example, "disk.xml", "-o", "attached.xml"], "attach", 0)
    single(["attach", "--json", "--live", example, "disk.xml"], "attach")
    single(["attach", "--json", rejected, "disk.xml"], "attach", 1)
    single(["detach", "--json", "attached.xml", "disk.xml"], "detach", 0)
    single(["detach", "--json", "--prune", "attached.xml", "disk.xml"], "detach", 0)
    single(["detach", "--json", example, "--alias", "ua-none"], "detach", 1)
    pc = os.path.join(SOURCE, "tests/cli/cases/verify-pc/input.xml")
    single(["verify", "--json", "--no-probes", pc], "verify", 0)
    single(["verify", "--json", "--qemu", "/bin/false", pc], "verify", 1)
    single(["verify", "--json", "--qemu", "/nonexistent/qemu-system-x86_64", pc], "verify", 1)
    single(["verify", "--json", rejected], "verify", 1)
    single(["verify", "--guest", "--json", rejected], "verify-guest", 1)

    # The schemas check something: broken documents do not validate.
    if good:
        for what, mutate in [
            ("no format", lambda d: d.pop("format")),
            ("format 2", lambda d: d.update(format=2)),
            ("bus as text", lambda d: d["devices"][0]["address"].update(bus="0x01")),
            ("unknown field", lambda d: d.update(extra=1)),
            ("diagnostic without rule", lambda d: d["diagnostics"].append({"message": "x"})),
            ("device without line", lambda d: d["devices"][0].pop("line")),
        ]:
            broken = copy.deepcopy(good)
            mutate(broken)
            must_reject(what, broken, "plan")

print(f"JSON schemas: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
