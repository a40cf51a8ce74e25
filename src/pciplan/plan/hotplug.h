// Hot-plug facts of a plan: its PCI buses with the slots they leave free, which of them QEMU
// accepts a hot-plug into (data: controllers.json qemu_hotplug), and the first free slot a
// running guest can take a device in. Used by live attach and by verify. Pure.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pciplan/base/address.h"
#include "pciplan/domain/domain.h"
#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"

namespace pciplan {

/// One PCI bus of a plan.
struct PlanBus {
  uint32_t index = 0;
  std::string name;  // QEMU bus name: "pcie.0", "pci.3"
  const ControllerModel* model = nullptr;
  bool hotplug = false;     // QEMU takes hot-plugs into its free slots
  std::set<uint32_t> used;  // slots with a device on any function, or reserved
  // The expander bus (a root bus of QEMU's own) it is or hangs behind, none under the main
  // root; and that expander's <target><node>, -1 when none.
  std::optional<uint32_t> expander;
  int numa_node = -1;
};

/// The PCI buses of `plan`, by controller index. A <target hotplug='off'/> turns a port's
/// hot-plug off; the machine's reserved slots count as used on bus 0.
std::vector<PlanBus> PlanBuses(const Plan& plan, const Catalog& catalog);

/// How many free slots of a plan QEMU accepts a hot-plug into, by kind.
struct HotplugCapacity {
  uint32_t pcie = 0;  // free root ports and switch downstream ports (PCI Express)
  uint32_t pci = 0;   // free conventional PCI slots (pci-root, bridges)
};

/// The free hot-pluggable slots of `plan` (PlanBuses: what verify probes).
HotplugCapacity FreeHotplugSlots(const Plan& plan, const Catalog& catalog);

/// The first free slot, in bus and slot order, that a running guest can take `device` in:
/// on a hot-pluggable bus that offers the connection the device needs. nullopt when none.
std::optional<PciAddress> FindHotplugSlot(const Plan& plan, const Catalog& catalog,
                                          const Device& device);

}  // namespace pciplan
