#include "pciplan/emit/qemu_args.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/nonpci.h"

namespace pciplan {
namespace {

using Json = nlohmann::ordered_json;

// Placeholder backends are named after the device, with a prefix no libvirt id uses.
constexpr const char* kBackendPrefix = "pciplan-";
// The audio backend libvirt creates for a domain without graphics ("audio1").
constexpr const char* kAudiodev = "audio1";
constexpr uint64_t kMiB = 1024 * 1024;
constexpr int kNumaCellMiB = 256;

bool IsController(const Device& d, const char* type) {
  return d.tag == "controller" && d.Is("@type", type);
}

uint32_t Index(const Device& d) { return ParseDecimal(d.GetOr("@index", "0")).value_or(0); }

/// A value inside one of QEMU's key=value option strings (-fsdev, -chardev, -machine): QEMU
/// ends a value at a comma and reads ",," as one comma, so every comma is doubled, as libvirt
/// does (virQEMUBuildBufferEscapeComma). A path "/srv/a,b" becomes "/srv/a,,b" and cannot add
/// an option. JSON options (-device, -blockdev, -object) need no such escaping.
std::string EscapeOptionValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

/// Whether libvirt keeps a user alias (and uses it as the QEMU id): "ua-" and then only ASCII
/// letters, digits, '_' and '-'. libvirt silently drops any other alias from an inactive
/// definition (checked with libvirt 9.0), so its device gets the generated id.
bool IsKeptUserAlias(std::string_view alias) {
  return alias.rfind("ua-", 0) == 0 && std::all_of(alias.begin(), alias.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
         });
}

/// Shell quoting for one word: bare when it is safe, else in single quotes.
std::string ShellQuote(const std::string& s) {
  bool safe = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("-_=,.:/+@%").find(c) != std::string_view::npos;
  });
  if (safe) return s;
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

/// Size of a <shmem> in bytes (<size unit='M'>4</size>; libvirt's default is 4 MiB).
uint64_t ShmemBytes(const Device& d) {
  std::optional<uint32_t> n = ParseUnsigned(d.GetOr("size", ""));
  if (!n) return 4 * kMiB;
  std::string unit = d.GetOr("size/@unit", "b");
  static const std::map<std::string, uint64_t> kUnits = {{"b", 1},
                                                         {"bytes", 1},
                                                         {"k", 1024},
                                                         {"KiB", 1024},
                                                         {"M", kMiB},
                                                         {"MiB", kMiB},
                                                         {"G", kMiB * 1024},
                                                         {"GiB", kMiB * 1024},
                                                         {"KB", 1000},
                                                         {"MB", 1000 * 1000},
                                                         {"GB", 1000ull * 1000 * 1000}};
  auto it = kUnits.find(unit);
  return static_cast<uint64_t>(*n) * (it == kUnits.end() ? 1 : it->second);
}

class Builder {
 public:
  Builder(const Domain& domain, const Plan& plan, const Catalog& catalog,
          const QemuArgsOptions& options)
      : domain_(domain), plan_(plan), cat_(catalog), opt_(options) {}

  Result<QemuCommand> Run();

 private:
  void IndexDevices();
  std::string BusName(uint32_t bus) const;
  const QemuDevice* Find(int i) const;
  std::string Alias(int i, const QemuDevice& q) const;
  Json PciControllerObject(int i) const;
  Result<bool> AddDevice(int i);
  void AddBackend(int i, const QemuDevice& q, const std::string& id, Json& obj);
  void AddNuma();
  void PlaceOnBus(int i, Json& obj, QemuDeviceArg& arg) const;

  const Domain& domain_;
  const Plan& plan_;
  const Catalog& cat_;
  const QemuArgsOptions& opt_;
  const QemuMachine* machine_ = nullptr;
  std::map<uint32_t, int> pci_by_index_;  // PCI controllers by index
  std::map<int, int> ordinal_;            // device -> position among its element's siblings
  int primary_video_ = -1;
  bool audiodev_ = false;
  QemuCommand cmd_;
};

void Builder::IndexDevices() {
  std::map<std::string, int> count;
  const std::vector<Device>& devs = plan_.devices;
  // libvirt moves the primary video to the front: it is video0, the others follow in order.
  for (size_t i = 0; i < devs.size(); ++i) {
    if (devs[i].tag == "video" && devs[i].Is("model/@primary", "yes")) {
      primary_video_ = static_cast<int>(i);
      break;
    }
  }
  for (size_t i = 0; i < devs.size() && primary_video_ < 0; ++i) {
    if (devs[i].tag == "video") primary_video_ = static_cast<int>(i);
  }
  if (primary_video_ >= 0) ordinal_[primary_video_] = count["video"]++;
  for (size_t i = 0; i < devs.size(); ++i) {
    const Device& d = devs[i];
    if (IsController(d, "pci")) pci_by_index_.emplace(Index(d), static_cast<int>(i));
    if (static_cast<int>(i) == primary_video_) continue;
    ordinal_[static_cast<int>(i)] = count[d.tag]++;
  }
}

std::string Builder::BusName(uint32_t bus) const {
  auto it = pci_by_index_.find(bus);
  if (it != pci_by_index_.end()) {
    ControllerModelId m = cat_.FindController(plan_.devices[it->second].GetOr("@model", ""));
    if (m >= 0) return cat_.controller(m).BusName(bus);
  }
  return fmt::format("pci.{}", bus);
}

const QemuDevice* Builder::Find(int i) const {
  const Device& d = plan_.devices[i];
  for (const QemuDevice& q : cat_.qemu().devices) {
    if (!q.match.Matches(d.tag, d.props)) continue;
    if (q.match.role == "primary-video" && i != primary_video_) continue;
    if (!q.machines.empty() &&
        std::find(q.machines.begin(), q.machines.end(), plan_.family->name) == q.machines.end()) {
      continue;
    }
    return &q;
  }
  return nullptr;
}

std::string Builder::Alias(int i, const QemuDevice& q) const {
  const Device& d = plan_.devices[i];
  // libvirt keeps user aliases ("ua-" prefix) as the QEMU id.
  if (const std::string* ua = d.Get("alias/@name"); ua && IsKeptUserAlias(*ua)) return *ua;
  int n = 0;
  switch (q.number) {
    case AliasNumber::kNone:
      return {};
    case AliasNumber::kOrdinal:
      n = ordinal_.at(i);
      break;
    case AliasNumber::kIndex:
      n = static_cast<int>(Index(d));
      break;
    case AliasNumber::kDiskIndex:
      n = DiskNameIndex(d.GetOr("target/@dev", ""));
      break;
  }
  if (n == 0 && q.bare_zero) return q.alias;
  return fmt::format("{}{}", q.alias, n);
}

void Builder::PlaceOnBus(int i, Json& obj, QemuDeviceArg& arg) const {
  const Address& a = plan_.devices[i].address;
  arg.pci = true;
  arg.bus = BusName(a.pci.bus);
  arg.address = a.pci;
  obj["bus"] = arg.bus;
  if (a.multifunction == "on") obj["multifunction"] = true;
  obj["addr"] = QemuAddr(a.pci);
}

Json Builder::PciControllerObject(int i) const {
  const Device& d = plan_.devices[i];
  ControllerModelId m = cat_.FindController(d.GetOr("@model", ""));
  Json obj;
  obj["driver"] = d.GetOr("model/@name", m >= 0 ? cat_.controller(m).qemu : "");
  // Target attributes become QEMU properties as integers, as libvirt writes them.
  for (const auto& [attr, prop] : cat_.qemu().controller_properties) {
    const std::string* v = d.Get("target/@" + attr);
    if (!v) v = d.Get("target/" + attr);
    if (!v) continue;
    if (std::optional<uint32_t> n = ParseUnsigned(*v)) obj[prop] = *n;
  }
  obj["id"] = m >= 0 ? cat_.controller(m).QemuId(Index(d)) : fmt::format("pci.{}", Index(d));
  // On/off target attributes become booleans ("hotplug":false for hotplug='off'). Not on a
  // root's device (pseries' extra PHBs): a root bus's hot-plug is the machine's switch
  // (root_hotplug_off), as libvirt writes it.
  bool root = m >= 0 && cat_.controller(m).root;
  for (const auto& [attr, prop] : cat_.qemu().controller_switches) {
    const std::string v = d.GetOr("target/@" + attr, "");
    if (!root && (v == "on" || v == "off")) obj[prop] = v == "on";
  }
  // For a binary whose device lacks a property that is only a hint, the hint is left out.
  if (opt_.binary_properties) {
    auto has = opt_.binary_properties->find(obj.value("driver", ""));
    for (const auto& [prop, hint] : cat_.qemu().controller_hints) {
      if (has == opt_.binary_properties->end() || has->second.count(prop)) continue;
      auto set = obj.find(prop);
      if (set != obj.end() && (hint.empty() || set->dump() == hint)) obj.erase(set);
    }
  }
  return obj;
}

void Builder::AddBackend(int i, const QemuDevice& q, const std::string& id, Json& obj) {
  const Device& d = plan_.devices[i];
  std::string name = kBackendPrefix + id;
  switch (q.backend) {
    case QemuBackend::kNone:
      return;
    case QemuBackend::kDrive:
      cmd_.prelude.push_back("-blockdev");
      cmd_.prelude.push_back(
          Json{{"driver", "null-co"}, {"node-name", name}, {"read-zeroes", true}}.dump());
      obj["drive"] = name;
      return;
    case QemuBackend::kMemdev:
      cmd_.prelude.push_back("-object");
      cmd_.prelude.push_back(Json{
          {"qom-type", "memory-backend-ram"},
          {"id", name},
          {"size", ShmemBytes(d)},
          {"share", true}}.dump());
      obj["memdev"] = name;
      return;
    case QemuBackend::kFsdev: {
      std::string path = opt_.scratch_dir.empty() ? d.GetOr("source/@dir", "/") : opt_.scratch_dir;
      cmd_.prelude.push_back("-fsdev");
      cmd_.prelude.push_back(fmt::format("local,id={},path={},security_model=none,readonly=on",
                                         EscapeOptionValue(name), EscapeOptionValue(path)));
      obj["fsdev"] = name;
      obj["mount_tag"] = d.GetOr("target/@dir", id);
      return;
    }
    case QemuBackend::kAudiodev:
      if (!audiodev_) {
        cmd_.prelude.push_back("-audiodev");
        cmd_.prelude.push_back(Json{{"id", kAudiodev}, {"driver", "none"}}.dump());
        audiodev_ = true;
      }
      obj["audiodev"] = kAudiodev;
      return;
    case QemuBackend::kHost: {
      auto n = [&](const char* k) {
        return ParseUnsigned(d.GetOr(std::string("source/address/@") + k, "0")).value_or(0);
      };
      obj["host"] = PciAddress{n("domain"), n("bus"), n("slot"), n("function")}.ToString();
      return;
    }
    case QemuBackend::kGuestCid:
      if (std::optional<uint32_t> cid = ParseUnsigned(d.GetOr("cid/@address", ""))) {
        obj["guest-cid"] = *cid;
      }
      return;
    case QemuBackend::kChardev:
      cmd_.prelude.push_back("-chardev");
      cmd_.prelude.push_back(fmt::format("null,id={}", EscapeOptionValue(name)));
      obj["chardev"] = name;
      return;
  }
}

Result<bool> Builder::AddDevice(int i) {
  const Device& d = plan_.devices[i];
  const Address& a = d.address;
  bool pci = a.type == AddressType::kPci && !a.pci.IsUnassigned();
  bool mmio = a.type == AddressType::kVirtioMmio;
  if (!pci && !mmio) return true;
  if (IsController(d, "pci")) return true;  // emitted first, by PciControllers
  for (const Match& m : cat_.qemu().copies) {
    if (m.Matches(d.tag, d.props)) return true;  // the device it shows has the -device
  }
  for (const Match& m : machine_->builtin) {
    if (m.Matches(d.tag, d.props)) {
      cmd_.builtins.push_back({i, a.pci});
      return true;
    }
  }
  const QemuDevice* q = Find(i);
  std::string driver;
  if (q && mmio) {
    driver = q->mmio_driver;
  } else if (q) {
    driver = q->driver_from.empty() ? q->driver : d.GetOr(q->driver_from, "");
  }
  if (driver.empty()) {
    return Error(Rule::kUnsupported,
                 fmt::format("no QEMU device is known for it on {}", mmio ? "virtio-mmio" : "PCI"),
                 DeviceRef::Describe(d, ordinal_.at(i)), pci ? a.pci.ToString() : "");
  }
  QemuDeviceArg arg;
  arg.device = i;
  Json obj;
  bool standin = opt_.host_devices == HostDevices::kStandIns && !q->standin.empty();
  obj["driver"] = standin ? q->standin : driver;
  arg.standin = standin;
  std::string id = Alias(i, *q);
  if (id.empty() && opt_.ids == DeviceIds::kEveryDevice)
    id = fmt::format("{}dev{}", kBackendPrefix, i);
  for (const auto& [k, v] : q->props) obj[k] = v;
  for (const auto& [attr, names] : q->attr_props) {
    const std::string* v = d.Get(attr);
    std::optional<uint32_t> n = v ? ParseUnsigned(*v) : std::nullopt;
    if (!n) continue;
    for (const std::string& name : names) obj[name] = *n;
  }
  if (q->masterbus) {
    // A USB2 companion names the bus of the EHCI master with its index: "usb.0".
    for (size_t m = 0; m < plan_.devices.size(); ++m) {
      const Device& o = plan_.devices[m];
      if (static_cast<int>(m) == i || !IsController(o, "usb") || Index(o) != Index(d)) continue;
      const QemuDevice* mq = Find(static_cast<int>(m));
      if (mq && !mq->masterbus) obj["masterbus"] = Alias(static_cast<int>(m), *mq) + ".0";
    }
  }
  size_t prelude = cmd_.prelude.size();
  if (!standin) AddBackend(i, *q, id.empty() ? fmt::format("dev{}", i) : id, obj);
  arg.backends.assign(cmd_.prelude.begin() + static_cast<std::ptrdiff_t>(prelude),
                      cmd_.prelude.end());
  if (!standin && d.tag == "interface") {
    if (const std::string* mac = d.Get("mac/@address")) obj["mac"] = *mac;
  }
  if (!id.empty()) obj["id"] = id;
  if (pci) PlaceOnBus(i, obj, arg);
  arg.object = std::move(obj);
  cmd_.devices.push_back(std::move(arg));
  return true;
}

void Builder::AddNuma() {
  if (domain_.numa_cells <= 0) return;
  // The plan needs the guest NUMA nodes its expander buses name; their size is a placeholder.
  cmd_.prelude.push_back("-m");
  cmd_.prelude.push_back(fmt::format("{}M", kNumaCellMiB * domain_.numa_cells));
  cmd_.prelude.push_back("-smp");
  cmd_.prelude.push_back(std::to_string(domain_.numa_cells));
  for (int n = 0; n < domain_.numa_cells; ++n) {
    std::string mem = fmt::format("{}ram-node{}", kBackendPrefix, n);
    cmd_.prelude.push_back("-object");
    cmd_.prelude.push_back(Json{
        {"qom-type", "memory-backend-ram"},
        {"id", mem},
        {"size", static_cast<uint64_t>(kNumaCellMiB) *
                     kMiB}}.dump());
    cmd_.prelude.push_back("-numa");
    cmd_.prelude.push_back(fmt::format("node,nodeid={},cpus={},memdev={}", n, n, mem));
  }
}

Result<QemuCommand> Builder::Run() {
  machine_ = cat_.qemu().FindMachine(plan_.family->name);
  if (!machine_) {
    return Error(Rule::kUnknownMachine,
                 fmt::format("no QEMU facts for machine family '{}'", plan_.family->name));
  }
  auto bin = cat_.qemu().binaries.find(domain_.arch);
  if (bin == cat_.qemu().binaries.end()) {
    return Error(Rule::kUnknownMachine,
                 fmt::format("no QEMU binary is known for architecture '{}'", domain_.arch));
  }
  cmd_.binary = bin->second;
  cmd_.machine = plan_.machine;
  cmd_.machine_options = machine_->options;
  cmd_.cpu = machine_->cpu;
  IndexDevices();
  if (auto root = pci_by_index_.find(0); root != pci_by_index_.end() &&
                                         plan_.devices[root->second].Is("target/@hotplug", "off")) {
    for (const std::string& global : plan_.family->root_hotplug_off) {
      cmd_.prelude.push_back("-global");
      cmd_.prelude.push_back(global);
    }
  }
  AddNuma();
  // PCI controllers first, each after the controller whose bus it sits on.
  std::set<uint32_t> ready;
  std::vector<int> pending;
  for (const auto& [index, i] : pci_by_index_) {
    const Device& d = plan_.devices[i];
    ControllerModelId m = cat_.FindController(d.GetOr("@model", ""));
    if (m >= 0 && cat_.controller(m).root && index == 0) {
      ready.insert(index);
    } else {
      pending.push_back(i);
    }
  }
  while (!pending.empty()) {
    size_t before = pending.size();
    for (auto it = pending.begin(); it != pending.end();) {
      const Device& d = plan_.devices[*it];
      if (d.address.type == AddressType::kPci && !ready.count(d.address.pci.bus)) {
        ++it;
        continue;
      }
      QemuDeviceArg arg;
      arg.device = *it;
      arg.controller = true;
      Json obj = PciControllerObject(*it);
      if (d.address.type == AddressType::kPci) PlaceOnBus(*it, obj, arg);
      arg.object = std::move(obj);
      cmd_.devices.push_back(std::move(arg));
      ready.insert(Index(d));
      it = pending.erase(it);
    }
    if (pending.size() == before) {
      const Device& d = plan_.devices[pending.front()];
      return Error(Rule::kBusMissing,
                   fmt::format("its bus {} is not provided by any controller", d.address.pci.bus),
                   DeviceRef::Describe(d, ordinal_.at(pending.front())), d.address.pci.ToString());
    }
  }
  // Then the other controllers (a USB2 companion after its master), then every other device.
  std::vector<int> order;
  for (size_t i = 0; i < plan_.devices.size(); ++i) {
    if (plan_.devices[i].tag == "controller") order.push_back(static_cast<int>(i));
  }
  std::stable_partition(order.begin(), order.end(), [&](int i) {
    const QemuDevice* q = Find(i);
    return !q || !q->masterbus;
  });
  // The primary video comes first of the videos, where the first one was: QEMU numbers its
  // graphic consoles in command-line order, and a primary qxl-vga refuses to be any but console
  // 0 ("primary qxl-vga device must be console 0"). libvirt moves it to the front likewise.
  bool primary_placed = primary_video_ < 0;
  for (size_t i = 0; i < plan_.devices.size(); ++i) {
    const Device& d = plan_.devices[i];
    if (d.tag == "controller") continue;
    if (d.tag == "video" && !primary_placed) {
      order.push_back(primary_video_);
      primary_placed = true;
    }
    if (static_cast<int>(i) != primary_video_) order.push_back(static_cast<int>(i));
  }
  Diagnostics errs;
  for (int i : order) {
    Result<bool> r = AddDevice(i);
    if (!r) errs.insert(errs.end(), r.errors().begin(), r.errors().end());
  }
  if (!errs.empty()) return errs;
  return std::move(cmd_);
}

}  // namespace

std::string QemuAddr(const PciAddress& address) {
  if (address.function == 0) return fmt::format("{:#x}", address.slot);
  return fmt::format("{:#x}.{:#x}", address.slot, address.function);
}

std::vector<std::string> QemuCommand::Argv() const {
  std::vector<std::string> argv = {
      "-machine",
      EscapeOptionValue(machine) + (machine_options.empty() ? "" : "," + machine_options)};
  if (!cpu.empty()) {
    argv.push_back("-cpu");
    argv.push_back(cpu);
  }
  argv.push_back("-nodefaults");
  argv.insert(argv.end(), prelude.begin(), prelude.end());
  for (const QemuDeviceArg& d : devices) {
    argv.push_back("-device");
    argv.push_back(d.object.dump());
  }
  return argv;
}

Result<QemuCommand> BuildQemuCommand(const Domain& domain, const Plan& plan, const Catalog& catalog,
                                     const QemuArgsOptions& options) {
  return Builder(domain, plan, catalog, options).Run();
}

std::string RenderQemuShell(const QemuCommand& command) {
  std::string out = command.binary;
  std::vector<std::string> argv = command.Argv();
  for (size_t i = 0; i < argv.size(); ++i) {
    bool option = !argv[i].empty() && argv[i][0] == '-';
    out += option ? " \\\n  " : " ";
    out += ShellQuote(argv[i]);
  }
  return out + "\n";
}

nlohmann::ordered_json RenderQemuJson(const QemuCommand& command) {
  Json out;
  out["binary"] = command.binary;
  out["machine"] = command.machine;
  out["devices"] = Json::array();
  for (const QemuDeviceArg& d : command.devices) out["devices"].push_back(d.object);
  out["argv"] = command.Argv();
  return out;
}

}  // namespace pciplan
