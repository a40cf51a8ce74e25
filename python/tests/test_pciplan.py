"""The Python binding: each command against the pciplan program's own output, the errors, the
options, and the whole conformance corpus planned through it.

Run from CTest (Python.Bindings) with PCIPLAN_LIBRARY (libpciplan.so) and PCIPLAN_CLI (the
pciplan program) set, and python/ on PYTHONPATH."""

import os
import pathlib
import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

import pciplan

SOURCE = pathlib.Path(__file__).resolve().parents[2]
CASES = SOURCE / "tests" / "conformance" / "cases"
CLI = os.environ.get("PCIPLAN_CLI", str(SOURCE / "build" / "pciplan"))

Q35 = """<domain type='kvm'>
  <name>vm</name>
  <memory unit='MiB'>512</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <source file='/var/lib/vm.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='user'>
      <mac address='52:54:00:00:00:01'/>
      <model type='virtio'/>
      <alias name='ua-net0'/>
    </interface>
  </devices>
</domain>
"""

SLOT_OUT_OF_RANGE = """<domain type='kvm'>
  <name>vm</name>
  <memory unit='MiB'>512</memory>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x20' function='0x0'/>
    </disk>
  </devices>
</domain>
"""

NIC = """<interface type='user'>
  <mac address='52:54:00:00:00:02'/>
  <model type='virtio'/>
</interface>
"""


def cli(*args, stdin=None):
    """Runs the pciplan program: (exit status, standard output, standard error)."""
    p = subprocess.run([CLI, *args], input=stdin, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def cli_on(tmp_path, text, *args):
    path = tmp_path / "vm.xml"
    path.write_text(text)
    return cli(args[0], str(path), *args[1:])


def test_plan_fills_every_address_as_the_program_does(tmp_path):
    p = pciplan.plan(Q35)
    assert p.xml == cli_on(tmp_path, Q35, "plan")[1]
    assert p.text == p.xml
    assert p.family == "q35"
    assert str(p.addresses["disk:vda"]).startswith("0000:")
    assert p.addresses["disk:vda"].type == "pci"


def test_addresses_are_the_ones_written_into_the_xml():
    p = pciplan.plan(Q35)
    devices = ET.fromstring(p.xml).find("devices")
    written = {}
    for e in devices:
        a = e.find("address")
        if e.tag == "disk" and a is not None:
            written["disk:" + e.find("target").get("dev")] = a.attrib
        if e.tag == "interface" and a is not None:
            written[e.find("alias").get("name")] = a.attrib
    assert written == {k: {"type": "pci", **p.addresses[k].attrs} for k in ("disk:vda", "ua-net0")}
    for d in p.devices:
        if d.address is not None:
            assert d.address.xml in p.xml


def test_added_lists_the_controllers_pciplan_added():
    p = pciplan.plan(Q35)
    added = [d for d in p.added if d.element == "controller"]
    assert any("pcie-root-port" in d.name for d in added)
    assert any(d.key == "controller:pci:0" for d in added)  # pcie-root
    assert not any(d.element == "disk" for d in p.added)
    roomy = pciplan.plan(Q35, hotplug_slots={"pcie": 4})
    # libvirt keeps one free root port on q35: three more make four.
    assert len(roomy.added) == len(p.added) + 3


def test_plan_error_carries_rule_device_and_line(tmp_path):
    with pytest.raises(pciplan.PlanError) as e:
        pciplan.plan(SLOT_OUT_OF_RANGE)
    err = e.value
    assert err.rule == "slot-range"
    assert err.device == "disk 'vda'"
    assert err.line == 6
    assert err.diagnostics[0].input == "domain"
    assert len(err.diagnostics) >= 1
    status, _, stderr = cli_on(tmp_path, SLOT_OUT_OF_RANGE, "plan")
    assert status == 1
    path = str(tmp_path / "vm.xml")
    assert stderr.splitlines()[0] == err.diagnostics[0].text.replace("<input>", path)
    assert not isinstance(err, pciplan.UsageError)


def test_malformed_options_raise_usage_errors():
    with pytest.raises(pciplan.UsageError) as e:
        pciplan.plan(Q35, hotplug_slots="pcie=many")
    assert e.value.rule == "bad-wish"
    with pytest.raises(ValueError):
        pciplan.plan(Q35, wishes=["ua-net0:hotpluggable=maybe"])
    with pytest.raises(pciplan.UsageError):
        pciplan.plan(Q35, policy="fastest")
    with pytest.raises(pciplan.UsageError):
        pciplan.plan(Q35, policy={"version": 1, "spare": 3})
    with pytest.raises(ValueError):
        pciplan.plan(Q35 + "\0")


def test_wishes_as_mapping_and_as_strings_plan_the_same(tmp_path):
    by_map = pciplan.plan(Q35, wishes={"disk:vda": {"hotpluggable": False}})
    by_str = pciplan.plan(Q35, wishes=["disk:vda:hotpluggable=no"])
    assert by_map.xml == by_str.xml
    assert by_map.xml == cli_on(tmp_path, Q35, "plan", "--wish", "disk:vda:hotpluggable=no")[1]
    assert by_map.xml != pciplan.plan(Q35).xml


def test_hotplug_slots_and_policy_document_match_the_program(tmp_path):
    by_dict = pciplan.plan(Q35, hotplug_slots={"pcie": 3, "pci": 1})
    assert by_dict.xml == pciplan.plan(Q35, hotplug_slots="pcie=3,pci=1").xml
    assert by_dict.xml == cli_on(tmp_path, Q35, "plan", "--hotplug-slots", "pcie=3,pci=1")[1]
    policy = tmp_path / "policy.json"
    policy.write_text('{"version": 1, "pcieHotplugSlots": 3, "pciHotplugSlots": 1}')
    assert pciplan.plan(Q35, policy={"version": 1, "pcieHotplugSlots": 3,
                                     "pciHotplugSlots": 1}).xml == by_dict.xml
    assert cli_on(tmp_path, Q35, "plan", "--policy-file", str(policy))[1] == by_dict.xml
    integrated = pciplan.plan(Q35, policy="integrated")
    assert integrated.xml == cli_on(tmp_path, Q35, "plan", "--policy", "integrated")[1]


def test_replan_of_an_unknown_device_is_refused():
    with pytest.raises(pciplan.PlanError) as e:
        pciplan.plan(Q35, replan="disk:vdz")
    assert e.value.rule == "bad-replan"


def test_write_wishes_records_them(tmp_path):
    p = pciplan.plan(Q35, hotplug_slots={"pcie": 2}, write_wishes=True)
    assert "pcieHotplugSlots" in p.xml
    assert p.xml == cli_on(tmp_path, Q35, "plan", "--hotplug-slots", "pcie=2",
                           "--write-wishes")[1]


def test_the_json_document_is_the_programs(tmp_path):
    doc = pciplan.plan(Q35).json
    program = __import__("json").loads(cli_on(tmp_path, Q35, "plan", "--json")[1])
    assert doc["format"] == 1 and doc["kind"] == "plan" and doc["ok"] is True
    assert doc["file"] == "" and program.pop("file").endswith("vm.xml")
    doc.pop("file")
    assert doc == program
    assert any(d["address"] for d in doc["devices"])


def test_check_says_ok_and_the_family():
    assert pciplan.check(Q35).text == "ok (q35)\n"
    with pytest.raises(pciplan.PlanError):
        pciplan.check(SLOT_OUT_OF_RANGE)


def test_qemu_args_text_and_json_match_the_program(tmp_path):
    assert pciplan.qemu_args(Q35) == cli_on(tmp_path, Q35, "qemu-args")[1]
    doc = pciplan.qemu_args(Q35, json=True)
    assert doc["binary"] == "qemu-system-x86_64"
    assert "-device" in doc["argv"]
    program = __import__("json").loads(cli_on(tmp_path, Q35, "qemu-args", "--json")[1])
    assert doc["file"] == "" and program.pop("file").endswith("vm.xml")
    doc.pop("file")
    assert doc == program


def test_tree_text_and_dot_match_the_program(tmp_path):
    assert pciplan.tree(Q35) == cli_on(tmp_path, Q35, "tree")[1]
    assert pciplan.tree(Q35, dot=True) == cli_on(tmp_path, Q35, "tree", "--dot")[1]
    assert pciplan.tree(Q35, dot=True).startswith("digraph")


def test_attach_and_detach_match_the_program(tmp_path):
    planned = pciplan.plan(Q35).xml
    (tmp_path / "planned.xml").write_text(planned)
    (tmp_path / "nic.xml").write_text(NIC)
    attached = pciplan.attach(planned, NIC)
    program = cli("attach", str(tmp_path / "planned.xml"), str(tmp_path / "nic.xml"))[1]
    assert attached.xml == program
    assert attached.free_slots is not None
    live = pciplan.attach(planned, NIC, live=True)
    assert live.free_slots == (0, 0)
    assert pciplan.detach(attached.xml, NIC).xml == planned
    gone = pciplan.detach(planned, alias="ua-net0")
    assert gone.xml == cli("detach", str(tmp_path / "planned.xml"), "--alias", "ua-net0")[1]
    with pytest.raises(pciplan.PlanError) as e:
        pciplan.attach(planned, "<interface type='user'>\n<mac")
    assert e.value.diagnostics[0].input == "device"
    with pytest.raises(TypeError):
        pciplan.detach(planned)


def test_the_example_plans_as_the_program_does():
    example = SOURCE / "examples" / "q35-server.xml"
    assert pciplan.plan(example.read_text()).xml == cli("plan", str(example))[1]


def first_rule(stderr):
    m = re.search(r"\[([a-z0-9-]+)\](?: \(hint: .*\))?$", stderr.splitlines()[0])
    return m.group(1) if m else None


def test_the_whole_corpus_plans_as_the_program_does(tmp_path):
    cases = sorted(p for p in CASES.iterdir() if (p / "input.xml").is_file())
    assert len(cases) > 300
    mismatches = []
    for case in cases:
        out = tmp_path / "out.xml"
        if out.exists():
            out.unlink()
        status, _, stderr = cli("plan", str(case / "input.xml"), "-o", str(out))
        text = (case / "input.xml").read_bytes()
        if status == 0:
            try:
                if pciplan.plan(text).xml != out.read_text():
                    mismatches.append(f"{case.name}: the XML differs")
            except pciplan.PlanError as e:
                mismatches.append(f"{case.name}: the binding failed: {e}")
        else:
            assert status == 1, stderr
            with pytest.raises(pciplan.PlanError) as e:
                pciplan.plan(text)
            if e.value.rule != first_rule(stderr):
                mismatches.append(f"{case.name}: {e.value.rule} != {first_rule(stderr)}")
    assert mismatches == []


def test_version_is_the_library_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", pciplan.__version__)
    assert pciplan.library_version() == pciplan.__version__
