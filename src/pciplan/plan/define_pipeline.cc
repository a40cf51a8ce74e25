#include "pciplan/plan/define_pipeline.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

#include <fmt/format.h>

#include "pciplan/base/numbers.h"
#include "pciplan/domain/domain_reader.h"
#include "pciplan/plan/nonpci.h"
#include "pciplan/plan/prop_scan.h"
#include "pciplan/plan/qemu_rules.h"

namespace pciplan {

bool DefinePipeline::Fail(Rule rule, std::string message, int dev, std::string address) {
  Diagnostic d = Error(rule, std::move(message), dev >= 0 ? Describe(dev) : std::string(),
                       std::move(address));
  if (dev >= 0) d.line = devs_[dev].line;
  errs_.push_back(std::move(d));
  return false;
}

std::string DefinePipeline::Describe(int dev) const {
  int ordinal = 0;
  for (int i = 0; i < dev; ++i) {
    if (devs_[i].tag == devs_[dev].tag) ++ordinal;
  }
  return DeviceRef::Describe(devs_[dev], ordinal);
}

int DefinePipeline::ParseIndex(int dev) const {
  if (index_cache_.size() < devs_.size()) index_cache_.resize(devs_.size(), -2);
  int& cached = index_cache_[dev];
  if (cached != -2) return cached;
  const std::string* idx = devs_[dev].Get("@index");
  std::optional<uint32_t> v = idx ? ParseDecimal(*idx) : std::nullopt;
  cached = v ? static_cast<int>(std::min<uint32_t>(*v, 1u << 30)) : -1;
  return cached;
}

bool DefinePipeline::LookUpPciController(int dev) const {
  if (pci_ctrl_.size() <= static_cast<size_t>(dev)) pci_ctrl_.resize(devs_.size(), -1);
  signed char& known = pci_ctrl_[dev];
  if (known < 0) {
    known = devs_[dev].tag == std::string_view("controller") &&
            ScanIs(devs_[dev].props, "@type", "pci");
  }
  return known != 0;
}

ControllerModelId DefinePipeline::LookUpModel(int dev) const {
  const std::string* model = ScanProp(devs_[dev].props, "@model");
  const std::string_view name = model ? std::string_view(*model) : std::string_view();
  if (last_model_id_ == -2 || !SameText(name, last_model_name_)) {
    last_model_name_.assign(name);
    last_model_id_ = cat_.FindController(last_model_name_, fam_->name);
  }
  return last_model_id_;
}

const ControllerModel* DefinePipeline::FindPciModel(int dev) const {
  ControllerModelId id;
  if (models_final_) {
    if (model_cache_.size() <= static_cast<size_t>(dev)) model_cache_.resize(devs_.size(), -2);
    ControllerModelId& cached = model_cache_[dev];
    if (cached == -2) cached = LookUpModel(dev);
    id = cached;
  } else {
    id = LookUpModel(dev);
  }
  return id < 0 ? nullptr : &cat_.controller(id);
}

int DefinePipeline::FindPciController(int index) const {
  for (int i : ctrl_order_) {
    if (IsPciController(i) && ControllerIndex(i) == index) return i;
  }
  return -1;
}

int DefinePipeline::AddDevice(Props props) {
  Device d;
  d.tag = props["element"];
  props.erase("element");
  d.props = std::move(props);
  d.origin = Origin::kPlanner;
  devs_.push_back(std::move(d));
  cls_.push_back(nullptr);
  return static_cast<int>(devs_.size()) - 1;
}

void DefinePipeline::SetPciAddress(Address& a, const PciAddress& pci) {
  // What `a = Address{}` and setting type, type name and address leave, in place.
  a.type = AddressType::kPci;
  a.type_name.assign("pci");
  a.pci = pci;
  a.multifunction.clear();
  a.attrs.clear();
}

int DefinePipeline::AddPciController(uint32_t index, const std::string& model) {
  Device& d = devs_.emplace_back();
  d.tag = "controller";
  d.origin = Origin::kPlanner;
  // Room for the defaults FillControllerDefaults adds. The props of the controller added last
  // are copied when it has this model (only the index differs), else built in order.
  d.props.reserve(6);
  const Props* last = last_added_ >= 0 ? &devs_[last_added_].props : nullptr;
  auto is = [&](size_t k, std::string_view key, std::string_view value) {
    const auto& [path, v] = *(last->begin() + static_cast<std::ptrdiff_t>(k));
    return SameText(path, key) && (value.empty() || SameText(v, value));
  };
  if (last && last->size() == 3 && is(0, "@index", "") && is(1, "@model", model) &&
      is(2, "@type", "pci")) {
    d.props = *last;
    d.props.begin()->second = std::to_string(index);  // "@index" sorts first
  } else {
    d.props.emplace(std::string_view("@index"), std::to_string(index));
    d.props.emplace(std::string_view("@model"), model);
    d.props.emplace(std::string_view("@type"), std::string_view("pci"));
  }
  last_added_ = static_cast<int>(devs_.size()) - 1;
  cls_.push_back(nullptr);
  int c = static_cast<int>(devs_.size()) - 1;
  if (index_cache_.size() < devs_.size()) index_cache_.resize(devs_.size(), -2);
  index_cache_[c] = static_cast<int>(std::min<uint32_t>(index, 1u << 30));
  if (pci_ctrl_.size() < devs_.size()) pci_ctrl_.resize(devs_.size(), -1);
  pci_ctrl_[c] = 1;
  if (added_.size() < devs_.size()) added_.resize(devs_.size(), 0);
  added_[static_cast<size_t>(c)] = 1;
  ctrl_order_.push_back(c);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Preparation

bool DefinePipeline::FindFamily() {
  fam_ = cat_.FindMachine(in_.arch, in_.machine);
  if (fam_) return true;
  std::string known;
  for (const MachineFamily& m : cat_.machines) {
    if (!known.empty()) known += ", ";
    known += m.name;
  }
  Diagnostic d = Error(
      Rule::kUnknownMachine,
      in_.machine.empty()
          ? fmt::format("<type> has no machine attribute and pciplan knows no default machine "
                        "type for architecture '{}' (it knows the families {})",
                        in_.arch, known)
          : fmt::format("unknown machine type '{}' for architecture '{}' (pciplan knows the "
                        "families {})",
                        in_.machine, in_.arch, known));
  if (in_.os_type_offset != std::string::npos) d.line = LineOf(in_.text, in_.os_type_offset);
  errs_.push_back(std::move(d));
  return false;
}

void DefinePipeline::BuildListOrders() {
  // Disks: libvirt inserts each one (virDomainDiskInsert) before the first disk of its bus with
  // a higher name index, else after the last disk of its bus, else at the end. That makes
  // groups by bus in order of first appearance, each stably sorted by name index.
  // Per bus in order of first appearance (a domain has few): (name index, dev) of its disks.
  std::vector<std::pair<std::string_view, std::vector<std::pair<int, int>>>> by_bus;
  // Of each controller placed so far (by device): its type, and whether it has an index. Read
  // once, not again by every later controller's scan.
  std::pmr::vector<std::string_view> ctrl_type(devs_.size(), std::string_view(), &arena_);
  std::pmr::vector<char> ctrl_has_index(devs_.size(), 0, &arena_);
  for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
    const Device& d = devs_[i];
    if (d.tag == std::string_view("disk")) {
      const std::string* bus = ScanProp(d.props, "target/@bus");
      const std::string* dev = ScanProp(d.props, "target/@dev");
      std::string_view name = bus ? std::string_view(*bus) : std::string_view();
      auto it = std::find_if(by_bus.begin(), by_bus.end(),
                             [&](const auto& group) { return group.first == name; });
      if (it == by_bus.end()) {
        it = by_bus.emplace(by_bus.end(), name, std::vector<std::pair<int, int>>());
      }
      it->second.emplace_back(dev ? DiskNameIndex(*dev) : DiskNameIndex(std::string()), i);
    } else if (d.tag == std::string_view("controller")) {
      // Section 6.1: same-type controllers only; explicit indexes ascend.
      const std::string* type_attr = d.Get("@type");
      ctrl_type[i] = type_attr ? std::string_view(*type_attr) : std::string_view();
      const std::string_view type = ctrl_type[i];
      int index = ControllerIndex(i);
      bool has_index = d.Has("@index");
      ctrl_has_index[i] = has_index;
      int pos = -1;
      bool any_same = false;
      for (int k = static_cast<int>(ctrl_order_.size()) - 1; k >= 0; --k) {
        int o = ctrl_order_[k];
        if (ctrl_type[o] != type) continue;
        any_same = true;
        if (!has_index) {
          pos = k + 1;
          break;
        }
        if (ctrl_has_index[o] && ControllerIndex(o) > index) {
          pos = k;
        } else if (pos == -1) {
          pos = k + 1;
        }
      }
      if (!any_same || pos < 0) pos = static_cast<int>(ctrl_order_.size());
      ctrl_order_.insert(ctrl_order_.begin() + pos, i);
    } else if (d.tag == std::string_view("video")) {
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
  for (auto& [bus, group] : by_bus) {
    std::stable_sort(group.begin(), group.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    for (const auto& [idx, dev] : group) disk_order_.push_back(dev);
  }
}

bool DefinePipeline::AssignControllerIndexes() {
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

void DefinePipeline::AddMachineDefaults() {
  // Section 5.2, in libvirt's order; added controllers are appended to the list.
  // virDomainDefAddConsoleCompat: a first console without a target type is a serial console,
  // and with no serial port libvirt makes serial port 0 from it (the console then mirrors it).
  // With serial ports and no console, the console is a copy of serial port 0.
  int console = -1, serial = -1;
  for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
    if (console < 0 && devs_[i].tag == std::string_view("console")) console = i;
    if (serial < 0 && devs_[i].tag == std::string_view("serial")) serial = i;
  }
  bool serials = serial >= 0;
  if (console < 0 && serials) {
    Props props;
    props["element"] = "console";
    if (const std::string* type = devs_[serial].Get("@type")) props["@type"] = *type;
    props["target/@type"] = "serial";
    console = AddDevice(std::move(props));
  }
  if (console >= 0 && !devs_[console].Has("target/@type")) {
    devs_[console].Set("target/@type", "serial");
  }
  if (console >= 0 && !serials && devs_[console].Is("target/@type", "serial")) {
    Props props = devs_[console].props;
    props.erase("target/@type");
    props["element"] = "serial";
    AddDevice(std::move(props));
  }
  for (const DefaultDevice& dd : fam_->default_devices) {
    if (dd.with_graphics && !in_.has_graphics) continue;
    bool present = false;
    for (size_t i = 0; i < devs_.size() && !present; ++i) {
      if (!dd.unless.element.empty() && devs_[i].tag != dd.unless.element) continue;
      present = dd.unless.Matches(devs_[i].tag, devs_[i].props);
    }
    if (present) continue;
    // The PCI root comes before the memballoon (qemuDomainDefAddDefaultDevices).
    if (SameText(dd.element, "memballoon") && FindPciController(0) < 0) {
      AddPciController(0, cat_.controller(fam_->root).name);
    }
    Device& d = devs_.emplace_back();
    d.origin = Origin::kPlanner;
    d.tag = dd.element;
    d.props = dd.props;
    cls_.push_back(nullptr);
    defaults_added_.emplace_back(static_cast<int>(devs_.size()) - 1, &dd);
    if (d.tag == std::string_view("controller")) {
      ctrl_order_.push_back(static_cast<int>(devs_.size()) - 1);
    }
  }
  if (FindPciController(0) < 0) AddPciController(0, cat_.controller(fam_->root).name);
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

void DefinePipeline::ApplyModelDefaults() {
  // Section 5.4: models that decide a device's connection type.
  std::string key;  // one buffer for every default's name
  // `kind`, or "kind-type" when a type is given (the device's, or "" when it has none).
  auto def = [&](std::string_view kind, const std::string* type,
                 bool typed = true) -> const std::string* {
    key.assign(kind);
    if (typed) key.append("-").append(type ? std::string_view(*type) : std::string_view());
    auto it = fam_->model_defaults.find(key);
    return it == fam_->model_defaults.end() ? nullptr : &it->second;
  };
  for (Device& d : devs_) {
    if (d.tag == std::string_view("interface") && !d.Has("model/@type") &&
        !d.Is("@type", "hostdev")) {
      // A per-type default first (qemuDomainDeviceNetDefPostParse: vdpa is virtio).
      const std::string* type = d.Get("@type");
      const std::string* m = def("interface", type);
      if (!m) m = def("interface", nullptr, false);
      if (m) d.Set("model/@type", *m);
    } else if (d.tag == std::string_view("video") && !d.Has("model/@type")) {
      if (const std::string* m = def("video", nullptr, false)) d.Set("model/@type", *m);
    } else if (d.tag == std::string_view("controller") && !d.Has("@model")) {
      const std::string* type = d.Get("@type");
      if (const std::string* m = def("controller", type)) d.Set("@model", *m);
    } else if (d.tag == std::string_view("serial") && !d.Has("target/@type")) {
      // The machine's serial port kind (pseries: spapr-vio-serial, which takes a spapr-vio reg).
      if (const std::string* t = def("serial-target", nullptr, false)) d.Set("target/@type", *t);
    }
  }
}

bool DefinePipeline::CheckModelNames() {
  // libvirt's parser knows a fixed set of PCI controller model names (the names any model of
  // the catalogue takes) and refuses any other, before anything else is looked at.
  for (size_t i = 0; i < devs_.size(); ++i) {
    const Device& d = devs_[i];
    if (!SameText(d.tag, "controller") || !ScanIs(d.props, "@type", "pci")) continue;
    const std::string* name = ScanProp(d.props, "model/@name");
    if (!name) continue;
    const bool known =
        std::any_of(cat_.controllers.begin(), cat_.controllers.end(),
                    [&](const ControllerModel& m) { return m.TakesModelName(*name); });
    if (!known) {
      return Fail(Rule::kModelName,
                  fmt::format("invalid value for attribute 'name' in element 'model': '{}'",
                              *name),
                  static_cast<int>(i));
    }
  }
  return true;
}

bool DefinePipeline::CheckControllers() {
  // The checks libvirt makes before addressing, in its order: the roots' index (parse), the
  // root model (machine defaults, section 5.1), the expander's machine, the expander's NUMA
  // node, then duplicate indexes. "index too high" and "root with an address" come only after
  // addressing (ValidateControllers).
  // The PCI controllers in list order with their models, looked up once for every check.
  struct PciController {
    int dev;
    const ControllerModel* model;
  };
  std::pmr::vector<PciController> pci(&arena_);
  pci.reserve(ctrl_order_.size());
  for (int i : ctrl_order_) {
    if (IsPciController(i)) pci.push_back({i, PciModel(i)});
  }
  for (const auto& [i, m] : pci) {
    if (!m) {
      return Fail(Rule::kUnknownModel,
                  "unknown PCI controller model '" + devs_[i].GetOr("@model", "") + "'", i);
    }
    if (m->root && ControllerIndex(i) != 0 && !m->extra_roots) {
      return Fail(Rule::kRootIndex, "pci-root and pcie-root controllers should have index 0", i);
    }
  }
  const std::string& root = cat_.controller(fam_->root).name;
  for (const auto& [i, m] : pci) {
    if (ControllerIndex(i) != 0 || SameText(m->name, root)) continue;
    return Fail(Rule::kRootModel,
                fmt::format("the PCI controller with index='0' must be model='{}' for this "
                            "machine type, but model='{}' was found instead",
                            root, devs_[i].GetOr("@model", "")), i);
  }
  for (const auto& [i, m] : pci) {
    if (!m->machines.empty() &&
        std::find(m->machines.begin(), m->machines.end(), fam_->name) == m->machines.end()) {
      return Fail(Rule::kExpanderMachine, m->machine_error, i);
    }
  }
  for (const auto& [i, m] : pci) {
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
  // Duplicate (type, index) pairs: the first controller in list order whose pair an earlier
  // one has is refused. Sorted by pair and position, each run of one pair starts with its first.
  struct TypeIndex {
    std::string_view type;
    int64_t index;
    size_t pos;  // in ctrl_order_
  };
  std::pmr::vector<TypeIndex> pairs(&arena_);
  pairs.reserve(ctrl_order_.size());
  for (size_t pos = 0; pos < ctrl_order_.size(); ++pos) {
    const Device& d = devs_[ctrl_order_[pos]];
    const std::string* type_attr = ScanProp(d.props, "@type");
    const std::string_view type = type_attr ? std::string_view(*type_attr) : std::string_view();
    if (type == "usb") continue;  // USB2 companions share an index by design
    // Uncapped (ControllerIndex() caps), so that two huge indexes are not taken for one.
    const std::string* index = ScanProp(d.props, "@index");
    std::optional<uint32_t> parsed = ParseDecimal(index ? std::string_view(*index) : "");
    pairs.push_back({type, parsed ? static_cast<int64_t>(*parsed) : -1, pos});
  }
  // By pair, then list position (unique): what a stable sort by pair gives, with no buffer.
  std::sort(pairs.begin(), pairs.end(), [](const TypeIndex& x, const TypeIndex& y) {
    return std::tie(x.type, x.index, x.pos) < std::tie(y.type, y.index, y.pos);
  });
  const TypeIndex* duplicate = nullptr;
  for (size_t k = 1; k < pairs.size(); ++k) {
    const TypeIndex& a = pairs[k - 1];
    const TypeIndex& b = pairs[k];
    if (a.type != b.type || a.index != b.index) continue;
    // Only the second of a run is a first duplicate.
    if (k >= 2 && pairs[k - 2].type == b.type && pairs[k - 2].index == b.index) continue;
    if (!duplicate || b.pos < duplicate->pos) duplicate = &b;
  }
  if (duplicate) {
    return Fail(
        Rule::kDuplicateIndex,
        fmt::format("multiple '{}' controllers with index '{}'", duplicate->type, duplicate->index),
        ctrl_order_[duplicate->pos]);
  }
  for (const PciController& c : pci) {
    const int i = c.dev;
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

void DefinePipeline::ClassifyAll() {
  models_final_ = true;  // no model attribute changes from here on
  auto next_default = defaults_added_.begin();
  for (size_t i = 0; i < devs_.size(); ++i) {
    const Device& d = devs_[i];
    // A machine default still as the data gives it has the class the loader found for it.
    const DefaultDevice* dd = nullptr;
    if (next_default != defaults_added_.end() && next_default->first == static_cast<int>(i)) {
      dd = (next_default++)->second;
      const bool as_given = SameText(d.tag, dd->element) && d.props == dd->props;
      if (!as_given || dd->class_id == DefaultDevice::kNotDerived) dd = nullptr;
    }
    if (dd) {
      cls_[i] = dd->class_id < 0 ? nullptr : &cat_.classes[static_cast<size_t>(dd->class_id)];
    } else {
      cls_[i] = cat_.Classify(d.tag, d.props);
    }
    // libvirt drops the address of such a device: it takes no slot and is not written back.
    if (cls_[i] && cls_[i]->address_ignored) devs_[i].address = Address{};
  }
}

void DefinePipeline::PrimeVirtioMmio() {
  // Section 8: on a machine with virtio-mmio, the policy chooses the transport of every
  // address-less virtio device (filesystems and vsock excepted: their classes are not "virtio").
  // libvirt 9.0 also makes the SCSI HBAs virtio-mmio, which QEMU cannot realize: only a class
  // with a virtio-mmio transport gets one; the others keep their PCI address (qemu-misplaces).
  if (!fam_->virtio_mmio) return;
  if (choices_.OpenVirtioTransport(devs_) != VirtioTransport::kVirtioMmio) return;
  for (size_t i = 0; i < devs_.size(); ++i) {
    if (cls_[i] && cls_[i]->virtio && cls_[i]->mmio_transport &&
        devs_[i].address.type == AddressType::kNone) {
      devs_[i].address.type = AddressType::kVirtioMmio;
      devs_[i].address.type_name = "virtio-mmio";
    }
  }
}

void DefinePipeline::DetachSerialConsole() {
  // Section 6 (console compatibility): libvirt keeps the first console, when its target is a
  // serial port, as a copy of the first serial port; it is not a second device on its address.
  int console = -1, serial = -1;
  for (int i = 0; i < static_cast<int>(devs_.size()); ++i) {
    if (console < 0 && devs_[i].tag == std::string_view("console")) console = i;
    if (serial < 0 && devs_[i].tag == std::string_view("serial")) serial = i;
  }
  if (console < 0 || serial < 0) return;
  std::string target = devs_[console].GetOr("target/@type", "");
  if (target != "serial") return;
  console_mirror_ = console;
  mirrored_serial_ = serial;
  devs_[console].address = Address{};
}

void DefinePipeline::MirrorSerialConsole() {
  if (console_mirror_ >= 0) devs_[console_mirror_].address = devs_[mirrored_serial_].address;
}

bool DefinePipeline::ChipsetPlacements(BusTree& tree, Pass pass) {
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
  // Which devices each placement matches is kept from the dry run: a device's tag and
  // properties do not change between the runs (only its address does), so the real run asks
  // only about the controllers added in between.
  const size_t placements = fam_->placements.size();
  if (pass == Pass::kDryRun) {
    placement_devices_ = devs_.size();
    placement_hits_.assign(placements * placement_devices_, -1);
  }
  for (size_t pi = 0; pi < placements; ++pi) {
    const Placement& p = fam_->placements[pi];
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
    // Controllers in their list's order, other devices in the document's.
    const bool controllers = SameText(p.match.element, "controller");
    const size_t candidates = controllers ? ctrl_order_.size() : devs_.size();
    // The controllers the planner added differ only in their index: unless the placement
    // looks at the index, one answer per model (the last one asked) serves them all.
    const bool by_index = std::any_of(p.match.props.begin(), p.match.props.end(),
                                      [](const auto& m) { return SameText(m.first, "@index"); });
    const std::string* memo_model = nullptr;
    bool memo_matches = false;
    for (size_t k = 0; k < candidates; ++k) {
      const int i = controllers ? ctrl_order_[k] : static_cast<int>(k);
      Device& d = devs_[i];
      if (!p.match.element.empty() && !SameText(d.tag, p.match.element)) continue;
      // A device whose class rules the placement out is not asked (the loader's bits).
      if (!MayMatch(p, i)) continue;
      if (!by_index && IsAddedController(i)) {
        const std::string& model = (d.props.begin() + 1)->second;
        if (!memo_model || *memo_model != model) {
          memo_model = &model;
          memo_matches = p.match.Matches(d.tag, d.props);
        }
        if (!memo_matches) continue;
      } else if (static_cast<size_t>(i) < placement_devices_) {
        signed char& hit = placement_hits_[pi * placement_devices_ + static_cast<size_t>(i)];
        if (hit < 0) hit = p.match.Matches(d.tag, d.props) ? 1 : 0;
        if (hit == 0) continue;
      } else if (!p.match.Matches(d.tag, d.props)) {
        continue;
      }
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

bool DefinePipeline::PlaceOne(BusTree& tree, int dev, Pass pass) {
  Device& d = devs_[dev];
  if (!d.address.WantsPci()) return true;
  std::optional<PciAddress> got = ReserveNext(tree, NeedOf(dev), -1, pass, dev);
  if (!got) return false;
  if (pass == Pass::kReal) SetPciAddress(d.address, *got);
  return true;
}

bool DefinePipeline::PlaceUsb2Companion(BusTree& tree, int dev, Pass pass) {
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

bool DefinePipeline::AssignDevices(BusTree& tree, Pass pass) {
  // Each device's group is looked up in the order once (-1: a group not in it, or no class);
  // devices of one class (most of a large domain) share the lookup. Groups no device is in are
  // skipped.
  const size_t groups = cat_.assign_order.size();
  const size_t count = devs_.size();
  auto& group_of = group_of_;
  group_of.assign(count, -1);
  auto& used = group_used_;
  used.assign(groups, 0);
  const DeviceClass* last_class = nullptr;
  int last_group = -1;
  for (size_t i = 0; i < count; ++i) {
    const DeviceClass* c = cls_[i];
    if (!c) continue;
    if (c != last_class) {
      size_t g = 0;
      while (g < groups && !SameText(cat_.assign_order[g], c->group)) ++g;
      last_class = c;
      last_group = g < groups ? static_cast<int>(g) : -1;
    }
    group_of[i] = last_group;
    if (last_group >= 0) used[static_cast<size_t>(last_group)] = 1;
  }
  auto place = [&](int i, bool pci_controllers) {
    if (pci_controllers) {
      const ControllerModel* m = PciModel(i);
      return !m || m->root || PlaceOne(tree, i, pass);
    }
    if (cls_[i]->connect == ConnectNeed::kNone) return true;
    if (cls_[i]->companion_function >= 0) return PlaceUsb2Companion(tree, i, pass);
    return PlaceOne(tree, i, pass);
  };
  for (size_t g = 0; g < groups; ++g) {
    if (!used[g]) continue;
    const std::string_view group = cat_.assign_order[g];
    const bool pci_controllers = SameText(group, "pci-controller");
    const std::pmr::vector<int>* list = nullptr;
    if (pci_controllers || SameText(group, "controller")) {
      list = &ctrl_order_;
    } else if (SameText(group, "disk")) {
      list = &disk_order_;
    } else if (SameText(group, "video")) {
      list = &video_order_;
    }
    if (!list) {
      // Any other group: its devices in device order.
      for (size_t i = 0; i < count; ++i) {
        if (group_of[i] != static_cast<int>(g)) continue;
        if (!place(static_cast<int>(i), false)) return false;
      }
      continue;
    }
    // Placing a device may add controllers to ctrl_order_: walk by position on a copy.
    auto& snapshot = group_list_;
    snapshot.assign(list->begin(), list->end());
    for (int i : snapshot) {
      if (static_cast<size_t>(i) >= count ||
          group_of[static_cast<size_t>(i)] != static_cast<int>(g)) {
        continue;
      }
      if (!place(i, pci_controllers)) return false;
    }
  }
  return true;
}

bool DefinePipeline::AssignPci() {
  int max_idx = 0;
  for (int i : ctrl_order_) {
    if (IsPciController(i)) max_idx = std::max(max_idx, ControllerIndex(i));
  }

  // Pass 1: a dry run that only counts the buses needed (section 7.1).
  BusTree tree;
  // Room for a bus per device and two more (a PCI Express machine's plan adds about one root
  // port per device), at most every bus number.
  tree.Reserve(static_cast<int>(std::min<size_t>(devs_.size() + 2, kMaxControllerIndex + 1)));
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
  SpareSlots spares = choices_.Spares(fam_->spare_port && max_idx <= 0 &&
                                      tree.size() > max_idx + 1);
  for (Connect kind : {Connect::kPcie, Connect::kPci}) {
    DeviceNeed spare;
    spare.kinds.Add(kind);
    spare.autoassign = true;
    if (kind == Connect::kPcie) spare.model = spares.pcie_model;
    for (uint32_t k = 0; k < (kind == Connect::kPcie ? spares.pcie : spares.pci); ++k) {
      if (!ReserveNext(tree, spare, -1, Pass::kDryRun, -1)) return false;
    }
  }
  if (spares.pcie + spares.pci > 0 && !spares.note.empty()) notes_.emplace_back(spares.note);
  std::pmr::vector<char> has_controller(static_cast<size_t>(tree.size()), 0, &arena_);
  for (int i : ctrl_order_) {
    int index = IsPciController(i) ? ControllerIndex(i) : -1;
    if (index >= 0 && index < tree.size()) has_controller[static_cast<size_t>(index)] = 1;
  }
  // The added controllers of one model differ only in their index, which no class matches on
  // (catalogue test): each model is classified once.
  ControllerModelId classified_model = -1;
  const DeviceClass* model_class = nullptr;
  ControllerModelId looked_up_model = -1;
  devs_.reserve(devs_.size() + static_cast<size_t>(tree.size()));
  // Reserving a controller's slot may grow the tree further: those buses get controllers too.
  for (int b = 1; b < tree.size(); ++b) {
    if (static_cast<size_t>(b) < has_controller.size() && has_controller[static_cast<size_t>(b)]) {
      continue;
    }
    ControllerModelId model = tree.bus(b).model;
    int c = AddPciController(static_cast<uint32_t>(b), cat_.controller(model).name);
    if (model != classified_model) {
      classified_model = model;
      model_class = cat_.Classify(devs_[c].tag, devs_[c].props);
      looked_up_model = LookUpModel(c);
    }
    cls_[c] = model_class;
    // Its model is what the first of that name was looked up as (PciModel's cache, filled).
    if (model_cache_.size() < devs_.size()) model_cache_.resize(devs_.size(), -2);
    model_cache_[static_cast<size_t>(c)] = looked_up_model;
    // An extra root bus (a pseries PHB) plugs into no slot.
    if (cat_.controller(tree.bus(b).model).root) continue;
    if (!ReserveNext(tree, NeedOf(c), -1, Pass::kDryRun, c)) return false;
  }

  // Pass 2: the real assignment on the complete controller list.
  if (!CreateSet(tree, Pass::kReal)) return false;
  if (!ChipsetPlacements(tree, Pass::kReal)) return false;
  if (!AssignDevices(tree, Pass::kReal)) return false;
  if (choices_.WantsGapFillerRoom()) gap_filler_room_ = GapFillerRoom(tree);
  return true;
}

namespace {

/// "0x1f": what fmt's "0x{:x}" writes.
std::string HexNumber(uint32_t n) {
  char buf[16];
  char* end = buf + sizeof buf;
  char* p = end;
  do {
    *--p = "0123456789abcdef"[n & 0xf];
    n >>= 4;
  } while (n != 0);
  *--p = 'x';
  *--p = '0';
  return std::string(p, end);
}

}  // namespace

bool DefinePipeline::IsAddedController(int dev) const {
  // AddPciController marks what it adds (index, model, type "pci"). Later passes set values
  // (the model by default, the index) or add defaults (the size grows), never remove one.
  return static_cast<size_t>(dev) < added_.size() && added_[static_cast<size_t>(dev)] &&
         devs_[dev].props.size() == 3;
}

bool DefinePipeline::FillControllerDefaults() {
  // Section 6.4 and 6.5.
  std::string path;
  for (int i : ctrl_order_) {
    if (!IsPciController(i)) continue;
    const ControllerModel* m = PciModel(i);
    Device& d = devs_[i];
    // Room for every default at once: each Set then moves no more than the props after it.
    d.props.reserve(d.props.size() + 1 + m->target.size());
    // Each default is new (emplace: appended without a search when it sorts last).
    if (!m->qemu.empty() && !ScanProp(d.props, "model/@name")) {
      d.props.emplace(std::string_view("model/@name"), m->qemu);
    }
    for (const auto& [attr, rule] : m->target) {
      path.assign("target/@");
      path += attr;
      if (ScanProp(d.props, path)) continue;
      const PciAddress& a = d.address.pci;
      if (std::string_view r = rule; r == "index") {
        d.props.emplace(path, std::to_string(ControllerIndex(i)));
      } else if (r == "slot-function") {
        d.props.emplace(path, HexNumber(a.slot * 8 + a.function));
      } else if (r == "slot") {
        d.props.emplace(path, HexNumber(a.slot));
      } else if (r == "auto") {
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
        d.props.emplace(path, std::to_string(lowest - 2));
      } else if (r == "free") {
        // qemuDomainAddressFindNewTargetIndex: controller 0 has 0; another takes the lowest
        // number from 1 no controller of the model that has its QEMU model name yet uses (in
        // list order, so a later one's given number counts only when its model name was given).
        uint32_t n = 0;
        if (ControllerIndex(i) != 0) {
          std::set<uint32_t> used;
          for (int o : ctrl_order_) {
            if (o == i || !IsPciController(o) || PciModel(o) != m || !devs_[o].Has("model/@name")) {
              continue;
            }
            if (auto v = ParseUnsigned(devs_[o].GetOr(path, ""))) used.insert(*v);
          }
          for (n = 1; used.count(n); ++n) {
          }
          if (n > kMaxTargetIndex) {
            return Fail(Rule::kTargetIndex,
                        fmt::format("no usable target index found for {}", a.bus), i);
          }
        }
        d.props.emplace(path, std::to_string(n));
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

bool DefinePipeline::ValidateVideos() {
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

namespace {

// The <target> properties of a PCI controller that validation reads.
enum TargetKey { kChassis, kPort, kChassisNr, kBusNr, kTargetIndex, kNode, kHotplug, kTargetKeys };
constexpr std::string_view kTargetPaths[kTargetKeys] = {
    "target/@chassis", "target/@port", "target/@chassisNr", "target/@busNr",
    "target/@index",   "target/node",  "target/@hotplug"};

using TargetValues = std::array<const std::string*, kTargetKeys>;
static_assert(kTargetKeys == 7, "ValidateTargetOptions' declaration names the array's size");

/// The values of `props` at kTargetPaths (nullptr where absent), in one walk over the props
/// below "target/".
TargetValues TargetsOf(const Props& props) {
  TargetValues out{};
  constexpr std::string_view kPrefix = "target/";
  // A scan: a controller has a handful of props, fewer than a binary search's comparisons cost.
  for (const auto& [key, value] : props) {
    if (key.size() <= kPrefix.size() ||
        std::memcmp(key.data(), kPrefix.data(), kPrefix.size()) != 0) {
      continue;
    }
    for (int k = 0; k < kTargetKeys; ++k) {
      if (SameText(key, kTargetPaths[k])) out[k] = &value;
    }
  }
  return out;
}

}  // namespace

bool DefinePipeline::ValidateControllers() {
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
      TargetKey key;
      const char* what;
      uint32_t lo, hi;
      Rule rule;
    };
    // A PHB's target index: QEMU's spapr-pci-host-bridge index, below libvirt's 31 PHBs.
    static const RangeCheck kChecks[] = {{kChassis, "chassis", 0, 255, Rule::kChassisRange},
                                         {kPort, "port", 0, 255, Rule::kPortRange},
                                         {kChassisNr, "chassisNr", 1, 255, Rule::kChassisNrRange},
                                         {kBusNr, "busNr", 1, 254, Rule::kBusNrRange},
                                         {kTargetIndex, "target index", 0, 30, Rule::kTargetIndex}};
    const TargetValues targets = TargetsOf(d.props);
    for (const RangeCheck& c : kChecks) {
      const std::string* v = targets[c.key];
      if (!v) continue;
      std::optional<uint32_t> n = ParseUnsigned(*v);
      if (!n || *n < c.lo || *n > c.hi) {
        return Fail(c.rule, fmt::format("PCI controller {} '{}' out of range - must be {}-{}",
                                        c.what, *v, c.lo, c.hi), i);
      }
    }
    if (!ValidateTargetOptions(i, targets)) return false;
  }
  return true;
}

bool DefinePipeline::ValidateTargetOptions(int i, const TargetValues& targets) {
  // qemuValidateDomainDeviceDefControllerPCI, in libvirt's order: target index 0 and NUMA
  // nodes on controller 0, then each option the model does not have.
  const ControllerModel* pm = PciModel(i);
  bool first = ControllerIndex(i) == 0;
  if (const std::string* index = targets[kTargetIndex];
      index && (ParseUnsigned(*index) == 0u) != first) {
    return Fail(Rule::kTargetIndex,
                "only the PCI controller with index 0 can have target index 0, and vice versa", i);
  }
  if (first && targets[kNode]) {
    return Fail(Rule::kNumaNode,
                "the PCI controller with index 0 cannot be associated with a NUMA node", i);
  }
  if (!pm) return true;
  // The <model name> (FillControllerDefaults gave the model's default to a controller without
  // one): one the model takes, or none at all for a model that takes none.
  const std::string* name = ScanProp(devs_[i].props, "model/@name");
  if (name && !pm->TakesModelName(*name)) {
    return Fail(Rule::kModelName,
                fmt::format("option 'modelName' {} for PCI controller with index '{}', model "
                            "'{}' and modelName '{}'",
                            pm->model_names.empty() ? "is not valid" : "has invalid value",
                            ControllerIndex(i), pm->name, *name),
                i);
  }
  // Which options the controller has, as bits: a model refuses none of a set it accepted
  // before (the controllers a plan adds share a model and a set).
  uint32_t present = 0;
  for (int k = 0; k < kTargetKeys; ++k) present |= targets[k] ? 1u << k : 0u;
  if (pm == accepted_model_ && present == accepted_options_) return true;
  struct Option {
    std::string_view name;  // the model's target_options name
    TargetKey key;          // where the domain has it
    const char* libvirt;
  };
  static const Option kOptions[] = {{"index", kTargetIndex, "targetIndex"},
                                    {"busNr", kBusNr, "busNr"},
                                    {"node", kNode, "numaNode"},
                                    {"chassisNr", kChassisNr, "chassisNr"},
                                    {"chassis", kChassis, "chassis"},
                                    {"port", kPort, "port"},
                                    {"hotplug", kHotplug, "hotplug"}};
  for (const Option& o : kOptions) {
    if (!targets[o.key]) continue;
    const std::vector<std::string>& allowed = pm->target_options;
    if (std::any_of(allowed.begin(), allowed.end(),
                    [&](const std::string& a) { return std::string_view(a) == o.name; })) {
      continue;
    }
    return Fail(Rule::kTargetOption,
                fmt::format("option '{}' is not valid for a {} controller", o.libvirt, pm->name),
                i);
  }
  accepted_model_ = pm;
  accepted_options_ = present;
  return true;
}

Result<Plan> DefinePipeline::Run() {
  // Room for the default devices and the controllers a plan adds (about one per device on a
  // PCI Express machine), so that adding them moves no device.
  devs_.reserve(2 * in_.devices.size() + 16);
  devs_ = in_.devices;
  // The per-device caches grow with the devices: room for as many at once.
  const size_t room = devs_.capacity();
  for (auto* v : {&index_cache_, &model_cache_}) v->reserve(room);
  pci_ctrl_.reserve(room);
  added_.reserve(room);
  ctrl_order_.reserve(room);
  cls_.reserve(room);
  cls_.assign(devs_.size(), nullptr);
  if (!FindFamily()) return errs_;
  ApplyDiskBuses(cat_, devs_);
  BuildListOrders();
  NonPciContext ctx{cat_, *fam_, in_, devs_, ctrl_order_, disk_order_};
  bool ok = CheckModelNames() && AssignControllerIndexes() && CheckUsbControllers(ctx, errs_) &&
            AddScsiHostdevControllers(ctx, Unaddressed::kController0);
  if (ok) {
    AddMachineDefaults();
    ApplyModelDefaults();
    ok = AssignDriveAddresses(ctx, errs_) && AddImplicitControllers(ctx, errs_) &&
         CheckControllers() && AssignVirtioSerial(ctx, errs_);
  }
  if (ok) {
    cls_.resize(devs_.size(), nullptr);
    ClassifyAll();
    ctx.classes = &cls_;
    // After classification: the classes say which devices take a reg, and an address libvirt
    // drops (ClassifyAll) takes none.
    ok = AssignSpaprVio(ctx, errs_);
  }
  if (ok) {
    PrimeVirtioMmio();
    DetachSerialConsole();
    AddPolicyChains();
    ok = AssignPci();
  }
  if (ok) {
    SetMultifunction();
    ok = FillControllerDefaults() && AssignUsbPorts(ctx, errs_) && AssignMemorySlots(ctx, errs_) &&
         ValidateDiskDrives(ctx, errs_) && ValidateVideos() && ValidateControllers() &&
         ValidateDevices(ctx, errs_) && ValidateIdeAndDuplicates(ctx, errs_);
  }
  if (ok) {
    // Last, so that a domain libvirt refuses keeps libvirt's error.
    Diagnostics qemu = CheckQemuRules(devs_, cat_, *fam_, {model_cache_, index_cache_});
    errs_.insert(errs_.end(), qemu.begin(), qemu.end());
    ok = qemu.empty();
  }
  if (!ok) return libvirt_refusal_ ? Diagnostics{*libvirt_refusal_} : errs_;
  MirrorSerialConsole();
  Plan plan;
  plan.family = fam_;
  // No machine attribute: the arch's default, written back as libvirt writes it.
  const std::string& name = in_.machine.empty() ? fam_->default_for.at(in_.arch) : in_.machine;
  auto canon = fam_->canonical_names.find(name);
  plan.machine = canon != fam_->canonical_names.end() ? canon->second : name;
  plan.devices = std::move(devs_);
  plan.notes = std::move(notes_);
  plan.gap_filler_room = gap_filler_room_;
  return plan;
}

Result<Plan> RunDefinePipeline(const Domain& domain, const Catalog& catalog,
                               const PlacementChoices& choices) {
  return DefinePipeline(domain, catalog, choices).Run();
}

}  // namespace pciplan
