// libvirt 9.0's define-time address assignment (reference: libvirt-addressing.md). The order
// of the steps follows libvirt's define pipeline (section 2): controller list order, index
// assignment, machine defaults, model defaults, implicit controllers, drive addresses,
// virtio-mmio, the two PCI passes (section 7), controller attribute defaults and validation.
#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include <fmt/format.h>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/nonpci.h"
#include "pciplan/plan/planner.h"
#include "pciplan/topology/bus_tree.h"

namespace pciplan {
namespace {

constexpr uint32_t kMaxControllerIndex = 255;  // libvirt's limit, checked after addressing
// Indexes above this are refused before planning: libvirt would try (and fail) to create that
// many buses; pciplan refuses to allocate them.
constexpr uint32_t kMaxPlannableIndex = 1024;

enum class Pass { kDryRun, kReal };
enum class From { kConfig, kAuto };

class LibvirtPlanner {
 public:
  LibvirtPlanner(const Domain& in, const Catalog& cat) : in_(in), cat_(cat) {}

  Result<Plan> Run();

 private:
  // --- preparation (define pipeline before addressing) ---
  bool FindFamily();
  void BuildListOrders();
  bool AssignControllerIndexes();
  bool CheckControllers();
  void AddMachineDefaults();
  void ApplyModelDefaults();
  void ClassifyAll();
  void PrimeVirtioMmio();

  // --- PCI assignment ---
  bool AssignPci();
  bool CreateSet(BusTree& tree, Pass pass);
  bool ChipsetPlacements(BusTree& tree, Pass pass);
  bool AssignDevices(BusTree& tree, Pass pass);
  bool PlaceOne(BusTree& tree, int dev, Pass pass);
  bool PlaceUsb2Companion(BusTree& tree, int dev, Pass pass);
  std::optional<PciAddress> ReserveNext(BusTree& tree, const DeviceNeed& need, int function,
                                        Pass pass, int dev);
  bool ReserveAddr(BusTree& tree, PciAddress addr, const DeviceNeed& need, From from, Pass pass,
                   int dev);
  bool Validate(const BusTree& tree, const PciAddress& addr, const DeviceNeed& need, From from,
                int dev);
  std::optional<int> GrowFor(BusTree& tree, uint32_t bus, const DeviceNeed& need, int dev);
  void SetMultifunction();
  bool FillControllerDefaults();
  bool ValidateControllers();
  bool ValidateVideos();

  // --- helpers ---
  int AddDevice(Props props);
  DeviceNeed NeedOf(int dev) const;
  bool IsPciController(int dev) const {
    return devs_[dev].tag == "controller" && devs_[dev].Is("@type", "pci");
  }
  int ControllerIndex(int dev) const;
  const ControllerModel* PciModel(int dev) const;
  int FindPciController(int index) const;
  std::string Describe(int dev) const;
  bool Fail(Rule rule, std::string message, int dev, std::string address = {});

  const Domain& in_;
  const Catalog& cat_;
  const MachineFamily* fam_ = nullptr;
  std::vector<Device> devs_;
  std::vector<int> ctrl_order_;   // libvirt's controller list order (section 6.1)
  std::vector<int> disk_order_;   // disks grouped by bus, sorted by target (section 2)
  std::vector<int> video_order_;  // primary video first
  std::vector<const DeviceClass*> cls_;
  mutable std::vector<int> index_cache_;  // parsed @index per device; -2 = not parsed yet
  void SetIndex(int dev, int index) {
    devs_[dev].Set("@index", std::to_string(index));
    if (index_cache_.size() < devs_.size()) index_cache_.resize(devs_.size(), -2);
    index_cache_[dev] = index;
  }
  Diagnostics errs_;
  std::vector<std::string> notes_;
};

bool LibvirtPlanner::Fail(Rule rule, std::string message, int dev, std::string address) {
  Diagnostic d = Error(rule, std::move(message), dev >= 0 ? Describe(dev) : std::string(),
                       std::move(address));
  if (dev >= 0) d.line = devs_[dev].line;
  errs_.push_back(std::move(d));
  return false;
}

std::string LibvirtPlanner::Describe(int dev) const {
  int ordinal = 0;
  for (int i = 0; i < dev; ++i) {
    if (devs_[i].tag == devs_[dev].tag) ++ordinal;
  }
  return DeviceRef::Describe(devs_[dev], ordinal);
}

int LibvirtPlanner::ControllerIndex(int dev) const {
  if (index_cache_.size() < devs_.size()) index_cache_.resize(devs_.size(), -2);
  int& cached = index_cache_[dev];
  if (cached != -2) return cached;
  const std::string* idx = devs_[dev].Get("@index");
  std::optional<uint32_t> v = idx ? ParseDecimal(*idx) : std::nullopt;
  cached = v ? static_cast<int>(std::min<uint32_t>(*v, 1u << 30)) : -1;
  return cached;
}

const ControllerModel* LibvirtPlanner::PciModel(int dev) const {
  ControllerModelId id = cat_.FindController(devs_[dev].GetOr("@model", ""));
  return id < 0 ? nullptr : &cat_.controller(id);
}

int LibvirtPlanner::FindPciController(int index) const {
  for (int i : ctrl_order_) {
    if (IsPciController(i) && ControllerIndex(i) == index) return i;
  }
  return -1;
}

int LibvirtPlanner::AddDevice(Props props) {
  Device d;
  d.tag = props["element"];
  props.erase("element");
  d.props = std::move(props);
  d.origin = Origin::kPlanner;
  devs_.push_back(std::move(d));
  cls_.push_back(nullptr);
  return static_cast<int>(devs_.size()) - 1;
}

// ---------------------------------------------------------------------------------------------
// Preparation

bool LibvirtPlanner::FindFamily() {
  fam_ = cat_.FindMachine(in_.arch, in_.machine);
  if (fam_) return true;
  std::string known;
  for (const MachineFamily& m : cat_.machines) {
    if (!known.empty()) known += ", ";
    known += m.name;
  }
  errs_.push_back(Error(Rule::kUnknownMachine,
                        fmt::format("unknown machine type '{}' for architecture '{}' (pciplan "
                                    "knows the families {})",
                                    in_.machine, in_.arch, known)));
  return false;
}

void LibvirtPlanner::BuildListOrders() {
  // Disks: libvirt inserts each one (virDomainDiskInsert) before the first disk of its bus with
  // a higher name index, else after the last disk of its bus, else at the end. That makes
  // groups by bus in order of first appearance, each stably sorted by name index.
  std::vector<std::string> bus_order;
  std::map<std::string, std::vector<std::pair<int, int>>> by_bus;  // bus -> (name index, dev)
  for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
    const Device& d = devs_[i];
    if (d.tag == "disk") {
      std::string bus = d.GetOr("target/@bus", "");
      auto [it, fresh] = by_bus.try_emplace(bus);
      if (fresh) bus_order.push_back(bus);
      it->second.emplace_back(DiskNameIndex(d.GetOr("target/@dev", "")), i);
    } else if (d.tag == "controller") {
      // Section 6.1: same-type controllers only; explicit indexes ascend.
      std::string type = d.GetOr("@type", "");
      int index = ControllerIndex(i);
      bool has_index = d.Has("@index");
      int pos = -1;
      bool any_same = false;
      for (int k = static_cast<int>(ctrl_order_.size()) - 1; k >= 0; --k) {
        int o = ctrl_order_[k];
        if (devs_[o].GetOr("@type", "") != type) continue;
        any_same = true;
        if (!has_index) {
          pos = k + 1;
          break;
        }
        if (devs_[o].Has("@index") && ControllerIndex(o) > index) {
          pos = k;
        } else if (pos == -1) {
          pos = k + 1;
        }
      }
      if (!any_same || pos < 0) pos = static_cast<int>(ctrl_order_.size());
      ctrl_order_.insert(ctrl_order_.begin() + pos, i);
    } else if (d.tag == "video") {
      if (d.GetOr("model/@primary", "") == "yes" &&
          std::none_of(video_order_.begin(), video_order_.end(), [&](int v) {
            return devs_[v].GetOr("model/@primary", "") == "yes";
          })) {
        video_order_.insert(video_order_.begin(), i);
      } else {
        video_order_.push_back(i);
      }
    }
  }
  for (const std::string& bus : bus_order) {
    std::vector<std::pair<int, int>>& group = by_bus[bus];
    std::stable_sort(group.begin(), group.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [idx, dev] : group) disk_order_.push_back(dev);
  }
}

bool LibvirtPlanner::AssignControllerIndexes() {
  // Section 6.2: lowest unused index of the type, in list order, before the implicit root is
  // added. USB2 companions join the group of the USB2 controller just before them.
  bool root_written = false;
  for (int i : ctrl_order_) {
    const ControllerModel* m = IsPciController(i) ? PciModel(i) : nullptr;
    if (m && m->root) root_written = true;
  }
  for (size_t k = 0; k < ctrl_order_.size(); ++k) {
    int i = ctrl_order_[k];
    Device& d = devs_[i];
    if (d.Has("@index")) {
      std::optional<uint32_t> index = ParseDecimal(*d.Get("@index"));
      if (!index) {
        return Fail(Rule::kBadValue, "controller index '" + *d.Get("@index") + "' is not a number",
                    i);
      }
      // libvirt reads the index as an int: above INT_MAX it is no value at all.
      if (*index > static_cast<uint32_t>(std::numeric_limits<int32_t>::max())) {
        return Fail(Rule::kBadValue,
                    "controller index '" + *d.Get("@index") + "' is not an integer from 0 to " +
                        std::to_string(std::numeric_limits<int32_t>::max()),
                    i);
      }
      continue;
    }
    std::string type = d.GetOr("@type", "");
    const DeviceClass* c = cat_.Classify(d.tag, d.props);
    if (c && c->companion_function >= 0 && k > 0) {
      int prev = ctrl_order_[k - 1];
      const DeviceClass* pc = cat_.Classify(devs_[prev].tag, devs_[prev].props);
      if (pc && pc->companion_function >= 0 && devs_[prev].Has("@index")) {
        std::string pidx = *devs_[prev].Get("@index");
        bool model_taken = false;
        for (int o : ctrl_order_) {
          if (o != i && devs_[o].GetOr("@type", "") == type &&
              devs_[o].GetOr("@model", "") == d.GetOr("@model", "") &&
              devs_[o].GetOr("@index", "") == pidx) {
            model_taken = true;
          }
        }
        if (!model_taken) {
          SetIndex(i, static_cast<int>(ParseDecimal(pidx).value_or(0)));
          continue;
        }
      }
    }
    std::set<int> used;
    for (int o : ctrl_order_) {
      if (devs_[o].GetOr("@type", "") == type && devs_[o].Has("@index")) used.insert(ControllerIndex(o));
    }
    if (IsPciController(i) && !root_written) {
      // Deliberate improvement over libvirt 9.0 (DEVIATIONS.tsv, libvirt-limit): libvirt numbers
      // index-less controllers before adding the implicit root, so the first root port takes
      // index 0 and the domain is refused. pciplan keeps index 0 for the root the machine adds.
      const ControllerModel* m = PciModel(i);
      if (m && !m->root) used.insert(0);
    }
    int idx = 0;
    while (used.count(idx)) ++idx;
    SetIndex(i, idx);
  }
  return true;
}

void LibvirtPlanner::AddMachineDefaults() {
  // Section 5.2, in libvirt's order; added controllers are appended to the list.
  auto add = [&](Props props) {
    int i = AddDevice(std::move(props));
    if (devs_[i].tag == "controller") ctrl_order_.push_back(i);
    return i;
  };
  for (const DefaultDevice& dd : fam_->default_devices) {
    bool present = false;
    for (size_t i = 0; i < devs_.size(); ++i) {
      if (dd.unless.Matches(devs_[i].tag, devs_[i].props)) present = true;
    }
    if (present) continue;
    // The PCI root comes before the memballoon (qemuDomainDefAddDefaultDevices).
    if (dd.props.at("element") == "memballoon" && FindPciController(0) < 0) {
      add({{"element", "controller"}, {"@type", "pci"}, {"@index", "0"},
           {"@model", cat_.controller(fam_->root).name}});
    }
    add(dd.props);
  }
  if (FindPciController(0) < 0) {
    add({{"element", "controller"}, {"@type", "pci"}, {"@index", "0"},
         {"@model", cat_.controller(fam_->root).name}});
  }
  // Section 2 step 5 / 5.2: <graphics> without any <video> gets one video of the default model
  // (cirrus on x86, virtio on Arm virt). It is the primary video, so on pc/q35 it takes the
  // chipset's video slot.
  if (in_.has_graphics && video_order_.empty()) {
    auto it = fam_->model_defaults.find("video");
    if (it != fam_->model_defaults.end()) {
      video_order_.push_back(AddDevice({{"element", "video"}, {"model/@type", it->second}}));
    }
  }
}

void LibvirtPlanner::ApplyModelDefaults() {
  // Section 5.4: models that decide a device's connection type.
  for (Device& d : devs_) {
    auto def = [&](const std::string& key) -> const std::string* {
      auto it = fam_->model_defaults.find(key);
      return it == fam_->model_defaults.end() ? nullptr : &it->second;
    };
    if (d.tag == "interface" && !d.Has("model/@type") && d.GetOr("@type", "") != "hostdev") {
      if (const std::string* m = def("interface")) d.Set("model/@type", *m);
    } else if (d.tag == "video" && !d.Has("model/@type")) {
      if (const std::string* m = def("video")) d.Set("model/@type", *m);
    } else if (d.tag == "controller" && !d.Has("@model")) {
      if (const std::string* m = def("controller-" + d.GetOr("@type", ""))) d.Set("@model", *m);
    }
  }
}

bool LibvirtPlanner::CheckControllers() {
  // The checks libvirt makes before addressing, in its order: the roots' index (parse), the
  // root model (machine defaults, section 5.1), the expander's machine, the expander's NUMA
  // node, then duplicate indexes. "index too high" and "root with an address" come only after
  // addressing (ValidateControllers).
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    const ControllerModel* m = PciModel(i);
    if (!m) {
      return Fail(Rule::kUnknownModel,
                  "unknown PCI controller model '" + devs_[i].GetOr("@model", "") + "'", i);
    }
    if (m->root && ControllerIndex(i) != 0) {
      return Fail(Rule::kRootIndex, "pci-root and pcie-root controllers should have index 0", i);
    }
  }
  for (int i : ctrl_order_) {
    if (!IsPciController(i) || ControllerIndex(i) != 0) continue;
    const ControllerModel* m = PciModel(i);
    if (m->name != cat_.controller(fam_->root).name) {
      return Fail(Rule::kRootModel,
                  fmt::format("the PCI controller with index='0' must be model='{}' for this "
                              "machine type, but model='{}' was found instead",
                              cat_.controller(fam_->root).name, devs_[i].GetOr("@model", "")), i);
    }
  }
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    const ControllerModel* m = PciModel(i);
    if (!m->machines.empty() &&
        std::find(m->machines.begin(), m->machines.end(), fam_->name) == m->machines.end()) {
      return Fail(Rule::kExpanderMachine, m->machine_error, i);
    }
  }
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    const Device& d = devs_[i];
    if (const std::string* node = d.Get("target/node")) {
      std::optional<uint32_t> n = ParseUnsigned(*node);
      if (!n || static_cast<int>(*n) >= in_.numa_cells) {
        return Fail(Rule::kNumaNode,
                    fmt::format("{} with index {} is configured for a NUMA node ({}) not present "
                                "in the domain's <cpu><numa> array ({})",
                                d.GetOr("@model", ""), ControllerIndex(i), *node, in_.numa_cells),
                    i);
      }
    }
  }
  std::map<std::pair<std::string, int64_t>, int> seen;
  for (int i : ctrl_order_) {
    std::string type = devs_[i].GetOr("@type", "");
    // Uncapped (ControllerIndex() caps), so that two huge indexes are not taken for one.
    std::optional<uint32_t> parsed = ParseDecimal(devs_[i].GetOr("@index", ""));
    int64_t idx = parsed ? static_cast<int64_t>(*parsed) : -1;
    if (type == "usb") continue;  // USB2 companions share an index by design
    auto [it, fresh] = seen.emplace(std::make_pair(type, idx), i);
    if (!fresh) {
      return Fail(Rule::kDuplicateIndex,
                  fmt::format("multiple '{}' controllers with index '{}'", type, idx), i);
    }
  }
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    int idx = ControllerIndex(i);
    if (static_cast<uint32_t>(idx) > kMaxPlannableIndex) {
      // The index as written: ControllerIndex() caps what it returns.
      return Fail(Rule::kIndexTooHigh,
                  fmt::format("PCI controller index {} too high, maximum is {}",
                              devs_[i].GetOr("@index", ""), kMaxControllerIndex),
                  i);
    }
  }
  return true;
}

void LibvirtPlanner::ClassifyAll() {
  for (size_t i = 0; i < devs_.size(); ++i) cls_[i] = cat_.Classify(devs_[i].tag, devs_[i].props);
}

void LibvirtPlanner::PrimeVirtioMmio() {
  // Section 8: on virt, one virtio-mmio address anywhere makes every address-less virtio device
  // virtio-mmio (filesystems and vsock excepted: their classes are not "virtio").
  if (!fam_->virtio_mmio) return;
  bool any = std::any_of(devs_.begin(), devs_.end(), [](const Device& d) {
    return d.address.type == AddressType::kVirtioMmio;
  });
  if (!any) return;
  for (size_t i = 0; i < devs_.size(); ++i) {
    if (cls_[i] && cls_[i]->virtio && devs_[i].address.type == AddressType::kNone) {
      devs_[i].address.type = AddressType::kVirtioMmio;
      devs_[i].address.type_name = "virtio-mmio";
    }
  }
}

// ---------------------------------------------------------------------------------------------
// PCI assignment (section 7)

DeviceNeed LibvirtPlanner::NeedOf(int dev) const {
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
  return need;
}

bool LibvirtPlanner::Validate(const BusTree& tree, const PciAddress& addr, const DeviceNeed& need,
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

std::optional<int> LibvirtPlanner::GrowFor(BusTree& tree, uint32_t bus, const DeviceNeed& need,
                                           int dev) {
  // virDomainPCIAddressSetGrow (section 7.7). Returns the bus the device ends up on.
  int add = static_cast<int>(bus) - tree.size() + 1;
  if (add <= 0) return static_cast<int>(bus);
  std::vector<std::pair<ControllerModelId, BusSetup>> models;
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
    for (int k = 0; k < add; ++k) models.emplace_back(fam_->bridge, BusSetup::kNormal);
    notes_.push_back(Describe(dev) + ": added one more " + cat_.controller(fam_->bridge).name +
                     " to hold it (libvirt 9.0 refuses this domain)");
  } else {
    std::optional<Connect> first = need.kinds.First();
    if (first && *first != Connect::kPcieToPciBridge && IsPciController(dev)) {
      Fail(Rule::kCannotAddController,
           fmt::format("a PCI slot is needed to connect a PCI controller model='{}', but none "
                       "is available, and it cannot be automatically added",
                       devs_[dev].GetOr("@model", "")), dev);
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

bool LibvirtPlanner::ReserveAddr(BusTree& tree, PciAddress addr, const DeviceNeed& need,
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
    return Fail(Rule::kDoubleUse, "attempted double use of PCI address " + addr.ToString(), dev,
                addr.ToString());
  }
  tree.Take(addr, need.aggregate);
  return true;
}

std::optional<PciAddress> LibvirtPlanner::ReserveNext(BusTree& tree, const DeviceNeed& need,
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

bool LibvirtPlanner::CreateSet(BusTree& tree, Pass pass) {
  int max_idx = 0;
  for (int i : ctrl_order_) {
    if (IsPciController(i)) max_idx = std::max(max_idx, ControllerIndex(i));
  }
  tree = BusTree();
  tree.Grow(max_idx + 1);
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    ControllerModelId id = cat_.FindController(devs_[i].GetOr("@model", ""));
    BusSetup setup = devs_[i].GetOr("target/@hotplug", "") == "off" ? BusSetup::kNoHotplug
                                                                     : BusSetup::kNormal;
    tree.SetModel(ControllerIndex(i), id, cat_.controller(id), setup);
  }
  for (int b = 1; b < tree.size(); ++b) {
    if (tree.bus(b).model < 0) {
      tree.SetModel(b, fam_->gap_filler, cat_.controller(fam_->gap_filler), BusSetup::kNormal);
    }
  }
  // Explicit addresses, in libvirt's device iteration order (virDomainDeviceInfoIterateFlags).
  // The order matters when explicit addresses name missing buses: the first device to name a
  // bus decides which controllers the growth adds (section 7.2).
  std::vector<int> order;
  for (const std::string& tag : cat_.collect_order) {
    const std::vector<int>* list = tag == "disk"         ? &disk_order_
                                   : tag == "video"      ? &video_order_
                                   : tag == "controller" ? &ctrl_order_
                                                         : nullptr;
    if (list) {
      order.insert(order.end(), list->begin(), list->end());
      continue;
    }
    for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
      if (devs_[i].tag == tag) order.push_back(i);
    }
  }
  for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
    if (std::find(cat_.collect_order.begin(), cat_.collect_order.end(), devs_[i].tag) ==
        cat_.collect_order.end()) {
      order.push_back(i);
    }
  }
  for (int i : order) {
    if (!devs_[i].address.IsPresentPci()) continue;
    // Forced chipset placements already at their address are reserved by the chipset step.
    bool forced_here = false;
    for (const Placement& p : fam_->placements) {
      if (p.mode == PlacementMode::kForced && p.match.Matches(devs_[i].tag, devs_[i].props)) {
        PciAddress want{0, 0, p.slots.front(), p.function};
        forced_here = devs_[i].address.pci == want;
      }
    }
    if (forced_here) continue;
    if (!ReserveAddr(tree, devs_[i].address.pci, NeedOf(i), From::kConfig, pass, i)) return false;
  }
  return true;
}

bool LibvirtPlanner::ChipsetPlacements(BusTree& tree, Pass pass) {
  // Section 5.3 / 7.3: fixed functions, forced and preferred slots, the primary video.
  for (const ReservedFunction& r : fam_->reserved) {
    PciAddress a{0, 0, r.slot, r.function};
    if (tree.FunctionInUse(a)) {
      // The user took a function the chipset owns.
      int culprit = -1;
      for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
        if (devs_[i].address.IsPresentPci() && devs_[i].address.pci == a) culprit = i;
      }
      return Fail(Rule::kDoubleUse,
                  "attempted double use of PCI address " + a.ToString() + " (reserved for the " +
                      r.what + ")", culprit, a.ToString());
    }
    tree.Take(a, false);
  }
  for (const Placement& p : fam_->placements) {
    if (p.mode == PlacementMode::kPrimaryVideo) {
      if (video_order_.empty()) continue;
      int v = video_order_.front();
      if (!cls_[v] || cls_[v]->connect == ConnectNeed::kNone) continue;
      if (!devs_[v].address.WantsPci()) continue;
      PciAddress a{0, 0, p.slots.front(), p.function};
      if (!Validate(tree, a, NeedOf(v), From::kConfig, v)) return false;
      if (tree.SlotInUse(a)) {
        // Placed normally; in the dry run its address is not kept, so the video step reserves
        // a second slot (section 7.3 quirk).
        std::optional<PciAddress> got = ReserveNext(tree, NeedOf(v), -1, pass, v);
        if (!got) return false;
        if (pass == Pass::kReal) {
          devs_[v].address = Address{};
          devs_[v].address.type = AddressType::kPci;
          devs_[v].address.type_name = "pci";
          devs_[v].address.pci = *got;
        }
      } else {
        tree.Take(a, false);
        devs_[v].address = Address{};
        devs_[v].address.type = AddressType::kPci;
        devs_[v].address.type_name = "pci";
        devs_[v].address.pci = a;
      }
      continue;
    }
    std::vector<int> candidates;
    if (p.match.element == "controller") {
      candidates = ctrl_order_;
    } else {
      for (int i = 0; i < static_cast<int>(devs_.size()); ++i) candidates.push_back(i);
    }
    for (int i : candidates) {
      Device& d = devs_[i];
      if (!p.match.Matches(d.tag, d.props)) continue;
      if (p.mode == PlacementMode::kForced) {
        PciAddress want{0, 0, p.slots.front(), p.function};
        if (d.address.IsPresentPci() && d.address.pci != want) {
          return Fail(Rule::kFixedAddress, p.message, i, d.address.pci.ToString());
        }
        if (d.address.type != AddressType::kNone && d.address.type != AddressType::kPci) continue;
        if (tree.FunctionInUse(want)) {
          return Fail(Rule::kDoubleUse, "attempted double use of PCI address " + want.ToString(),
                      i, want.ToString());
        }
        tree.Take(want, false);
        d.address.type = AddressType::kPci;
        d.address.type_name = "pci";
        d.address.pci = want;
        continue;
      }
      if (p.empty_address ? !d.address.WantsPci() : d.address.type != AddressType::kNone) continue;
      for (uint32_t slot : p.slots) {
        PciAddress a{0, 0, slot, 0};
        if (tree.SlotInUse(a)) continue;
        a.function = p.function;
        tree.Take(a, false);
        d.address = Address{};
        d.address.type = AddressType::kPci;
        d.address.type_name = "pci";
        d.address.pci = a;
        if (p.multifunction) d.address.multifunction = "on";
        break;
      }
    }
  }
  return true;
}

bool LibvirtPlanner::PlaceOne(BusTree& tree, int dev, Pass pass) {
  Device& d = devs_[dev];
  if (!d.address.WantsPci()) return true;
  std::optional<PciAddress> got = ReserveNext(tree, NeedOf(dev), -1, pass, dev);
  if (!got) return false;
  if (pass == Pass::kReal) {
    d.address = Address{};
    d.address.type = AddressType::kPci;
    d.address.type_name = "pci";
    d.address.pci = *got;
  }
  return true;
}

bool LibvirtPlanner::PlaceUsb2Companion(BusTree& tree, int dev, Pass pass) {
  // Section 7.5 step 5: a USB2 set shares one slot, each controller at its own function.
  Device& d = devs_[dev];
  if (!d.address.WantsPci()) return true;
  int function = cls_[dev]->companion_function;
  std::optional<PciAddress> base;
  for (int o : ctrl_order_) {
    if (cls_[o] && cls_[o]->companion_function >= 0 && devs_[o].GetOr("@type", "") == "usb" &&
        devs_[o].GetOr("@index", "") == d.GetOr("@index", "") && devs_[o].address.IsPresentPci()) {
      base = devs_[o].address.pci;
      break;
    }
  }
  PciAddress addr;
  if (base) {
    addr = *base;
    addr.function = static_cast<uint32_t>(function);
    // libvirt reserves the rest of a set like a configured address (PCI on pcie-root is fine).
    if (!ReserveAddr(tree, addr, NeedOf(dev), From::kConfig, pass, dev)) return false;
  } else {
    std::optional<PciAddress> got = ReserveNext(tree, NeedOf(dev), function, pass, dev);
    if (!got) return false;
    if (pass == Pass::kDryRun) return true;
    addr = *got;
  }
  d.address = Address{};
  d.address.type = AddressType::kPci;
  d.address.type_name = "pci";
  d.address.pci = addr;
  if (function == 0) d.address.multifunction = "on";
  return true;
}

bool LibvirtPlanner::AssignDevices(BusTree& tree, Pass pass) {
  for (const std::string& group : cat_.assign_order) {
    std::vector<int> list;
    if (group == "pci-controller" || group == "controller") {
      list = ctrl_order_;
    } else if (group == "disk") {
      list = disk_order_;
    } else if (group == "video") {
      list = video_order_;
    } else {
      for (int i = 0; i < static_cast<int>(devs_.size()); ++i) list.push_back(i);
    }
    for (int i : list) {
      if (!cls_[i] || cls_[i]->group != group) continue;
      if (group == "pci-controller") {
        const ControllerModel* m = PciModel(i);
        if (!m || m->root) continue;
        if (!PlaceOne(tree, i, pass)) return false;
        continue;
      }
      if (cls_[i]->connect == ConnectNeed::kNone) continue;
      if (cls_[i]->companion_function >= 0) {
        if (!PlaceUsb2Companion(tree, i, pass)) return false;
        continue;
      }
      if (!PlaceOne(tree, i, pass)) return false;
    }
  }
  return true;
}

bool LibvirtPlanner::AssignPci() {
  int max_idx = 0;
  for (int i : ctrl_order_) {
    if (IsPciController(i)) max_idx = std::max(max_idx, ControllerIndex(i));
  }

  // Pass 1: a dry run that only counts the buses needed (section 7.1).
  BusTree tree;
  if (!CreateSet(tree, Pass::kDryRun)) return false;
  if (!ChipsetPlacements(tree, Pass::kDryRun)) return false;
  if (fam_->dry_run_reserve) {
    bool all_full = true;
    for (int b = 0; b < tree.size(); ++b) {
      if (!tree.bus(b).FullyReserved()) all_full = false;
    }
    if (!all_full) {
      DeviceNeed dummy;
      dummy.kinds.Add(*fam_->dry_run_reserve);
      if (!ReserveNext(tree, dummy, -1, Pass::kDryRun, -1)) return false;
    }
  }
  if (!AssignDevices(tree, Pass::kDryRun)) return false;
  if (fam_->spare_port && max_idx <= 0 && tree.size() > max_idx + 1) {
    // Section 7.8: one spare hot-plug port.
    DeviceNeed spare;
    spare.kinds.Add(Connect::kPcie);
    spare.autoassign = true;
    if (!ReserveNext(tree, spare, -1, Pass::kDryRun, -1)) return false;
    notes_.push_back("added a spare hot-pluggable root port (libvirt's default)");
  }
  std::set<int> pci_indexes;
  for (int i : ctrl_order_) {
    if (IsPciController(i)) pci_indexes.insert(ControllerIndex(i));
  }
  for (int b = 1; b < tree.size(); ++b) {
    if (pci_indexes.count(b)) continue;
    int c = AddDevice({{"element", "controller"}, {"@type", "pci"}, {"@index", std::to_string(b)},
                       {"@model", cat_.controller(tree.bus(b).model).name}});
    ctrl_order_.push_back(c);
    cls_[c] = cat_.Classify(devs_[c].tag, devs_[c].props);
    if (!ReserveNext(tree, NeedOf(c), -1, Pass::kDryRun, c)) return false;
  }

  // Pass 2: the real assignment on the complete controller list.
  if (!CreateSet(tree, Pass::kReal)) return false;
  if (!ChipsetPlacements(tree, Pass::kReal)) return false;
  return AssignDevices(tree, Pass::kReal);
}

void LibvirtPlanner::SetMultifunction() {
  // Section 7.11.
  std::map<std::tuple<uint32_t, uint32_t, uint32_t>, int> fn0;
  for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
    const Address& a = devs_[i].address;
    if (a.type == AddressType::kPci && a.pci.function == 0) {
      fn0[{a.pci.domain, a.pci.bus, a.pci.slot}] = i;
    }
  }
  for (const Device& d : devs_) {
    const Address& a = d.address;
    if (a.type != AddressType::kPci || a.pci.function == 0 || a.pci.IsUnassigned()) continue;
    auto it = fn0.find({a.pci.domain, a.pci.bus, a.pci.slot});
    if (it == fn0.end()) continue;
    Address& base = devs_[it->second].address;
    if (base.multifunction.empty()) base.multifunction = "on";
  }
}

bool LibvirtPlanner::FillControllerDefaults() {
  // Section 6.4 and 6.5.
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    const ControllerModel* m = PciModel(i);
    Device& d = devs_[i];
    if (!m->qemu.empty() && !d.Has("model/@name")) d.Set("model/@name", m->qemu);
    for (const auto& [attr, rule] : m->target) {
      std::string path = "target/@" + attr;
      if (d.Has(path)) continue;
      const PciAddress& a = d.address.pci;
      if (rule == "index") {
        d.Set(path, std::to_string(ControllerIndex(i)));
      } else if (rule == "slot-function") {
        d.Set(path, fmt::format("0x{:x}", a.slot * 8 + a.function));
      } else if (rule == "slot") {
        d.Set(path, fmt::format("0x{:x}", a.slot));
      } else if (rule == "auto") {
        uint32_t lowest = 256;
        for (int o : ctrl_order_) {
          if (!IsPciController(o)) continue;
          const ControllerModel* om = PciModel(o);
          if (!om || !om->target.count("busNr")) continue;
          if (const std::string* v = devs_[o].Get("target/@busNr")) {
            if (auto n = ParseUnsigned(*v)) lowest = std::min(lowest, *n);
          }
        }
        if (lowest <= 2) {
          return Fail(Rule::kNoFreeBusNr,
                      fmt::format("no free busNr lower than current lowest busNr is available to "
                                  "auto-assign to bus {}; it must be set by hand", a.bus), i);
        }
        d.Set(path, std::to_string(lowest - 2));
      }
    }
    // Same loop in libvirt (qemuDomainAssignPCIAddresses), so still part of addressing and
    // before any validation: every pci-bridge's index must be above its bus.
    if (m->index_above_bus && d.address.type == AddressType::kPci &&
        static_cast<uint32_t>(ControllerIndex(i)) <= d.address.pci.bus) {
      return Fail(Rule::kIndexNotAboveBus,
                  fmt::format("PCI controller at index {} (0x{:02x}) has bus='0x{:02x}', but index "
                              "must be larger than bus", ControllerIndex(i), ControllerIndex(i),
                              d.address.pci.bus),
                  i, d.address.pci.ToString());
    }
  }
  return true;
}

bool LibvirtPlanner::ValidateVideos() {
  // qemuValidateDomainDeviceDefVideo / virDomainDefVideoValidate: some models may only be the
  // primary video, and 'none' must be the only one.
  for (size_t k = 0; k < video_order_.size(); ++k) {
    int v = video_order_[k];
    std::string role = cls_[v] ? cls_[v]->video_role : std::string();
    std::string type = devs_[v].GetOr("model/@type", "");
    if (role == "alone" && video_order_.size() > 1) {
      return Fail(Rule::kUnsupported,
                  fmt::format("a '{}' video type must be the only video device defined for the "
                              "domain", type), v);
    }
    if (k > 0 && role != "any") {
      return Fail(Rule::kVideoPrimaryOnly,
                  fmt::format("video type '{}' is only valid as primary video device", type), v);
    }
  }
  return true;
}

bool LibvirtPlanner::ValidateControllers() {
  // virDomainControllerDefValidate, after addressing.
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    const Device& d = devs_[i];
    const ControllerModel* pm = PciModel(i);
    if (pm && pm->root && d.address.type != AddressType::kNone) {
      return Fail(Rule::kRootAddress, "pci-root and pcie-root controllers should not have an address", i);
    }
    if (static_cast<uint32_t>(ControllerIndex(i)) > kMaxControllerIndex) {
      return Fail(Rule::kIndexTooHigh,
                  fmt::format("PCI controller index {} too high, maximum is {}",
                              ControllerIndex(i), kMaxControllerIndex), i);
    }
    struct RangeCheck {
      const char* attr;
      uint32_t lo, hi;
      Rule rule;
    };
    static const RangeCheck kChecks[] = {{"chassis", 0, 255, Rule::kChassisRange},
                                         {"port", 0, 255, Rule::kPortRange},
                                         {"chassisNr", 1, 255, Rule::kChassisNrRange},
                                         {"busNr", 1, 254, Rule::kBusNrRange}};
    for (const RangeCheck& c : kChecks) {
      const std::string* v = d.Get(std::string("target/@") + c.attr);
      if (!v) continue;
      std::optional<uint32_t> n = ParseUnsigned(*v);
      if (!n || *n < c.lo || *n > c.hi) {
        return Fail(c.rule, fmt::format("PCI controller {} '{}' out of range - must be {}-{}",
                                        c.attr, *v, c.lo, c.hi), i);
      }
    }
  }
  return true;
}

Result<Plan> LibvirtPlanner::Run() {
  devs_ = in_.devices;
  cls_.assign(devs_.size(), nullptr);
  if (!FindFamily()) return errs_;
  BuildListOrders();
  NonPciContext ctx{cat_, *fam_, in_, devs_, ctrl_order_, disk_order_};
  bool ok = AssignControllerIndexes() && CheckUsbControllers(ctx, errs_);
  if (ok) {
    AddMachineDefaults();
    ApplyModelDefaults();
    ok = AssignDriveAddresses(ctx, errs_) && AddImplicitControllers(ctx, errs_) &&
         CheckControllers() && AssignVirtioSerial(ctx, errs_);
  }
  if (ok) {
    cls_.resize(devs_.size(), nullptr);
    ClassifyAll();
    PrimeVirtioMmio();
    ok = AssignPci();
  }
  if (ok) {
    SetMultifunction();
    ok = FillControllerDefaults() && AssignUsbPorts(ctx, errs_) &&
         ValidateDiskDrives(ctx, errs_) && ValidateVideos() && ValidateControllers() &&
         ValidateIdeAndDuplicates(ctx, errs_);
  }
  if (!ok) return errs_;
  Plan plan;
  plan.family = fam_;
  auto canon = fam_->canonical_names.find(in_.machine);
  plan.machine = canon != fam_->canonical_names.end() ? canon->second : in_.machine;
  plan.devices = std::move(devs_);
  plan.notes = std::move(notes_);
  return plan;
}

}  // namespace

Result<Plan> PlanLibvirt(const Domain& domain, const Catalog& catalog) {
  return LibvirtPlanner(domain, catalog).Run();
}

}  // namespace pciplan
