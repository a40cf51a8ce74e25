// Planning under wishes (issue 9): libvirt 9.0's choices wherever no wish speaks, and where one
// does: the transport of open virtio addresses (defaultAddressType) and the spare hot-plug
// slots (pcieHotplugSlots, pciHotplugSlots). Spares are counted on the finished plan exactly as
// verify probes them (FreeHotplugSlots), and only the missing ones are reserved in the dry run,
// so free slots the domain already has count and no controller is added beyond need. Spare
// PCIe slots are root ports while the root bus has room for them (Plan::gap_filler_room); past
// that, a switch (a root port, an upstream port, up to 32 downstream ports) per 32 slots. A
// device wishing a switch downstream port when none is free gets a switch too. Both are
// controller chains the define pipeline adds before PCI assignment (AddedChains).
#include <fmt/format.h>

#include <map>
#include <optional>
#include <set>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/define_pipeline.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"
#include "pciplan/plan/policy_integrated.h"

namespace pciplan {
namespace {

// Each round reserves at least the slots still missing, so a handful of rounds always ends;
// the bound only turns a broken invariant into an error instead of a hang.
constexpr int kMaxRounds = 32;

class WishChoices : public LibvirtChoices {
 public:
  WishChoices(const Wishes& wishes, const std::vector<int>& wish_of, const Catalog& catalog,
              const MachineFamily* family)
      : wishes_(wishes), wish_of_(wish_of), cat_(catalog), fam_(family) {
    if (family && wishes.policy == PolicyWish::kIntegrated) integrated.emplace(catalog, *family);
  }

  DeviceNeed NeedOfOpen(int dev, const Device& device, DeviceNeed need) const override {
    bool wished = device.source >= 0 && wish_of_[device.source] >= 0 &&
                  !wishes_.devices[wish_of_[device.source]].empty();
    if (!wished) return integrated ? integrated->Need(dev, need) : need;
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
    if (w.numa_node && fam_ && fam_->numa_port >= 0) {
      // Behind the expander bus kept for the node (NumaChains): the endpoint slot its port has.
      need.numa_node = static_cast<int>(*w.numa_node);
      only(cat_.controller(fam_->numa_port).offers.Has(Connect::kPcie) ? Connect::kPcie
                                                                         : Connect::kPci);
    }
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
    // libvirt's one spare root port, unless a wish says how many (or the integrated policy,
    // which adds no controller a wish does not ask for).
    SpareSlots s = wishes_.pcie_hotplug_slots || integrated ? SpareSlots{}
                                                            : LibvirtChoices::Spares(libvirt_spare);
    if (wishes_.pcie_hotplug_slots) {
      s.pcie = extra_pcie;
      // New root ports, never a free slot the plan has (a switch's downstream port, say).
      if (fam_) s.pcie_model = fam_->gap_filler;
    }
    s.pci = extra_pci;
    return s;
  }

  std::vector<ControllerChain> AddedChains() const override { return chains; }
  bool WantsGapFillerRoom() const override { return true; }

  uint32_t extra_pcie = 0;  // PCIe slots to reserve beyond what the plan leaves free
  uint32_t extra_pci = 0;
  std::vector<ControllerChain> chains;  // switches added where root ports cannot be
  std::optional<IntegratedPlacement> integrated;  // policy='integrated'

 private:
  const Wishes& wishes_;
  const std::vector<int>& wish_of_;  // input device index -> index in wishes_.devices, or -1
  const Catalog& cat_;
  const MachineFamily* fam_;
};

Diagnostic Unmet(std::string message) { return Error(Rule::kWishUnmet, std::move(message)); }

ChainLink Link(ControllerModelId model, int parent, uint32_t slot) {
  ChainLink l;
  l.model = model;
  l.parent = parent;
  l.slot = slot;
  return l;
}

/// A PCI Express switch of the family: its upstream port on a new root port (the family's gap
/// filler) when `own_port`, else on whichever free port the PCI passes find; `downstream`
/// ports behind it, in its slots from the lowest.
ControllerChain SwitchChain(const Catalog& cat, const MachineFamily& fam, bool own_port,
                            uint32_t downstream, std::string why, bool wished_only = false) {
  ControllerChain c;
  c.why = std::move(why);
  if (own_port) c.links.push_back(Link(fam.gap_filler, -1, 0));
  c.links.push_back(Link(fam.switch_upstream, own_port ? 0 : -1, 0));
  int up = static_cast<int>(c.links.size()) - 1;
  uint32_t slot = cat.controller(fam.switch_upstream).min_slot;
  for (uint32_t k = 0; k < downstream; ++k) {
    ChainLink down = Link(fam.switch_downstream, up, slot + k);
    down.wished_only = wished_only;
    c.links.push_back(std::move(down));
  }
  return c;
}

/// How many downstream ports one switch of the family has.
uint32_t SwitchPorts(const Catalog& cat, const MachineFamily& fam) {
  const ControllerModel& up = cat.controller(fam.switch_upstream);
  return up.max_slot - up.min_slot + 1;
}

/// A switch for the devices whose address is open and whose wish names the family's switch
/// downstream port, when the domain has fewer free downstream ports than they need: found by
/// planning once without those wishes (the ports left free, or taken by one of those devices,
/// are the ones they can have).
std::optional<ControllerChain> SwitchForDownstreamWishes(const Domain& domain,
                                                         const Catalog& cat,
                                                         const MachineFamily& fam,
                                                         const std::vector<int>& wish_of) {
  if (fam.switch_downstream < 0) return std::nullopt;
  const std::string& model = cat.controller(fam.switch_downstream).name;
  Wishes relaxed = domain.wishes;
  std::vector<size_t> wanting;
  for (size_t i = 0; i < domain.devices.size(); ++i) {
    if (wish_of[i] < 0 || !domain.devices[i].address.WantsPci()) continue;
    DeviceWish& dw = relaxed.devices[wish_of[i]];
    if (dw.connection != model) continue;
    dw.connection.clear();
    wanting.push_back(i);
  }
  if (wanting.empty()) return std::nullopt;
  WishChoices choices(relaxed, wish_of, cat, &fam);
  Result<Plan> plan = RunDefinePipeline(domain, cat, choices);
  if (!plan) return std::nullopt;  // the real plan then fails and says why
  std::set<uint32_t> theirs;  // buses one of those devices took in the relaxed plan
  for (size_t i : wanting) {
    if (plan->devices[i].address.type == AddressType::kPci) {
      theirs.insert(plan->devices[i].address.pci.bus);
    }
  }
  uint32_t free_ports = 0;
  for (const PlanBus& b : PlanBuses(*plan, cat)) {
    if (b.model->name == model && (b.used.empty() || theirs.count(b.index))) ++free_ports;
  }
  uint32_t n = static_cast<uint32_t>(wanting.size());
  if (free_ports >= n) return std::nullopt;
  bool own_port = plan->gap_filler_room > 0 || FreeHotplugSlots(*plan, cat).pcie == 0;
  return SwitchChain(cat, fam, own_port, n - free_ports,
                     fmt::format("for the wishes of {} device(s) for a {} (the domain has {} free)",
                                 n, model, free_ports),
                     true);
}

/// --explain for every PCI controller the planner added that nothing plugs into: each is a
/// spare the wishes keep (libvirt's own spare root port is replaced by the wishes). Returns how
/// many PCI Express ones there are (switch ports, noted with their switch, not counted).
uint32_t NoteSpareControllers(const Plan& plan, const Catalog& cat, const Wishes& w,
                              std::vector<std::string>& notes) {
  uint32_t pcie_spares = 0;
  std::set<uint32_t> parents;
  for (const Device& d : plan.devices) {
    if (d.address.type == AddressType::kPci) parents.insert(d.address.pci.bus);
  }
  std::set<std::string> noted;  // devices a note already says why they were added (switches)
  for (const std::string& n : notes) noted.insert(n.substr(0, n.find(": ")));
  std::vector<PlanBus> buses = PlanBuses(plan, cat);
  for (size_t i = 0; i < plan.devices.size(); ++i) {
    const Device& d = plan.devices[i];
    if (d.origin != Origin::kPlanner || d.tag != "controller" || !d.Is("@type", "pci")) continue;
    if (noted.count(DeviceRef::DescribeAt(plan.devices, i))) continue;
    uint32_t index = ParseDecimal(d.GetOr("@index", "")).value_or(0);
    if (parents.count(index)) continue;
    for (const PlanBus& b : buses) {
      if (b.index != index || !b.hotplug) continue;
      bool pcie = b.model->offers.Has(Connect::kPcie);
      std::optional<uint32_t> n = pcie ? w.pcie_hotplug_slots : w.pci_hotplug_slots;
      if (!n) continue;
      pcie_spares += pcie;
      uint32_t slots = b.model->max_slot - b.model->min_slot + 1;
      notes.push_back(fmt::format("{}: added for {}={}: {} free hot-pluggable {} slot{}",
                                  DeviceRef::DescribeAt(plan.devices, i),
                                  pcie ? "pcieHotplugSlots" : "pciHotplugSlots", *n, slots,
                                  pcie ? "PCI Express" : "PCI", slots == 1 ? "" : "s"));
    }
  }
  return pcie_spares;
}

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
  if (!fam.pcie && m.offers.Has(Connect::kPcie) && !m.offers.Has(Connect::kPci)) {
    return unmet(fmt::format("connection='{}': machine family '{}' has no PCI Express",
                             w.connection, fam.name));
  }
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

/// How many buses the firmware numbers below the main root: every PCI controller that makes a
/// bus and is not an expander bus or behind one.
uint32_t MainRootBuses(const Plan& plan, const Catalog& cat) {
  uint32_t n = 0;
  for (const PlanBus& b : PlanBuses(plan, cat)) n += !b.model->root && !b.expander;
  return n;
}

/// Expander buses for the devices whose address is open and that wish a guest NUMA node: per
/// node, in node order, the family's numa_expander with <target><node> and a busNr, and behind
/// it its numa_port (a root port per device on q35 and virt; on pc a pci-bridge per 31
/// devices), kept for that node's devices alone.
///
/// busNr: QEMU numbers an expander bus's own bus busNr and the buses behind it busNr+1,
/// busNr+2, ... (one per port or bridge, and one for the bridge QEMU puts inside a pc expander
/// bus, qemu_inner_bridge), while the firmware numbers the main root's buses from 0 up. So each
/// expander needs the range [busNr, busNr + buses behind it], the ranges must not
/// overlap, and all must lie above the main root's buses. pciplan takes the ranges from the
/// top down, below the lowest busNr the domain's own expander buses have (256 when none) —
/// libvirt's automatic busNr (lowest - 2) is the same rule for one bus behind the expander.
/// PlanWithWishes checks the main root's buses against the lowest busNr after planning.
Result<std::vector<ControllerChain>> NumaChains(const Domain& domain, const Catalog& cat,
                                                const MachineFamily& fam,
                                                const std::vector<int>& wish_of,
                                                uint32_t& lowest_bus_nr) {
  std::map<uint32_t, uint32_t> wanting;  // node -> devices
  for (size_t i = 0; i < domain.devices.size(); ++i) {
    if (wish_of[i] < 0 || !domain.devices[i].address.WantsPci()) continue;
    const DeviceWish& w = domain.wishes.devices[wish_of[i]];
    if (!w.numa_node) continue;
    std::string device = DeviceRef::DescribeAt(domain.devices, i);
    if (fam.numa_expander < 0) {
      return Error(Rule::kWishUnmet,
                   fmt::format("the wishes for '{}' cannot be met: numaNode: machine family '{}' "
                               "has no expander bus",
                               w.key, fam.name),
                   device);
    }
    if (static_cast<int>(*w.numa_node) >= domain.numa_cells) {
      return Error(Rule::kWishUnmet,
                   fmt::format("the wishes for '{}' cannot be met: numaNode='{}' but the domain "
                               "has {} NUMA cell(s) in <cpu><numa>",
                               w.key, *w.numa_node, domain.numa_cells),
                   device);
    }
    ++wanting[*w.numa_node];
  }
  lowest_bus_nr = 256;
  for (const Device& d : domain.devices) {
    if (auto n = ParseDecimal(d.GetOr("target/@busNr", ""))) {
      lowest_bus_nr = std::min(lowest_bus_nr, *n);
    }
  }
  std::vector<ControllerChain> chains;
  const ControllerModel& port = cat.controller(fam.numa_port);
  uint32_t per_port = port.max_slot - port.min_slot + 1;  // a root port 1, a pci-bridge 31
  uint32_t inner = cat.controller(fam.numa_expander).qemu_inner_bridge ? 1 : 0;
  for (const auto& [node, devices] : wanting) {
    uint32_t ports = (devices + per_port - 1) / per_port;
    uint32_t behind = ports + inner;
    if (lowest_bus_nr < behind + 2) {
      return Error(Rule::kWishUnmet,
                   fmt::format("numaNode='{}': no busNr left for another expander bus with {} "
                               "bus(es) behind it (the lowest in use is {})",
                               node, behind, lowest_bus_nr));
    }
    uint32_t bus_nr = lowest_bus_nr - behind - 1;
    lowest_bus_nr = bus_nr;
    ControllerChain c;
    c.why = fmt::format("for the wishes of {} device(s) for NUMA node {} (busNr {}: buses {}-{})",
                        devices, node, bus_nr, bus_nr, bus_nr + behind);
    ChainLink expander = Link(fam.numa_expander, -1, 0);
    expander.numa_node = static_cast<int>(node);
    expander.props["target/node"] = std::to_string(node);
    expander.props["target/@busNr"] = std::to_string(bus_nr);
    c.links.push_back(std::move(expander));
    const ControllerModel& exp = cat.controller(fam.numa_expander);
    for (uint32_t k = 0; k < ports; ++k) {
      ChainLink p = Link(fam.numa_port, 0, exp.min_slot + k);
      p.numa_node = static_cast<int>(node);
      c.links.push_back(std::move(p));
    }
    chains.push_back(std::move(c));
  }
  return chains;
}

// Whether the planned device sits where its wishes say; the reason when it does not.
std::optional<std::string> WhyNotWhereWished(const DeviceWish& w, const Device& d,
                                             const std::map<uint32_t, PlanBus>& buses) {
  if (d.address.type != AddressType::kPci) return "it is not on a PCI bus";
  auto it = buses.find(d.address.pci.bus);
  if (it == buses.end()) return "its bus is not a PCI controller of the domain";
  const PlanBus& b = it->second;
  std::string at = fmt::format("it is at {} on a {}", d.address.pci.ToString(), b.model->name);
  if (w.numa_node) {
    if (b.numa_node != static_cast<int>(*w.numa_node)) {
      return fmt::format("numaNode='{}': {}, not behind an expander bus of that node",
                         *w.numa_node, at);
    }
  }
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
  uint32_t lowest_bus_nr = 256;
  bool numa_expanders = false;
  if (fam) {
    if (auto chain = SwitchForDownstreamWishes(domain, catalog, *fam, *resolved)) {
      choices.chains.push_back(std::move(*chain));
    }
    Result<std::vector<ControllerChain>> numa =
        NumaChains(domain, catalog, *fam, *resolved, lowest_bus_nr);
    if (!numa) return numa.errors();
    numa_expanders = !numa->empty();
    for (ControllerChain& c : *numa) choices.chains.push_back(std::move(c));
  }
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
      if (uint32_t main = MainRootBuses(*plan, catalog); numa_expanders && main >= lowest_bus_nr) {
        return Unmet(fmt::format(
            "the expander buses for NUMA nodes start at busNr {}, but the main root has {} "
            "buses below it: fewer devices per node, or fewer controllers, would fit",
            lowest_bus_nr, main));
      }
      uint32_t spare_ports = NoteSpareControllers(*plan, catalog, w, plan->notes);
      if (choices.integrated) choices.integrated->Explain(*plan, plan->notes);
      if (w.pcie_hotplug_slots) {
        uint32_t switch_ports = 0;
        for (const ControllerChain& c : choices.chains) {
          for (const ChainLink& l : c.links) switch_ports += l.model == fam->switch_downstream;
        }
        plan->notes.push_back(fmt::format(
            "pcieHotplugSlots={}: {} free hot-pluggable PCIe slots ({} free before; added {} "
            "spare {}s and {} switches with {} downstream ports)",
            want_pcie, free.pcie, before->pcie, spare_ports,
            catalog.controller(fam->gap_filler).name, choices.chains.size(), switch_ports));
      }
      if (w.pci_hotplug_slots) {
        plan->notes.push_back(fmt::format(
            "pciHotplugSlots={}: {} free hot-pluggable PCI slots ({} free before, {} reserved "
            "as spares)",
            want_pci, free.pci, before->pci, choices.extra_pci));
      }
      return plan;
    }
    choices.extra_pci += short_pci;
    uint32_t room = plan->gap_filler_room;
    if (short_pcie <= room || !fam || fam->switch_upstream < 0) {
      choices.extra_pcie += short_pcie;  // root ports, packed 8 per slot of the root bus
      continue;
    }
    // The root bus is (nearly) full: root ports in the room left but one, and a switch on that
    // last root port for the rest. With no room left, a spare root port of an earlier round
    // gives its place to the switch's root port, or the switch hangs from a free port the
    // domain has (which it then no longer counts as free).
    uint32_t roots = room > 0 ? room - 1 : 0;
    bool own_port = room > 0;
    if (!own_port && choices.extra_pcie > 0) {
      --choices.extra_pcie;
      own_port = true;
    } else if (!own_port && free.pcie == 0) {
      return Unmet(fmt::format(
          "pcieHotplugSlots={} cannot be met: the root bus has no room for another {} and no "
          "free port takes a {}",
          want_pcie, catalog.controller(fam->gap_filler).name,
          catalog.controller(fam->switch_upstream).name));
    }
    choices.extra_pcie += roots;
    uint32_t rest = short_pcie - roots + (room > 0 ? 0 : 1);
    choices.chains.push_back(SwitchChain(
        catalog, *fam, own_port, std::min(rest, SwitchPorts(catalog, *fam)),
        fmt::format("for pcieHotplugSlots={}: the root bus has no room for more {}s", want_pcie,
                    catalog.controller(fam->gap_filler).name)));
  }
  return Unmet(fmt::format("pcieHotplugSlots={} pciHotplugSlots={}: no plan found in {} rounds",
                           want_pcie, want_pci, kMaxRounds));
}

}  // namespace pciplan
