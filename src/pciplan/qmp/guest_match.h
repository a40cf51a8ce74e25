// What a booted guest reports about its PCI functions, and the match of planned devices to
// them by topology: the chain of slot.function from a root bus through every bridge or port down
// to the function, never the bus numbers the guest's firmware chose. Pure.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pciplan/base/result.h"
#include "pciplan/model/machine_model.h"

namespace pciplan {

/// One hop of a topology chain: a slot.function on the bus above.
struct SlotFunction {
  uint32_t slot = 0;
  uint32_t function = 0;
  bool operator==(const SlotFunction&) const = default;
  bool operator<(const SlotFunction& o) const {
    return slot != o.slot ? slot < o.slot : function < o.function;
  }
};

/// Where a function sits: the number of its root bus (0, or an expander bus's busNr, which QEMU
/// keeps) and the hops from there; the last hop is the function itself.
struct PciChain {
  uint32_t root = 0;
  std::vector<SlotFunction> hops;
  bool operator==(const PciChain&) const = default;
  bool operator<(const PciChain& o) const { return root != o.root ? root < o.root : hops < o.hops; }
  /// "00:02.0/00.0": root bus, then each hop's slot.function.
  std::string ToString() const;
};

/// The chain of a sysfs device path: "/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0" (or
/// with a platform device before it, as on arm64) -> root 0, hops 02.0, 00.0. nullopt when the
/// path has no pciDDDD:BB component followed by functions.
std::optional<PciChain> ChainFromSysfsPath(const std::string& path);

/// One PCI function as the guest reported it.
struct GuestFunction {
  std::string path;  // real sysfs path
  std::string name;  // the last component: "0000:01:00.0"
  PciChain chain;
  uint32_t vendor = 0;
  uint32_t device = 0;
  uint32_t class_code = 0;  // 24 bits: base class, subclass, programming interface
  int numa_node = -1;            // the kernel's: -1 when it has no NUMA node for it
  std::optional<int> acpi_node;  // the proximity (_PXM) the guest's ACPI tables give its root bus
  uint32_t bars_used = 0;      // bit i: BAR i (0-5) is in use
  uint32_t bars_assigned = 0;  // bit i: BAR i has an address
};

/// The NUMA proximity of each PCI host bridge an ACPI DSDT (AML bytes) declares: a Device with
/// a _BBN (its root bus number) and a _PXM before any device nested in it, as QEMU writes them for
/// the main host bridge and each expander bus. Bus numbers without a _PXM are absent. Never
/// reads outside `aml`, whatever its bytes.
std::map<uint32_t, int> AcpiRootBusNodes(std::string_view aml);

/// The functions between the begin and end markers of the guest's console text. Lines without
/// the function or DSDT prefix (kernel messages) are skipped; a prefix may follow other text on
/// the same line. Each function's acpi_node comes from the DSDT lines, when there are any. Fails
/// when the end marker is missing (the guest did not finish its report) or a function line cannot
/// be read.
Result<std::vector<GuestFunction>> ParseGuestConsole(const std::string& text);

/// What a planned device should look like in the guest.
struct GuestExpect {
  std::string device;  // DeviceRef::Describe()
  std::string id;      // QEMU id, empty for machine built-ins
  std::string driver;
  bool pci = true;  // false: a virtio-mmio device, which the guest has no PCI function for
  PciChain chain;   // pci only
  // From QEMU's query-pci of the same command line; unset when QEMU did not list it.
  std::optional<uint32_t> vendor, device_id, class_code16;  // class: base and subclass
  struct Bar {
    uint32_t index = 0;
    bool io = false;  // an I/O BAR (else memory)
  };
  std::optional<std::vector<Bar>> bars;  // the BARs QEMU gave it (query-pci regions)
  std::optional<int> numa_node;          // the node of its expander bus, when it has one
  NumaWitness numa_witness = NumaWitness::kKernel;  // what shows the guest's node
};

enum class GuestStatus { kOk, kMismatch, kNotPci };

struct GuestCheck {
  GuestExpect expect;
  std::optional<GuestFunction> seen;
  GuestStatus status = GuestStatus::kOk;
  std::string problem;  // why a mismatch: "absent", "vendor:device 8086:100e, QEMU 1af4:1041"
  std::string note;     // what is amiss but no mismatch: "I/O BAR 0 without an address"
};

/// Matches every expectation to the guest's function at its chain. A PCI device is OK when the
/// guest has a function there with QEMU's vendor, device and class, gave every memory BAR
/// (QEMU's list, else the guest's) an address, and is on the NUMA node planned for it (when one
/// is, by its witness); else a mismatch saying why. An I/O BAR without an address is a note.
/// A virtio-mmio device is kNotPci.
std::vector<GuestCheck> MatchGuest(const std::vector<GuestExpect>& expects,
                                   const std::vector<GuestFunction>& seen);

}  // namespace pciplan
