#include "pciplan/emit/result_json.h"

#include <fmt/format.h>

#include <array>
#include <map>
#include <string_view>

#include "pciplan/plan/hotplug.h"

#ifndef PCIPLAN_VERSION
#define PCIPLAN_VERSION "unknown"
#endif

namespace pciplan {
namespace {

using Json = nlohmann::ordered_json;

Json StringOrNull(const std::string& s) { return s.empty() ? Json() : Json(s); }
Json StringOrNull(const std::string* s) { return s ? Json(*s) : Json(); }

// The attributes that identify a device the way libvirt and the conformance address maps do
// (tests/conformance/README.md "Identity"), as "path" -> value, when the element has them.
constexpr std::array<std::string_view, 24> kIdentityPaths = {
    "@type",          "@model",          "@bus",          "@mode",
    "@name",          "@index",          "alias/@name",   "mac/@address",
    "model/@type",    "model/@name",     "model/@primary", "target/@dev",
    "target/@bus",    "target/@dir",     "target/@type",  "target/@chassisNr",
    "target/@chassis", "target/@port",   "target/@busNr", "target/@index",
    "target/node",    "source/address/@domain", "source/address/@bus", "source/address/@slot",
};
constexpr std::string_view kSourceFunction = "source/address/@function";

Json AddressJson(const Address& a) {
  if (a.type == AddressType::kNone) return Json();
  Json j;
  j["type"] = a.type_name;
  if (a.type == AddressType::kPci) {
    j["domain"] = a.pci.domain;
    j["bus"] = a.pci.bus;
    j["slot"] = a.pci.slot;
    j["function"] = a.pci.function;
    j["multifunction"] = StringOrNull(a.multifunction);
    j["pci"] = a.pci.ToString();
    return j;
  }
  Json attrs = Json::object();
  for (const auto& [name, value] : a.attrs) attrs[name] = value;
  j["attributes"] = std::move(attrs);
  return j;
}

bool IsPciController(const Device& d) { return d.tag == "controller" && d.Is("@type", "pci"); }

/// The note `note` says of a device: its name, if it starts with one of `names` then ": ".
const std::string* NoteDevice(const std::string& note, const std::vector<std::string>& names) {
  const std::string* best = nullptr;
  for (const std::string& n : names) {
    if (note.size() > n.size() + 2 && note.compare(0, n.size(), n) == 0 &&
        note.compare(n.size(), 2, ": ") == 0 && (!best || n.size() > best->size())) {
      best = &n;
    }
  }
  return best;
}

Json DeviceJson(const Plan& plan, size_t i, int ordinal, const std::string& name) {
  const Device& d = plan.devices[i];
  Json j;
  j["element"] = d.tag;
  j["ordinal"] = ordinal;
  j["name"] = name;
  j["origin"] = d.origin == Origin::kUser ? "input" : "added";
  j["line"] = d.line > 0 ? Json(d.line) : Json();
  j["alias"] = StringOrNull(d.Get("alias/@name"));
  const std::string* target = d.Get("target/@dev");
  if (!target) target = d.Get("target/@dir");
  j["target"] = StringOrNull(target);
  j["mac"] = StringOrNull(d.Get("mac/@address"));
  const std::string* model = d.Get("model/@type");
  if (!model) model = d.Get("@model");
  j["model"] = StringOrNull(model);
  if (d.tag == "controller") {
    const std::string* index = d.Get("@index");
    j["controller"] = Json{{"type", StringOrNull(d.Get("@type"))},
                           {"index", index ? Json(*index) : Json()},
                           {"model", StringOrNull(d.Get("@model"))}};
  } else {
    j["controller"] = Json();
  }
  Json attrs = Json::object();
  for (std::string_view path : kIdentityPaths) {
    if (const std::string* v = d.Get(std::string(path))) attrs[std::string(path)] = *v;
  }
  if (const std::string* v = d.Get(std::string(kSourceFunction))) {
    attrs[std::string(kSourceFunction)] = *v;
  }
  j["attributes"] = std::move(attrs);
  j["address"] = AddressJson(d.address);
  return j;
}

/// Why pciplan added device `i`: its notes, else what sits on its bus, else what it is.
std::string WhyAdded(const Plan& plan, size_t i, const std::vector<std::string>& names,
                     const std::vector<std::string>& reasons, const Catalog& catalog) {
  if (!reasons.empty()) return reasons.front();
  const Device& d = plan.devices[i];
  if (!IsPciController(d)) {
    return fmt::format("a default device of machine family '{}' (libvirt 9.0 adds it)",
                       plan.family ? plan.family->name : "");
  }
  ControllerModelId id = catalog.FindController(d.GetOr("@model", ""));
  if (id >= 0 && catalog.controller(id).root) return "the root bus of the machine";
  std::string held;
  int count = 0;
  for (size_t k = 0; k < plan.devices.size(); ++k) {
    const Address& a = plan.devices[k].address;
    if (a.type != AddressType::kPci || std::to_string(a.pci.bus) != d.GetOr("@index", "")) {
      continue;
    }
    held += (count++ ? ", " : "") + names[k];
  }
  if (count == 0) return "a free slot kept for hot-plug (libvirt 9.0 adds one spare root port)";
  return "to connect " + held;
}

}  // namespace

Json DiagnosticJson(const Diagnostic& d, const std::string& file, const std::string& device_file) {
  const std::string& where =
      d.input == InputFile::kDevice && !device_file.empty() ? device_file : file;
  Json j;
  j["severity"] = d.severity == Severity::kError ? "error" : "warning";
  j["file"] = StringOrNull(where);
  j["line"] = d.line > 0 ? Json(d.line) : Json();
  j["device"] = StringOrNull(d.device);
  j["address"] = StringOrNull(d.address);
  j["rule"] = std::string(RuleId(d.rule));
  j["message"] = d.message;
  j["hint"] = StringOrNull(d.hint);
  j["text"] = d.Render(where);
  return j;
}

Json ResultHead(const std::string& kind, const std::string& file, bool ok) {
  Json j;
  j["format"] = kResultFormat;
  j["kind"] = kind;
  j["file"] = file;
  j["ok"] = ok;
  return j;
}

Json QemuArgsJson(const QemuCommand& command, const std::string& file) {
  Json j = ResultHead("qemu-args", file, true);
  Json qemu = RenderQemuJson(command);
  for (auto& [key, value] : qemu.items()) j[key] = value;
  j["diagnostics"] = Json::array();
  return j;
}

Json DiagnosticsJson(const Diagnostics& diagnostics, const std::string& file,
                     const std::string& device_file) {
  Json out = Json::array();
  for (const Diagnostic& d : diagnostics) out.push_back(DiagnosticJson(d, file, device_file));
  return out;
}

Json ResultJson(const ResultParts& parts, const Catalog& catalog) {
  bool errors = false;
  for (const Diagnostic& d : parts.diagnostics) errors |= d.severity == Severity::kError;
  Json j = ResultHead(parts.kind, parts.file, parts.plan != nullptr && !errors);
  j["device_file"] = StringOrNull(parts.device_file);
  const Plan* plan = parts.plan;
  j["machine"] = plan ? Json(plan->machine) : Json();
  j["family"] = plan && plan->family ? Json(plan->family->name) : Json();
  Json devices = Json::array(), added = Json::array(), explanations = Json::array();
  Json promises;
  if (plan) {
    std::vector<std::string> names(plan->devices.size());
    std::map<std::string, int> ordinals;
    for (size_t i = 0; i < plan->devices.size(); ++i) {
      int ordinal = ordinals[plan->devices[i].tag]++;
      names[i] = DeviceRef::Describe(plan->devices[i], ordinal);
      devices.push_back(DeviceJson(*plan, i, ordinal, names[i]));
    }
    std::vector<std::vector<std::string>> reasons(plan->devices.size());
    for (const std::string& note : plan->notes) {
      const std::string* who = NoteDevice(note, names);
      Json e;
      e["device"] = who ? Json(*who) : Json();
      e["text"] = who ? note.substr(who->size() + 2) : note;
      explanations.push_back(std::move(e));
      if (!who) continue;
      for (size_t i = 0; i < names.size(); ++i) {
        if (&names[i] == who) reasons[i].push_back(note.substr(who->size() + 2));
      }
    }
    for (size_t i = 0; i < plan->devices.size(); ++i) {
      if (plan->devices[i].origin != Origin::kPlanner) continue;
      Json a;
      a["device"] = i;
      a["name"] = names[i];
      a["why"] = WhyAdded(*plan, i, names, reasons[i], catalog);
      a["notes"] = reasons[i];
      added.push_back(std::move(a));
    }
    HotplugCapacity free = FreeHotplugSlots(*plan, catalog);
    promises = Json{{"pcie", free.pcie}, {"pci", free.pci}};
  }
  j["devices"] = std::move(devices);
  j["added"] = std::move(added);
  j["explanations"] = std::move(explanations);
  j["promises"] = std::move(promises);
  j["diagnostics"] = DiagnosticsJson(parts.diagnostics, parts.file, parts.device_file);
  j["output"] = parts.output ? Json(*parts.output) : Json();
  j["xml"] = parts.xml ? Json(*parts.xml) : Json();
  return j;
}

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

std::string PlanResultJson(const ResultParts& parts, const Catalog& catalog) {
  return DumpJson(ResultJson(parts, catalog), 2) + "\n";
}

std::string VersionText(const Catalog& catalog) {
  return fmt::format("pciplan {} (libvirt 9.0 behaviour, QEMU {} data)", PCIPLAN_VERSION,
                     catalog.qemu().version);
}

}  // namespace pciplan
