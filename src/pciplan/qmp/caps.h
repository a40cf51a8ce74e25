// What a QEMU binary says it can do, asked over QMP (`pciplan caps`): its version, machine types
// and their aliases, the device types it has and the properties of those pciplan uses, and per
// machine type the functions the machine itself puts on its root bus and whether that bus takes
// a hot-plug. Cached per binary (path, size, mtime) like libvirt's capabilities cache, so that
// `plan --qemu` and `check --qemu` start QEMU only when the binary changed.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

/// A function a machine creates on its root bus by itself (query-pci of a machine started
/// with -nodefaults).
struct CapsFunction {
  uint32_t slot = 0;
  uint32_t function = 0;
  uint32_t class_code = 0;  // base class and subclass: 0x0600 host bridge
  uint32_t vendor = 0;
  uint32_t device = 0;
  bool operator==(const CapsFunction&) const = default;
};

/// What QEMU did with a probe device in one slot of a controller's bus: cold, on the command
/// line; hot, by device_add once the machine exists (paused: QEMU hot-plugs from then on).
struct CapsSlot {
  uint32_t slot = 0;
  bool cold_pci = false;   // a conventional PCI probe on the command line
  bool cold_pcie = false;  // a PCI Express probe on the command line
  bool hot_pci = false;    // a conventional PCI probe by device_add
  bool hot_pcie = false;   // a PCI Express probe by device_add
  bool occupied = false;   // the machine's own device is there (root bus): not probed
  bool operator==(const CapsSlot&) const = default;
};

/// One controller model of pciplan's data, started on a machine type with nothing behind it,
/// and probed slot by slot; or the machine's root bus, probed in the slots it leaves free.
struct CapsController {
  std::string model;            // pciplan's name: "pcie-root-port"
  std::string bus;              // its bus's QEMU id in the probe machine: "pci.3"
  std::string error;            // why QEMU would not start it (then no slots)
  std::vector<CapsSlot> slots;  // 0..31
  std::string hot_error;        // QEMU's first refusal of a hot-plug into it, if any
  std::string cold_error;       // QEMU's first refusal of a probe on the command line, if any

  /// The slots where QEMU took a probe of either kind on the command line.
  std::set<uint32_t> ColdSlots() const;
  bool operator==(const CapsController&) const = default;
};

/// One machine type.
struct CapsMachine {
  std::string name;   // "pc-q35-7.2"
  std::string alias;  // "q35", or empty
  bool is_default = false;
  bool deprecated = false;
  // Probed (for the machine types pciplan has a family for, or --machine):
  bool probed = false;
  std::string family;                  // pciplan's family of it
  std::string root_bus;                // the root bus's QEMU id: "pcie.0"
  std::vector<CapsFunction> builtins;  // on the root bus, in slot.function order
  std::optional<bool> root_hotplug;    // whether the root bus takes a hot-plug
  std::string root_hotplug_error;      // QEMU's refusal, when it does not
  uint32_t virtio_mmio_transports = 0;  // virtio-mmio transports the board creates
  // Each controller model the family may have, probed (data/controllers.json order).
  std::vector<CapsController> controllers;

  const CapsController* FindController(const std::string& model) const;
};

struct QemuCaps {
  static constexpr int kFormat = 3;  // of the cache file and --json
  std::string binary;                // as found (an absolute path)
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string version;  // "7.2.11"
  std::string package;  // "Debian 1:7.2+dfsg-7+deb12u13"
  std::vector<CapsMachine> machines;
  std::set<std::string> device_types;  // non-abstract types that implement "device"
  // QEMU's own short names for some of them ("lsi" -> "lsi53c895a"), from -device help.
  std::map<std::string, std::string> device_aliases;
  // The properties of the device types pciplan knows (its controller models and device
  // drivers), by type.
  std::map<std::string, std::set<std::string>> properties;

  /// The machine type called `name`, or whose alias it is; nullptr when the binary has none.
  const CapsMachine* FindMachine(const std::string& name) const;
  /// The device type a -device driver name is, through QEMU's aliases; empty when it has none.
  std::string DeviceType(const std::string& driver) const;
  /// "qemu-system-x86_64 (QEMU 7.2.11)": how messages name the binary.
  std::string Describe() const;
};

struct CapsOptions {
  std::string qemu = "qemu-system-x86_64";  // a path, or a name looked up in PATH
  std::vector<std::string> machines;         // to probe; empty: those of pciplan's families
  bool refresh = false;                      // ignore the cache
  std::string cache_dir;                     // empty: $XDG_CACHE_HOME/pciplan, ~/.cache/pciplan
  int timeout_ms = 20000;
};

/// The binary's capabilities: from the cache when its entry matches the binary's path, size
/// and mtime (and the format), else asked from QEMU and written to the cache. `started` is
/// set to whether QEMU was run. Fails with Rule::kQemu naming the binary when it cannot be found
/// or started.
Result<QemuCaps> LoadQemuCaps(const CapsOptions& options, const Catalog& catalog,
                              bool* started = nullptr);

/// The architecture a binary is the qemu-system-* of (data/qemu.json "binaries"), or empty.
std::string ArchOfBinary(const std::string& binary, const Catalog& catalog);
/// The machine families a binary runs: those with an arch whose binary it is.
std::vector<const MachineFamily*> FamiliesOfBinary(const std::string& binary,
                                                   const Catalog& catalog);

/// As JSON (the cache file and `caps --json`), and back.
std::string CapsJson(const QemuCaps& caps);
Result<QemuCaps> CapsFromJson(const std::string& text);

/// The summary `caps` prints.
std::string RenderCapsText(const QemuCaps& caps);

/// Problems of a plan for this binary: a machine type it does not have (on <type>'s line), a
/// QEMU device the command line needs that it lacks, a property the command line sets that the
/// device does not have (each on the device's line). Sets plan.machine to the binary's own name
/// for an alias. `file` names the domain in no message; messages name the binary.
Diagnostics CheckPlanForQemu(const Domain& domain, Plan& plan, const Catalog& catalog,
                             const QemuCaps& caps);

/// One fact of the bundled data that QEMU can tell, and whether the binary agrees.
struct CapsFact {
  std::string what;    // "q35 -> pc-q35-7.2 (machine alias)"
  bool agrees = false;
  std::string binary;  // what the binary says, when it disagrees
};

/// Compares the bundled data with the binary on every fact it can learn: the aliases and default
/// machine of each family's arch, the functions each machine builds in on its root bus (the host
/// bridge at 00.0 below the root's first slot, the reserved slots and the built-in devices'
/// placements), whether its root bus takes a hot-plug, the QEMU device of every controller
/// model pciplan adds to those machines, and per controller model its slot range, the kinds of
/// device (conventional PCI, PCI Express) its slots take and whether they take a hot-plug.
std::vector<CapsFact> CompareCapsWithData(const QemuCaps& caps, const Catalog& catalog);

}  // namespace pciplan
