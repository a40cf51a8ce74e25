#include "pciplan/plan/qemu_rules.h"

#include <fmt/format.h>

#include <map>
#include <set>

#include "pciplan/base/numbers.h"

namespace pciplan {
namespace {

struct PciController {
  size_t device = 0;
  uint32_t index = 0;
  const ControllerModel* model = nullptr;
};

std::vector<PciController> PciControllers(const std::vector<Device>& devices,
                                          const Catalog& catalog, const MachineFamily& family) {
  std::vector<PciController> out;
  for (size_t i = 0; i < devices.size(); ++i) {
    const Device& d = devices[i];
    if (d.tag != "controller" || !d.Is("@type", "pci")) continue;
    ControllerModelId m = catalog.FindController(d.GetOr("@model", ""), family.name);
    std::optional<uint32_t> index = ParseDecimal(d.GetOr("@index", ""));
    if (m < 0 || !index) continue;
    out.push_back({i, *index, &catalog.controller(m)});
  }
  return out;
}

Diagnostic At(Rule rule, std::string message, const std::vector<Device>& devices, size_t i,
              std::string hint) {
  const Device& d = devices[i];
  Diagnostic diag = Error(rule, std::move(message), DeviceRef::DescribeAt(devices, i),
                          d.address.type == AddressType::kPci ? d.address.pci.ToString() : "");
  diag.line = d.line;
  diag.hint = std::move(hint);
  return diag;
}

/// A target attribute that QEMU takes once among the controllers whose models have it.
struct UniqueTarget {
  const char* attr;
  Rule rule;
  const char* why;
  const char* hint;
};

// QEMU 7.2 hw/pci/pcie_port.c pcie_chassis_add_slot(): a (chassis, slot) pair is taken once.
// The slot is QEMU's `slot` property, which libvirt never sets, so the chassis alone decides.
// hw/pci-bridge/pci_expander_bridge.c pxb_register_bus(): "Bus N is already in use".
// hw/ppc/spapr_pci.c spapr_phb_realize(): "PHB N already attached".
constexpr UniqueTarget kUniqueTargets[] = {
    {"chassis", Rule::kChassisClash,
     "QEMU gives every root port and switch downstream port a chassis of its own",
     "give it a chassis no other port uses, or none"},
    {"busNr", Rule::kBusNrClash, "QEMU gives every expander bus a bus number of its own",
     "give it a busNr no other expander bus uses, or none"},
    {"index", Rule::kTargetIndexClash,
     "QEMU attaches every spapr PHB under a target index of its own ('PHB N already attached')",
     "give it a target index no other PHB uses, or none"},
};

void CheckUnique(const std::vector<Device>& devices, const std::vector<PciController>& ctrls,
                 const UniqueTarget& u, Diagnostics& out) {
  std::map<uint32_t, size_t> taken;  // value -> device
  for (const PciController& c : ctrls) {
    if (!c.model->target.count(u.attr)) continue;
    std::optional<uint32_t> v =
        ParseUnsigned(devices[c.device].GetOr(std::string("target/@") + u.attr, ""));
    if (!v) continue;
    auto [it, fresh] = taken.emplace(*v, c.device);
    if (fresh) continue;
    out.push_back(At(u.rule,
                     fmt::format("{} {} is already taken by {}; {}",
                                 u.attr == std::string_view("index") ? "target index" : u.attr, *v,
                                 DeviceRef::DescribeAt(devices, it->second), u.why),
                     devices, c.device, u.hint));
  }
}

// QEMU creates the -device objects in command-line order and a controller only on a bus that
// exists by then: a loop of controllers, each plugged into the next, can never be created.
void CheckCycles(const std::vector<Device>& devices, const std::vector<PciController>& ctrls,
                 Diagnostics& out) {
  std::map<uint32_t, const PciController*> by_index;
  for (const PciController& c : ctrls) by_index.emplace(c.index, &c);
  std::set<uint32_t> reported;
  for (const PciController& c : ctrls) {
    std::vector<uint32_t> path = {c.index};
    const PciController* at = &c;
    while (devices[at->device].address.type == AddressType::kPci) {
      auto parent = by_index.find(devices[at->device].address.pci.bus);
      if (parent == by_index.end() || parent->second->index == c.index) break;
      if (path.size() > ctrls.size()) break;  // a loop that does not pass through `c`
      at = parent->second;
      path.push_back(at->index);
    }
    const Address& a = devices[at->device].address;
    if (a.type != AddressType::kPci || a.pci.bus != c.index || reported.count(c.index)) continue;
    reported.insert(path.begin(), path.end());
    std::string loop;
    for (uint32_t i : path) loop += fmt::format("{} -> ", i);
    out.push_back(At(Rule::kControllerCycle,
                     fmt::format("it is plugged in behind itself (controller index {}{}); QEMU "
                                 "cannot create a controller inside its own subtree",
                                 loop, c.index),
                     devices, c.device, "give one of these controllers an address on a bus "
                                        "outside the loop"));
  }
}

// QEMU 7.2 creates a fixed number of virtio-mmio transports with the board (hw/arm/virt.c
// NUM_VIRTIO_TRANSPORTS, hw/riscv/virt.c VIRTIO_COUNT) and puts each virtio-mmio device on a free
// one. A device whose class has no virtio-mmio transport (lsi) goes on PCI and takes none.
void CheckMmioTransports(const std::vector<Device>& devices, const Catalog& catalog,
                         const MachineFamily& family, Diagnostics& out) {
  if (!family.virtio_mmio) return;
  uint32_t taken = 0;
  for (size_t i = 0; i < devices.size(); ++i) {
    const Device& d = devices[i];
    if (d.address.type != AddressType::kVirtioMmio) continue;
    const DeviceClass* cls = catalog.Classify(d.tag, d.props);
    if (!cls || !cls->mmio_transport) continue;
    if (++taken <= family.virtio_mmio_transports) continue;
    out.push_back(At(Rule::kMmioTransports,
                     fmt::format("it is virtio-mmio device {} of the domain, and the {} machine "
                                 "has {} virtio-mmio transports; QEMU puts each such device on a "
                                 "transport of its own",
                                 taken, family.name, family.virtio_mmio_transports),
                     devices, i,
                     "give some virtio devices a PCI address (<address type='pci'/>) instead"));
    return;
  }
}

}  // namespace

Diagnostics CheckQemuRules(const std::vector<Device>& devices, const Catalog& catalog,
                           const MachineFamily& family) {
  std::vector<PciController> ctrls = PciControllers(devices, catalog, family);
  Diagnostics out;
  CheckCycles(devices, ctrls, out);
  for (const UniqueTarget& u : kUniqueTargets) CheckUnique(devices, ctrls, u, out);
  CheckMmioTransports(devices, catalog, family, out);
  return out;
}

}  // namespace pciplan
