"""pciplan: plans PCI/PCIe device addresses for QEMU virtual machines.

Give it a libvirt domain XML; it fills in every missing device address as libvirt 9.0 would
(or as your wishes ask), without moving any address that is already there::

    import pciplan

    plan = pciplan.plan(open("vm.xml").read(), hotplug_slots={"pcie": 4})
    print(plan.xml)                       # the domain with every address filled in
    print(plan.addresses["disk:vda"])     # 0000:03:00.0
    for device in plan.added:             # the controllers pciplan added
        print(device.name, device.address)

    try:
        pciplan.plan(bad_xml)
    except pciplan.PlanError as e:
        print(e.rule, e.device, e.address, e.line)   # slot-range disk 'vda' None 13

Also check(), qemu_args(), tree(), attach() and detach(): the commands of the pciplan
program, with the same results byte for byte. This module is a thin layer over libpciplan's C
interface (pciplan.h) through ctypes: it needs libpciplan.so.0, found through the environment
variable PCIPLAN_LIBRARY (a path), else beside an installed module, else by the system's
dynamic loader.
"""

import ctypes
import json as _json
import os
import xml.etree.ElementTree as _ET
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

__all__ = [
    "Address", "Device", "Diagnostic", "Plan", "PlanError", "UsageError", "InternalError",
    "plan", "check", "qemu_args", "tree", "attach", "detach", "library_version",
]

_OK, _INVALID, _USAGE, _INTERNAL = 0, 1, 2, 3
_FORMAT_TEXT, _FORMAT_JSON, _FORMAT_DOT = 0, 1, 2


def _library_paths() -> List[str]:
    paths = []
    if os.environ.get("PCIPLAN_LIBRARY"):
        paths.append(os.environ["PCIPLAN_LIBRARY"])
    try:
        from . import _install  # written by `cmake --install`: where the library went
        paths.append(os.path.normpath(os.path.join(os.path.dirname(__file__), _install.LIBRARY)))
    except ImportError:
        pass
    paths.append("libpciplan.so.0")
    return paths


def _load() -> ctypes.CDLL:
    tried = []
    for path in _library_paths():
        try:
            return ctypes.CDLL(path)
        except OSError as e:
            tried.append(f"{path}: {e}")
    raise ImportError("pciplan: cannot load libpciplan.so.0 (set PCIPLAN_LIBRARY to its path): "
                      + "; ".join(tried))


_lib = _load()
_p = ctypes.c_void_p
_s = ctypes.c_char_p
_n = ctypes.c_size_t
_i = ctypes.c_int
_PP = ctypes.POINTER(ctypes.c_void_p)
for _name, _res, _args in [
    ("pciplan_error_new", _p, []),
    ("pciplan_error_free", None, [_p]),
    ("pciplan_error_status", _i, [_p]),
    ("pciplan_error_count", _n, [_p]),
    ("pciplan_error_rule", _s, [_p, _n]),
    ("pciplan_error_device", _s, [_p, _n]),
    ("pciplan_error_address", _s, [_p, _n]),
    ("pciplan_error_message", _s, [_p, _n]),
    ("pciplan_error_hint", _s, [_p, _n]),
    ("pciplan_error_line", _i, [_p, _n]),
    ("pciplan_error_in", _i, [_p, _n]),
    ("pciplan_error_render", _s, [_p, _n, _s]),
    ("pciplan_options_new", _p, []),
    ("pciplan_options_free", None, [_p]),
    ("pciplan_options_set_policy_json", _i, [_p, _s, _p]),
    ("pciplan_options_set_hotplug_slots", _i, [_p, _s, _p]),
    ("pciplan_options_set_policy", _i, [_p, _s, _p]),
    ("pciplan_options_set_default_address_type", _i, [_p, _s, _p]),
    ("pciplan_options_add_wish", _i, [_p, _s, _p]),
    ("pciplan_options_add_replan", _i, [_p, _s, _p]),
    ("pciplan_options_set_write_wishes", None, [_p, _i]),
    ("pciplan_options_set_format", _i, [_p, _i, _p]),
    ("pciplan_options_set_live", None, [_p, _i]),
    ("pciplan_options_set_prune", None, [_p, _i]),
    ("pciplan_plan", _i, [_s, _p, _PP, _p]),
    ("pciplan_check", _i, [_s, _p, _PP, _p]),
    ("pciplan_qemu_args", _i, [_s, _p, _PP, _p]),
    ("pciplan_tree", _i, [_s, _p, _PP, _p]),
    ("pciplan_attach", _i, [_s, _s, _p, _PP, _p]),
    ("pciplan_detach", _i, [_s, _s, _p, _PP, _p]),
    ("pciplan_detach_alias", _i, [_s, _s, _p, _PP, _p]),
    ("pciplan_result_free", None, [_p]),
    ("pciplan_result_text", _s, [_p]),
    ("pciplan_result_xml", _s, [_p]),
    ("pciplan_result_family", _s, [_p]),
    ("pciplan_result_json", _s, [_p]),
    ("pciplan_result_note_count", _n, [_p]),
    ("pciplan_result_note", _s, [_p, _n]),
    ("pciplan_result_device_count", _n, [_p]),
    ("pciplan_result_device_name", _s, [_p, _n]),
    ("pciplan_result_device_element", _s, [_p, _n]),
    ("pciplan_result_device_key", _s, [_p, _n]),
    ("pciplan_result_device_address", _s, [_p, _n]),
    ("pciplan_result_device_added", _i, [_p, _n]),
    ("pciplan_result_free_slots", _i, [_p, ctypes.POINTER(ctypes.c_uint),
                                       ctypes.POINTER(ctypes.c_uint)]),
    ("pciplan_version", _s, []),
]:
    _f = getattr(_lib, _name)
    _f.restype = _res
    _f.argtypes = _args


def _text(b: Optional[bytes]) -> Optional[str]:
    return None if b is None else b.decode("utf-8")


def library_version() -> str:
    """The version of the libpciplan loaded: "0.1.0"."""
    return _text(_lib.pciplan_version())


__version__ = library_version()


@dataclass(frozen=True)
class Diagnostic:
    """One problem: the rule broken, the device and address concerned, where, and why."""
    rule: Optional[str]      # "double-use", "slot-range", ...; None for a usage error
    device: Optional[str]    # "disk 'vda'"
    address: Optional[str]   # "0000:00:05.0"
    line: int                # 1-based line in the input, 0 when unknown
    message: str
    hint: Optional[str]
    input: str               # "domain", or "device" (attach and detach: the device XML)
    text: str                # as the pciplan program prints it, the input named "<input>"

    def __str__(self) -> str:
        return self.text


class PlanError(Exception):
    """The domain (or device) is invalid or cannot be planned. The fields are the first
    diagnostic's (the one `pciplan plan` stops at); `diagnostics` has every one."""

    def __init__(self, diagnostics: List[Diagnostic]):
        super().__init__("; ".join(d.text for d in diagnostics))
        self.diagnostics = diagnostics
        first = diagnostics[0]
        self.rule = first.rule
        self.device = first.device
        self.address = first.address
        self.line = first.line
        self.message = first.message
        self.hint = first.hint


class UsageError(PlanError, ValueError):
    """A malformed option: a wish, the spare slots, a policy."""


class InternalError(PlanError):
    """A bug in pciplan (or out of memory)."""


def _diagnostics(err: int) -> List[Diagnostic]:
    out = []
    for i in range(_lib.pciplan_error_count(err)):
        out.append(Diagnostic(
            rule=_text(_lib.pciplan_error_rule(err, i)),
            device=_text(_lib.pciplan_error_device(err, i)),
            address=_text(_lib.pciplan_error_address(err, i)),
            line=_lib.pciplan_error_line(err, i),
            message=_text(_lib.pciplan_error_message(err, i)),
            hint=_text(_lib.pciplan_error_hint(err, i)),
            input="device" if _lib.pciplan_error_in(err, i) == 1 else "domain",
            text=_text(_lib.pciplan_error_render(err, i, b"<input>"))))
    return out


def _raise(status: int, err: int) -> None:
    cls = {_INVALID: PlanError, _USAGE: UsageError}.get(status, InternalError)
    raise cls(_diagnostics(err))


@dataclass(frozen=True)
class Address:
    """A planned <address> element: its type and attributes, as written into the XML."""
    type: str
    attrs: Dict[str, str]
    xml: str

    @staticmethod
    def parse(xml: str) -> "Address":
        e = _ET.fromstring(xml)
        attrs = {k: v for k, v in e.attrib.items() if k != "type"}
        return Address(e.get("type", ""), attrs, xml)

    def __str__(self) -> str:
        if self.type == "pci":
            n = {k: int(self.attrs.get(k, "0"), 0) for k in ("domain", "bus", "slot", "function")}
            return f"{n['domain']:04x}:{n['bus']:02x}:{n['slot']:02x}.{n['function']:x}"
        return " ".join([self.type] + [f"{k}={v}" for k, v in self.attrs.items()])


@dataclass(frozen=True)
class Device:
    """A planned device."""
    name: str                  # how pciplan names it: "disk 'vda'", "controller pci index 1 (...)"
    element: str               # "disk", "controller", ...
    key: Optional[str]         # what wishes call it: "ua-net0", "disk:vda", "controller:pci:1"
    address: Optional[Address]
    added: bool                # pciplan added it (a controller, a default device)


@dataclass(frozen=True)
class Plan:
    """What a command made of a domain."""
    xml: Optional[str]         # the planned domain XML (None only if it cannot be written)
    text: str                  # what the command prints: the XML, "ok (q35)\\n", the tree...
    family: str                # "pc", "q35" or "virt"
    notes: List[str]           # why pciplan did what it did (plan --explain)
    devices: List[Device]      # the domain's devices, then those pciplan added
    free_slots: Optional[Tuple[int, int]] = None  # attach, detach: free (pcie, pci) hot-plug slots
    json: Optional[Dict[str, Any]] = None  # the document `pciplan plan --json` prints, "file" ""

    @property
    def addresses(self) -> Dict[str, Address]:
        """Each addressed device's address, by its key (its name when it has none)."""
        return {d.key or d.name: d.address for d in self.devices if d.address is not None}

    @property
    def added(self) -> List[Device]:
        """The devices pciplan added: controllers, and the machine's default devices."""
        return [d for d in self.devices if d.added]


def _result(res: int) -> Plan:
    devices = []
    for i in range(_lib.pciplan_result_device_count(res)):
        address = _text(_lib.pciplan_result_device_address(res, i))
        devices.append(Device(
            name=_text(_lib.pciplan_result_device_name(res, i)),
            element=_text(_lib.pciplan_result_device_element(res, i)),
            key=_text(_lib.pciplan_result_device_key(res, i)),
            address=Address.parse(address) if address is not None else None,
            added=bool(_lib.pciplan_result_device_added(res, i))))
    pcie, pci = ctypes.c_uint(), ctypes.c_uint()
    free = None
    if _lib.pciplan_result_free_slots(res, ctypes.byref(pcie), ctypes.byref(pci)) == 0:
        free = (pcie.value, pci.value)
    return Plan(
        xml=_text(_lib.pciplan_result_xml(res)),
        text=_text(_lib.pciplan_result_text(res)),
        family=_text(_lib.pciplan_result_family(res)),
        notes=[_text(_lib.pciplan_result_note(res, i))
               for i in range(_lib.pciplan_result_note_count(res))],
        devices=devices,
        free_slots=free,
        json=_json.loads(_text(_lib.pciplan_result_json(res))))


def _bytes(text: Union[str, bytes], what: str) -> bytes:
    b = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    if b"\0" in b:
        raise ValueError(f"pciplan: the {what} contains a NUL byte")
    return b


def _wish_value(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


WishesArg = Union[None, Mapping[str, Mapping[str, Any]], Iterable[str]]


class _Options:
    """A pciplan_options handle filled from keyword arguments."""

    def __init__(self, *, hotplug_slots: Union[None, str, Mapping[str, int]] = None,
                 wishes: WishesArg = None, policy: Union[None, str, Mapping[str, Any]] = None,
                 default_address_type: Optional[str] = None,
                 replan: Union[None, str, Iterable[str]] = None, write_wishes: bool = False,
                 fmt: int = _FORMAT_TEXT, live: bool = False, prune: bool = False):
        self.handle = _lib.pciplan_options_new()
        if not self.handle:
            raise MemoryError("pciplan: out of memory")
        try:
            if isinstance(policy, Mapping):
                self._set(_lib.pciplan_options_set_policy_json, _json.dumps(policy))
            elif policy is not None:
                self._set(_lib.pciplan_options_set_policy, policy)
            if isinstance(hotplug_slots, Mapping):
                hotplug_slots = ",".join(f"{k}={v}" for k, v in hotplug_slots.items())
            if hotplug_slots is not None:
                self._set(_lib.pciplan_options_set_hotplug_slots, hotplug_slots)
            if default_address_type is not None:
                self._set(_lib.pciplan_options_set_default_address_type, default_address_type)
            if isinstance(wishes, Mapping):
                wishes = [key + ":" + ",".join(f"{n}={_wish_value(v)}" for n, v in w.items())
                          for key, w in wishes.items()]
            for wish in wishes or []:
                self._set(_lib.pciplan_options_add_wish, wish)
            for device in [replan] if isinstance(replan, str) else (replan or []):
                self._set(_lib.pciplan_options_add_replan, device)
            _lib.pciplan_options_set_write_wishes(self.handle, 1 if write_wishes else 0)
            _lib.pciplan_options_set_live(self.handle, 1 if live else 0)
            _lib.pciplan_options_set_prune(self.handle, 1 if prune else 0)
            if fmt != _FORMAT_TEXT:
                self._set_format(fmt)
        except BaseException:
            self.close()
            raise

    def _set(self, setter, text: str) -> None:
        err = _lib.pciplan_error_new()
        try:
            status = setter(self.handle, _bytes(text, "option"), err)
            if status != _OK:
                _raise(status, err)
        finally:
            _lib.pciplan_error_free(err)

    def _set_format(self, fmt: int) -> None:
        err = _lib.pciplan_error_new()
        try:
            status = _lib.pciplan_options_set_format(self.handle, fmt, err)
            if status != _OK:
                _raise(status, err)
        finally:
            _lib.pciplan_error_free(err)

    def close(self) -> None:
        _lib.pciplan_options_free(self.handle)
        self.handle = None


def _run(command, texts: List[bytes], options: _Options) -> Plan:
    err = _lib.pciplan_error_new()
    res = ctypes.c_void_p()
    try:
        status = command(*texts, options.handle, ctypes.byref(res), err)
        if status != _OK:
            _raise(status, err)
        return _result(res.value)
    finally:
        _lib.pciplan_result_free(res)
        _lib.pciplan_error_free(err)
        options.close()


def plan(xml: Union[str, bytes], *, hotplug_slots=None, wishes: WishesArg = None, policy=None,
         default_address_type: Optional[str] = None, replan=None,
         write_wishes: bool = False) -> Plan:
    """Fills in every missing address of the domain `xml` (pciplan plan).

    hotplug_slots: free hot-pluggable slots to keep, {"pcie": 4, "pci": 2} or "pcie=4,pci=2".
    wishes: per device, {"ua-net0": {"hotpluggable": True, "bus": "pcie"}} or a list of
        --wish strings ("ua-net0:hotpluggable=yes").
    policy: "libvirt" (the default) or "integrated"; or a policy file's content as a dict
        ({"version": 1, "pcieHotplugSlots": 4, "devices": {...}}), under the other arguments.
    default_address_type: "pci" or "virtio-mmio" (virt).
    replan: a device key, or several, whose address is dropped and planned again.
    write_wishes: record the wishes used into the domain's metadata.
    Raises PlanError (UsageError for a malformed argument)."""
    texts = [_bytes(xml, "domain XML")]
    o = _Options(hotplug_slots=hotplug_slots, wishes=wishes, policy=policy,
                 default_address_type=default_address_type, replan=replan,
                 write_wishes=write_wishes)
    return _run(_lib.pciplan_plan, texts, o)


def check(xml: Union[str, bytes], **wishes) -> Plan:
    """Validates and plans the domain (pciplan check); its text is "ok (FAMILY)\\n". Takes the
    arguments of plan() but write_wishes. Raises PlanError."""
    texts = [_bytes(xml, "domain XML")]
    return _run(_lib.pciplan_check, texts, _Options(**wishes))


def qemu_args(xml: Union[str, bytes], *, json: bool = False, **wishes) -> Union[str, dict]:
    """The QEMU command line of the plan (pciplan qemu-args): the shell command, or with
    json=True the document of `qemu-args --json` (binary, machine, devices, argv) as a dict.
    Takes the arguments of plan() but write_wishes. Raises PlanError."""
    texts = [_bytes(xml, "domain XML")]
    o = _Options(fmt=_FORMAT_JSON if json else _FORMAT_TEXT, **wishes)
    text = _run(_lib.pciplan_qemu_args, texts, o).text
    return _json.loads(text) if json else text


def tree(xml: Union[str, bytes], *, dot: bool = False, **wishes) -> str:
    """The planned topology (pciplan tree): a text tree, or with dot=True a Graphviz graph.
    Takes the arguments of plan() but write_wishes. Raises PlanError."""
    texts = [_bytes(xml, "domain XML")]
    o = _Options(fmt=_FORMAT_DOT if dot else _FORMAT_TEXT, **wishes)
    return _run(_lib.pciplan_tree, texts, o).text


def attach(domain_xml: Union[str, bytes], device_xml: Union[str, bytes], *, live: bool = False,
           hotplug_slots=None, wishes: WishesArg = None, policy=None,
           default_address_type: Optional[str] = None, write_wishes: bool = False) -> Plan:
    """The domain with the device element `device_xml` added, no address moved (pciplan
    attach). live=True: a free hot-pluggable slot only, no controller added. The Plan's
    free_slots says how many (pcie, pci) hot-pluggable slots remain. Raises PlanError; a
    diagnostic in the device XML has input "device"."""
    texts = [_bytes(domain_xml, "domain XML"), _bytes(device_xml, "device XML")]
    o = _Options(hotplug_slots=hotplug_slots, wishes=wishes, policy=policy,
                 default_address_type=default_address_type, write_wishes=write_wishes,
                 live=live)
    return _run(_lib.pciplan_attach, texts, o)


def detach(domain_xml: Union[str, bytes], device_xml: Union[None, str, bytes] = None, *,
           alias: Optional[str] = None, prune: bool = False, hotplug_slots=None,
           wishes: WishesArg = None, policy=None, default_address_type: Optional[str] = None,
           write_wishes: bool = False) -> Plan:
    """The domain without the device that `device_xml` (an element to match) or `alias` names,
    no address moved (pciplan detach). prune=True: also the PCI controllers left empty on its
    path. Raises PlanError."""
    if (device_xml is None) == (alias is None):
        raise TypeError("pciplan.detach: give device_xml or alias, not both")
    texts = [_bytes(domain_xml, "domain XML"),
             _bytes(alias, "alias") if alias is not None else _bytes(device_xml, "device XML")]
    o = _Options(hotplug_slots=hotplug_slots, wishes=wishes, policy=policy,
                 default_address_type=default_address_type, write_wishes=write_wishes,
                 prune=prune)
    return _run(_lib.pciplan_detach_alias if alias is not None else _lib.pciplan_detach, texts, o)
