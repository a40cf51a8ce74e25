// PciAddress: a guest PCI address (domain:bus:slot.function), the one value type every stage
// uses to name a place on the PCI tree. Printed only through ToString(): "0000:00:1f.2".
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>

namespace pciplan {

inline constexpr uint32_t kMaxSlot = 31;
inline constexpr uint32_t kMaxFunction = 7;
inline constexpr uint32_t kMaxBus = 255;
inline constexpr uint32_t kMaxDomain = 0xffff;

struct PciAddress {
  uint32_t domain = 0;
  uint32_t bus = 0;
  uint32_t slot = 0;
  uint32_t function = 0;

  /// "DDDD:BB:SS.F" in lower-case hex.
  std::string ToString() const;
  /// True for the all-zero domain/bus/slot that libvirt reads as "PCI, not yet assigned"
  /// (the function is ignored: libvirt reference section 7.12).
  bool IsUnassigned() const { return domain == 0 && bus == 0 && slot == 0; }

  auto operator<=>(const PciAddress&) const = default;
};

}  // namespace pciplan

template <>
struct std::hash<pciplan::PciAddress> {
  size_t operator()(const pciplan::PciAddress& a) const noexcept {
    return (static_cast<size_t>(a.domain) << 24) ^ (a.bus << 16) ^ (a.slot << 8) ^ a.function;
  }
};
