// The integrated policy (issue 10): every endpoint whose address is open goes on the root bus
// (pcie.0 on q35 and virt, pci.0 on pc) in libvirt's assignment order, skipping the chipset
// slots the machine data reserves, so that no root port, bridge or switch is added for it and
// the guest boots with the fewest PCI controllers. When the root bus has no wholly free slot
// left, further endpoints are packed as functions of the slots they took, the last one first
// (multifunction, BusTree's pack_when_full); a controller for an endpoint would need a slot of
// the root bus itself, so only when every function is taken does planning fail, as libvirt's
// does ("no more available PCI slots"). Internal to plan/: a part of the wish policy (policy_wishes.cc), which asks
// it for every device no device wish speaks for, so hotpluggable='yes' and the other device
// wishes still win.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "pciplan/model/machine_model.h"
#include "pciplan/plan/plan.h"
#include "pciplan/topology/bus_tree.h"

namespace pciplan {

class IntegratedPlacement {
 public:
  IntegratedPlacement(const Catalog& catalog, const MachineFamily& family)
      : cat_(catalog), fam_(family) {}

  /// What endpoint `dev` needs under this policy: the root bus, packed when it is full.
  DeviceNeed Need(int dev, DeviceNeed libvirt_need) const;

  /// --explain: how many endpoints the policy put on the root bus, which were packed, and
  /// which found no place there (behind a controller after all).
  void Explain(const Plan& plan, std::vector<std::string>& notes) const;

 private:
  const Catalog& cat_;
  const MachineFamily& fam_;
  mutable std::set<int> placed_;  // devices Need was asked for
};

}  // namespace pciplan
