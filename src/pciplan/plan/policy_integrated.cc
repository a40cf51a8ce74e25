#include "pciplan/plan/policy_integrated.h"

#include <fmt/format.h>

#include <map>

namespace pciplan {

DeviceNeed IntegratedPlacement::Need(int dev, DeviceNeed need) const {
  placed_.insert(dev);
  // The root bus takes any endpoint (QEMU: an integrated endpoint on pcie.0, a PCI device on
  // pci.0), whatever libvirt's rules say it needs behind a port.
  const ControllerModel& root = cat_.controller(fam_.root);
  need.kinds = ConnectKinds();
  need.kinds.Add(root.offers.Has(Connect::kPcie) ? Connect::kPcie : Connect::kPci);
  need.integrated = true;
  need.hotplug = false;
  need.pack_when_full = true;
  return need;
}

void IntegratedPlacement::Explain(const Plan& plan, std::vector<std::string>& notes) const {
  uint32_t on_root = 0;
  std::map<uint32_t, uint32_t> packed;  // slot -> endpoints at functions above 0
  std::vector<std::string> elsewhere;
  for (int dev : placed_) {
    const Address& a = plan.devices[dev].address;
    if (a.type != AddressType::kPci) continue;
    if (a.pci.bus != 0) {
      elsewhere.push_back(DeviceRef::DescribeAt(plan.devices, dev) + " at " + a.pci.ToString());
      continue;
    }
    ++on_root;
    if (a.pci.function > 0) ++packed[a.pci.slot];
  }
  notes.push_back(fmt::format("policy integrated: {} endpoint(s) on the root bus {}", on_root,
                              cat_.controller(fam_.root).BusName(0)));
  for (const auto& [slot, n] : packed) {
    notes.push_back(fmt::format(
        "policy integrated: the root bus had no free slot left: {} endpoint(s) packed as "
        "functions of slot 0x{:02x} (multifunction)",
        n, slot));
  }
  for (const std::string& e : elsewhere) {
    notes.push_back("policy integrated: " + e +
                    ": not on the root bus, which has no function free");
  }
}

}  // namespace pciplan
