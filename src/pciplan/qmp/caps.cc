#include "pciplan/qmp/caps.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/qmp/caps_probe.h"
#include "pciplan/qmp/qemu_process.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kProbeId = "pciplan-caps-probe";

/// The binary's absolute path: `name` itself when it has a '/', else the first in $PATH.
std::string FindBinary(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    std::error_code ec;
    fs::path p = fs::absolute(name, ec);
    return ec ? name : p.lexically_normal().string();
  }
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (dir.empty()) continue;
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

std::string CacheDir(const CapsOptions& options) {
  if (!options.cache_dir.empty()) return options.cache_dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return std::string(xdg) + "/pciplan";
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return std::string(home) + "/.cache/pciplan";
  }
  return {};
}

/// The cache file of a binary: one per path (FNV-1a of it), so that binaries never share one.
std::string CacheFile(const std::string& dir, const std::string& binary) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : binary) h = (h ^ c) * 1099511628211ull;
  return fmt::format("{}/caps-{:016x}.json", dir, h);
}

std::string SlotFunction(uint32_t slot, uint32_t function) {
  return fmt::format("{:02x}.{}", slot, function);
}

/// "0-31", "1-31", "0 2-5", "none".
std::string SlotRanges(const std::set<uint32_t>& slots) {
  std::string out;
  for (auto it = slots.begin(); it != slots.end();) {
    uint32_t first = *it, last = *it;
    for (++it; it != slots.end() && *it == last + 1; ++it) last = *it;
    out += (out.empty() ? "" : " ") +
           (first == last ? std::to_string(first) : fmt::format("{}-{}", first, last));
  }
  return out.empty() ? "none" : out;
}

/// The slots of a controller's bus a probe was taken in.
std::set<uint32_t> Taken(const CapsController& c, bool CapsSlot::*probe) {
  std::set<uint32_t> out;
  for (const CapsSlot& s : c.slots) {
    if (s.*probe) out.insert(s.slot);
  }
  return out;
}

/// Every QEMU device type pciplan may put on a command line.
std::set<std::string> KnownDrivers(const Catalog& catalog) {
  std::set<std::string> out;
  for (const ControllerModel& c : catalog.controllers) {
    if (!c.qemu.empty()) out.insert(c.qemu);
  }
  for (const QemuDevice& d : catalog.qemu().devices) {
    for (const std::string* s : {&d.driver, &d.mmio_driver, &d.standin}) {
      if (!s->empty()) out.insert(*s);
    }
  }
  if (!catalog.qemu().probe_driver.empty()) out.insert(catalog.qemu().probe_driver);
  return out;
}

/// QEMU's device aliases, from the lines `name "lsi53c895a", bus PCI, alias "lsi"` of
/// `BIN -device help` (QMP does not list them).
std::map<std::string, std::string> DeviceAliases(const std::string& binary) {
  std::map<std::string, std::string> out;
  std::string quoted = "'";
  for (char c : binary) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  FILE* help = ::popen((quoted + " -nodefaults -machine none -device help 2>/dev/null").c_str(), "r");
  if (!help) return out;
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, help)) > 0;) text.append(buf, n);
  ::pclose(help);
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto quoted_after = [&](const std::string& key) -> std::string {
      size_t at = line.find(key + " \"");
      if (at == std::string::npos) return {};
      at += key.size() + 2;
      size_t end = line.find('"', at);
      return end == std::string::npos ? std::string() : line.substr(at, end - at);
    };
    std::string name = quoted_after("name"), alias = quoted_after("alias");
    if (!name.empty() && !alias.empty()) out[alias] = name;
  }
  return out;
}

QemuLaunch Launch(const std::string& binary, std::vector<std::string> args, int timeout_ms) {
  QemuLaunch l;
  l.binary = binary;
  l.args = std::move(args);
  for (const char* a : {"-nodefaults", "-display", "none", "-S"}) l.args.push_back(a);
  l.timeout_ms = timeout_ms;
  return l;
}

/// The -machine value a family's machine type is started with (libvirt's options).
std::string MachineOption(const CapsMachine& m, const MachineFamily* family,
                          const Catalog& catalog) {
  const QemuMachine* qm = family ? catalog.qemu().FindMachine(family->name) : nullptr;
  return qm && !qm->options.empty() ? m.name + "," + qm->options : m.name;
}

std::string CpuOption(const MachineFamily* family, const Catalog& catalog) {
  const QemuMachine* qm = family ? catalog.qemu().FindMachine(family->name) : nullptr;
  return qm ? qm->cpu : "";
}

/// Starts the machine type and reads what it builds on its root bus, and whether that bus takes
/// a hot-plug.
Result<bool> ProbeMachine(const std::string& binary, CapsMachine& m, const MachineFamily* family,
                          const Catalog& catalog, int timeout_ms) {
  std::vector<std::string> args = {"-machine", MachineOption(m, family, catalog)};
  if (std::string cpu = CpuOption(family, catalog); !cpu.empty()) {
    args.push_back("-cpu");
    args.push_back(cpu);
  }
  Result<std::unique_ptr<QemuProcess>> qemu = QemuProcess::Start(Launch(binary, args, timeout_ms));
  if (!qemu) return qemu.errors();
  QmpClient& qmp = (*qemu)->qmp();
  Result<Json> pci = qmp.Execute("query-pci");
  if (!pci) return pci.errors();
  m.probed = true;
  m.family = family ? family->name : "";
  // The board's virtio-mmio transports: QEMU creates them unparented, as children of
  // /machine/unattached of type virtio-mmio.
  if (Result<Json> kids = qmp.Execute("qom-list", Json{{"path", "/machine/unattached"}})) {
    for (const Json& k : *kids) {
      if (k.value("type", "") == "child<virtio-mmio>") ++m.virtio_mmio_transports;
    }
  }
  std::set<uint32_t> used;
  for (const Json& bus : *pci) {
    if (bus.value("bus", -1) != 0) continue;
    for (const Json& d : bus.value("devices", Json::array())) {
      if (d.value("bus", -1) != 0) continue;
      CapsFunction f;
      f.slot = d.value("slot", 0u);
      f.function = d.value("function", 0u);
      f.class_code = d.value("class_info", Json::object()).value("class", 0u);
      f.vendor = d.value("id", Json::object()).value("vendor", 0u);
      f.device = d.value("id", Json::object()).value("device", 0u);
      m.builtins.push_back(f);
      used.insert(f.slot);
    }
  }
  std::sort(m.builtins.begin(), m.builtins.end(), [](const CapsFunction& a, const CapsFunction& b) {
    return a.slot != b.slot ? a.slot < b.slot : a.function < b.function;
  });
  if (!family || family->root < 0 || catalog.qemu().probe_driver.empty()) return true;
  const ControllerModel& root = catalog.controller(family->root);
  m.root_bus = root.bus_alias;
  uint32_t slot = root.min_slot;
  while (slot <= root.max_slot && used.count(slot)) ++slot;
  if (slot > root.max_slot) return true;
  Result<Json> added = qmp.Execute("device_add", Json{{"driver", catalog.qemu().probe_driver},
                                                      {"id", kProbeId},
                                                      {"bus", m.root_bus},
                                                      {"addr", fmt::format("{:#x}", slot)}});
  if (added) {
    m.root_hotplug = true;
  } else {
    m.root_hotplug_error = added.errors().front().message;
    // "Bus 'pcie.0' does not support hotplugging"; another refusal (no such bus) says nothing
    // about hot-plug.
    if (m.root_hotplug_error.find("hotplug") != std::string::npos) m.root_hotplug = false;
  }
  return true;
}

Result<QemuCaps> Probe(const std::string& binary, const CapsOptions& options,
                       const Catalog& catalog) {
  QemuCaps caps;
  caps.binary = binary;
  {
    Result<std::unique_ptr<QemuProcess>> qemu =
        QemuProcess::Start(Launch(binary, {"-machine", "none"}, options.timeout_ms));
    if (!qemu) return qemu.errors();
    QmpClient& qmp = (*qemu)->qmp();
    Result<Json> version = qmp.Execute("query-version");
    if (!version) return version.errors();
    const Json q = version->value("qemu", Json::object());
    caps.version =
        fmt::format("{}.{}.{}", q.value("major", 0), q.value("minor", 0), q.value("micro", 0));
    caps.package = version->value("package", "");
    Result<Json> machines = qmp.Execute("query-machines");
    if (!machines) return machines.errors();
    for (const Json& j : *machines) {
      CapsMachine m;
      m.name = j.value("name", "");
      m.alias = j.value("alias", "");
      m.is_default = j.value("is-default", false);
      m.deprecated = j.value("deprecated", false);
      caps.machines.push_back(std::move(m));
    }
    std::sort(caps.machines.begin(), caps.machines.end(),
              [](const CapsMachine& a, const CapsMachine& b) { return a.name < b.name; });
    Result<Json> types =
        qmp.Execute("qom-list-types", Json{{"implements", "device"}, {"abstract", false}});
    if (!types) return types.errors();
    for (const Json& t : *types) caps.device_types.insert(t.value("name", ""));
    caps.device_aliases = DeviceAliases(binary);
    for (const std::string& driver : KnownDrivers(catalog)) {
      const std::string type = caps.DeviceType(driver);
      if (type.empty() || caps.properties.count(type)) continue;
      Result<Json> props = qmp.Execute("device-list-properties", Json{{"typename", type}});
      if (!props) continue;  // a type QEMU cannot describe without a machine: none known
      std::set<std::string>& names = caps.properties[type];
      for (const Json& p : *props) names.insert(p.value("name", ""));
    }
  }
  std::vector<std::string> wanted = options.machines;
  std::string arch = ArchOfBinary(binary, catalog);
  if (wanted.empty()) {
    for (const MachineFamily* f : FamiliesOfBinary(binary, catalog)) {
      wanted.push_back(f->MachineType());
    }
  }
  for (const std::string& name : wanted) {
    auto m = std::find_if(caps.machines.begin(), caps.machines.end(), [&](const CapsMachine& c) {
      return c.name == name || c.alias == name;
    });
    if (m == caps.machines.end()) {
      return Error(Rule::kUnknownMachine,
                   fmt::format("{} has no machine type '{}'", caps.Describe(), name));
    }
    const MachineFamily* family = catalog.FindMachine(arch, m->name);
    Result<bool> probed = ProbeMachine(binary, *m, family, catalog, options.timeout_ms);
    if (!probed) return probed.errors();
    ControllerProbeRequest request;
    request.binary = binary;
    request.machine = MachineOption(*m, family, catalog);
    request.cpu = CpuOption(family, catalog);
    request.family = family;
    for (const CapsFunction& f : m->builtins) request.root_used.insert(f.slot);
    request.timeout_ms = options.timeout_ms;
    Result<std::vector<CapsController>> controllers = ProbeControllers(request, catalog, caps);
    if (!controllers) return controllers.errors();
    m->controllers = std::move(controllers.value());
  }
  return caps;
}

}  // namespace

std::string ArchOfBinary(const std::string& binary, const Catalog& catalog) {
  std::string base = fs::path(binary).filename().string();
  for (const auto& [arch, name] : catalog.qemu().binaries) {
    if (name == base) return arch;
  }
  return {};
}

std::vector<const MachineFamily*> FamiliesOfBinary(const std::string& binary,
                                                   const Catalog& catalog) {
  std::string base = fs::path(binary).filename().string();
  std::vector<const MachineFamily*> out;
  for (const MachineFamily& f : catalog.machines) {
    for (const std::string& arch : f.arches) {
      auto b = catalog.qemu().binaries.find(arch);
      if (b != catalog.qemu().binaries.end() && b->second == base) {
        out.push_back(&f);
        break;
      }
    }
  }
  return out;
}

std::set<uint32_t> CapsController::ColdSlots() const {
  std::set<uint32_t> out;
  for (const CapsSlot& s : slots) {
    if (s.cold_pci || s.cold_pcie) out.insert(s.slot);
  }
  return out;
}

const CapsController* CapsMachine::FindController(const std::string& model) const {
  for (const CapsController& c : controllers) {
    if (c.model == model) return &c;
  }
  return nullptr;
}

const CapsMachine* QemuCaps::FindMachine(const std::string& name) const {
  for (const CapsMachine& m : machines) {
    if (m.name == name) return &m;
  }
  for (const CapsMachine& m : machines) {
    if (!m.alias.empty() && m.alias == name) return &m;
  }
  return nullptr;
}

std::string QemuCaps::DeviceType(const std::string& driver) const {
  if (device_types.count(driver)) return driver;
  auto alias = device_aliases.find(driver);
  return alias != device_aliases.end() && device_types.count(alias->second) ? alias->second : "";
}

std::string QemuCaps::Describe() const {
  return fmt::format("{} (QEMU {})", binary, version.empty() ? "of unknown version" : version);
}

std::string CapsJson(const QemuCaps& caps) {
  Json j;
  j["format"] = QemuCaps::kFormat;
  j["kind"] = "caps";
  j["binary"] = caps.binary;
  j["size"] = caps.size;
  j["mtime_ns"] = caps.mtime_ns;
  j["version"] = caps.version;
  j["package"] = caps.package;
  j["machines"] = Json::array();
  for (const CapsMachine& m : caps.machines) {
    Json mj{{"name", m.name},
            {"alias", m.alias},
            {"default", m.is_default},
            {"deprecated", m.deprecated}};
    if (m.probed) {
      mj["family"] = m.family;
      mj["root_bus"] = m.root_bus;
      mj["root_hotplug"] = m.root_hotplug ? Json(*m.root_hotplug) : Json(nullptr);
      mj["virtio_mmio_transports"] = m.virtio_mmio_transports;
      if (!m.root_hotplug_error.empty()) mj["root_hotplug_error"] = m.root_hotplug_error;
      mj["builtins"] = Json::array();
      for (const CapsFunction& f : m.builtins) {
        mj["builtins"].push_back({{"slot", f.slot},
                                  {"function", f.function},
                                  {"class", f.class_code},
                                  {"vendor", f.vendor},
                                  {"device", f.device}});
      }
      mj["controllers"] = Json::array();
      for (const CapsController& c : m.controllers) {
        Json cj{{"model", c.model}, {"bus", c.bus}};
        if (!c.error.empty()) cj["error"] = c.error;
        if (!c.cold_error.empty()) cj["cold_error"] = c.cold_error;
        if (!c.hot_error.empty()) cj["hot_error"] = c.hot_error;
        // One string per probe: slot s takes a conventional probe cold when cold_pci[s] is 'y';
        // 'o' where the machine's own device is.
        std::string cold_pci, cold_pcie, hot_pci, hot_pcie;
        for (const CapsSlot& sl : c.slots) {
          auto mark = [&](bool taken) { return sl.occupied ? 'o' : taken ? 'y' : '-'; };
          cold_pci += mark(sl.cold_pci);
          cold_pcie += mark(sl.cold_pcie);
          hot_pci += mark(sl.hot_pci);
          hot_pcie += mark(sl.hot_pcie);
        }
        cj["cold_pci"] = cold_pci;
        cj["cold_pcie"] = cold_pcie;
        cj["hot_pci"] = hot_pci;
        cj["hot_pcie"] = hot_pcie;
        mj["controllers"].push_back(std::move(cj));
      }
    }
    j["machines"].push_back(std::move(mj));
  }
  j["device_types"] = caps.device_types;
  j["device_aliases"] = caps.device_aliases;
  j["properties"] = Json::object();
  for (const auto& [type, names] : caps.properties) j["properties"][type] = names;
  return j.dump(1) + "\n";
}

Result<QemuCaps> CapsFromJson(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object() || j.value("format", 0) != QemuCaps::kFormat) {
    return Error(Rule::kBadValue, "not a capabilities document of this pciplan");
  }
  try {
    QemuCaps caps;
    caps.binary = j.at("binary").get<std::string>();
    caps.size = j.at("size").get<uint64_t>();
    caps.mtime_ns = j.at("mtime_ns").get<int64_t>();
    caps.version = j.at("version").get<std::string>();
    caps.package = j.at("package").get<std::string>();
    for (const Json& mj : j.at("machines")) {
      CapsMachine m;
      m.name = mj.at("name").get<std::string>();
      m.alias = mj.at("alias").get<std::string>();
      m.is_default = mj.at("default").get<bool>();
      m.deprecated = mj.at("deprecated").get<bool>();
      if (mj.contains("builtins")) {
        m.probed = true;
        m.family = mj.at("family").get<std::string>();
        m.root_bus = mj.at("root_bus").get<std::string>();
        if (mj.at("root_hotplug").is_boolean()) m.root_hotplug = mj.at("root_hotplug").get<bool>();
        m.root_hotplug_error = mj.value("root_hotplug_error", "");
        m.virtio_mmio_transports = mj.at("virtio_mmio_transports").get<uint32_t>();
        for (const Json& f : mj.at("builtins")) {
          m.builtins.push_back({f.at("slot").get<uint32_t>(), f.at("function").get<uint32_t>(),
                                f.at("class").get<uint32_t>(), f.at("vendor").get<uint32_t>(),
                                f.at("device").get<uint32_t>()});
        }
        for (const Json& cj : mj.at("controllers")) {
          CapsController c;
          c.model = cj.at("model").get<std::string>();
          c.bus = cj.at("bus").get<std::string>();
          c.error = cj.value("error", "");
          c.cold_error = cj.value("cold_error", "");
          c.hot_error = cj.value("hot_error", "");
          const std::string cold_pci = cj.at("cold_pci").get<std::string>();
          const std::string cold_pcie = cj.at("cold_pcie").get<std::string>();
          const std::string hot_pci = cj.at("hot_pci").get<std::string>();
          const std::string hot_pcie = cj.at("hot_pcie").get<std::string>();
          const size_t n = cold_pci.size();
          if (cold_pcie.size() != n || hot_pci.size() != n || hot_pcie.size() != n || n > 32) {
            return Error(Rule::kBadValue, "a malformed capabilities document: controller " +
                                              c.model + ": probe strings differ in length");
          }
          for (size_t s = 0; s < n; ++s) {
            c.slots.push_back(CapsSlot{static_cast<uint32_t>(s), cold_pci[s] == 'y',
                                       cold_pcie[s] == 'y', hot_pci[s] == 'y', hot_pcie[s] == 'y',
                                       cold_pci[s] == 'o'});
          }
          m.controllers.push_back(std::move(c));
        }
      }
      caps.machines.push_back(std::move(m));
    }
    caps.device_types = j.at("device_types").get<std::set<std::string>>();
    caps.device_aliases = j.at("device_aliases").get<std::map<std::string, std::string>>();
    for (const auto& [type, names] : j.at("properties").items()) {
      caps.properties[type] = names.get<std::set<std::string>>();
    }
    return caps;
  } catch (const Json::exception& e) {
    return Error(Rule::kBadValue, std::string("a malformed capabilities document: ") + e.what());
  }
}

Result<QemuCaps> LoadQemuCaps(const CapsOptions& options, const Catalog& catalog, bool* started) {
  if (started) *started = false;
  std::string binary = FindBinary(options.qemu);
  struct stat st {};
  if (binary.empty() || stat(binary.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Error(Rule::kQemu, fmt::format("no QEMU binary '{}'", options.qemu));
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  const int64_t mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  const std::string dir = CacheDir(options);
  const std::string file = dir.empty() ? "" : CacheFile(dir, binary);
  // A cache entry answers only for the same binary, file and machine types asked about.
  auto fits = [&](const QemuCaps& c) {
    if (c.binary != binary || c.size != size || c.mtime_ns != mtime_ns) return false;
    for (const std::string& name : options.machines) {
      const CapsMachine* m = c.FindMachine(name);
      if (!m || !m->probed) return false;
    }
    return true;
  };
  if (!options.refresh && !file.empty()) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    if (in) {
      Result<QemuCaps> cached = CapsFromJson(text.str());
      if (cached && fits(*cached)) return cached;
    }
  }
  if (started) *started = true;
  Result<QemuCaps> caps = Probe(binary, options, catalog);
  if (!caps) return caps;
  caps->size = size;
  caps->mtime_ns = mtime_ns;
  if (!file.empty()) {
    // Best effort, written whole or not at all: a cache that cannot be written costs a probe.
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::string tmp = fmt::format("{}.{}.tmp", file, getpid());
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << CapsJson(*caps);
    }
    fs::rename(tmp, file, ec);
    if (ec) fs::remove(tmp, ec);
  }
  return caps;
}

std::string RenderCapsText(const QemuCaps& caps) {
  std::string out = fmt::format("{}: {}\n", caps.Describe(), caps.package);
  size_t deprecated = 0;
  std::string def;
  for (const CapsMachine& m : caps.machines) {
    deprecated += m.deprecated ? 1 : 0;
    if (m.is_default) def = m.name;
  }
  out += fmt::format("machine types: {} ({} deprecated), default {}\n", caps.machines.size(),
                     deprecated, def.empty() ? "none" : def);
  out += fmt::format("device types: {}; properties read for the {} pciplan uses\n",
                     caps.device_types.size(), caps.properties.size());
  for (const CapsMachine& m : caps.machines) {
    if (!m.probed) continue;
    std::string fns;
    for (const CapsFunction& f : m.builtins) {
      fns += fmt::format(" {}={:04x}", SlotFunction(f.slot, f.function), f.class_code);
    }
    out += fmt::format(
        "{}{} ({}): root bus {} built in:{}; hot-plug into it: {}; virtio-mmio transports: {}\n",
        m.name, m.alias.empty() ? "" : " alias " + m.alias,
        m.family.empty() ? "no pciplan family" : "family " + m.family,
        m.root_bus.empty() ? "?" : m.root_bus, fns.empty() ? " none" : fns,
        !m.root_hotplug ? "unknown" : *m.root_hotplug ? "yes" : "no", m.virtio_mmio_transports);
    for (const CapsController& c : m.controllers) {
      if (!c.error.empty()) {
        out += fmt::format("  {}: not started: {}\n", c.model, c.error);
        continue;
      }
      std::set<uint32_t> own;
      for (const CapsSlot& s : c.slots) {
        if (s.occupied) own.insert(s.slot);
      }
      out += fmt::format(
          "  {} ({}): slots taking PCI {}, PCIe {}; hot-plug of PCI {}, PCIe {}{}\n", c.model,
          c.bus, SlotRanges(Taken(c, &CapsSlot::cold_pci)),
          SlotRanges(Taken(c, &CapsSlot::cold_pcie)), SlotRanges(Taken(c, &CapsSlot::hot_pci)),
          SlotRanges(Taken(c, &CapsSlot::hot_pcie)),
          own.empty() ? "" : "; the machine's own in " + SlotRanges(own));
    }
  }
  return out;
}

Diagnostics CheckPlanForQemu(const Domain& domain, Plan& plan, const Catalog& catalog,
                             const QemuCaps& caps) {
  Diagnostics out;
  const std::string asked = domain.machine.empty() ? plan.machine : domain.machine;
  const CapsMachine* m = caps.FindMachine(asked);
  if (!m) {
    Diagnostic d = Error(Rule::kUnknownMachine,
                         fmt::format("machine type '{}' is not one {} has", asked, caps.Describe()));
    if (domain.os_type_offset != std::string::npos) {
      d.line = LineOf(domain.text, domain.os_type_offset);
    }
    out.push_back(std::move(d));
    return out;
  }
  plan.machine = m->name;  // an alias resolved as this binary resolves it
  QemuArgsOptions options;
  options.binary_properties = &caps.properties;
  Result<QemuCommand> cmd = BuildQemuCommand(domain, plan, catalog, options);
  if (!cmd) return cmd.errors();
  for (const QemuDeviceArg& a : cmd->devices) {
    const std::string driver = a.object.value("driver", "");
    const size_t i = static_cast<size_t>(a.device);
    auto problem = [&](std::string message) {
      Diagnostic d = Error(Rule::kDeviceUnsupported, std::move(message),
                           DeviceRef::DescribeAt(plan.devices, i),
                           a.pci ? a.address.ToString() : "");
      d.line = plan.devices[i].line;
      out.push_back(std::move(d));
    };
    const std::string type = caps.DeviceType(driver);
    if (type.empty()) {
      problem(fmt::format("{} has no device '{}'", caps.Describe(), driver));
      continue;
    }
    auto props = caps.properties.find(type);
    if (props == caps.properties.end()) continue;
    for (const auto& [key, value] : a.object.items()) {
      if (key == "driver" || key == "id" || key == "bus" || props->second.count(key)) continue;
      problem(fmt::format("{}'s device '{}' has no property '{}'", caps.Describe(), driver, key));
    }
  }
  return out;
}

namespace {

/// Whether the data says QEMU takes a hot-plug into a controller's slots on a family's machine
/// (under the main root bus, where caps probes it): ACPI's hot-plug only where the machine has it.
bool DataHotplug(const ControllerModel& c, const MachineFamily& f) {
  return c.qemu_hotplug && (!c.qemu_hotplug_acpi || f.acpi_pci_hotplug);
}

/// The facts of each probed controller: its slot range, the kinds of device the data says its
/// slots take, and (where endpoints go) whether they take a hot-plug.
template <class Fact>
void CompareControllers(const MachineFamily& f, const CapsMachine& m, const Catalog& catalog,
                        Fact&& fact) {
  for (const CapsController& c : m.controllers) {
    ControllerModelId id = catalog.FindController(c.model);
    if (id < 0) continue;
    const ControllerModel& model = catalog.controller(id);
    if (!c.error.empty()) {
      fact(fmt::format("{}: a {} starts on {}", f.name, c.model, m.name), false, c.error);
      continue;
    }
    // The probes are endpoints: what a bus that takes only controllers takes is not probed.
    if (!model.offers.HasEndpoint()) continue;
    // The slots of the data's range, less those the machine's own devices take (root bus).
    std::set<uint32_t> range;
    for (uint32_t s = model.min_slot; s <= model.max_slot; ++s) range.insert(s);
    for (const CapsSlot& s : c.slots) {
      if (s.occupied) range.erase(s.slot);
    }
    const std::set<uint32_t> cold = c.ColdSlots();
    const std::string slots = SlotRanges(range);
    if (model.root) {
      // Its range less the built-ins: the built-in functions' fact above.
    } else if (model.slots_are_policy) {
      // pciplan's slots are a choice within what QEMU takes.
      fact(fmt::format("{}: QEMU takes a device in {}'s slots {} (of {})", f.name, c.model, slots,
                       SlotRanges(cold)),
           std::includes(cold.begin(), cold.end(), range.begin(), range.end()), SlotRanges(cold));
    } else {
      fact(fmt::format("{}: {}'s bus has slots {}", f.name, c.model, slots), cold == range,
           SlotRanges(cold));
    }
    struct Kind {
      Connect connect;
      bool CapsSlot::*cold;
      bool CapsSlot::*hot;
      const char* name;
    };
    const Kind kinds[] = {{Connect::kPci, &CapsSlot::cold_pci, &CapsSlot::hot_pci, "PCI"},
                          {Connect::kPcie, &CapsSlot::cold_pcie, &CapsSlot::hot_pcie, "PCIe"}};
    const bool hotplug = DataHotplug(model, f);
    for (const Kind& k : kinds) {
      if (!model.offers.Has(k.connect)) continue;
      const std::set<uint32_t> taken = Taken(c, k.cold);
      fact(fmt::format("{}: {}'s slots {} take a {} device", f.name, c.model, slots, k.name),
           std::includes(taken.begin(), taken.end(), range.begin(), range.end()),
           "only " + SlotRanges(taken));
      std::set<uint32_t> hot = Taken(c, k.hot), in_range;
      for (uint32_t s : hot) {
        if (range.count(s)) in_range.insert(s);
      }
      fact(fmt::format("{}: {}'s slots {} {} a hot-plug of a {} device", f.name, c.model, slots,
                       hotplug ? "take" : "refuse", k.name),
           hotplug ? in_range == range : in_range.empty(),
           "hot-plug into " + SlotRanges(in_range) +
               (c.hot_error.empty() ? "" : "; " + c.hot_error));
    }
  }
}

}  // namespace

std::vector<CapsFact> CompareCapsWithData(const QemuCaps& caps, const Catalog& catalog) {
  std::vector<CapsFact> out;
  auto fact = [&](std::string what, bool agrees, std::string binary = {}) {
    out.push_back(CapsFact{std::move(what), agrees, agrees ? "" : std::move(binary)});
  };
  const CapsMachine* qemu_default = nullptr;
  for (const CapsMachine& m : caps.machines) {
    if (m.is_default) qemu_default = &m;
  }
  for (const MachineFamily* f : FamiliesOfBinary(caps.binary, catalog)) {
    for (const auto& [alias, name] : f->canonical_names) {
      const CapsMachine* m = caps.FindMachine(alias);
      fact(fmt::format("{}: machine '{}' is '{}'", f->name, alias, name), m && m->name == name,
           m ? m->name : "no such machine");
    }
    std::string arch = ArchOfBinary(caps.binary, catalog);
    auto def = f->default_for.find(arch);
    if (def != f->default_for.end() && !f->default_for_is_policy) {
      bool same = qemu_default && (qemu_default->name == def->second ||
                                   qemu_default->alias == def->second);
      fact(fmt::format("{}: the default machine of {} is '{}'", f->name, arch, def->second), same,
           qemu_default ? qemu_default->name : "no default");
    }
    for (const ControllerModel& c : catalog.controllers) {
      bool here = c.machines.empty() ||
                  std::find(c.machines.begin(), c.machines.end(), f->name) != c.machines.end();
      if (!here || c.qemu.empty()) continue;
      fact(fmt::format("{}: controller {} is QEMU device '{}'", f->name, c.name, c.qemu),
           !caps.DeviceType(c.qemu).empty(), "no such device");
    }
    const CapsMachine* m = caps.FindMachine(f->MachineType());
    if (!m || !m->probed) continue;
    fact(fmt::format("{}: {} has {} virtio-mmio transports", f->name, m->name,
                     f->virtio_mmio_transports),
         m->virtio_mmio_transports == f->virtio_mmio_transports,
         std::to_string(m->virtio_mmio_transports));
    if (f->root < 0) continue;
    const ControllerModel& root = catalog.controller(f->root);
    // What the data says the machine builds in on its root bus: the host bridge below the
    // first slot the root offers, the reserved functions, and the forced places of the devices
    // QEMU's machine creates itself.
    std::set<std::string> data_fns, qemu_fns;
    for (uint32_t s = 0; s < root.min_slot && !root.min_slot_is_policy; ++s) {
      data_fns.insert(SlotFunction(s, 0));
    }
    for (const ReservedFunction& r : f->reserved) data_fns.insert(SlotFunction(r.slot, r.function));
    if (const QemuMachine* qm = catalog.qemu().FindMachine(f->name)) {
      for (const Placement& p : f->placements) {
        if (p.mode != PlacementMode::kForced || p.slots.empty()) continue;
        for (const Match& b : qm->builtin) {
          bool same = b.element == p.match.element && b.props == p.match.props;
          if (same) data_fns.insert(SlotFunction(p.slots.front(), p.function));
        }
      }
    }
    for (const CapsFunction& fn : m->builtins) qemu_fns.insert(SlotFunction(fn.slot, fn.function));
    auto join = [](const std::set<std::string>& s) {
      std::string o;
      for (const std::string& e : s) o += (o.empty() ? "" : " ") + e;
      return o;
    };
    fact(fmt::format("{}: {} builds in {} on its root bus", f->name, m->name, join(data_fns)),
         data_fns == qemu_fns, join(qemu_fns));
    for (const CapsFunction& fn : m->builtins) {
      if (fn.slot < root.min_slot) {
        fact(fmt::format("{}: {} is the host bridge", f->name, SlotFunction(fn.slot, fn.function)),
             fn.class_code == 0x0600, fmt::format("class {:04x}", fn.class_code));
      }
    }
    fact(fmt::format("{}: root bus '{}' {} a hot-plug", f->name, root.bus_alias,
                     root.qemu_hotplug ? "takes" : "refuses"),
         m->root_hotplug && *m->root_hotplug == root.qemu_hotplug,
         m->root_hotplug ? (*m->root_hotplug ? "takes it" : "refuses it")
                         : "unknown: " + m->root_hotplug_error);
    CompareControllers(*f, *m, catalog, fact);
  }
  return out;
}

}  // namespace pciplan
