#include "pciplan/model/machine_model.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

namespace pciplan {
namespace {

bool NameMatches(const std::string& pattern, const std::string& name) {
  if (!pattern.empty() && pattern.back() == '*') {
    // The wildcard stands for a version ("7.2", "rhel9.2.0"): letters, digits, '.', '_', '-'.
    // A name with anything else ("pc-q35-7.2,usb=on") is no QEMU machine type; libvirt refuses
    // it as one its emulator does not support.
    size_t fixed = pattern.size() - 1;
    return name.compare(0, fixed, pattern, 0, fixed) == 0 &&
           std::all_of(name.begin() + static_cast<std::ptrdiff_t>(std::min(fixed, name.size())),
                       name.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '.' ||
                                c == '_' || c == '-';
                       });
  }
  return pattern == name;
}

}  // namespace

namespace {

/// The value of `path` in `props`, or nullptr. A device has a handful of properties: a scan
/// that compares lengths first costs less than a binary search's string comparisons.
const std::string* FindValue(const Props& props, std::string_view path) {
  if (props.size() > 16) {
    auto it = props.find(path);
    return it == props.end() ? nullptr : &it->second;
  }
  for (const auto& [key, value] : props) {
    if (key.size() == path.size() && std::memcmp(key.data(), path.data(), path.size()) == 0) {
      return &value;
    }
  }
  return nullptr;
}

}  // namespace

bool Match::Matches(const std::string& tag, const Props& dev_props) const {
  if (!element.empty() && !SameText(tag, element)) return false;
  return MatchesProps(dev_props);
}

bool Match::MatchesProps(const Props& dev_props) const {
  for (const auto& [path, values] : props) {
    const std::string* value = FindValue(dev_props, path);
    if (!value || std::find(values.begin(), values.end(), *value) == values.end()) return false;
  }
  return true;
}

bool Match::RulesOut(const Match& other) const {
  for (const auto& [path, values] : other.props) {
    for (const auto& [own_path, own_values] : props) {
      if (!SameText(path, own_path)) continue;
      bool shared = false;
      for (const std::string& v : values) {
        for (const std::string& o : own_values) shared = shared || SameText(v, o);
      }
      if (!shared) return true;
    }
  }
  return false;
}

ControllerModelId Catalog::FindController(const std::string& name) const {
  for (size_t i = 0; i < controllers.size(); ++i) {
    if (controllers[i].name == name) return static_cast<ControllerModelId>(i);
  }
  return -1;
}

ControllerModelId Catalog::FindController(const std::string& name,
                                          const std::string& family) const {
  for (size_t i = 0; i < controllers.size(); ++i) {
    const ControllerModel& m = controllers[i];
    if (m.name == name &&
        std::find(m.machines.begin(), m.machines.end(), family) != m.machines.end()) {
      return static_cast<ControllerModelId>(i);
    }
  }
  return FindController(name);
}

bool MachineFamily::HasName(const std::string& machine) const {
  return std::any_of(machine_names.begin(), machine_names.end(),
                     [&](const std::string& pattern) { return NameMatches(pattern, machine); });
}

std::string MachineFamily::MachineType() const {
  for (const std::string& n : machine_names) {
    if (n.find('*') == std::string::npos) return n;
  }
  return {};
}

const MachineFamily* Catalog::FindMachine(const std::string& arch,
                                          const std::string& machine) const {
  for (const MachineFamily& m : machines) {
    if (std::find(m.arches.begin(), m.arches.end(), arch) == m.arches.end()) continue;
    if (machine.empty() ? m.default_for.count(arch) > 0 : m.HasName(machine)) return &m;
  }
  return nullptr;
}

namespace {

/// Whether every device `m` matches (on its properties) also meets `rule`: `rule` lists no
/// property `m` does not, at no value `m` does not accept.
bool Implies(const Match& m, const Match& rule) {
  for (const auto& [path, values] : rule.props) {
    auto it = std::find_if(m.props.begin(), m.props.end(),
                           [&](const auto& p) { return SameText(p.first, path); });
    if (it == m.props.end()) return false;
    for (const std::string& v : it->second) {
      if (std::find(values.begin(), values.end(), v) == values.end()) return false;
    }
  }
  return true;
}

/// Whether a device of classes[c] cannot match `m` because an earlier class of its element
/// takes every device `m` matches (Classify gives the first class that matches: "input-other"
/// is no input "input-usb" takes).
bool TakenEarlier(const std::vector<DeviceClass>& classes, size_t c, const Match& m) {
  for (size_t e = 0; e < c; ++e) {
    if (SameText(classes[e].element, classes[c].element) && classes[e].when.role.empty() &&
        Implies(m, classes[e].when)) {
      return true;
    }
  }
  return false;
}

}  // namespace

void ClassIndex::Build(const std::vector<DeviceClass>& classes,
                       const std::vector<Match>& usb_devices) {
  runs_.clear();
  usb_candidates_.clear();
  built_ = false;
  if (classes.size() > UINT16_MAX) return;  // Classify scans them all
  runs_.reserve(classes.size());
  usb_candidates_.reserve(classes.size());
  for (size_t i = 0; i < classes.size(); ++i) {
    const DeviceClass& c = classes[i];
    if (runs_.empty() || !SameText(classes[i - 1].element, c.element)) {
      runs_.push_back(Run{static_cast<uint16_t>(i), 0});
    }
    ++runs_.back().count;
    uint64_t candidates = 0;
    for (size_t k = 0; k < usb_devices.size() && k < kUsbMasked; ++k) {
      const Match& m = usb_devices[k];
      if ((m.element.empty() || SameText(m.element, c.element)) && !c.when.RulesOut(m) &&
          !TakenEarlier(classes, i, m)) {
        candidates |= uint64_t{1} << k;
      }
    }
    usb_candidates_.push_back(candidates);
  }
  count_ = classes.size();
  usb_count_ = usb_devices.size();
  built_ = true;
}

const DeviceClass* Catalog::Classify(const std::string& tag, const Props& props) const {
  if (class_index.Covers(classes.size())) {
    // An element's classes are one run, or several in catalogue order: the first match wins.
    for (const ClassIndex::Run& run : class_index.runs()) {
      if (!SameText(classes[run.first].element, tag)) continue;
      for (size_t i = run.first; i < size_t{run.first} + run.count; ++i) {
        const Match& when = classes[i].when;
        if ((when.element.empty() || SameText(when.element, tag)) && when.MatchesProps(props)) {
          return &classes[i];
        }
      }
    }
    return nullptr;
  }
  for (const DeviceClass& c : classes) {
    if (c.element == tag && c.when.Matches(tag, props)) return &c;
  }
  return nullptr;
}

std::string ControllerModel::BusName(uint32_t index) const {
  if (root && index > 0) return QemuId(index) + ".0";
  return QemuId(index);
}

std::string ControllerModel::QemuId(uint32_t index) const {
  return root && index == 0 ? bus_alias : "pci." + std::to_string(index);
}

QemuFacts& QemuPart::mutable_get() {
  if (source_) {
    facts_ = source_();
    source_ = nullptr;
  }
  return facts_;
}

const QemuMachine* QemuFacts::FindMachine(const std::string& family) const {
  for (const QemuMachine& m : machines) {
    if (m.family == family) return &m;
  }
  return nullptr;
}

}  // namespace pciplan
