// The mechanisms of PCI assignment the define pipeline uses on its bus tree: what a device
// needs, validation of an address against the tree, growth of the tree by a controller chain
// (libvirt's virDomainPCIAddressSetGrow), reservation of a given or the next free address, the
// tree of a controller list, and multifunction marking (reference sections 7.2 to 7.11).
#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/define_pipeline.h"
#include "pciplan/plan/prop_scan.h"

namespace pciplan {

// ---------------------------------------------------------------------------------------------
// PCI assignment (section 7)

DeviceNeed DefinePipeline::NeedOf(int dev) const {
  DeviceNeed need;
  if (IsPciController(dev)) {
    if (const ControllerModel* m = PciModel(dev); m && m->plugs_as) {
      need.kinds.Add(*m->plugs_as);
      need.aggregate = m->aggregate;
    } else {
      // pci-root/pcie-root plug nowhere; an explicit address on one is reserved like a
      // conventional device's and refused only by validation (after addressing).
      need.kinds.Add(Connect::kPci);
    }
    return need;  // controllers never carry autoassign (section 4.2 note)
  }
  const DeviceClass* c = cls_[dev];
  ConnectNeed connect = c ? c->connect : ConnectNeed::kNone;
  // A device that would not use PCI but has an explicit PCI address counts as conventional.
  if (connect == ConnectNeed::kNone) connect = ConnectNeed::kPci;
  need.kinds.Add(connect == ConnectNeed::kPcie && fam_->pcie ? Connect::kPcie : Connect::kPci);
  need.autoassign = true;
  need.integrated = c && c->integrated;
  const Device& d = devs_[dev];
  if (d.address.WantsPci()) return choices_.NeedOfOpen(dev, d, need);
  return need;
}

bool DefinePipeline::Validate(const BusTree& tree, const PciAddress& addr, const DeviceNeed& need,
                              From from, int dev) {
  if (addr.domain != 0) {
    std::string a = addr.ToString();
    return Fail(Rule::kPciDomain, "invalid PCI address " + a + ": only PCI domain 0 is available",
                dev, a);
  }
  auto a_str = [&] { return addr.ToString(); };
  if (addr.bus >= static_cast<uint32_t>(tree.size())) {
    return Fail(Rule::kBusMissing,
                fmt::format("invalid PCI address {}: only PCI buses up to {} are available", a_str(),
                            tree.size() - 1), dev, a_str());
  }
  const Bus& bus = tree.bus(static_cast<int>(addr.bus));
  ConnectKinds offers = bus.offers;
  ConnectKinds kinds = need.kinds;
  if (from == From::kConfig) {
    if (need.integrated && addr.bus != 0) {
      return Fail(Rule::kIntegratedBus0,
                  "the device at PCI address " + a_str() + " needs to be an integrated device (bus=0)",
                  dev, a_str());
    }
    // Section 4.3: explicit addresses may mix PCI and PCIe; a pci-bridge counts as an endpoint.
    if (offers.HasEndpoint()) {
      offers.Add(Connect::kPci);
      offers.Add(Connect::kPcie);
    }
    if (kinds.Has(Connect::kPciBridge)) kinds.Add(Connect::kPci);
  }
  if (need.hotplug && !bus.hotplug) {
    return Fail(Rule::kHotplug,
                fmt::format("the device at PCI address {} requires hotplug capability, but the "
                            "PCI controller with index='{}' doesn't support hotplug", a_str(), addr.bus),
                dev, a_str());
  }
  if (!Fits(offers, kinds)) {
    std::optional<Connect> first = kinds.First();
    return Fail(Rule::kConnectMismatch,
                fmt::format("the device at PCI address {} cannot be plugged into the PCI "
                            "controller with index='{}': it requires a controller that accepts "
                            "a {}", a_str(), addr.bus,
                            first ? ConnectDescription(*first) : std::string_view("device")),
                dev, a_str());
  }
  if (bus.min_slot > 0 && addr.slot < bus.min_slot) {
    return Fail(Rule::kSlotBelowMin,
                fmt::format("invalid PCI address {}: slot must be >= {}", a_str(), bus.min_slot), dev,
                a_str());
  }
  if (addr.slot > bus.max_slot) {
    return Fail(Rule::kSlotAboveMax,
                fmt::format("invalid PCI address {}: slot must be <= {}", a_str(), bus.max_slot), dev,
                a_str());
  }
  return true;
}

std::optional<int> DefinePipeline::GrowFor(BusTree& tree, uint32_t bus, const DeviceNeed& need,
                                           int dev) {
  // virDomainPCIAddressSetGrow (section 7.7). Returns the bus the device ends up on.
  int add = static_cast<int>(bus) - tree.size() + 1;
  if (add <= 0) return static_cast<int>(bus);
  // The models of the new buses (a member: most growth adds one bus, once per device).
  auto& models = grow_models_;
  models.clear();
  if (need.kinds.Has(Connect::kPci)) {
    bool bridge_home = false;
    for (int i = 0; i < tree.size(); ++i) {
      if (tree.bus(i).offers.Has(Connect::kPciBridge)) bridge_home = true;
    }
    if (!bridge_home && !fam_->conventional_growth.empty()) {
      // A pure PCIe topology: the first new buses give the bridge a home. If only one bus was
      // needed, the device moves to the last of them (libvirt raises its bus number).
      int extra = static_cast<int>(fam_->conventional_growth.size()) - 1;
      if (add == 1) {
        add += extra;
        bus += extra;
      }
      for (size_t k = 0; k < fam_->conventional_growth.size(); ++k) {
        bool last = k + 1 == fam_->conventional_growth.size();
        models.emplace_back(fam_->conventional_growth[k],
                            last ? BusSetup::kNoHotplug : BusSetup::kControllersOnly);
      }
    }
    while (static_cast<int>(models.size()) < add) models.emplace_back(fam_->bridge, BusSetup::kNormal);
  } else if (need.kinds.Has(Connect::kPcie) || need.kinds.Has(Connect::kPcieSwitchUpstream)) {
    for (int k = 0; k < add; ++k) models.emplace_back(fam_->gap_filler, BusSetup::kNormal);
  } else if (need.kinds.Has(Connect::kPciBridge) && IsPciController(dev) &&
             devs_[dev].origin == Origin::kPlanner) {
    // Deliberate improvement over libvirt 9.0 (README, "Where pciplan does better"): its dry
    // run counts slots for devices but not for the bridges it adds, so with enough devices
    // (about 150 virtio disks on pc) the last bridge finds no slot and the domain is refused.
    // pciplan adds one more bridge bus for it; this happens only where libvirt fails.
    // When the extra bridge cannot help either (every bus it could hang from is full, so the
    // bridges would end up behind each other), the plan fails later; libvirt's own refusal is
    // then the answer, never an error about a bridge pciplan added itself.
    for (int k = 0; k < add; ++k) models.emplace_back(fam_->bridge, BusSetup::kNormal);
    if (!libvirt_refusal_) libvirt_refusal_ = NoSlotForController(dev);
    notes_.push_back(Describe(dev) + ": added one more " + cat_.controller(fam_->bridge).name +
                     " to hold it (libvirt 9.0 refuses this domain)");
  } else {
    std::optional<Connect> first = need.kinds.First();
    if (first && *first != Connect::kPcieToPciBridge && IsPciController(dev)) {
      errs_.push_back(NoSlotForController(dev));
    } else {
      Fail(Rule::kCannotAddBus,
           fmt::format("cannot automatically add a new PCI bus for a device with connect flags "
                       "{:02x}", need.kinds.LibvirtFlags()), dev);
    }
    return std::nullopt;
  }
  // Like libvirt, the dry run may grow past QEMU's 256 buses; the validation after addressing
  // then refuses the index ("too high"). The bound here only keeps memory in check.
  if (tree.size() + add > static_cast<int>(kMaxPlannableIndex) + 1) {
    Fail(Rule::kIndexTooHigh,
         fmt::format("the devices need more than {} PCI buses, the most QEMU allows",
                     kMaxControllerIndex + 1), dev);
    return std::nullopt;
  }
  int first = tree.size();
  tree.Grow(add);
  for (int k = 0; k < add; ++k) {
    tree.SetModel(first + k, models[k].first, cat_.controller(models[k].first), models[k].second);
    if (models[k].second == BusSetup::kControllersOnly && k + 1 < add) {
      // virDomainPCIAddressSetGrow: the root port made for the pcie-to-pci-bridge accepts that
      // bridge only, even for explicit addresses in the dry run (an explicit PCIe device on it is
      // "cannot be plugged into ... accepts a PCI Express device").
      if (const auto& next = cat_.controller(models[k + 1].first).plugs_as) {
        ConnectKinds only;
        only.Add(*next);
        tree.RestrictOffers(first + k, only);
      }
    }
  }
  return static_cast<int>(bus);
}

std::string DefinePipeline::HolderOf(const PciAddress& addr, int dev) const {
  // The tree records that a function is taken, not by whom: the holder is the other device
  // whose address is this one (an explicit address, or one the planner gave).
  for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
    if (i == dev || devs_[i].address.type != AddressType::kPci || devs_[i].address.pci != addr) {
      continue;
    }
    std::string holder = " (already used by " + Describe(i);
    if (devs_[i].line > 0) holder += " on line " + std::to_string(devs_[i].line);
    return holder + ")";
  }
  return "";
}

Diagnostic DefinePipeline::NoSlotForController(int dev) const {
  Diagnostic d = Error(Rule::kCannotAddController,
                       fmt::format("a PCI slot is needed to connect a PCI controller model='{}', "
                                   "but none is available, and it cannot be automatically added",
                                   devs_[dev].GetOr("@model", "")),
                       Describe(dev));
  d.line = devs_[dev].line;
  return d;
}

bool DefinePipeline::ReserveAddr(BusTree& tree, PciAddress addr, const DeviceNeed& need,
                                 From from, Pass pass, int dev) {
  if (pass == Pass::kDryRun && addr.bus >= static_cast<uint32_t>(tree.size())) {
    std::optional<int> bus = GrowFor(tree, addr.bus, need, dev);
    if (!bus) return false;
    if (static_cast<uint32_t>(*bus) != addr.bus && dev >= 0) {
      // libvirt's quirk (section 7.2): the device's own address moves with the growth.
      devs_[dev].address.pci.bus = static_cast<uint32_t>(*bus);
      notes_.push_back(Describe(dev) + ": bus raised to " + std::to_string(*bus) +
                       " to make room for the bridge it needs (libvirt 9.0 behaviour)");
    }
    addr.bus = static_cast<uint32_t>(*bus);
  }
  if (!Validate(tree, addr, need, from, dev)) return false;
  if (tree.FunctionInUse(addr)) {
    return Fail(Rule::kDoubleUse,
                "attempted double use of PCI address " + addr.ToString() + HolderOf(addr, dev),
                dev, addr.ToString());
  }
  tree.Take(addr, need.aggregate, need.pack_when_full);
  return true;
}

std::optional<PciAddress> DefinePipeline::ReserveNext(BusTree& tree, const DeviceNeed& need,
                                                      int function, Pass pass, int dev) {
  std::optional<PciAddress> addr = tree.FindFree(need, function);
  if (!addr) {
    if (pass == Pass::kReal) {
      Fail(Rule::kNoFreeSlot, "no more available PCI slots", dev);
      return std::nullopt;
    }
    std::optional<int> bus = GrowFor(tree, static_cast<uint32_t>(tree.size()), need, dev);
    if (!bus) return std::nullopt;
    addr = PciAddress{0, static_cast<uint32_t>(*bus), tree.bus(*bus).min_slot,
                      function >= 0 ? static_cast<uint32_t>(function) : 0};
  }
  if (!ReserveAddr(tree, *addr, need, From::kAuto, pass, dev)) return std::nullopt;
  return addr;
}

bool DefinePipeline::CreateSet(BusTree& tree, Pass pass) {
  int max_idx = 0;
  for (int i : ctrl_order_) {
    if (IsPciController(i)) max_idx = std::max(max_idx, ControllerIndex(i));
  }
  tree.Clear();
  tree.Grow(max_idx + 1);
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    const ControllerModel* model = PciModel(i);
    ControllerModelId id = static_cast<ControllerModelId>(model - cat_.controllers.data());
    BusSetup setup =
        ScanIs(devs_[i].props, "target/@hotplug", "off") ? BusSetup::kNoHotplug : BusSetup::kNormal;
    tree.SetModel(ControllerIndex(i), id, *model, setup);
    if (wished_only_.count(i)) tree.SetWishedOnly(ControllerIndex(i));
    if (auto n = numa_of_.find(i); n != numa_of_.end()) tree.SetNumaNode(ControllerIndex(i), n->second);
  }
  for (int b = 1; b < tree.size(); ++b) {
    if (tree.bus(b).model < 0) {
      tree.SetModel(b, fam_->gap_filler, cat_.controller(fam_->gap_filler), BusSetup::kNormal);
    }
  }
  // Explicit addresses, in libvirt's device iteration order (virDomainDeviceInfoIterateFlags).
  // The order matters when explicit addresses name missing buses: the first device to name a
  // bus decides which controllers the growth adds (section 7.2).
  // Each device's tag is looked up in the order once; the devices of a tag are then taken in
  // document order, those of no listed tag last.
  // Only devices with an explicit address take part: the others are not looked up at all.
  auto& present = explicit_present_;
  present.clear();
  for (size_t i = 0; i < devs_.size(); ++i) {
    if (devs_[i].address.IsPresentPci()) present.push_back(static_cast<int>(i));
  }
  if (present.empty()) return true;
  // Each one's tag's position in the order (tags not listed: last); then the tags in order,
  // each with its devices in its list's order or, for the other tags, the document's.
  const size_t tags = cat_.collect_order.size();
  auto& rank = explicit_rank_;
  rank.assign(devs_.size(), tags);
  for (int i : present) {
    size_t k = 0;
    while (k < tags && !SameText(cat_.collect_order[k], devs_[i].tag)) ++k;
    rank[static_cast<size_t>(i)] = k;
  }
  auto& order = explicit_order_;
  order.clear();
  for (size_t k = 0; k <= tags; ++k) {
    const std::pmr::vector<int>* list = &present;
    if (k < tags) {
      const std::string_view tag = cat_.collect_order[k];
      if (tag == "disk") list = &disk_order_;
      if (tag == "video") list = &video_order_;
      if (tag == "controller") list = &ctrl_order_;
    }
    for (int i : *list) {
      if (rank[static_cast<size_t>(i)] == k) order.push_back(i);
    }
  }
  for (int i : order) {
    // Forced chipset placements already at their address are reserved by the chipset step.
    bool forced_here = false;
    for (const Placement& p : fam_->placements) {
      if (p.mode == PlacementMode::kForced && MayMatch(p, i) &&
          p.match.Matches(devs_[i].tag, devs_[i].props)) {
        PciAddress want{0, 0, p.slots.front(), p.function};
        forced_here = devs_[i].address.pci == want;
      }
    }
    if (forced_here) continue;
    if (!ReserveAddr(tree, devs_[i].address.pci, NeedOf(i), From::kConfig, pass, i)) return false;
  }
  return true;
}

void DefinePipeline::AddPolicyChains() {
  // After every controller has its index: each link takes the next one, so parents come first.
  int next = 0;
  for (int i : ctrl_order_) {
    if (IsPciController(i)) next = std::max(next, ControllerIndex(i) + 1);
  }
  for (const ControllerChain& chain : choices_.AddedChains()) {
    std::vector<int> indexes;
    for (const ChainLink& link : chain.links) {
      Props props = link.props;
      props["element"] = "controller";
      props["@type"] = "pci";
      props["@model"] = cat_.controller(link.model).name;
      int c = AddDevice(std::move(props));
      SetIndex(c, next);
      indexes.push_back(next++);
      if (link.parent >= 0) {
        Address& a = devs_[c].address;
        a.type = AddressType::kPci;
        a.type_name = "pci";
        a.pci = PciAddress{0, static_cast<uint32_t>(indexes[link.parent]), link.slot, 0};
      }
      ctrl_order_.push_back(c);
      cls_[c] = cat_.Classify(devs_[c].tag, devs_[c].props);
      if (link.wished_only) wished_only_.insert(c);
      if (link.numa_node >= 0) numa_of_[c] = link.numa_node;
      notes_.push_back(Describe(c) + ": added " + chain.why);
    }
  }
}

uint32_t DefinePipeline::GapFillerRoom(const BusTree& tree) const {
  const ControllerModel& filler = cat_.controller(fam_->gap_filler);
  if (!filler.plugs_as) return 0;
  DeviceNeed need;
  need.kinds.Add(*filler.plugs_as);
  need.aggregate = filler.aggregate;
  BusTree probe = tree;
  uint32_t room = 0;
  for (; room <= kMaxControllerIndex; ++room) {
    std::optional<PciAddress> a = probe.FindFree(need, -1);
    if (!a) break;
    probe.Take(*a, need.aggregate);
  }
  return room;
}

void DefinePipeline::SetMultifunction() {
  // Section 7.11. Only the slots with a device at a function above 0 are looked at (most plans
  // have a few, or none).
  std::pmr::vector<std::tuple<uint32_t, uint32_t, uint32_t>> shared(&arena_);
  for (const Device& d : devs_) {
    const Address& a = d.address;
    if (a.type != AddressType::kPci || a.pci.function == 0 || a.pci.IsUnassigned()) continue;
    shared.emplace_back(a.pci.domain, a.pci.bus, a.pci.slot);
  }
  if (shared.empty()) return;
  std::sort(shared.begin(), shared.end());
  // Slot numbers of those slots, as bits (all bits when one is beyond 31): a cheap first test.
  uint32_t slot_bits = 0;
  for (const auto& t : shared) slot_bits |= std::get<2>(t) < 32 ? 1u << std::get<2>(t) : ~0u;
  shared.erase(std::unique(shared.begin(), shared.end()), shared.end());
  // The last device at function 0 of each such slot is its base (-1: none).
  std::pmr::vector<int> base(shared.size(), -1, &arena_);
  for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
    const Address& a = devs_[i].address;
    if (a.type != AddressType::kPci || a.pci.function != 0) continue;
    if (a.pci.slot < 32 && !(slot_bits >> a.pci.slot & 1u)) continue;
    std::tuple<uint32_t, uint32_t, uint32_t> slot{a.pci.domain, a.pci.bus, a.pci.slot};
    auto it = std::lower_bound(shared.begin(), shared.end(), slot);
    if (it != shared.end() && *it == slot) base[static_cast<size_t>(it - shared.begin())] = i;
  }
  for (int b : base) {
    if (b < 0) continue;
    Address& a = devs_[b].address;
    if (a.multifunction.empty()) a.multifunction = "on";
  }
}

}  // namespace pciplan
