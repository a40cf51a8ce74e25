// Planning under wishes (issue 9): libvirt 9.0's choices wherever no wish speaks, and where one
// does: the transport of open virtio addresses (defaultAddressType) and the spare hot-plug
// slots (pcieHotplugSlots, pciHotplugSlots). Spares are counted on the finished plan exactly as
// verify probes them (FreeHotplugSlots), and only the missing ones are reserved in the dry run,
// so free slots the domain already has count and no controller is added beyond need.
#include <fmt/format.h>

#include <map>

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
  WishChoices(const Wishes& wishes, const std::vector<int>& wish_of, const Catalog& catalog,
              const MachineFamily* family)
      : wishes_(wishes), wish_of_(wish_of), cat_(catalog), fam_(family) {}

  DeviceNeed NeedOfOpen(const Device& device, DeviceNeed need) const override {
    if (device.source < 0 || wish_of_[device.source] < 0) return need;
    const DeviceWish& w = wishes_.devices[wish_of_[device.source]];
    auto only = [&](Connect kind) {
      need.kinds = ConnectKinds();
      need.kinds.Add(kind);
    };
    if (w.bus == BusWish::kPci) only(Connect::kPci);
    if (w.bus == BusWish::kPcie) only(Connect::kPcie);
    if (!w.connection.empty()) {
      ControllerModelId id = cat_.FindController(w.connection);
      const ControllerModel& m = cat_.controller(id);
      need.model = id;
      if (w.bus == BusWish::kUnset)
        only(m.offers.Has(Connect::kPcie) ? Connect::kPcie : Connect::kPci);
      if (m.root) need.integrated = true;
    }
    if (w.hotpluggable == Hotpluggable::kYes) need.hotplug = true;
    if (w.hotpluggable == Hotpluggable::kNo) {
      // An integrated endpoint: the root bus takes any endpoint there (QEMU: pcie.0 or pci.0).
      need.integrated = true;
      if (w.bus == BusWish::kUnset && w.connection.empty() && fam_) {
        only(cat_.controller(fam_->root).offers.Has(Connect::kPcie) ? Connect::kPcie
                                                                    : Connect::kPci);
      }
    }
    return need;
  }

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
    SpareSlots s =
        wishes_.pcie_hotplug_slots ? SpareSlots{} : LibvirtChoices::Spares(libvirt_spare);
    if (wishes_.pcie_hotplug_slots) s.pcie = extra_pcie;
    s.pci = extra_pci;
    return s;
  }

  uint32_t extra_pcie = 0;  // PCIe slots to reserve beyond what the plan leaves free
  uint32_t extra_pci = 0;

 private:
  const Wishes& wishes_;
  const std::vector<int>& wish_of_;  // input device index -> index in wishes_.devices, or -1
  const Catalog& cat_;
  const MachineFamily* fam_;
};

Diagnostic Unmet(std::string message) { return Error(Rule::kWishUnmet, std::move(message)); }

// Wishes a machine family cannot meet at all, before planning.
Result<bool> CheckFamily(const Wishes& w, const MachineFamily& fam) {
  if (w.pcie_hotplug_slots.value_or(0) > 0 && !fam.pcie) {
    return Unmet(fmt::format("pcieHotplugSlots={}: machine family '{}' has no PCI Express",
                             *w.pcie_hotplug_slots, fam.name));
  }
  if (w.default_address_type == TransportWish::kVirtioMmio && !fam.virtio_mmio) {
    return Unmet(
        fmt::format("defaultAddressType='virtio-mmio': machine family '{}' has no "
                    "virtio-mmio transport",
                    fam.name));
  }
  return true;
}

// Wishes that contradict each other or the machine, before planning.
Result<bool> CheckDeviceWish(const DeviceWish& w, const Catalog& cat, const MachineFamily& fam,
                             const std::string& device) {
  auto unmet = [&](std::string why) {
    return Error(Rule::kWishUnmet, fmt::format("the wishes for '{}' cannot be met: {}", w.key, why),
                 device);
  };
  if (w.bus == BusWish::kPcie && !fam.pcie) {
    return unmet(fmt::format("bus='pcie': machine family '{}' has no PCI Express", fam.name));
  }
  if (w.connection.empty()) return true;
  ControllerModelId id = cat.FindController(w.connection);
  if (id < 0) {
    return Error(Rule::kBadWish,
                 fmt::format("the wishes for '{}': connection='{}' is not a PCI "
                             "controller model",
                             w.key, w.connection),
                 device);
  }
  const ControllerModel& m = cat.controller(id);
  if (m.root && id != fam.root) {
    return unmet(fmt::format("connection='{}': the root bus of '{}' is '{}'", w.connection,
                             fam.name, cat.controller(fam.root).name));
  }
  if (w.hotpluggable == Hotpluggable::kYes && !m.qemu_hotplug) {
    return unmet(
        fmt::format("hotpluggable='yes' with connection='{}': QEMU does not hot-plug "
                    "into a {}",
                    w.connection, w.connection));
  }
  if (w.hotpluggable == Hotpluggable::kNo && !m.root) {
    return unmet(fmt::format("hotpluggable='no' puts it on the root bus, not a {}", w.connection));
  }
  if ((w.bus == BusWish::kPcie && !m.offers.Has(Connect::kPcie)) ||
      (w.bus == BusWish::kPci && !m.offers.Has(Connect::kPci))) {
    return unmet(fmt::format("bus='{}' with connection='{}': a {} offers no such slot",
                             w.bus == BusWish::kPci ? "pci" : "pcie", w.connection, w.connection));
  }
  return true;
}

// Whether the planned device sits where its wishes say; the reason when it does not.
std::optional<std::string> WhyNotWhereWished(const DeviceWish& w, const Device& d,
                                             const std::map<uint32_t, PlanBus>& buses) {
  if (d.address.type != AddressType::kPci) return "it is not on a PCI bus";
  auto it = buses.find(d.address.pci.bus);
  if (it == buses.end()) return "its bus is not a PCI controller of the domain";
  const PlanBus& b = it->second;
  std::string at = fmt::format("it is at {} on a {}", d.address.pci.ToString(), b.model->name);
  if (w.hotpluggable == Hotpluggable::kYes && !b.hotplug) {
    return "hotpluggable='yes': " + at + ", which QEMU does not hot-plug into";
  }
  if (w.hotpluggable == Hotpluggable::kNo && !b.model->root) {
    return "hotpluggable='no': " + at + ", not on the root bus";
  }
  if (w.bus == BusWish::kPci && !b.model->offers.Has(Connect::kPci)) {
    return "bus='pci': " + at + ", not in a conventional PCI slot";
  }
  if (w.bus == BusWish::kPcie && !b.model->offers.Has(Connect::kPcie)) {
    return "bus='pcie': " + at + ", not in a PCI Express slot";
  }
  if (!w.connection.empty() && b.model->name != w.connection) {
    return "connection='" + w.connection + "': " + at;
  }
  return std::nullopt;
}

// Every device with wishes against the plan: an address the input had is contradicted
// [wish-contradicted]; one the planner chose is unmet [wish-unmet].
Result<bool> CheckPlacedWishes(const Domain& domain, const Plan& plan, const Catalog& catalog,
                               const std::vector<int>& wish_of, std::vector<std::string>& notes) {
  std::map<uint32_t, PlanBus> buses;
  for (PlanBus& b : PlanBuses(plan, catalog)) buses.emplace(b.index, std::move(b));
  for (size_t i = 0; i < domain.devices.size(); ++i) {
    if (wish_of[i] < 0) continue;
    const DeviceWish& w = domain.wishes.devices[wish_of[i]];
    if (w.empty()) continue;
    std::string device = DeviceRef::DescribeAt(plan.devices, i);
    std::optional<std::string> why = WhyNotWhereWished(w, plan.devices[i], buses);
    bool existed = !domain.devices[i].address.WantsPci();
    if (!why) {
      if (!existed) {
        notes.push_back(fmt::format("{}: placed at {} by the wishes for '{}'", device,
                                    plan.devices[i].address.pci.ToString(), w.key));
      }
      continue;
    }
    Diagnostic d =
        existed ? Error(Rule::kWishContradicted,
                        fmt::format("its address contradicts the wishes for '{}': {}", w.key, *why),
                        device)
                : Error(Rule::kWishUnmet,
                        fmt::format("the wishes for '{}' cannot be met: {}", w.key, *why), device);
    if (existed) {
      d.hint = fmt::format(
          "addresses never move: delete its <address>, or plan with --replan {}, to re-plan it",
          w.key);
    }
    d.line = domain.devices[i].line;
    return d;
  }
  return true;
}

// A planning failure at a device with wishes is the wishes' failure: said so, naming them.
Diagnostics BlameWishes(const Domain& domain, const std::vector<int>& wish_of, Diagnostics errs) {
  Diagnostic& e = errs.front();
  for (size_t i = 0; i < domain.devices.size(); ++i) {
    if (wish_of[i] < 0 || domain.wishes.devices[wish_of[i]].empty()) continue;
    if (DeviceRef::DescribeAt(domain.devices, i) != e.device) continue;
    e.message = fmt::format("the wishes for '{}' cannot be met: {}",
                            domain.wishes.devices[wish_of[i]].key, e.message);
    e.rule = Rule::kWishUnmet;
    e.hint =
        "pciplan uses a free controller of the wished model, or adds the ones libvirt adds "
        "(root ports, a pcie-to-pci-bridge, pci-bridges)";
    break;
  }
  return errs;
}

}  // namespace

Result<Plan> PlanWithWishes(const Domain& domain, const Catalog& catalog) {
  const Wishes& w = domain.wishes;
  Result<std::vector<int>> resolved = ResolveDeviceWishes(domain, w);
  if (!resolved) return resolved.errors();
  const MachineFamily* fam = catalog.FindMachine(domain.arch, domain.machine);
  if (fam) {
    if (Result<bool> ok = CheckFamily(w, *fam); !ok) return ok.errors();
    for (size_t i = 0; i < domain.devices.size(); ++i) {
      if ((*resolved)[i] < 0) continue;
      Result<bool> ok = CheckDeviceWish(w.devices[(*resolved)[i]], catalog, *fam,
                                        DeviceRef::DescribeAt(domain.devices, i));
      if (!ok) return ok.errors();
    }
  }
  WishChoices choices(w, *resolved, catalog, fam);
  uint32_t want_pcie = w.pcie_hotplug_slots.value_or(0);
  uint32_t want_pci = w.pci_hotplug_slots.value_or(0);
  std::optional<HotplugCapacity> before;  // free slots with no spare reserved
  for (int round = 0; round < kMaxRounds; ++round) {
    Result<Plan> plan = RunDefinePipeline(domain, catalog, choices);
    if (!plan) {
      if (!before) return BlameWishes(domain, *resolved, plan.errors());
      Diagnostic d = Unmet(fmt::format("pcieHotplugSlots={} pciHotplugSlots={} cannot be met: {}",
                                       want_pcie, want_pci, plan.errors().front().message));
      return d;
    }
    HotplugCapacity free = FreeHotplugSlots(*plan, catalog);
    if (!before) before = free;
    uint32_t short_pcie = free.pcie < want_pcie ? want_pcie - free.pcie : 0;
    uint32_t short_pci = free.pci < want_pci ? want_pci - free.pci : 0;
    if (short_pcie == 0 && short_pci == 0) {
      Result<bool> placed = CheckPlacedWishes(domain, *plan, catalog, *resolved, plan->notes);
      if (!placed) return placed.errors();
      if (w.pcie_hotplug_slots) {
        plan->notes.push_back(fmt::format(
            "pcieHotplugSlots={}: {} free hot-pluggable PCIe slots ({} free before, {} reserved "
            "as spares)",
            want_pcie, free.pcie, before->pcie, choices.extra_pcie));
      }
      if (w.pci_hotplug_slots) {
        plan->notes.push_back(fmt::format(
            "pciHotplugSlots={}: {} free hot-pluggable PCI slots ({} free before, {} reserved "
            "as spares)",
            want_pci, free.pci, before->pci, choices.extra_pci));
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
