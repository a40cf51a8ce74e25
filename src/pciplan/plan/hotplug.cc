#include "pciplan/plan/hotplug.h"

#include <map>

#include "pciplan/base/numbers.h"

namespace pciplan {

std::vector<PlanBus> PlanBuses(const Plan& plan, const Catalog& catalog) {
  std::map<uint32_t, PlanBus> buses;
  std::map<uint32_t, uint32_t> parent;  // bus -> the bus its controller plugs into
  std::map<uint32_t, int> node;         // bus -> its controller's <target><node>
  for (const Device& d : plan.devices) {
    if (d.tag != "controller" || !d.Is("@type", "pci")) continue;
    ControllerModelId m = catalog.FindController(d.GetOr("@model", ""));
    if (m < 0) continue;
    uint32_t index = ParseDecimal(d.GetOr("@index", "0")).value_or(0);
    PlanBus& b = buses[index];
    b.index = index;
    b.model = &catalog.controller(m);
    b.name = b.model->BusName(index);
    // libvirt's <target hotplug='off'/> turns a port's hot-plug off (reference 6.4); a root
    // bus's only where the machine has a switch for it (pseries' PHBs have none: libvirt takes
    // the option and QEMU still hot-plugs there).
    bool off = d.Is("target/@hotplug", "off") &&
               (!b.model->root || (plan.family && !plan.family->root_hotplug_off.empty()));
    b.hotplug = b.model->qemu_hotplug && !off;
    if (d.address.type == AddressType::kPci) parent[index] = d.address.pci.bus;
    if (auto n = ParseDecimal(d.GetOr("target/node", ""))) node[index] = static_cast<int>(*n);
  }
  for (auto& [index, b] : buses) {
    uint32_t at = index;
    for (size_t steps = 0; steps <= buses.size(); ++steps) {
      auto it = buses.find(at);
      if (it != buses.end() && it->second.model->qemu_root_bus) {
        b.expander = at;
        if (node.count(at)) b.numa_node = node[at];
        break;
      }
      if (!parent.count(at)) break;
      at = parent[at];
    }
    // ACPI hot-plug (a dmi-to-pci-bridge's only kind) serves the buses under the machine's own
    // root bus; behind an expander bus, which QEMU makes a root bus of its own, there is none,
    // and a machine without ACPI PCI hot-plug (virt) has none anywhere.
    bool acpi = plan.family && plan.family->acpi_pci_hotplug;
    if (b.model->qemu_hotplug_acpi && (b.expander || !acpi)) b.hotplug = false;
  }
  for (const Device& d : plan.devices) {
    if (d.address.type != AddressType::kPci || d.address.pci.IsUnassigned()) continue;
    auto it = buses.find(d.address.pci.bus);
    if (it != buses.end()) it->second.used.insert(d.address.pci.slot);
  }
  if (plan.family && buses.count(0)) {
    for (const ReservedFunction& r : plan.family->reserved) buses[0].used.insert(r.slot);
  }
  std::vector<PlanBus> out;
  for (auto& [index, bus] : buses) out.push_back(std::move(bus));
  return out;
}

HotplugCapacity FreeHotplugSlots(const Plan& plan, const Catalog& catalog) {
  HotplugCapacity free;
  for (const PlanBus& b : PlanBuses(plan, catalog)) {
    if (!b.hotplug) continue;
    uint32_t& count = b.model->offers.Has(Connect::kPcie) ? free.pcie : free.pci;
    if (!b.model->offers.Has(Connect::kPcie) && !b.model->offers.Has(Connect::kPci)) continue;
    for (uint32_t s = b.model->min_slot; s <= b.model->max_slot; ++s) {
      if (!b.used.count(s)) ++count;
    }
  }
  return free;
}

std::optional<PciAddress> FindHotplugSlot(const Plan& plan, const Catalog& catalog,
                                          const Device& device) {
  const DeviceClass* cls = catalog.Classify(device.tag, device.props);
  if (!cls || cls->connect == ConnectNeed::kNone) return std::nullopt;
  // 'pcie' devices are PCI Express endpoints only where the machine has PCI Express.
  Connect need = cls->connect == ConnectNeed::kPcie && plan.family && plan.family->pcie
                     ? Connect::kPcie
                     : Connect::kPci;
  for (const PlanBus& b : PlanBuses(plan, catalog)) {
    if (!b.hotplug || !b.model->offers.Has(need)) continue;
    for (uint32_t s = b.model->min_slot; s <= b.model->max_slot; ++s) {
      if (!b.used.count(s)) return PciAddress{0, b.index, s, 0};
    }
  }
  return std::nullopt;
}

}  // namespace pciplan
