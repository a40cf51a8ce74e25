// Wishes: what the user wants from placement, kept apart from <address> (issue 9). Domain-wide
// preferences (spare hot-plug slots, the virtio transport on Arm) and per-device constraints
// (hot-pluggable, PCI or PCIe, the controller model it plugs into), read from pciplan's
// <metadata> element, a policy file (JSON) or flags into one plain value the planner reads.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pciplan/base/result.h"

namespace pciplan {

struct Device;
struct Domain;

/// The XML namespace of pciplan's metadata element; its last component is the major version.
inline constexpr std::string_view kWishesNamespace = "https://pciplan.dev/xmlns/wishes/1";
/// Every version of that namespace starts so; an element in another version is refused.
inline constexpr std::string_view kWishesNamespacePrefix = "https://pciplan.dev/xmlns/wishes/";
/// The `version` attribute of <wishes> (and "version" of a policy file) pciplan reads.
inline constexpr int kWishesVersion = 1;

enum class Hotpluggable { kUnset, kYes, kNo };
enum class BusWish { kUnset, kPci, kPcie };
enum class TransportWish { kUnset, kPci, kVirtioMmio };
/// The placement policy of the devices no device wish speaks for: libvirt 9.0's, or every
/// endpoint on the root bus (issue 10, policy_integrated.cc).
enum class PolicyWish { kUnset, kLibvirt, kIntegrated };

/// The wishes for one device. `key` names it: its user alias ("ua-net0"), or "disk:vdb",
/// "interface:52:54:00:00:00:01", "hostdev:0000:01:00.0", "controller:pci:3".
struct DeviceWish {
  std::string key;
  Hotpluggable hotpluggable = Hotpluggable::kUnset;
  BusWish bus = BusWish::kUnset;
  std::string connection;  // a controller model name, or empty
  std::optional<uint32_t> numa_node;  // the guest NUMA node it must sit on (an expander bus's)
  /// No wish set (only the key).
  bool empty() const {
    return hotpluggable == Hotpluggable::kUnset && bus == BusWish::kUnset && connection.empty() &&
           !numa_node;
  }
  bool operator==(const DeviceWish&) const = default;
};

struct Wishes {
  std::optional<uint32_t> pcie_hotplug_slots;
  std::optional<uint32_t> pci_hotplug_slots;
  TransportWish default_address_type = TransportWish::kUnset;
  PolicyWish policy = PolicyWish::kUnset;
  std::vector<DeviceWish> devices;  // one per key, in the order first given

  /// No wish at all: the domain plans exactly as libvirt 9.0 would.
  bool empty() const;
  /// The wishes for the device named `key`, or nullptr.
  const DeviceWish* Find(std::string_view key) const;
  bool operator==(const Wishes&) const = default;
};

/// `over` on top of `base`: every field `over` sets wins, per device and per field.
Wishes Overlay(const Wishes& base, const Wishes& over);

/// Sets one named wish of a device (the names and values of the XML attributes:
/// hotpluggable=yes|no, bus=pci|pcie, connection=MODEL, numaNode=N). Errors name the wish and the value.
Result<bool> SetDeviceWish(DeviceWish& wish, std::string_view name, std::string_view value);
/// Sets one domain-wide wish (pcieHotplugSlots, pciHotplugSlots, defaultAddressType, policy).
Result<bool> SetDomainWish(Wishes& wishes, std::string_view name, std::string_view value);

/// Parses `--hotplug-slots pcie=5,pci=2`.
Result<Wishes> ParseHotplugSlotsFlag(std::string_view text);
/// Parses `--wish KEY:NAME=VALUE[,NAME=VALUE...]` (KEY may hold ':', NAME never does).
Result<DeviceWish> ParseWishFlag(std::string_view text);
/// Parses a policy file: {"version": 1, "pcieHotplugSlots": 5, "pciHotplugSlots": 2,
/// "defaultAddressType": "pci", "devices": {"ua-net0": {"hotpluggable": "no"}}}. Unknown keys,
/// wrong types and bad values are errors naming the JSON pointer.
Result<Wishes> ParsePolicyFile(const std::string& text);

/// The key a device is named by in wishes, alias first: "ua-net0", else "disk:vdb",
/// "interface:MAC", "hostdev:0000:01:00.0", "controller:pci:3"; empty when it has none.
std::vector<std::string> WishKeysOf(const Device& device);

/// The index in `domain.devices` of the first device `key` names (WishKeysOf), or -1.
int FindDeviceByKey(const Domain& domain, std::string_view key);

/// For each device of `domain`, the index in `wishes.devices` of its wish, or -1. Fails, naming
/// the key, when a wish names no device or two wishes name the same device.
Result<std::vector<int>> ResolveDeviceWishes(const Domain& domain, const Wishes& wishes);

/// `domain` with the address of each device `keys` names dropped (`--replan KEY`), as if its
/// <address> were deleted: planning places it again under the wishes, every other address
/// stays. A PCI controller keeps its index, so the devices behind it keep their bus. A device
/// without an address is fine. Fails [bad-replan], naming the key, when a key names no device.
Result<Domain> DropAddresses(const Domain& domain, const std::vector<std::string>& keys);

/// The <pciplan:wishes> element of `wishes` (version and namespace included), each line after
/// the first starting with `indent` + `unit` (children) or `indent` (the closing tag).
std::string WishesXml(const Wishes& wishes, const std::string& indent, const std::string& unit);

}  // namespace pciplan
