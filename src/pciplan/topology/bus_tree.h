// BusTree: every PCI bus of the guest (indexed by controller index), what each slot offers and
// which functions are taken. The planner's state; copy it to ask "what if". Free slots are kept
// in per-bus bitmaps so a search never walks every slot of every bus.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "pciplan/base/address.h"
#include "pciplan/base/connect.h"
#include "pciplan/model/machine_model.h"

namespace pciplan {

/// What a device (or controller) needs from the slot it goes into.
struct DeviceNeed {
  ConnectKinds kinds;
  bool autoassign = false;  // endpoints: only buses that take automatic placement
  bool aggregate = false;   // may share a slot with others of its kind (root ports)
  bool integrated = false;  // bus 0 only
  bool hotplug = false;     // the slot must accept hot-plug (live attach)
  ControllerModelId model = -1;  // >= 0: only buses of this controller model (a wish)
  // Endpoints: when a bus has no wholly free slot, a free function of a slot another such
  // endpoint took whole, the highest first (packed as functions of it, multifunction).
  bool pack_when_full = false;
  int numa_node = -1;  // >= 0: only buses kept for that guest NUMA node (a wish)
};

struct Slot {
  uint8_t functions = 0;   // bit f set when function f is taken
  bool aggregate = false;  // first user was an aggregating controller
  bool packable = false;   // first user was an endpoint that packs when the bus is full
};

struct Bus {
  ControllerModelId model = -1;  // -1: no model yet (a gap)
  ConnectKinds offers;
  bool autoassign = false;
  bool hotplug = false;
  uint32_t min_slot = 0;
  uint32_t max_slot = 0;
  std::array<Slot, 32> slots{};
  uint32_t free_slots = 0;      // bit s: slot s in range and wholly free
  uint32_t open_aggregate = 0;  // bit s: aggregate slot with a free function
  uint32_t open_packable = 0;   // bit s: slot a pack_when_full endpoint took, a function free
  bool wished_only = false;     // automatic placement only for a need naming this bus's model
  int numa_node = -1;           // >= 0: kept for devices wishing that guest NUMA node

  /// True when every slot in range has at least one function taken (libvirt's
  /// qemuDomainPCIBusFullyReserved: a partly used slot counts as reserved).
  bool FullyReserved() const;
};

/// How a bus is set up when given a model.
enum class BusSetup { kNormal, kNoHotplug, kControllersOnly };

class BusTree {
 public:
  int size() const { return static_cast<int>(buses_.size()); }
  const Bus& bus(int index) const { return buses_[index]; }

  /// Appends `count` buses without a model.
  void Grow(int count);
  /// Room for `count` buses, so that growing to that many moves no bus.
  void Reserve(int count) {
    buses_.reserve(static_cast<size_t>(count));
    open_buses_.reserve((static_cast<size_t>(count) + 63) / 64);
  }
  /// Removes every bus (an empty tree, its memory kept for the next Grow).
  void Clear() {
    buses_.clear();
    open_buses_.clear();
  }
  /// Gives bus `index` the slots and connection kinds of `model`.
  void SetModel(int index, ControllerModelId id, const ControllerModel& model, BusSetup setup);
  /// Keeps bus `index` for devices whose need names its model (a wish): no other device or
  /// controller is placed on it automatically.
  void SetWishedOnly(int index) { buses_[index].wished_only = true; }
  /// Keeps bus `index` for devices wishing guest NUMA node `node`, and only for them.
  void SetNumaNode(int index, int node) { buses_[index].numa_node = node; }
  /// Narrows what bus `index` accepts (also for explicit addresses).
  void RestrictOffers(int index, ConnectKinds offers) { buses_[index].offers = offers; }
  /// Whether any function of the address's slot is taken. The address must exist.
  bool SlotInUse(const PciAddress& addr) const;
  bool FunctionInUse(const PciAddress& addr) const;
  /// Marks one function taken; the first function taken by an aggregating device makes the
  /// slot an aggregate slot. The function must be free (checked by the caller).
  void Take(const PciAddress& addr, bool aggregate, bool packable = false);
  /// Lowest bus, then slot, then function compatible with `need` for automatic placement
  /// (function -1: any); nullopt when none.
  std::optional<PciAddress> FindFree(const DeviceNeed& need, int function) const;
  /// Automatic-placement compatibility of a bus (libvirt's non-config flag check).
  bool AcceptsAuto(int index, const DeviceNeed& need) const;

 private:
  void Refresh(Bus& b, uint32_t slot);
  /// FindFree on bus `i` alone.
  std::optional<PciAddress> FindFreeOn(int i, const DeviceNeed& need, int function) const;
  /// Sets or clears bus `index`'s bit in open_buses_.
  void UpdateOpen(int index);
  std::vector<Bus> buses_;
  // Bit i: bus i has a model and a slot or function automatic placement may take (a free
  // slot, an open aggregate or packable slot), so that FindFree skips full buses without
  // looking at them: placing N devices on N root ports costs N, not N * N.
  std::vector<uint64_t> open_buses_;
};

}  // namespace pciplan
