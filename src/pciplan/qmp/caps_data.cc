#include "pciplan/qmp/caps_data.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace pciplan {
namespace {

using OJson = nlohmann::ordered_json;

/// A fact learned for one field of a record: the value, or that two machines disagree on it.
struct Learned {
  OJson value;
  bool conflict = false;
};
using Facts = std::map<std::string, Learned>;  // field -> learned

void Learn(Facts& facts, const std::string& field, OJson value) {
  auto [it, fresh] = facts.try_emplace(field, Learned{value, false});
  if (!fresh && it->second.value != value) it->second.conflict = true;
}

/// One line per member, and one per record of an array of records: the bundled files' layout.
std::string Format(const OJson& j) {
  std::string out = "{\n";
  size_t i = 0;
  for (auto it = j.begin(); it != j.end(); ++it, ++i) {
    out += "  " + OJson(it.key()).dump() + ": ";
    const OJson& v = it.value();
    if (v.is_array() && !v.empty() && v.front().is_object()) {
      out += "[\n";
      for (size_t k = 0; k < v.size(); ++k) {
        out += "    " + v[k].dump() + (k + 1 < v.size() ? ",\n" : "\n");
      }
      out += "  ]";
    } else {
      out += v.dump();
    }
    out += i + 1 < j.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

/// `source` with this binary's earlier note replaced by `note`: "...; caps (BIN (QEMU v)): f, g".
std::string Marked(const std::string& source, const std::string& who, const std::string& fields) {
  const std::string tag = "; caps (" + who + "): ";
  std::string out = source;
  for (size_t at; (at = out.find(tag)) != std::string::npos;) {
    size_t end = out.find("; caps (", at + tag.size());
    out.erase(at, end == std::string::npos ? std::string::npos : end - at);
  }
  return out + tag + fields;
}

/// Sets a record's field, leaving it out where the file's defaults already say the same.
void Put(OJson& record, const OJson* defaults, const std::string& field, const OJson& value) {
  if (!record.contains(field) && defaults && defaults->contains(field) &&
      (*defaults)[field] == value) {
    return;
  }
  record[field] = value;
}

/// Writes the facts not in conflict into `record`, and notes them in its `source_key`; returns
/// whether any was written.
bool Apply(OJson& record, const OJson* defaults, const Facts& facts, const std::string& who,
           const std::string& source_key) {
  std::string fields;
  for (const auto& [field, learned] : facts) {
    if (learned.conflict) continue;
    Put(record, defaults, field, learned.value);
    fields += (fields.empty() ? "" : ", ") + field;
  }
  if (fields.empty()) return false;
  record[source_key] = Marked(record.value(source_key, ""), who, fields);
  return true;
}

std::string SlotFunction(uint32_t slot, uint32_t function) {
  return fmt::format("{:02x}.{}", slot, function);
}

/// What a machine family's file should say of the machine, from the binary.
Facts MachineFacts(const QemuCaps& caps, const MachineFamily& f, const CapsMachine& m,
                   const Catalog& catalog, const OJson& file) {
  Facts facts;
  OJson aliases = OJson::object();
  for (const CapsMachine& other : caps.machines) {
    if (!other.alias.empty() && f.HasName(other.alias)) aliases[other.alias] = other.name;
  }
  Learn(facts, "canonical_names", aliases);
  const std::string arch = ArchOfBinary(caps.binary, catalog);
  if (!f.default_for_is_policy && !arch.empty()) {
    OJson defaults = file.value("default_for", OJson::object());
    defaults.erase(arch);
    for (const CapsMachine& d : caps.machines) {
      if (!d.is_default) continue;
      if (!d.alias.empty() && f.HasName(d.alias)) {
        defaults[arch] = d.alias;
      } else if (f.HasName(d.name)) {
        defaults[arch] = d.name;
      }
    }
    Learn(facts, "default_for", defaults);
  }
  Learn(facts, "virtio_mmio_transports", m.virtio_mmio_transports);
  if (f.root < 0) return facts;
  const ControllerModel& root = catalog.controller(f.root);
  // What QEMU builds in on the root bus, less what the data says otherwise: the host bridge
  // below the root's first slot and the forced places of the devices the machine creates.
  std::set<std::string> elsewhere;
  if (const QemuMachine* qm = catalog.qemu().FindMachine(f.name)) {
    for (const Placement& p : f.placements) {
      if (p.mode != PlacementMode::kForced || p.slots.empty()) continue;
      for (const Match& b : qm->builtin) {
        if (b.element == p.match.element && b.props == p.match.props) {
          elsewhere.insert(SlotFunction(p.slots.front(), p.function));
        }
      }
    }
  }
  OJson reserved = OJson::array();
  for (const CapsFunction& fn : m.builtins) {
    if (fn.slot < root.min_slot || elsewhere.count(SlotFunction(fn.slot, fn.function))) continue;
    OJson entry{
        {"slot", fn.slot},
        {"function", fn.function},
        {"what", fmt::format("class {:04x} ({:04x}:{:04x})", fn.class_code, fn.vendor, fn.device)}};
    // The file's own words for a function it already has.
    for (const OJson& r : file.value("reserved", OJson::array())) {
      if (r.value("slot", -1) == static_cast<int>(fn.slot) &&
          r.value("function", -1) == static_cast<int>(fn.function)) {
        entry = r;
      }
    }
    reserved.push_back(std::move(entry));
  }
  Learn(facts, "reserved", reserved);
  return facts;
}

/// What controllers.json should say of each model the binary's machines probed, by model.
std::map<std::string, Facts> ControllerFacts(const QemuCaps& caps, const Catalog& catalog) {
  std::map<std::string, Facts> out;
  for (const MachineFamily* f : FamiliesOfBinary(caps.binary, catalog)) {
    const CapsMachine* m = caps.FindMachine(f->MachineType());
    if (!m || !m->probed || f->root < 0) continue;
    if (m->root_hotplug) {
      Learn(out[catalog.controller(f->root).name], "qemu_hotplug", *m->root_hotplug);
    }
    // The root bus is probed as a controller too (in the slots its machine leaves free).
    for (const CapsController& c : m->controllers) {
      ControllerModelId id = catalog.FindController(c.model);
      if (id < 0 || !c.error.empty()) continue;
      const ControllerModel& model = catalog.controller(id);
      if (!model.offers.HasEndpoint()) continue;  // the probes are endpoints
      if (!model.slots_are_policy && !model.root) {
        std::set<uint32_t> cold = c.ColdSlots();
        if (!cold.empty() && *cold.rbegin() - *cold.begin() + 1 == cold.size()) {
          Learn(out[c.model], "slots", OJson::array({*cold.begin(), *cold.rbegin()}));
        }
      }
      // ACPI's hot-plug says nothing of a machine without it.
      if (model.qemu_hotplug_acpi && !f->acpi_pci_hotplug) continue;
      size_t taken = 0, slots = 0;
      for (const CapsSlot& s : c.slots) {
        if (s.slot < model.min_slot || s.slot > model.max_slot || s.occupied) continue;
        ++slots;
        bool pci = !model.offers.Has(Connect::kPci) || s.hot_pci;
        bool pcie = !model.offers.Has(Connect::kPcie) || s.hot_pcie;
        taken += pci && pcie ? 1 : 0;
      }
      if (slots > 0 && (taken == 0 || taken == slots)) {
        Learn(out[c.model], "qemu_hotplug", taken == slots);
      }
    }
  }
  return out;
}

}  // namespace

Result<std::vector<DataFile>> CapsDataFiles(const QemuCaps& caps, const Catalog& catalog,
                                            const std::vector<DataFile>& base) {
  std::vector<DataFile> out = base;
  const std::string who = caps.Describe();
  const std::map<std::string, Facts> controllers = ControllerFacts(caps, catalog);
  for (DataFile& file : out) {
    OJson j = OJson::parse(file.text, nullptr, false);
    if (!j.is_object()) return Error(Rule::kBadValue, file.name + ": not valid JSON");
    bool changed = false;
    if (file.name == "controllers.json") {
      const OJson* defaults = j.contains("defaults") ? &j["defaults"] : nullptr;
      for (OJson& record : j["models"]) {
        auto facts = controllers.find(record.value("name", ""));
        if (facts == controllers.end()) continue;
        changed |= Apply(record, defaults, facts->second, who, "source");
      }
    } else if (file.name == "qemu.json") {
      Facts facts;
      const std::string v = caps.version;
      Learn(facts, "version", v.substr(0, v.find('.', v.find('.') + 1)));
      changed = Apply(j, nullptr, facts, who, "version_source");
    } else if (file.name.rfind("machines/", 0) == 0) {
      const std::string name = j.value("name", "");
      for (const MachineFamily* f : FamiliesOfBinary(caps.binary, catalog)) {
        const CapsMachine* m = caps.FindMachine(f->MachineType());
        if (f->name != name || !m || !m->probed) continue;
        changed = Apply(j, nullptr, MachineFacts(caps, *f, *m, catalog, j), who, "source");
      }
    }
    if (changed) file.text = Format(j);
  }
  return out;
}

}  // namespace pciplan
