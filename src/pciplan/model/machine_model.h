// The machine model: every fact about machine families, PCI controller models and device
// classes, loaded from data/ (model_loader.h). Pure data; the planner looks things up by id.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pciplan/base/connect.h"
#include "pciplan/base/props.h"

namespace pciplan {

using ControllerModelId = int;

/// A condition on a device: its tag ("element"), property values ("@type": "usb" or a list of
/// accepted values), or a role the planner knows ("primary-video").
struct Match {
  std::string element;
  std::string role;
  std::vector<std::pair<std::string, std::vector<std::string>>> props;

  /// True when the element is `tag` and every listed property has one of the values.
  /// Roles are not checked here (the caller knows which device plays a role).
  bool Matches(const std::string& tag, const Props& props) const;
  /// The same for the properties alone (the caller has checked the element).
  bool MatchesProps(const Props& props) const;
  /// Whether no device this matches can match `other` on its properties: both list one
  /// property and share none of its values (a "@type pci" rule is no "@type ccid" one).
  /// Elements and roles are not compared.
  bool RulesOut(const Match& other) const;

  bool operator==(const Match&) const = default;
};

struct ControllerModel {
  std::string name;            // libvirt model attribute: "pcie-root-port"
  std::string qemu;            // QEMU device and libvirt <model name>: "pcie-root-port"
  bool root = false;           // pci-root / pcie-root: index 0, never has an address
  // More controllers of this root model are further root buses (index > 0), each a QEMU device
  // of its own (`qemu`, id pci.N) whose bus is pci.N.0: pseries' spapr PHBs.
  bool extra_roots = false;
  std::optional<Connect> plugs_as;  // how it connects upstream
  bool aggregate = false;      // may share a slot with others of its model, as functions
  ConnectKinds offers;         // what its slots accept
  bool autoassign = true;      // endpoints may be placed on it automatically
  bool hotplug = true;         // libvirt treats its slots as hot-pluggable (placement)
  bool qemu_hotplug = true;    // QEMU accepts a hot-plug into its slots (the plan's promise)
  // QEMU's hot-plug into it is ACPI's: only under the main root, and only on a machine with ACPI
  // PCI hot-plug (MachineFamily::acpi_pci_hotplug)
  bool qemu_hotplug_acpi = false;
  bool qemu_root_bus = false;      // QEMU makes its bus a root bus of its own (expander buses)
  // QEMU puts a pci-bridge of its own at 00.0 of that root bus and the controller's bus behind
  // it (pxb): the guest sees one more bridge on the way to its devices.
  bool qemu_inner_bridge = false;
  uint32_t min_slot = 0;
  uint32_t max_slot = 31;
  // The slots below min_slot are empty in QEMU and kept free by libvirt's choice (pseries' PHB
  // slot 0), not taken by a host bridge function (caps does not expect one there).
  bool min_slot_is_policy = false;
  // The slot range is libvirt's choice or a rule QEMU does not enforce (a pci-bridge's slot 0,
  // a PCIe port's slots above 0): caps checks QEMU takes those slots, not that it takes no more.
  bool slots_are_policy = false;
  std::string bus_alias;       // QEMU bus name for root buses ("pcie.0"); others are "pci.N"
  std::map<std::string, std::string> target;  // defaults: chassis=index, port=slot-function...
  // The <target> options the model may have (attribute names, "node" for <node>); libvirt
  // refuses any other. Every key of target is one.
  std::vector<std::string> target_options;
  // The <model name>s libvirt takes for this model, `qemu` (its default) first; empty: a name
  // may not be given at all (pc's pci-root, pcie-root).
  std::vector<std::string> model_names;

  /// Whether `given` is one of the <model name>s this model takes.
  bool TakesModelName(std::string_view given) const {
    return std::any_of(model_names.begin(), model_names.end(),
                       [&](const std::string& n) { return SameText(n, given); });
  }

  std::vector<std::string> machines;          // machine families allowed; empty = all
  std::string machine_error;
  bool index_above_bus = false;  // its index must exceed the bus it sits on (pci-bridge)

  /// The QEMU name of the bus a controller of this model with `index` provides: the root's
  /// alias ("pcie.0"), an extra root's "pci.N.0" (QEMU names a host bridge's root bus after the
  /// bridge's id), else libvirt's "pci.N" (also the controller's QEMU id).
  std::string BusName(uint32_t index) const;
  /// The QEMU id of a controller of this model with `index`: libvirt's "pci.N", the main root's
  /// bus alias.
  std::string QemuId(uint32_t index) const;

  bool operator==(const ControllerModel&) const = default;
};

enum class ConnectNeed { kNone, kPci, kPcie };

struct DeviceClass {
  std::string name;
  std::string element;
  Match when;
  ConnectNeed connect = ConnectNeed::kNone;
  std::string group;            // assignment-order group
  bool virtio = false;          // libvirt makes it virtio-mmio on a virtio-mmio virt domain
  bool mmio_transport = false;  // QEMU has a virtio-mmio transport for it
  bool integrated = false;      // bus 0 only
  int companion_function = -1;  // USB2 companion: function within the shared slot
  int usb_ports = -1;           // USB controllers: root-hub ports (-1: not a USB controller)
  std::string video_role;       // videos: "any" (may be secondary), "primary", "alone"
  std::string usb_master;       // USB2 companions: the model that must share their index
  std::vector<std::string> address_types;  // the <address type>s it may have; empty = any
  std::vector<std::string> machines;       // machine families that may have it; empty = all
  std::string machine_error;               // libvirt's meaning when the family may not
  bool requires_acpi = false;              // only with <features><acpi/>
  int usb_ports_max = -1;      // USB controllers: the highest ports= value; -1 = no limit
  uint32_t spapr_vio_reg = 0;  // first spapr-vio reg libvirt gives it; 0 = not spapr-vio
  bool dimm_slot = false;      // takes a memory slot (<address type='dimm' slot>)
  bool address_ignored = false;  // libvirt drops its <address>: never reserved, not written

  bool operator==(const DeviceClass&) const = default;
};

/// A device the machine family cannot have, with libvirt's message.
struct UnsupportedDevice {
  Match match;
  std::string message;

  bool operator==(const UnsupportedDevice&) const = default;
};

/// A disk bus whose disks get drive addresses from their target names.
struct DriveBus {
  std::string bus;             // target bus and controller type: "scsi", "sata", ...
  uint32_t units = 1;          // units per bus
  uint32_t buses = 1;          // buses per controller
  std::string implicit_model;  // model of controllers added for these disks, or empty
  uint32_t max_controllers = 0;  // controllers QEMU supports for this bus; 0 = no limit
  uint32_t hostdev_units = 0;    // units per controller for host devices on it; 0 = none
  std::map<std::string, uint32_t> unit_limits;  // controller model -> highest unit it has

  bool operator==(const DriveBus&) const = default;
};

/// How a disk without a bus attribute gets one.
struct DiskBuses {
  std::string floppy;                           // the bus of floppy disks
  std::map<std::string, std::string> prefixes;  // target name prefix -> bus
  std::string fallback;                         // when no prefix matches

  bool operator==(const DiskBuses&) const = default;
};

/// What makes two host devices of one type the same host device: the first key set whose
/// properties are all set (non-zero) in the first device, compared as numbers where they are.
struct HostdevIdentity {
  std::string type;
  std::vector<std::vector<std::string>> keys;

  bool operator==(const HostdevIdentity&) const = default;
};

enum class PlacementMode { kForced, kPreferred, kPrimaryVideo };

/// A chipset placement: a device the machine puts at a fixed or preferred slot on bus 0.
struct Placement {
  Match match;
  std::vector<uint32_t> slots;  // tried in order
  uint32_t function = 0;
  PlacementMode mode = PlacementMode::kPreferred;
  bool multifunction = false;
  // kPreferred: an all-zero <address type='pci'/> also takes the slot (libvirt tests "address
  // wanted" for these, "no address at all" for the others).
  bool empty_address = false;
  std::string message;  // kForced: libvirt's text when the user gave another address
  // Derived by the loader from the device classes: bit c is set when a device of class c (the
  // catalogue's c-th) may match, clear when the class's own match rules this one out.
  std::vector<uint64_t> classes;

  /// False when no device of class `c` (its position in the catalogue) can match; true when
  /// one may (or the placement has no derived bits).
  bool MayMatchClass(size_t c) const {
    return c / 64 >= classes.size() || (classes[c / 64] >> (c % 64) & 1u) != 0;
  }

  bool operator==(const Placement&) const = default;
};

struct ReservedFunction {
  uint32_t slot = 0;
  uint32_t function = 0;
  std::string what;

  bool operator==(const ReservedFunction&) const = default;
};

struct DefaultDevice {
  std::string element;  // the tag (the data's "element" prop)
  Props props;          // the attributes: the data's props but "element"
  Match unless;
  bool with_graphics = false;  // only when the domain has a <graphics>
  // Derived by the loader: the position of Catalog::Classify(element, props) among the
  // classes, -1 when no class has it (-2: not derived, as in a catalogue built by hand). A plan
  // that leaves the device as it is takes this class.
  static constexpr int32_t kNotDerived = -2;
  int32_t class_id = kNotDerived;

  bool operator==(const DefaultDevice&) const = default;
};

struct MachineFamily {
  std::string name;
  std::vector<std::string> arches;
  std::vector<std::string> machine_names;  // glob patterns with a trailing '*'
  std::map<std::string, std::string> canonical_names;
  std::map<std::string, std::string> default_for;  // arch -> machine name when none is given
  bool default_for_is_policy = false;  // pciplan's choice, not QEMU's default (caps skips it)
  ControllerModelId root = -1;
  ControllerModelId gap_filler = -1;
  ControllerModelId bridge = -1;  // added when conventional PCI devices need another bus
  bool pcie = false;  // PCI Express endpoints exist (pcie-root); else they are conventional
  std::vector<ControllerModelId> conventional_growth;  // buses added for the first PCI device
  std::optional<Connect> dry_run_reserve;  // a slot kept back while counting buses
  bool spare_port = false;                 // one spare hot-plug port when buses were added
  // The expander bus a policy adds for devices wishing a guest NUMA node, and the controller
  // behind it each such device (root port) or group of devices (pci-bridge) goes on; -1 if none.
  ControllerModelId numa_expander = -1;
  ControllerModelId numa_port = -1;
  // The PCI Express switch a policy may add (upstream port, its downstream ports), -1 if none.
  ControllerModelId switch_upstream = -1;
  ControllerModelId switch_downstream = -1;
  bool virtio_mmio = false;
  // How many virtio-mmio transports QEMU's board has: each virtio-mmio device takes one (QEMU
  // 7.2: 32 on aarch64 virt, 8 on riscv64 virt); 0 when there is no virtio-mmio.
  uint32_t virtio_mmio_transports = 0;
  // The machine has ACPI PCI hot-plug, the only kind a qemu_hotplug_acpi controller
  // (dmi-to-pci-bridge) takes: x86's pc and q35; not QEMU 7.2's virt boards.
  bool acpi_pci_hotplug = false;
  // The QEMU -global values that turn off hot-plug into the root bus, written for
  // <target hotplug='off'/> on controller 0 (pc: PIIX4's ACPI hot-plug of bus 0). Empty where
  // QEMU has no such switch (pseries' PHBs): there the root bus stays hot-pluggable in QEMU.
  std::vector<std::string> root_hotplug_off;
  std::vector<ReservedFunction> reserved;
  std::vector<Placement> placements;
  std::map<std::string, std::string> model_defaults;
  std::vector<DefaultDevice> default_devices;
  std::vector<UnsupportedDevice> unsupported_devices;

  /// Whether `machine` is one of machine_names.
  bool HasName(const std::string& machine) const;
  /// The machine type a user names the family by: its first machine_names entry that is no
  /// pattern ("q35", "virt"; the family's own name may differ: "riscv-virt"), or empty.
  std::string MachineType() const;

  bool operator==(const MachineFamily&) const = default;
};

/// How libvirt numbers a device's id (alias): "net0", "pci.3", "usb", "virtio-disk2".
enum class AliasNumber { kNone, kOrdinal, kIndex, kDiskIndex };

/// What a device cannot be created without, provided by a placeholder backend.
enum class QemuBackend { kNone, kDrive, kMemdev, kFsdev, kAudiodev, kHost, kGuestCid, kChardev };

/// How a planned device becomes a QEMU -device object (data/qemu.json "devices").
struct QemuDevice {
  std::string name;
  Match match;              // roles: "primary-video"
  std::string driver;       // QEMU device on a PCI address
  // When set, the device's attribute at this path is the QEMU device (libvirt passes a model it
  // has no rule for through as the driver: "model/@type"); `driver` is then empty.
  std::string driver_from;
  std::string mmio_driver;  // QEMU device on a virtio-mmio address, or empty
  std::string alias;        // id prefix
  AliasNumber number = AliasNumber::kOrdinal;
  bool bare_zero = false;                // number 0 is written as the prefix alone ("usb")
  std::map<std::string, int64_t> props;  // constant integer properties ("firstport")
  // Integer attributes of the device copied to properties: "@ports" -> p2, p3 (xhci).
  std::map<std::string, std::vector<std::string>> attr_props;
  bool masterbus = false;                // USB2 companion: names its master's bus
  QemuBackend backend = QemuBackend::kNone;
  std::string standin;                // driver verify starts instead (device needs host hardware)
  std::vector<std::string> machines;  // machine families it applies to; empty = all

  bool operator==(const QemuDevice&) const = default;
};

/// QEMU facts of one machine family (data/qemu.json "machines").
struct QemuMachine {
  std::string family;
  std::string options;         // appended to -machine NAME,
  std::string cpu;             // -cpu, or empty for QEMU's default
  std::vector<Match> builtin;  // devices QEMU's machine creates itself (no -device)

  bool operator==(const QemuMachine&) const = default;
};

/// Which of a booted guest's accounts of a device's NUMA node verify --guest judges: the
/// kernel's numa_node, or the proximity (_PXM) of its root bus in the ACPI tables the guest booted
/// with (data: "numa_witness": "kernel" or "acpi").
enum class NumaWitness { kKernel, kAcpi };

/// What verify --guest boots in one qemu-system-* binary (data/qemu.json "guest/systems").
struct GuestSystem {
  std::string console;               // the kernel's console device: "ttyS0", "ttyAMA0"
  std::vector<std::string> kernels;  // kernel files, one '*' allowed in the name; newest wins
  std::vector<std::string> busybox;  // statically linked busybox binaries, first found wins
  uint32_t elf_machine = 0;          // the ELF e_machine the guest runs (62 x86-64, 183 arm64)
  // Options added when the plan has an expander bus: firmware that tells the guest about the
  // extra root buses (virt's device tree, which a firmware-less boot uses, has none).
  std::vector<std::string> root_bus_args;
  std::string machine_options;  // appended to -machine: "acpi=on" (the guest needs _PXM)
  NumaWitness numa_witness = NumaWitness::kKernel;

  bool operator==(const GuestSystem&) const = default;
};

struct GuestFacts {
  std::string append;        // kernel command line after console=
  uint32_t memory_mib = 0;   // -m, unless the plan's command line sets it (NUMA cells)
  std::map<std::string, GuestSystem> systems;  // by QEMU binary

  bool operator==(const GuestFacts&) const = default;
};

struct QemuFacts {
  std::string version;  // the QEMU release the data records ("7.2")
  std::map<std::string, std::string> binaries;  // arch -> qemu-system-* binary
  std::vector<QemuMachine> machines;
  std::map<std::string, std::string> controller_properties;  // target attr -> QEMU property
  // target attr whose 'on'/'off' becomes a QEMU boolean property (hotplug) -> the property
  std::map<std::string, std::string> controller_switches;
  std::string probe_driver;                                  // hot-plug probe device
  // caps' probes of each controller's slots: a conventional PCI device and a PCI Express one
  std::string probe_pci_driver;
  std::string probe_pcie_driver;
  // QEMU properties a controller's -device sets only as a hint, left out for a binary that lacks
  // them (plan/qemu-args --qemu): property -> the JSON value that is a hint, "" for any value.
  std::map<std::string, std::string> controller_hints;
  // Elements that show another device again at its address (libvirt's console of serial port
  // 0): QEMU gets no -device of their own.
  std::vector<Match> copies;
  std::vector<QemuDevice> devices;
  GuestFacts guest;

  /// The QEMU facts of a machine family, or nullptr.
  const QemuMachine* FindMachine(const std::string& family) const;

  bool operator==(const QemuFacts&) const = default;
};

/// The QEMU facts of a catalogue: held by value (LoadCatalog, tests), or read on first use from
/// a source (the built-in catalogue: commands that only plan never read data/qemu.json's part).
class QemuPart {
 public:
  using Source = const QemuFacts& (*)();

  QemuPart() = default;
  explicit QemuPart(Source source) : source_(source) {}

  const QemuFacts& get() const { return source_ ? source_() : facts_; }
  /// The facts to change: a copy of the source's, held from then on.
  QemuFacts& mutable_get();

  bool operator==(const QemuPart& other) const { return get() == other.get(); }

 private:
  QemuFacts facts_;
  Source source_ = nullptr;
};

/// Catalog::classes in runs of one element, for Catalog::Classify: a device is matched against
/// the classes of its element only. With it, per class, which of Catalog::usb_devices a device
/// of the class may match (the USB port pass tries no others). Built from the classes and the
/// USB matches (Catalog::IndexClasses), so it takes no part in a catalogue's equality or image.
class ClassIndex {
 public:
  struct Run {
    uint16_t first = 0;  // into Catalog::classes; classes[first].element is the run's element
    uint16_t count = 0;
  };
  /// The USB matches a class has a bit for: the first kUsbMasked.
  static constexpr size_t kUsbMasked = 64;

  void Build(const std::vector<DeviceClass>& classes, const std::vector<Match>& usb_devices);
  /// True when built for a list of `count` classes.
  bool Covers(size_t count) const { return built_ && count == count_; }
  /// True when built for `classes` classes and `usb` USB matches.
  bool CoversUsb(size_t classes, size_t usb) const { return Covers(classes) && usb == usb_count_; }
  /// The runs, in catalogue order.
  const std::vector<Run>& runs() const { return runs_; }
  /// Bit k set when a device of class `cls` (its position in Catalog::classes) may match
  /// usb_devices[k], k < kUsbMasked: the match names no element or the class's, the class's
  /// rule does not rule it out (Match::RulesOut), and no earlier class of its element takes
  /// every device the match matches (Classify gives the first). 0: it takes no USB port by
  /// those. The properties a class's or match's rule names keep their values after
  /// classification (the define pipeline's do: it only adds properties rules do not name).
  uint64_t UsbCandidates(size_t cls) const { return usb_candidates_[cls]; }

  bool operator==(const ClassIndex&) const { return true; }

 private:
  std::vector<Run> runs_;
  std::vector<uint64_t> usb_candidates_;  // per class
  size_t count_ = 0;
  size_t usb_count_ = 0;
  bool built_ = false;
};

struct Catalog {
  std::vector<ControllerModel> controllers;
  std::vector<DeviceClass> classes;
  std::vector<MachineFamily> machines;
  std::vector<std::string> collect_order;  // libvirt's device iteration order (explicit addresses)
  std::vector<std::string> assign_order;
  std::vector<std::string> output_order;
  std::vector<std::string> device_elements;  // the elements attach-device takes as a device
  std::vector<DriveBus> drive_buses;  // in the order libvirt adds their implicit controllers
  std::vector<Match> usb_devices;     // what takes a USB port, in assignment order
  uint32_t usb_hub_ports = 8;
  uint32_t usb_port_depth = 4;  // levels a USB port path may have ("1.2.3.4")
  std::vector<std::string> single_per_domain;  // elements a domain may have at most one of
  uint32_t virtio_serial_ports = 31;
  DiskBuses disk_buses;
  std::vector<HostdevIdentity> hostdev_identities;
  QemuPart qemu_part;
  ClassIndex class_index;  // derived from classes: call IndexClasses() when they change

  /// Indexes `classes` for Classify (and their USB matches). The loaders call it; Classify
  /// scans them all while the index is missing or built for another list.
  void IndexClasses() { class_index.Build(classes, usb_devices); }

  /// The QEMU facts (data/qemu.json).
  const QemuFacts& qemu() const { return qemu_part.get(); }

  /// Id of a PCI controller model by its libvirt name, or -1.
  ControllerModelId FindController(const std::string& name) const;
  /// The same on machine family `family`: the first model of that name whose `machines` name
  /// the family (a family's own variant, as pseries' pci-root), else the first of that name.
  ControllerModelId FindController(const std::string& name, const std::string& family) const;
  /// The machine family whose names and arches match, or nullptr; an empty machine name is the
  /// family that is the arch's default (MachineFamily::default_for).
  const MachineFamily* FindMachine(const std::string& arch, const std::string& machine) const;
  /// The first class matching a device element, or nullptr.
  const DeviceClass* Classify(const std::string& tag, const Props& props) const;
  const ControllerModel& controller(ControllerModelId id) const { return controllers[id]; }

  bool operator==(const Catalog&) const = default;
};

}  // namespace pciplan
