#include "pciplan/plan/qemu_rules.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <iterator>
#include <map>
#include <memory_resource>
#include <set>
#include <string_view>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/prop_scan.h"

namespace pciplan {
namespace {

/// A target attribute that QEMU takes once among the controllers whose models have it.
struct UniqueTarget {
  const char* attr;
  std::string_view path;  // where the domain has it
  Rule rule;
  const char* why;
  const char* hint;
};

// QEMU 7.2 hw/pci/pcie_port.c pcie_chassis_add_slot(): a (chassis, slot) pair is taken once.
// The slot is QEMU's `slot` property, which libvirt never sets, so the chassis alone decides.
// hw/pci-bridge/pci_expander_bridge.c pxb_register_bus(): "Bus N is already in use".
// hw/ppc/spapr_pci.c spapr_phb_realize(): "PHB N already attached".
constexpr UniqueTarget kUniqueTargets[] = {
    {"chassis", "target/@chassis", Rule::kChassisClash,
     "QEMU gives every root port and switch downstream port a chassis of its own",
     "give it a chassis no other port uses, or none"},
    {"busNr", "target/@busNr", Rule::kBusNrClash,
     "QEMU gives every expander bus a bus number of its own",
     "give it a busNr no other expander bus uses, or none"},
    {"index", "target/@index", Rule::kTargetIndexClash,
     "QEMU attaches every spapr PHB under a target index of its own ('PHB N already attached')",
     "give it a target index no other PHB uses, or none"},
};
constexpr size_t kUniqueCount = std::size(kUniqueTargets);

struct PciController {
  size_t device = 0;
  uint32_t index = 0;
  const ControllerModel* model = nullptr;
  std::array<bool, kUniqueCount> has_target{};  // whether the model has each kUniqueTargets
  // The device's value of each kUniqueTargets, or nullptr.
  std::array<const std::string*, kUniqueCount> target{};
};

/// The properties of a controller the checks read, found in one walk over its list (a
/// controller has a handful; each is told apart by its length first).
struct ControllerProps {
  const std::string* type = nullptr;
  const std::string* model = nullptr;
  const std::string* index = nullptr;
  std::array<const std::string*, kUniqueCount> target{};
};

ControllerProps ReadControllerProps(const Props& props) {
  ControllerProps out;
  for (const auto& [path, value] : props) {
    if (SameText(path, "@type")) {
      out.type = &value;
    } else if (SameText(path, "@model")) {
      out.model = &value;
    } else if (SameText(path, "@index")) {
      out.index = &value;
    } else {
      for (size_t k = 0; k < kUniqueCount; ++k) {
        if (SameText(path, kUniqueTargets[k].path)) out.target[k] = &value;
      }
    }
  }
  return out;
}

/// Whether `model` has each kUniqueTargets.
std::array<bool, kUniqueCount> HasTargets(const ControllerModel& model) {
  std::array<bool, kUniqueCount> has{};
  for (const auto& [attr, value] : model.target) {
    (void)value;
    for (size_t k = 0; k < kUniqueCount; ++k) {
      has[k] = has[k] || SameText(attr, kUniqueTargets[k].attr);
    }
  }
  return has;
}

/// The plan's PCI controllers, in device order, in memory from `arena`; what `known` knows is
/// not looked up again.
std::pmr::vector<PciController> PciControllers(const std::vector<Device>& devices,
                                               const Catalog& catalog, const MachineFamily& family,
                                               const KnownControllers& known,
                                               std::pmr::memory_resource* arena) {
  std::pmr::vector<PciController> out(arena);
  // Only a controller with one of kUniqueTargets needs its model (whether the model has it):
  // every PCI controller's model is a known one by now (the pipeline refuses the others before
  // addressing). A plan's controllers share a few models: each run of one model is looked up
  // once.
  const std::string no_model;
  const std::string* last_name = nullptr;
  PciController last;
  ControllerModelId m = -1;
  for (size_t i = 0; i < devices.size(); ++i) {
    const Device& d = devices[i];
    if (!SameText(d.tag, "controller")) continue;
    const ControllerProps props = ReadControllerProps(d.props);
    if (!props.type || !SameText(*props.type, "pci")) continue;
    const std::string* name = props.model ? props.model : &no_model;
    const bool targets = std::any_of(props.target.begin(), props.target.end(),
                                     [](const std::string* t) { return t != nullptr; });
    if (targets && i < known.models.size() && known.models[i] != -2) {
      if (known.models[i] != m && known.models[i] >= 0) {
        last.model = &catalog.controller(known.models[i]);
        last.has_target = HasTargets(*last.model);
      }
      m = known.models[i];
      last_name = nullptr;  // the next controller's name is not that of the last looked up
    } else if (targets && (!last_name || !SameText(*name, *last_name))) {
      last_name = name;
      m = catalog.FindController(*name, family.name);
      if (m >= 0) {
        last.model = &catalog.controller(m);
        last.has_target = HasTargets(*last.model);
      }
    }
    std::optional<uint32_t> index;
    if (i < known.indexes.size() && known.indexes[i] != -2) {
      if (known.indexes[i] >= 0) index = static_cast<uint32_t>(known.indexes[i]);
    } else if (props.index) {
      index = ParseDecimal(*props.index);
    }
    if ((targets && m < 0) || !index) continue;
    last.device = i;
    last.index = *index;
    last.target = props.target;
    if (out.empty()) out.reserve(8);  // most plans have a few: one allocation
    out.push_back(last);
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

void CheckUnique(const std::vector<Device>& devices, const std::pmr::vector<PciController>& ctrls,
                 size_t k, Diagnostics& out) {
  // A clash needs two controllers with the value (most plans set no busNr and no target
  // index): fewer, no table.
  if (std::count_if(ctrls.begin(), ctrls.end(), [k](const PciController& c) {
        return c.has_target[k] && c.target[k];
      }) < 2) {
    return;
  }
  const UniqueTarget& u = kUniqueTargets[k];
  auto value_of = [&](const PciController& c) {
    const std::string* text = c.target[k];
    return ParseUnsigned(text ? std::string_view(*text) : std::string_view());
  };
  // Values below 256 (all that validation lets through) taken: a bit each; the holder of a
  // value taken twice is looked up again (an error, so rare). Others: value -> device.
  std::bitset<256> small;
  std::map<uint32_t, size_t> taken;
  for (size_t at = 0; at < ctrls.size(); ++at) {
    const PciController& c = ctrls[at];
    if (!c.has_target[k]) continue;
    std::optional<uint32_t> v = value_of(c);
    if (!v) continue;
    size_t holder = 0;
    if (*v < 256) {
      if (!small[*v]) {
        small[*v] = true;
        continue;
      }
      for (size_t first = 0; first < at; ++first) {
        if (ctrls[first].has_target[k] && value_of(ctrls[first]) == v) {
          holder = ctrls[first].device;
          break;
        }
      }
    } else {
      auto [it, fresh] = taken.emplace(*v, c.device);
      if (fresh) continue;
      holder = it->second;
    }
    out.push_back(At(u.rule,
                     fmt::format("{} {} is already taken by {}; {}",
                                 u.attr == std::string_view("index") ? "target index" : u.attr, *v,
                                 DeviceRef::DescribeAt(devices, holder), u.why),
                     devices, c.device, u.hint));
  }
}

// QEMU creates the -device objects in command-line order and a controller only on a bus that
// exists by then: a loop of controllers, each plugged into the next, can never be created.
void CheckCycles(const std::vector<Device>& devices,
                 const std::pmr::vector<PciController>& ctrls, Diagnostics& out) {
  // A loop passes through controllers that have PCI addresses: none, no loop.
  if (std::none_of(ctrls.begin(), ctrls.end(), [&](const PciController& c) {
        return devices[c.device].address.type == AddressType::kPci;
      })) {
    return;
  }
  // Controllers by index, the first of an index first (lookup by binary search): the
  // controllers themselves when they come in that order (a plan's usually do), else pointers
  // to them, sorted.
  auto by_index_less = [](const PciController* x, const PciController* y) {
    return x->index < y->index;
  };
  const bool in_order = std::is_sorted(
      ctrls.begin(), ctrls.end(),
      [](const PciController& x, const PciController& y) { return x.index < y.index; });
  std::pmr::vector<const PciController*> by_index(ctrls.get_allocator());
  if (!in_order) {
    by_index.reserve(ctrls.size());
    for (const PciController& c : ctrls) by_index.push_back(&c);
    std::stable_sort(by_index.begin(), by_index.end(), by_index_less);
  }
  auto find = [&](uint32_t index) -> const PciController* {
    if (in_order) {
      auto it = std::lower_bound(ctrls.begin(), ctrls.end(), index,
                                 [](const PciController& c, uint32_t i) { return c.index < i; });
      return it != ctrls.end() && it->index == index ? &*it : nullptr;
    }
    auto it = std::lower_bound(by_index.begin(), by_index.end(), index,
                               [](const PciController* c, uint32_t i) { return c->index < i; });
    return it != by_index.end() && (*it)->index == index ? *it : nullptr;
  };
  // Follows the buses up from `c` to where the walk stops (the controller plugged into c's bus
  // when c is in a loop), recording the indexes passed in `path` when given.
  auto walk = [&](const PciController& c, std::vector<uint32_t>* path) {
    size_t steps = 1;
    if (path) path->push_back(c.index);
    const PciController* at = &c;
    while (devices[at->device].address.type == AddressType::kPci) {
      const PciController* parent = find(devices[at->device].address.pci.bus);
      if (!parent || parent->index == c.index) break;
      if (steps > ctrls.size()) break;  // a loop that does not pass through `c`
      at = parent;
      ++steps;
      if (path) path->push_back(at->index);
    }
    return at;
  };
  std::set<uint32_t> reported;
  for (const PciController& c : ctrls) {
    const Address& a = devices[walk(c, nullptr)->device].address;
    if (a.type != AddressType::kPci || a.pci.bus != c.index || reported.count(c.index)) continue;
    std::vector<uint32_t> path;
    walk(c, &path);
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
                           const MachineFamily& family, const KnownControllers& known) {
  // Most plans have a few PCI controllers: their lists live on the stack.
  std::array<std::byte, 1024> buffer;
  std::pmr::monotonic_buffer_resource arena(buffer.data(), buffer.size());
  const std::pmr::vector<PciController> ctrls =
      PciControllers(devices, catalog, family, known, &arena);
  Diagnostics out;
  CheckCycles(devices, ctrls, out);
  for (size_t k = 0; k < kUniqueCount; ++k) CheckUnique(devices, ctrls, k, out);
  CheckMmioTransports(devices, catalog, family, out);
  return out;
}

}  // namespace pciplan
