#include "pciplan/model/model_loader.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>

namespace pciplan {
namespace {

using Json = nlohmann::json;

/// Reads one JSON object field by field, remembering which keys were used, so that Finish()
/// can report the unknown ones. Missing fields fall back to `defaults` when given.
class Obj {
 public:
  Obj(const Json& j, const Json* defaults, std::string file, std::string pointer,
      Diagnostics& errs)
      : j_(j), defaults_(defaults), file_(std::move(file)), ptr_(std::move(pointer)), errs_(errs) {
    if (!j_.is_object()) Fail("", "expected an object");
  }

  const Json* Find(const std::string& key) {
    used_.insert(key);
    if (j_.is_object() && j_.contains(key)) return &j_.at(key);
    if (defaults_ && defaults_->is_object() && defaults_->contains(key)) return &defaults_->at(key);
    return nullptr;
  }
  const Json* Need(const std::string& key) {
    const Json* v = Find(key);
    if (!v) Fail(key, "missing field");
    return v;
  }
  std::string Str(const std::string& key) {
    const Json* v = Need(key);
    if (!v) return {};
    if (!v->is_string()) return Fail(key, "expected a string"), std::string();
    return v->get<std::string>();
  }
  std::string OptStr(const std::string& key) {
    const Json* v = Find(key);
    if (!v) return {};
    if (!v->is_string()) return Fail(key, "expected a string"), std::string();
    return v->get<std::string>();
  }
  bool Bool(const std::string& key) {
    const Json* v = Need(key);
    if (!v) return false;
    if (!v->is_boolean()) return Fail(key, "expected true or false"), false;
    return v->get<bool>();
  }
  bool OptBool(const std::string& key) {
    const Json* v = Find(key);
    if (!v) return false;
    if (!v->is_boolean()) return Fail(key, "expected true or false"), false;
    return v->get<bool>();
  }
  int64_t Int(const std::string& key, int64_t lo, int64_t hi) {
    const Json* v = Need(key);
    if (!v) return lo;
    if (!v->is_number_integer()) return Fail(key, "expected an integer"), lo;
    int64_t n = v->get<int64_t>();
    if (n < lo || n > hi) {
      Fail(key, "value " + std::to_string(n) + " outside " + std::to_string(lo) + ".." +
                    std::to_string(hi));
      return lo;
    }
    return n;
  }
  std::vector<std::string> Strs(const std::string& key) {
    std::vector<std::string> out;
    const Json* v = Need(key);
    if (!v) return out;
    if (!v->is_array()) return Fail(key, "expected an array of strings"), out;
    for (const Json& e : *v) {
      if (!e.is_string()) return Fail(key, "expected an array of strings"), out;
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  std::map<std::string, std::string> StrMap(const std::string& key) {
    std::map<std::string, std::string> out;
    const Json* v = Need(key);
    if (!v) return out;
    if (!v->is_object()) return Fail(key, "expected an object of strings"), out;
    for (const auto& [k, e] : v->items()) {
      if (!e.is_string()) return Fail(key + "/" + k, "expected a string"), out;
      out[k] = e.get<std::string>();
    }
    return out;
  }
  std::string Pointer(const std::string& key) const { return ptr_ + "/" + key; }
  const std::string& file() const { return file_; }
  Diagnostics& errs() { return errs_; }

  void Fail(const std::string& key, const std::string& what) {
    errs_.push_back(Error(Rule::kBadValue, file_ + ": " + (key.empty() ? ptr_ : Pointer(key)) +
                                               ": " + what));
  }
  void Finish() {
    if (!j_.is_object()) return;
    for (const auto& [k, v] : j_.items()) {
      (void)v;
      if (!used_.count(k)) Fail(k, "unknown field");
    }
  }

 private:
  const Json& j_;
  const Json* defaults_;
  std::string file_;
  std::string ptr_;
  Diagnostics& errs_;
  std::set<std::string> used_;
};

Match ReadMatch(const Json& j, const std::string& file, const std::string& ptr,
                Diagnostics& errs) {
  Match m;
  if (!j.is_object()) {
    errs.push_back(Error(Rule::kBadValue, file + ": " + ptr + ": expected an object"));
    return m;
  }
  for (const auto& [k, v] : j.items()) {
    std::vector<std::string> values;
    if (v.is_string()) {
      values.push_back(v.get<std::string>());
    } else if (v.is_array()) {
      for (const Json& e : v) {
        if (e.is_string()) values.push_back(e.get<std::string>());
      }
    }
    if (values.empty()) {
      errs.push_back(
          Error(Rule::kBadValue, file + ": " + ptr + "/" + k + ": expected a string or strings"));
      continue;
    }
    if (k == "element") {
      m.element = values[0];
    } else if (k == "role") {
      m.role = values[0];
    } else if (k.empty() || (k[0] != '@' && k.find('/') == std::string::npos)) {
      errs.push_back(Error(Rule::kBadValue, file + ": " + ptr + "/" + k +
                                                ": a property is '@attr' or 'child/@attr'"));
    } else {
      m.props.emplace_back(k, std::move(values));
    }
  }
  return m;
}

std::optional<Json> Parse(const DataFile& f, Diagnostics& errs) {
  Json j = Json::parse(f.text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    errs.push_back(Error(Rule::kBadValue, f.name + ": not valid JSON"));
    return std::nullopt;
  }
  return j;
}

ConnectKinds ReadKinds(Obj& o, const std::string& key) {
  ConnectKinds kinds;
  for (const std::string& name : o.Strs(key)) {
    std::optional<Connect> c = ConnectFromName(name);
    if (!c) {
      o.Fail(key, "unknown connection kind '" + name + "'");
      continue;
    }
    kinds.Add(*c);
  }
  return kinds;
}

void LoadControllers(const Json& j, const std::string& file, Catalog& cat, Diagnostics& errs) {
  Obj top(j, nullptr, file, "", errs);
  top.OptStr("source");
  top.OptStr("comment");
  const Json* defaults = top.Need("defaults");
  const Json* models = top.Need("models");
  top.Finish();
  if (!models || !models->is_array()) return;
  for (size_t i = 0; i < models->size(); ++i) {
    Obj o((*models)[i], defaults, file, "/models/" + std::to_string(i), errs);
    ControllerModel m;
    m.name = o.Str("name");
    o.Str("source");
    m.qemu = o.Str("qemu");
    m.root = o.Bool("root");
    m.extra_roots = o.OptBool("extra_roots");
    if (m.extra_roots && !m.root) o.Fail("extra_roots", "only a root model has extra roots");
    std::string plugs = o.Str("plugs_as");
    if (!plugs.empty()) {
      m.plugs_as = ConnectFromName(plugs);
      if (!m.plugs_as) o.Fail("plugs_as", "unknown connection kind '" + plugs + "'");
    } else if (!m.root) {
      o.Fail("plugs_as", "only root controllers may leave plugs_as empty");
    }
    m.aggregate = o.Bool("aggregate");
    m.offers = ReadKinds(o, "offers");
    if (m.offers.Empty()) o.Fail("offers", "no connection kinds");
    m.autoassign = o.Bool("autoassign");
    m.hotplug = o.Bool("hotplug");
    m.qemu_hotplug = o.Bool("qemu_hotplug");
    m.qemu_hotplug_acpi = o.Bool("qemu_hotplug_acpi");
    m.qemu_root_bus = o.Bool("qemu_root_bus");
    m.qemu_inner_bridge = o.OptBool("qemu_inner_bridge");
    if (const Json* slots = o.Need("slots")) {
      if (!slots->is_array() || slots->size() != 2 || !(*slots)[0].is_number_integer() ||
          !(*slots)[1].is_number_integer()) {
        o.Fail("slots", "expected [first, last]");
      } else {
        int64_t lo = (*slots)[0].get<int64_t>(), hi = (*slots)[1].get<int64_t>();
        if (lo < 0 || hi > 31 || lo > hi) {
          o.Fail("slots", "slot range " + std::to_string(lo) + ".." + std::to_string(hi) +
                              " not within 0..31");
        } else {
          m.min_slot = static_cast<uint32_t>(lo);
          m.max_slot = static_cast<uint32_t>(hi);
        }
      }
    }
    m.min_slot_is_policy = o.OptBool("min_slot_is_policy");
    m.slots_are_policy = o.OptBool("slots_are_policy");
    if (m.slots_are_policy) o.Str("slots_source");
    m.bus_alias = o.OptStr("bus_alias");
    m.target = o.StrMap("target");
    for (const auto& [k, v] : m.target) {
      static const std::set<std::string> kKeys = {"chassis", "port", "chassisNr", "busNr",
                                                  "index"};
      static const std::set<std::string> kRules = {"index", "slot-function", "slot", "auto",
                                                   "free"};
      if (!kKeys.count(k) || !kRules.count(v)) o.Fail("target/" + k, "unknown default '" + v + "'");
    }
    m.target_options = o.Strs("target_options");
    for (const std::string& option : m.target_options) {
      static const std::set<std::string> kOptions = {"index",   "busNr", "node",   "chassisNr",
                                                     "chassis", "port",  "hotplug"};
      if (!kOptions.count(option)) o.Fail("target_options", "unknown option '" + option + "'");
    }
    for (const auto& [k, v] : m.target) {
      if (std::find(m.target_options.begin(), m.target_options.end(), k) ==
          m.target_options.end()) {
        o.Fail("target_options", "the default for '" + k + "' is no option of the model");
      }
    }
    // Without a list, the model takes its QEMU device's name only (or none when it has none).
    if (o.Find("model_names")) {
      m.model_names = o.Strs("model_names");
      if (m.model_names.empty() || m.model_names.front() != m.qemu) {
        o.Fail("model_names", "the first name must be the model's \"qemu\" ('" + m.qemu + "')");
      }
    } else if (!m.qemu.empty()) {
      m.model_names = {m.qemu};
    }
    m.machines = o.Strs("machines");
    m.machine_error = o.Str("machine_error");
    m.index_above_bus = o.Bool("index_above_bus");
    o.Finish();
    cat.controllers.push_back(std::move(m));
  }
}

void LoadDevices(const Json& j, const std::string& file, Catalog& cat, Diagnostics& errs) {
  Obj top(j, nullptr, file, "", errs);
  top.OptStr("source");
  top.OptStr("comment");
  const Json* defaults = top.Need("defaults");
  const Json* classes = top.Need("classes");
  cat.collect_order = top.Strs("collect_order");
  cat.assign_order = top.Strs("assign_order");
  cat.output_order = top.Strs("output_order");
  cat.device_elements = top.Strs("device_elements");
  top.Str("device_elements_source");
  cat.usb_hub_ports = static_cast<uint32_t>(top.Int("usb_hub_ports", 1, 15));
  cat.virtio_serial_ports = static_cast<uint32_t>(top.Int("virtio_serial_ports", 2, 31));
  cat.usb_port_depth = static_cast<uint32_t>(top.Int("usb_port_depth", 1, 8));
  if (const Json* single = top.Need("single_per_domain")) {
    Obj o(*single, nullptr, file, "/single_per_domain", errs);
    cat.single_per_domain = o.Strs("elements");
    o.Str("source");
    o.Finish();
  }
  if (const Json* db = top.Need("disk_buses")) {
    Obj b(*db, nullptr, file, "/disk_buses", errs);
    cat.disk_buses.floppy = b.Str("floppy");
    cat.disk_buses.prefixes = b.StrMap("prefixes");
    cat.disk_buses.fallback = b.Str("fallback");
    b.Str("source");
    b.Finish();
  }
  if (const Json* ids = top.Need("hostdev_identities"); ids && ids->is_array()) {
    for (size_t i = 0; i < ids->size(); ++i) {
      std::string ptr = "/hostdev_identities/" + std::to_string(i);
      Obj h((*ids)[i], nullptr, file, ptr, errs);
      HostdevIdentity id;
      id.type = h.Str("type");
      if (const Json* keys = h.Need("keys"); keys && keys->is_array()) {
        for (const Json& set : *keys) {
          std::vector<std::string> names;
          if (set.is_array()) {
            for (const Json& k : set) {
              if (k.is_string()) names.push_back(k.get<std::string>());
            }
          }
          if (names.empty()) h.Fail("keys", "expected non-empty arrays of property names");
          id.keys.push_back(std::move(names));
        }
      }
      h.Str("source");
      h.Finish();
      cat.hostdev_identities.push_back(std::move(id));
    }
  }
  if (const Json* buses = top.Need("drive_buses"); buses && buses->is_array()) {
    for (size_t i = 0; i < buses->size(); ++i) {
      Obj b((*buses)[i], nullptr, file, "/drive_buses/" + std::to_string(i), errs);
      DriveBus d;
      d.bus = b.Str("bus");
      d.units = static_cast<uint32_t>(b.Int("units", 1, 256));
      d.buses = static_cast<uint32_t>(b.Int("buses", 1, 16));
      d.implicit_model = b.Str("implicit_model");
      d.max_controllers = static_cast<uint32_t>(b.Int("max_controllers", 0, 255));
      d.hostdev_units = static_cast<uint32_t>(b.Int("hostdev_units", 0, 256));
      if (const Json* lim = b.Need("unit_limits"); lim && lim->is_object()) {
        for (const auto& [k, v] : lim->items()) {
          if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 16383) {
            b.Fail("unit_limits/" + k, "expected an integer in 0..16383");
            continue;
          }
          d.unit_limits[k] = static_cast<uint32_t>(v.get<int64_t>());
        }
      }
      b.Str("source");
      b.Finish();
      cat.drive_buses.push_back(d);
    }
  }
  if (const Json* usb = top.Need("usb_devices"); usb && usb->is_array()) {
    for (size_t i = 0; i < usb->size(); ++i) {
      cat.usb_devices.push_back(ReadMatch((*usb)[i], file, "/usb_devices/" + std::to_string(i), errs));
    }
  }
  top.Finish();
  if (!classes || !classes->is_array()) return;
  std::set<std::string> groups(cat.assign_order.begin(), cat.assign_order.end());
  for (size_t i = 0; i < classes->size(); ++i) {
    std::string ptr = "/classes/" + std::to_string(i);
    Obj o((*classes)[i], defaults, file, ptr, errs);
    DeviceClass c;
    c.name = o.Str("name");
    c.element = o.Str("element");
    o.Str("source");
    if (const Json* when = o.Need("when")) c.when = ReadMatch(*when, file, ptr + "/when", errs);
    std::string connect = o.Str("connect");
    if (connect == "pci") {
      c.connect = ConnectNeed::kPci;
    } else if (connect == "pcie") {
      c.connect = ConnectNeed::kPcie;
    } else if (connect != "none") {
      o.Fail("connect", "expected none, pci or pcie, found '" + connect + "'");
    }
    c.group = o.Str("group");
    if (!c.group.empty() && !groups.count(c.group)) {
      o.Fail("group", "'" + c.group + "' is not in assign_order");
    }
    c.virtio = o.Bool("virtio");
    c.mmio_transport = o.Bool("mmio_transport");
    c.integrated = o.Bool("integrated");
    c.companion_function = static_cast<int>(o.Int("companion_function", -1, 7));
    c.usb_ports = static_cast<int>(o.Int("usb_ports", -1, 15));
    c.video_role = o.Str("video_role");
    c.usb_master = o.Str("usb_master");
    c.address_types = o.Strs("address_types");
    c.machines = o.Strs("machines");
    c.machine_error = o.Str("machine_error");
    c.requires_acpi = o.Bool("requires_acpi");
    c.usb_ports_max = static_cast<int>(o.Int("usb_ports_max", -1, 64));
    c.spapr_vio_reg = static_cast<uint32_t>(o.Int("spapr_vio_reg", 0, 0xffffffff));
    c.dimm_slot = o.Bool("dimm_slot");
    c.address_ignored = o.Bool("address_ignored");
    if (!c.video_role.empty() && c.video_role != "any" && c.video_role != "primary" &&
        c.video_role != "alone") {
      o.Fail("video_role", "expected any, primary or alone");
    }
    o.Finish();
    cat.classes.push_back(std::move(c));
  }
}

/// qemu.json "guest": what verify --guest boots, by QEMU binary.
void LoadGuest(const Json& j, const std::string& file, GuestFacts& g, Diagnostics& errs) {
  Obj o(j, nullptr, file, "/guest", errs);
  o.Str("source");
  g.append = o.Str("append");
  g.memory_mib = static_cast<uint32_t>(o.Int("memory_mib", 64, 65536));
  if (const Json* systems = o.Need("systems"); systems && systems->is_object()) {
    for (const auto& [binary, v] : systems->items()) {
      Obj s(v, nullptr, file, "/guest/systems/" + binary, errs);
      GuestSystem& sys = g.systems[binary];
      sys.console = s.Str("console");
      sys.kernels = s.Strs("kernels");
      sys.busybox = s.Strs("busybox");
      sys.elf_machine = static_cast<uint32_t>(s.Int("elf_machine", 1, 65535));
      sys.root_bus_args = s.Strs("root_bus_args");
      sys.machine_options = s.Str("machine_options");
      if (std::string w = s.Str("numa_witness"); w == "acpi") {
        sys.numa_witness = NumaWitness::kAcpi;
      } else if (w != "kernel") {
        s.Fail("numa_witness", "expected \"kernel\" or \"acpi\"");
      }
      s.Finish();
    }
  }
  o.Finish();
}

void LoadQemu(const Json& j, const std::string& file, Catalog& cat, Diagnostics& errs) {
  Obj top(j, nullptr, file, "", errs);
  top.OptStr("source");
  top.OptStr("comment");
  QemuFacts& q = cat.qemu_part.mutable_get();
  q.version = top.Str("version");
  top.Str("version_source");
  q.binaries = top.StrMap("binaries");
  q.controller_properties = top.StrMap("controller_properties");
  q.controller_switches = top.StrMap("controller_switches");
  if (const Json* hints = top.Find("controller_hints")) {
    Obj h(*hints, nullptr, file, "/controller_hints", errs);
    h.Str("source");
    for (const auto& [prop, value] : hints->items()) {
      if (prop == "source") continue;
      q.controller_hints[prop] = h.Str(prop);
    }
    h.Finish();
  }
  if (const Json* probe = top.Need("probe")) {
    Obj p(*probe, nullptr, file, "/probe", errs);
    q.probe_driver = p.Str("driver");
    q.probe_pci_driver = p.OptStr("pci_driver");
    q.probe_pcie_driver = p.OptStr("pcie_driver");
    p.Str("source");
    p.Finish();
  }
  if (const Json* guest = top.Find("guest")) LoadGuest(*guest, file, q.guest, errs);
  if (const Json* copies = top.Need("copies")) {
    Obj c(*copies, nullptr, file, "/copies", errs);
    c.Str("source");
    if (const Json* m = c.Need("match"); m && m->is_array()) {
      for (size_t k = 0; k < m->size(); ++k) {
        q.copies.push_back(ReadMatch((*m)[k], file, "/copies/match/" + std::to_string(k), errs));
      }
    }
    c.Finish();
  }
  if (const Json* machines = top.Need("machines"); machines && machines->is_array()) {
    for (size_t i = 0; i < machines->size(); ++i) {
      std::string ptr = "/machines/" + std::to_string(i);
      Obj o((*machines)[i], nullptr, file, ptr, errs);
      QemuMachine m;
      m.family = o.Str("family");
      m.options = o.Str("options");
      m.cpu = o.Str("cpu");
      o.Str("source");
      if (const Json* b = o.Need("builtin"); b && b->is_array()) {
        for (size_t k = 0; k < b->size(); ++k) {
          m.builtin.push_back(
              ReadMatch((*b)[k], file, ptr + "/builtin/" + std::to_string(k), errs));
        }
      }
      o.Finish();
      q.machines.push_back(std::move(m));
    }
  }
  const Json* defaults = top.Need("defaults");
  const Json* devices = top.Need("devices");
  top.Finish();
  if (!devices || !devices->is_array()) return;
  static const std::map<std::string, AliasNumber> kNumbers = {
      {"none", AliasNumber::kNone},
      {"ordinal", AliasNumber::kOrdinal},
      {"index", AliasNumber::kIndex},
      {"disk-index", AliasNumber::kDiskIndex}};
  static const std::map<std::string, QemuBackend> kBackends = {
      {"", QemuBackend::kNone},
      {"drive", QemuBackend::kDrive},
      {"memdev", QemuBackend::kMemdev},
      {"fsdev", QemuBackend::kFsdev},
      {"audiodev", QemuBackend::kAudiodev},
      {"host", QemuBackend::kHost},
      {"guest-cid", QemuBackend::kGuestCid},
      {"chardev", QemuBackend::kChardev},
      {"chardev-null", QemuBackend::kChardev}};
  for (size_t i = 0; i < devices->size(); ++i) {
    std::string ptr = "/devices/" + std::to_string(i);
    Obj o((*devices)[i], defaults, file, ptr, errs);
    QemuDevice d;
    d.name = o.Str("name");
    o.OptStr("source");
    if (const Json* match = o.Need("match"))
      d.match = ReadMatch(*match, file, ptr + "/match", errs);
    if (d.match.element.empty()) o.Fail("match", "missing \"element\"");
    d.driver = o.Str("driver");
    d.driver_from = o.Str("driver_from");
    if (d.driver.empty() == d.driver_from.empty()) {
      o.Fail("driver", "expected exactly one of driver and driver_from");
    }
    d.mmio_driver = o.Str("mmio_driver");
    d.alias = o.Str("alias");
    std::string number = o.Str("number");
    if (auto it = kNumbers.find(number); it != kNumbers.end()) {
      d.number = it->second;
    } else {
      o.Fail("number", "expected none, ordinal, index or disk-index, found '" + number + "'");
    }
    d.bare_zero = o.Bool("bare_zero");
    if (const Json* props = o.Need("props"); props && props->is_object()) {
      for (const auto& [k, v] : props->items()) {
        if (!v.is_number_integer()) {
          o.Fail("props/" + k, "expected an integer");
          continue;
        }
        d.props[k] = v.get<int64_t>();
      }
    }
    if (const Json* ap = o.Need("attr_props"); ap && ap->is_object()) {
      for (const auto& [k, v] : ap->items()) {
        if (!v.is_array() || v.empty() ||
            !std::all_of(v.begin(), v.end(), [](const Json& e) { return e.is_string(); })) {
          o.Fail("attr_props/" + k, "expected a list of property names");
          continue;
        }
        d.attr_props[k] = v.get<std::vector<std::string>>();
      }
    }
    d.masterbus = o.Bool("masterbus");
    std::string backend = o.Str("backend");
    if (auto it = kBackends.find(backend); it != kBackends.end()) {
      d.backend = it->second;
    } else {
      o.Fail("backend", "unknown backend '" + backend + "'");
    }
    d.standin = o.Str("standin");
    d.machines = o.Strs("machines");
    o.Finish();
    q.devices.push_back(std::move(d));
  }
}

/// The controller model `name` as machine family `family` has it (its own variant if any).
ControllerModelId NeedController(Obj& o, const Catalog& cat, const std::string& key,
                                 const std::string& name, const std::string& family) {
  ControllerModelId id = cat.FindController(name, family);
  if (id < 0) o.Fail(key, "unknown controller model '" + name + "'");
  return id;
}

/// An optional pair of controller models, `{}` or {"A": MODEL, "B": MODEL} (`names` A, B).
void ModelPair(Obj& o, const Catalog& cat, const std::string& key,
               const std::pair<std::string, std::string>& names, const std::string& family,
               ControllerModelId& first, ControllerModelId& second) {
  std::map<std::string, std::string> pair = o.StrMap(key);
  if (pair.empty()) return;
  if (pair.size() != 2 || !pair.count(names.first) || !pair.count(names.second)) {
    o.Fail(key, "expected {} or {\"" + names.first + "\": MODEL, \"" + names.second +
                    "\": MODEL}");
    return;
  }
  first = NeedController(o, cat, key + "/" + names.first, pair[names.first], family);
  second = NeedController(o, cat, key + "/" + names.second, pair[names.second], family);
}

void LoadMachine(const Json& j, const std::string& file, Catalog& cat, Diagnostics& errs) {
  Obj o(j, nullptr, file, "", errs);
  MachineFamily m;
  m.name = o.Str("name");
  o.Str("source");
  m.arches = o.Strs("arches");
  m.machine_names = o.Strs("machine_names");
  m.canonical_names = o.StrMap("canonical_names");
  m.default_for = o.StrMap("default_for");
  o.OptStr("default_for_source");
  m.default_for_is_policy = o.OptBool("default_for_is_policy");
  for (const auto& [arch, name] : m.default_for) {
    if (std::find(m.arches.begin(), m.arches.end(), arch) == m.arches.end()) {
      o.Fail("default_for/" + arch, "not one of the family's arches");
    }
    if (!m.HasName(name)) o.Fail("default_for/" + arch, "'" + name + "' is not one of machine_names");
    for (const MachineFamily& other : cat.machines) {
      if (other.default_for.count(arch)) {
        o.Fail("default_for/" + arch, "already the default of machine family '" + other.name + "'");
      }
    }
  }
  m.root = NeedController(o, cat, "root", o.Str("root"), m.name);
  m.gap_filler = NeedController(o, cat, "gap_filler", o.Str("gap_filler"), m.name);
  m.bridge = NeedController(o, cat, "bridge", o.Str("bridge"), m.name);
  m.pcie = o.Bool("pcie");
  for (const std::string& name : o.Strs("conventional_growth")) {
    m.conventional_growth.push_back(
        NeedController(o, cat, "conventional_growth", name, m.name));
  }
  std::string reserve = o.Str("dry_run_reserve");
  if (!reserve.empty()) {
    m.dry_run_reserve = ConnectFromName(reserve);
    if (!m.dry_run_reserve) o.Fail("dry_run_reserve", "unknown connection kind '" + reserve + "'");
  }
  m.spare_port = o.Bool("spare_port");
  ModelPair(o, cat, "numa_expander", {"expander", "port"}, m.name, m.numa_expander, m.numa_port);
  ModelPair(o, cat, "switch", {"upstream", "downstream"}, m.name, m.switch_upstream,
            m.switch_downstream);
  m.virtio_mmio = o.Bool("virtio_mmio");
  m.virtio_mmio_transports = static_cast<uint32_t>(o.Int("virtio_mmio_transports", 0, 1024));
  m.acpi_pci_hotplug = o.Bool("acpi_pci_hotplug");
  m.root_hotplug_off = o.Strs("root_hotplug_off");
  if (const Json* bad = o.Need("unsupported_devices"); bad && bad->is_array()) {
    for (size_t i = 0; i < bad->size(); ++i) {
      std::string ptr = "/unsupported_devices/" + std::to_string(i);
      Obj u((*bad)[i], nullptr, file, ptr, errs);
      UnsupportedDevice d;
      if (const Json* match = u.Need("match")) d.match = ReadMatch(*match, file, ptr + "/match", errs);
      d.message = u.Str("message");
      u.OptStr("source");
      u.Finish();
      m.unsupported_devices.push_back(std::move(d));
    }
  }
  if (const Json* reserved = o.Need("reserved"); reserved && reserved->is_array()) {
    for (size_t i = 0; i < reserved->size(); ++i) {
      Obj r((*reserved)[i], nullptr, file, "/reserved/" + std::to_string(i), errs);
      ReservedFunction f;
      f.slot = static_cast<uint32_t>(r.Int("slot", 0, 31));
      f.function = static_cast<uint32_t>(r.Int("function", 0, 7));
      f.what = r.Str("what");
      r.Finish();
      m.reserved.push_back(f);
    }
  }
  if (const Json* placements = o.Need("placements"); placements && placements->is_array()) {
    for (size_t i = 0; i < placements->size(); ++i) {
      std::string ptr = "/placements/" + std::to_string(i);
      Obj p((*placements)[i], nullptr, file, ptr, errs);
      Placement pl;
      if (const Json* match = p.Need("match")) pl.match = ReadMatch(*match, file, ptr + "/match", errs);
      if (const Json* slots = p.Need("slots"); slots && slots->is_array()) {
        for (const Json& s : *slots) {
          if (!s.is_number_integer() || s.get<int64_t>() < 0 || s.get<int64_t>() > 31) {
            p.Fail("slots", "slots must be integers in 0..31");
            continue;
          }
          pl.slots.push_back(static_cast<uint32_t>(s.get<int64_t>()));
        }
      }
      pl.function = static_cast<uint32_t>(p.Int("function", 0, 7));
      std::string mode = p.Str("mode");
      if (mode == "forced") {
        pl.mode = PlacementMode::kForced;
      } else if (mode == "preferred") {
        pl.mode = PlacementMode::kPreferred;
      } else if (mode == "primary-video") {
        pl.mode = PlacementMode::kPrimaryVideo;
      } else {
        p.Fail("mode", "expected forced, preferred or primary-video");
      }
      if (p.Find("multifunction")) pl.multifunction = p.Bool("multifunction");
      if (p.Find("empty_address")) pl.empty_address = p.Bool("empty_address");
      pl.message = p.OptStr("message");
      p.Finish();
      m.placements.push_back(std::move(pl));
    }
  }
  m.model_defaults = o.StrMap("model_defaults");
  if (const Json* defs = o.Need("default_devices"); defs && defs->is_array()) {
    for (size_t i = 0; i < defs->size(); ++i) {
      std::string ptr = "/default_devices/" + std::to_string(i);
      Obj d((*defs)[i], nullptr, file, ptr, errs);
      DefaultDevice dd;
      d.OptStr("source");
      for (auto& [k, v] : d.StrMap("props")) {
        if (k == "element") {
          dd.element = std::move(v);
        } else {
          dd.props.emplace(k, std::move(v));
        }
      }
      if (dd.element.empty()) d.Fail("props", "missing \"element\"");
      if (const Json* unless = d.Need("unless")) dd.unless = ReadMatch(*unless, file, ptr + "/unless", errs);
      dd.with_graphics = d.OptBool("with_graphics");
      d.Finish();
      m.default_devices.push_back(std::move(dd));
    }
  }
  o.Finish();
  cat.machines.push_back(std::move(m));
}

// Which device classes each chipset placement may match: a class's devices have its element
// and meet its match, so a placement naming another element, or listing a property at values
// the class's match excludes, never matches them. Done once here (and so at build time for the
// built-in catalogue's image), not for every device of every plan.
void DerivePlacementClasses(Catalog& cat) {
  const size_t words = (cat.classes.size() + 63) / 64;
  for (MachineFamily& m : cat.machines) {
    for (Placement& p : m.placements) {
      p.classes.assign(words, 0);
      for (size_t c = 0; c < cat.classes.size(); ++c) {
        const DeviceClass& dc = cat.classes[c];
        const bool other_element = !p.match.element.empty() && p.match.element != dc.element;
        if (other_element || dc.when.RulesOut(p.match)) continue;
        p.classes[c / 64] |= uint64_t{1} << (c % 64);
      }
    }
  }
}

// The class of each machine default as the data gives it, so that a plan that does not change
// the device need not classify it.
void DeriveDefaultDeviceClasses(Catalog& cat) {
  for (MachineFamily& m : cat.machines) {
    for (DefaultDevice& d : m.default_devices) {
      const DeviceClass* c = cat.Classify(d.element, d.props);
      d.class_id = c ? static_cast<int32_t>(c - cat.classes.data()) : -1;
    }
  }
}

}  // namespace

Result<Catalog> LoadCatalog(const std::vector<DataFile>& files) {
  Catalog cat;
  Diagnostics errs;
  const DataFile* controllers = nullptr;
  const DataFile* devices = nullptr;
  for (const DataFile& f : files) {
    if (f.name == "controllers.json") controllers = &f;
    if (f.name == "devices.json") devices = &f;
  }
  if (!controllers || !devices) {
    return Error(Rule::kBadValue, "data: controllers.json and devices.json are both required");
  }
  if (auto j = Parse(*controllers, errs)) LoadControllers(*j, controllers->name, cat, errs);
  if (auto j = Parse(*devices, errs)) LoadDevices(*j, devices->name, cat, errs);
  for (const DataFile& f : files) {
    if (f.name.rfind("machines/", 0) != 0) continue;
    if (auto j = Parse(f, errs)) LoadMachine(*j, f.name, cat, errs);
  }
  for (const DataFile& f : files) {
    if (f.name != "qemu.json") continue;
    if (auto j = Parse(f, errs)) LoadQemu(*j, f.name, cat, errs);
  }
  for (const MachineFamily& m : cat.machines) {
    if (!cat.qemu().devices.empty() && !cat.qemu().FindMachine(m.name)) {
      errs.push_back(
          Error(Rule::kBadValue, "qemu.json: /machines: no record for family '" + m.name + "'"));
    }
  }
  if (cat.machines.empty()) errs.push_back(Error(Rule::kBadValue, "data: no machine families"));
  for (size_t i = 0; i < cat.classes.size(); ++i) {
    for (const std::string& family : cat.classes[i].machines) {
      bool known = std::any_of(cat.machines.begin(), cat.machines.end(),
                               [&](const MachineFamily& m) { return m.name == family; });
      if (!known) {
        errs.push_back(Error(Rule::kBadValue, "devices.json: /classes/" + std::to_string(i) +
                                                  "/machines: unknown machine family '" + family +
                                                  "'"));
      }
    }
  }
  if (!errs.empty()) return errs;
  DerivePlacementClasses(cat);
  DeriveDefaultDeviceClasses(cat);
  cat.IndexClasses();
  return cat;
}

}  // namespace pciplan
