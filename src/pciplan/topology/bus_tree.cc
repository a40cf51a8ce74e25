#include "pciplan/topology/bus_tree.h"

#include <bit>

namespace pciplan {
namespace {

uint32_t RangeMask(uint32_t lo, uint32_t hi) {
  uint32_t upto_hi = hi >= 31 ? 0xffffffffu : ((1u << (hi + 1)) - 1);
  return upto_hi & ~((1u << lo) - 1);
}

}  // namespace

bool Bus::FullyReserved() const {
  if (model < 0) return false;
  for (uint32_t s = min_slot; s <= max_slot; ++s) {
    if (slots[s].functions == 0) return false;
  }
  return true;
}

void BusTree::Grow(int count) {
  buses_.resize(buses_.size() + count);
  open_buses_.resize((buses_.size() + 63) / 64, 0);
}

void BusTree::UpdateOpen(int index) {
  const Bus& b = buses_[index];
  uint64_t bit = uint64_t{1} << (index % 64);
  bool open = b.model >= 0 && (b.free_slots | b.open_aggregate | b.open_packable) != 0;
  uint64_t& word = open_buses_[index / 64];
  word = open ? (word | bit) : (word & ~bit);
}

void BusTree::SetModel(int index, ControllerModelId id, const ControllerModel& model,
                       BusSetup setup) {
  Bus& b = buses_[index];
  b.model = id;
  b.offers = model.offers;
  b.autoassign = model.autoassign && setup != BusSetup::kControllersOnly;
  b.hotplug = model.hotplug && setup == BusSetup::kNormal;
  b.min_slot = model.min_slot;
  b.max_slot = model.max_slot;
  // Refresh of every slot in range, in one pass (slots out of range have no bit).
  uint32_t free_slots = 0, open_aggregate = 0, open_packable = 0;
  for (uint32_t s = b.min_slot; s <= b.max_slot && s < 32; ++s) {
    const Slot& slot = b.slots[s];
    const uint32_t bit = 1u << s;
    if (slot.functions == 0) {
      free_slots |= bit;
    } else if (slot.functions != 0xff) {
      if (slot.aggregate) open_aggregate |= bit;
      if (slot.packable) open_packable |= bit;
    }
  }
  b.free_slots = free_slots;
  b.open_aggregate = open_aggregate;
  b.open_packable = open_packable;
  UpdateOpen(index);
}

void BusTree::Refresh(Bus& b, uint32_t slot) {
  uint32_t bit = 1u << slot;
  bool in_range = slot >= b.min_slot && slot <= b.max_slot;
  const Slot& s = b.slots[slot];
  b.free_slots = (in_range && s.functions == 0) ? (b.free_slots | bit) : (b.free_slots & ~bit);
  bool partly = in_range && s.functions != 0 && s.functions != 0xff;
  b.open_aggregate = partly && s.aggregate ? (b.open_aggregate | bit) : (b.open_aggregate & ~bit);
  b.open_packable = partly && s.packable ? (b.open_packable | bit) : (b.open_packable & ~bit);
}

bool BusTree::SlotInUse(const PciAddress& addr) const {
  return buses_[addr.bus].slots[addr.slot].functions != 0;
}

bool BusTree::FunctionInUse(const PciAddress& addr) const {
  return (buses_[addr.bus].slots[addr.slot].functions & (1u << addr.function)) != 0;
}

void BusTree::Take(const PciAddress& addr, bool aggregate, bool packable) {
  Bus& b = buses_[addr.bus];
  Slot& s = b.slots[addr.slot];
  if (s.functions == 0 && aggregate) s.aggregate = true;
  if (s.functions == 0 && packable) s.packable = true;
  s.functions |= static_cast<uint8_t>(1u << addr.function);
  Refresh(b, addr.slot);
  UpdateOpen(static_cast<int>(addr.bus));
}

bool BusTree::AcceptsAuto(int index, const DeviceNeed& need) const {
  const Bus& b = buses_[index];
  if (b.model < 0) return false;
  if (need.model >= 0 && b.model != need.model) return false;
  if (b.wished_only && need.model != b.model) return false;
  if (b.numa_node != need.numa_node) return false;
  // libvirt: an integrated device fits bus 0 only, whatever its autoassign flag says.
  if (need.integrated) return index == 0 && Fits(b.offers, need.kinds);
  if (need.autoassign && !b.autoassign) return false;
  if (need.hotplug && !b.hotplug) return false;
  return Fits(b.offers, need.kinds);
}

std::optional<PciAddress> BusTree::FindFree(const DeviceNeed& need, int function) const {
  for (size_t w = 0; w < open_buses_.size(); ++w) {
    for (uint64_t m = open_buses_[w]; m != 0; m &= m - 1) {
      int i = static_cast<int>(w * 64 + static_cast<size_t>(std::countr_zero(m)));
      if (std::optional<PciAddress> a = FindFreeOn(i, need, function)) return a;
    }
  }
  return std::nullopt;
}

std::optional<PciAddress> BusTree::FindFreeOn(int i, const DeviceNeed& need, int function) const {
  if (!AcceptsAuto(i, need)) return std::nullopt;
  const Bus& b = buses_[i];
  uint32_t candidates = b.free_slots;
  if (need.aggregate) {
    uint32_t open = b.open_aggregate;
    if (function >= 0) {
      // Only aggregate slots whose requested function is still free qualify.
      uint32_t filtered = 0;
      for (uint32_t m = open; m != 0; m &= m - 1) {
        uint32_t s = static_cast<uint32_t>(std::countr_zero(m));
        if (!(b.slots[s].functions & (1u << function))) filtered |= 1u << s;
      }
      open = filtered;
    }
    candidates |= open;
  }
  candidates &= RangeMask(b.min_slot, b.max_slot);
  if (candidates == 0 && need.pack_when_full && function < 0) {
    // No slot wholly free: the highest slot a packing endpoint took with a function free,
    // so that packing starts at the last slot taken and moves down.
    uint32_t open = b.open_packable & RangeMask(b.min_slot, b.max_slot);
    if (open != 0) candidates = 1u << (31 - std::countl_zero(open));
  }
  if (candidates == 0) return std::nullopt;
  uint32_t slot = static_cast<uint32_t>(std::countr_zero(candidates));
  const Slot& s = b.slots[slot];
  uint32_t fn = function >= 0 ? static_cast<uint32_t>(function) : 0;
  if (s.functions != 0 && function < 0) {
    fn = static_cast<uint32_t>(std::countr_one(static_cast<uint32_t>(s.functions)));
  }
  return PciAddress{0, static_cast<uint32_t>(i), slot, fn};
}

}  // namespace pciplan
