#include "pciplan/base/connect.h"

#include <array>

namespace pciplan {
namespace {

struct KindInfo {
  std::string_view name;
  std::string_view description;
  uint32_t libvirt_bit;  // virDomainPCIConnectFlags bit in libvirt 9.0 (domain_addr.h)
};

constexpr std::array<KindInfo, kConnectCount> kKinds = {{
    {"pci", "standard PCI device", 1u << 4},
    {"pcie", "PCI Express device", 1u << 5},
    {"pcie-root-port", "pcie-root-port", 1u << 6},
    {"pcie-switch-upstream-port", "pcie-switch-upstream-port", 1u << 7},
    {"pcie-switch-downstream-port", "pcie-switch-downstream-port", 1u << 8},
    {"dmi-to-pci-bridge", "dmi-to-pci-bridge", 1u << 9},
    {"pcie-to-pci-bridge", "pcie-to-pci-bridge", 1u << 13},
    {"pci-expander-bus", "pci-expander-bus", 1u << 10},
    {"pcie-expander-bus", "pcie-expander-bus", 1u << 11},
    {"pci-bridge", "pci-bridge", 1u << 12},
}};

}  // namespace

std::string_view ConnectName(Connect c) { return kKinds[static_cast<int>(c)].name; }

std::string_view ConnectDescription(Connect c) {
  return kKinds[static_cast<int>(c)].description;
}

std::optional<Connect> ConnectFromName(std::string_view name) {
  for (int i = 0; i < kConnectCount; ++i) {
    if (kKinds[i].name == name) return static_cast<Connect>(i);
  }
  return std::nullopt;
}

std::optional<Connect> ConnectKinds::First() const {
  for (int i = 0; i < kConnectCount; ++i) {
    if (Has(static_cast<Connect>(i))) return static_cast<Connect>(i);
  }
  return std::nullopt;
}

uint32_t ConnectKinds::LibvirtFlags() const {
  uint32_t flags = 0;
  for (int i = 0; i < kConnectCount; ++i) {
    if (Has(static_cast<Connect>(i))) flags |= kKinds[i].libvirt_bit;
  }
  return flags;
}

std::string ConnectKinds::ToString() const {
  std::string out;
  for (int i = 0; i < kConnectCount; ++i) {
    if (!Has(static_cast<Connect>(i))) continue;
    if (!out.empty()) out += ',';
    out += kKinds[i].name;
  }
  return out.empty() ? "none" : out;
}

}  // namespace pciplan
