// Planning under wishes (issue 9): libvirt 9.0's choices wherever no wish speaks, and where one
// does: the transport of open virtio addresses (defaultAddressType) and the spare hot-plug
// slots (pcieHotplugSlots, pciHotplugSlots). Spares are counted on the finished plan exactly as
// verify probes them (FreeHotplugSlots), and only the missing ones are reserved in the dry run,
// so free slots the domain already has count and no controller is added beyond need.
#include <fmt/format.h>

#include "pciplan/plan/define_pipeline.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

// Each round reserves at least the slots still missing, so a handful of rounds always ends;
// the bound only turns a broken invariant into an error instead of a hang.
constexpr int kMaxRounds = 32;

class WishChoices : public LibvirtChoices {
 public:
  explicit WishChoices(const Wishes& wishes) : wishes_(wishes) {}

  VirtioTransport OpenVirtioTransport(const std::vector<Device>& devices) const override {
    switch (wishes_.default_address_type) {
      case TransportWish::kPci:
        return VirtioTransport::kPci;
      case TransportWish::kVirtioMmio:
        return VirtioTransport::kVirtioMmio;
      case TransportWish::kUnset:
        break;
    }
    return LibvirtChoices::OpenVirtioTransport(devices);
  }
  SpareSlots Spares(bool libvirt_spare) const override {
    SpareSlots s = wishes_.pcie_hotplug_slots ? SpareSlots{} : LibvirtChoices::Spares(libvirt_spare);
    if (wishes_.pcie_hotplug_slots) s.pcie = extra_pcie;
    s.pci = extra_pci;
    return s;
  }

  uint32_t extra_pcie = 0;  // PCIe slots to reserve beyond what the plan leaves free
  uint32_t extra_pci = 0;

 private:
  const Wishes& wishes_;
};

Diagnostic Unmet(std::string message) { return Error(Rule::kWishUnmet, std::move(message)); }

// Wishes a machine family cannot meet at all, before planning.
Result<bool> CheckFamily(const Wishes& w, const MachineFamily& fam) {
  if (w.pcie_hotplug_slots.value_or(0) > 0 && !fam.pcie) {
    return Unmet(fmt::format("pcieHotplugSlots={}: machine family '{}' has no PCI Express",
                             *w.pcie_hotplug_slots, fam.name));
  }
  if (w.default_address_type == TransportWish::kVirtioMmio && !fam.virtio_mmio) {
    return Unmet(fmt::format("defaultAddressType='virtio-mmio': machine family '{}' has no "
                             "virtio-mmio transport", fam.name));
  }
  return true;
}

}  // namespace

Result<Plan> PlanWithWishes(const Domain& domain, const Catalog& catalog) {
  const Wishes& w = domain.wishes;
  Result<std::vector<int>> resolved = ResolveDeviceWishes(domain, w);
  if (!resolved) return resolved.errors();
  for (const DeviceWish& d : w.devices) {
    if (!d.empty()) {
      return Error(Rule::kUnsupported,
                   fmt::format("the wishes for '{}': per-device wishes are not planned yet "
                               "(issue 9)", d.key));
    }
  }
  if (const MachineFamily* fam = catalog.FindMachine(domain.arch, domain.machine)) {
    if (Result<bool> ok = CheckFamily(w, *fam); !ok) return ok.errors();
  }
  WishChoices choices(w);
  uint32_t want_pcie = w.pcie_hotplug_slots.value_or(0);
  uint32_t want_pci = w.pci_hotplug_slots.value_or(0);
  std::optional<HotplugCapacity> before;  // free slots with no spare reserved
  for (int round = 0; round < kMaxRounds; ++round) {
    Result<Plan> plan = RunDefinePipeline(domain, catalog, choices);
    if (!plan) {
      if (!before) return plan;  // the domain itself cannot be planned
      Diagnostic d = Unmet(fmt::format(
          "pcieHotplugSlots={} pciHotplugSlots={} cannot be met: {}", want_pcie, want_pci,
          plan.errors().front().message));
      return d;
    }
    HotplugCapacity free = FreeHotplugSlots(*plan, catalog);
    if (!before) before = free;
    uint32_t short_pcie = free.pcie < want_pcie ? want_pcie - free.pcie : 0;
    uint32_t short_pci = free.pci < want_pci ? want_pci - free.pci : 0;
    if (short_pcie == 0 && short_pci == 0) {
      if (w.pcie_hotplug_slots) {
        plan->notes.push_back(fmt::format(
            "pcieHotplugSlots={}: {} free hot-pluggable PCIe slots ({} free before, {} reserved "
            "as spares)", want_pcie, free.pcie, before->pcie, choices.extra_pcie));
      }
      if (w.pci_hotplug_slots) {
        plan->notes.push_back(fmt::format(
            "pciHotplugSlots={}: {} free hot-pluggable PCI slots ({} free before, {} reserved "
            "as spares)", want_pci, free.pci, before->pci, choices.extra_pci));
      }
      return plan;
    }
    choices.extra_pcie += short_pcie;
    choices.extra_pci += short_pci;
  }
  return Unmet(fmt::format("pcieHotplugSlots={} pciHotplugSlots={}: no plan found in {} rounds",
                           want_pcie, want_pci, kMaxRounds));
}

}  // namespace pciplan
