// Domain: what the user asked for, read from libvirt domain XML. Each device keeps its tag, the
// attributes that matter (as "path -> value" properties), its address and its place in the
// source text, so the writer can change exactly what the plan changed and nothing else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pciplan/base/address.h"
#include "pciplan/base/props.h"
#include "pciplan/domain/wishes.h"

namespace pciplan {

enum class AddressType { kNone, kPci, kDrive, kUsb, kVirtioSerial, kCcid, kVirtioMmio, kOther };

/// The <address> child of a device, as written (or as planned).
struct Address {
  AddressType type = AddressType::kNone;
  std::string type_name;                     // the type attribute as written
  PciAddress pci;                            // kPci only
  std::string multifunction;                 // kPci: "on", "off" or empty
  Props attrs;                               // every attribute but type, as written

  /// A PCI address that names a slot (libvirt's "present": domain, bus or slot non-zero).
  bool IsPresentPci() const { return type == AddressType::kPci && !pci.IsUnassigned(); }
  /// No address, or a PCI address still to be assigned (all-zero).
  bool WantsPci() const {
    return type == AddressType::kNone || (type == AddressType::kPci && pci.IsUnassigned());
  }
  /// Numeric attribute (strtoul base 0), 0 when absent like libvirt reads it.
  uint32_t Number(const std::string& name) const;
  bool operator==(const Address&) const = default;
};

/// Where a device came from: the input document, or the planner (default devices, controllers).
enum class Origin { kUser, kPlanner };

struct Device {
  std::string tag;
  Props props;
  Address address;
  Origin origin = Origin::kUser;
  int source = -1;         // index in the input's device list, -1 for planner-added devices
  size_t offset = 0;       // source offset of the element's name (after '<'), kUser only
  int line = 0;            // 1-based source line, kUser only

  const std::string* Get(std::string_view path) const {
    auto it = props.find(path);
    return it == props.end() ? nullptr : &it->second;
  }
  std::string GetOr(std::string_view path, std::string_view fallback) const {
    const std::string* v = Get(path);
    return v ? *v : std::string(fallback);
  }
  /// Whether the property exists and equals `value` (no copy).
  bool Is(std::string_view path, std::string_view value) const {
    const std::string* v = Get(path);
    return v && *v == value;
  }
  void Set(std::string_view path, std::string value) {
    props.insert_or_assign(path, std::move(value));
  }
  bool Has(std::string_view path) const { return props.count(path) != 0; }
};

struct Domain {
  std::string text;           // the input document, byte for byte
  std::string arch;           // <os><type arch>
  std::string machine;        // <os><type machine> as written
  bool acpi = false;          // <features><acpi/>
  int numa_cells = 0;         // <cpu><numa><cell> count
  uint32_t memory_slots = 0;  // <maxMemory slots>, 0 when absent
  bool has_graphics = false;  // any <graphics>
  std::vector<Device> devices;  // children of <devices>, document order (emulator excluded)
  size_t devices_offset = std::string::npos;  // source offset of <devices>, npos if absent
  /// The wishes of pciplan's <metadata> element (empty when there is none); the command line
  /// and a policy file overlay them (Overlay) before planning.
  Wishes wishes;
  /// Source offsets of element names (after '<'): pciplan's <wishes>, <metadata>, the root
  /// <domain>, <os><type>; npos when absent.
  size_t wishes_offset = std::string::npos;
  size_t os_type_offset = std::string::npos;
  size_t metadata_offset = std::string::npos;
  size_t root_offset = std::string::npos;
};

/// How a device is named in messages: "disk 'vda'", "controller pci index 1 (pcie-root-port)",
/// "interface #0 (virtio)", ... The only way text names a device.
struct DeviceRef {
  static std::string Describe(const Device& dev, int ordinal);
  /// Describe() for device `i` of a device list, its ordinal counted among the devices of its
  /// element before it.
  static std::string DescribeAt(const std::vector<Device>& devs, size_t i);
};

}  // namespace pciplan
