// ConnectKinds: the kinds of PCI connection a bus offers and a device needs (libvirt's
// virDomainPCIConnectFlags, typed). Hot-plug, integrated-only and aggregation are separate
// fields of buses and devices, not bits of this set.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pciplan {

/// One kind of connection. The order is the order libvirt names a missing kind in its
/// "It requires a controller that accepts a ..." message (reference section 4.3 rule 6).
enum class Connect : uint8_t {
  kPci,                 // conventional PCI endpoint
  kPcie,                // PCI Express endpoint
  kPcieRootPort,        // pcie-root-port
  kPcieSwitchUpstream,  // pcie-switch-upstream-port
  kPcieSwitchDownstream,
  kDmiToPciBridge,
  kPcieToPciBridge,
  kPciExpanderBus,
  kPcieExpanderBus,
  kPciBridge,
};
inline constexpr int kConnectCount = 10;

/// Stable data-file name of a kind ("pci", "pcie", "pcie-root-port", ...).
std::string_view ConnectName(Connect c);
/// Inverse of ConnectName; nullopt for an unknown name.
std::optional<Connect> ConnectFromName(std::string_view name);
/// What libvirt calls a controller that accepts this kind ("standard PCI device", ...).
std::string_view ConnectDescription(Connect c);

class ConnectKinds {
 public:
  constexpr ConnectKinds() = default;
  constexpr ConnectKinds(std::initializer_list<Connect> kinds) {
    for (Connect c : kinds) bits_ |= Bit(c);
  }
  constexpr bool Has(Connect c) const { return (bits_ & Bit(c)) != 0; }
  constexpr void Add(Connect c) { bits_ |= Bit(c); }
  constexpr void Add(ConnectKinds k) { bits_ |= k.bits_; }
  constexpr bool Empty() const { return bits_ == 0; }
  constexpr bool Intersects(ConnectKinds o) const { return (bits_ & o.bits_) != 0; }
  /// True when the set contains an endpoint kind (conventional PCI or PCI Express).
  constexpr bool HasEndpoint() const { return Has(Connect::kPci) || Has(Connect::kPcie); }
  /// The first kind in enum order, used for "requires a controller that accepts a X".
  std::optional<Connect> First() const;
  /// libvirt's flag value for these kinds, as it prints it in "connect flags %x" messages.
  uint32_t LibvirtFlags() const;
  std::string ToString() const;
  constexpr bool operator==(const ConnectKinds&) const = default;

 private:
  static constexpr uint16_t Bit(Connect c) { return static_cast<uint16_t>(1u << static_cast<int>(c)); }
  uint16_t bits_ = 0;
};

/// Whether a device needing `need` may be placed on a bus offering `offer` (types intersect).
inline bool Fits(ConnectKinds offer, ConnectKinds need) { return offer.Intersects(need); }

}  // namespace pciplan
