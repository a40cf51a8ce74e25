#include "pciplan/model/machine_model.h"

#include <algorithm>
#include <bit>
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

bool Match::Matches(const std::string& tag, const Props& dev_props) const {
  if (!element.empty() && !SameText(tag, element)) return false;
  return MatchesProps(dev_props);
}

bool Match::MatchesProps(const Props& dev_props) const {
  for (const auto& [path, values] : props) {
    auto it = dev_props.find(path);
    const std::string* value = it == dev_props.end() ? nullptr : &it->second;
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
  for (const auto& wanted : rule.props) {
    const std::vector<std::string>& values = wanted.second;
    auto it = std::find_if(m.props.begin(), m.props.end(),
                           [&](const auto& p) { return SameText(p.first, wanted.first); });
    if (it == m.props.end()) return false;
    for (const std::string& v : it->second) {
      if (std::find(values.begin(), values.end(), v) == values.end()) return false;
    }
  }
  return true;
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
  // Each class's element as the position of the first class of that element, and per element
  // the USB rules an earlier class of it takes.
  std::vector<uint16_t> element_of(classes.size());
  std::vector<uint64_t> taken_by_element(classes.size(), 0);
  const size_t rules = std::min<size_t>(usb_devices.size(), kUsbMasked);
  uint64_t element_rules = 0;  // the rules that name the element of the current run, or none
  for (size_t i = 0; i < classes.size(); ++i) {
    const DeviceClass& c = classes[i];
    if (runs_.empty() || !SameText(classes[i - 1].element, c.element)) {
      runs_.push_back(Run{static_cast<uint16_t>(i), 0});
      size_t r = 0;
      while (!SameText(classes[runs_[r].first].element, c.element)) ++r;
      element_of[i] = runs_[r].first;
      element_rules = 0;
      for (size_t k = 0; k < rules; ++k) {
        const std::string& e = usb_devices[k].element;
        if (e.empty() || SameText(e, c.element)) element_rules |= uint64_t{1} << k;
      }
    } else {
      element_of[i] = element_of[i - 1];
    }
    ++runs_.back().count;
    // A rule is no candidate for a class its properties rule out, nor once an earlier class of
    // the element (without a role) takes every device the rule matches: Classify gives the
    // first class that matches ("input-other" is no input "input-usb" takes).
    uint64_t candidates = 0;
    uint64_t& taken = taken_by_element[element_of[i]];
    for (uint64_t left = element_rules; left != 0; left &= left - 1) {
      const int k = std::countr_zero(left);
      const Match& m = usb_devices[static_cast<size_t>(k)];
      const uint64_t bit = uint64_t{1} << k;
      if (!(taken & bit) && !c.when.RulesOut(m)) candidates |= bit;
      if (c.when.role.empty() && Implies(m, c.when)) taken |= bit;
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
