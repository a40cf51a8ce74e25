#include "pciplan/plan/nonpci.h"

#include <algorithm>
#include <bit>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string_view>

#include <fmt/format.h>

#include "pciplan/base/numbers.h"
#include "pciplan/plan/prop_scan.h"

namespace pciplan {
namespace {

std::string Describe(const NonPciContext& ctx, int dev) {
  int ordinal = 0;
  for (int i = 0; i < dev; ++i) {
    if (ctx.devices[i].tag == ctx.devices[dev].tag) ++ordinal;
  }
  return DeviceRef::Describe(ctx.devices[dev], ordinal);
}

bool Fail(const NonPciContext& ctx, Diagnostics& errs, Rule rule, std::string message, int dev) {
  Diagnostic d = Error(rule, std::move(message), dev >= 0 ? Describe(ctx, dev) : std::string());
  if (dev >= 0) d.line = ctx.devices[dev].line;
  errs.push_back(std::move(d));
  return false;
}

int AppendController(const NonPciContext& ctx, std::string_view type, uint32_t index,
                     const std::string& model) {
  Device d;
  d.tag = "controller";
  d.origin = Origin::kPlanner;
  d.Set("@type", std::string(type));
  d.Set("@index", std::to_string(index));
  if (!model.empty()) d.Set("@model", model);
  ctx.devices.push_back(std::move(d));
  int i = static_cast<int>(ctx.devices.size()) - 1;
  ctx.controller_order.push_back(i);
  return i;
}

/// The controller of `type` with `index`, or nullptr.
const Device* FindController(const NonPciContext& ctx, std::string_view type, uint32_t index) {
  for (int i : ctx.controller_order) {
    const Device& d = ctx.devices[i];
    const std::string* controller_type = ScanProp(d.props, "@type");
    if (!controller_type || !SameText(*controller_type, type)) continue;
    const std::string* text = ScanProp(d.props, "@index");
    if (ParseDecimal(text ? std::string_view(*text) : std::string_view()) == index) return &d;
  }
  return nullptr;
}

bool HasController(const NonPciContext& ctx, std::string_view type, uint32_t index) {
  return FindController(ctx, type, index) != nullptr;
}

/// The drive bus SCSI host devices sit on (the one with host device units), or nullptr.
const DriveBus* HostdevDriveBus(const Catalog& catalog) {
  for (const DriveBus& b : catalog.drive_buses) {
    if (b.hostdev_units > 0) return &b;
  }
  return nullptr;
}

bool IsVirtioChannel(const Device& d) {
  return (SameText(d.tag, "channel") || SameText(d.tag, "console")) &&
         ScanIs(d.props, "target/@type", "virtio");
}

bool IsScsiHostdev(const Device& d) {
  return SameText(d.tag, "hostdev") && ScanIs(d.props, "@type", "scsi");
}

void SetAddress(Device& d, AddressType type, const std::string& type_name, Props attrs) {
  d.address = Address{};
  d.address.type = type;
  d.address.type_name = type_name;
  d.address.attrs = std::move(attrs);
}

/// The class the pipeline found for device `dev`, or nullptr when it has found none (yet):
/// unlike ClassOf, never classifies.
const DeviceClass* KnownClass(const NonPciContext& ctx, int dev) {
  const size_t i = static_cast<size_t>(dev);
  return ctx.classes && i < ctx.classes->size() ? (*ctx.classes)[i] : nullptr;
}

/// A USB port path "1.2.3": dot-separated numbers, at most `depth` of them.
std::optional<std::vector<uint32_t>> ParsePortPath(const std::string& s, uint32_t depth) {
  std::vector<uint32_t> path;
  for (size_t start = 0; start <= s.size();) {
    size_t dot = s.find('.', start);
    std::string part = s.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    std::optional<uint32_t> n = ParseUnsigned(part);
    if (!n || part.empty() || path.size() >= depth) return std::nullopt;
    path.push_back(*n);
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return path;
}

/// The drive address of a disk or host device as "controller:bus:target:unit".
std::string DriveKey(const Address& a) {
  return fmt::format("{}:{}:{}:{}", a.Number("controller"), a.Number("bus"), a.Number("target"),
                     a.Number("unit"));
}

std::string DriveText(const Address& a) {
  return fmt::format("controller='{}' bus='{}' target='{}' unit='{}'", a.Number("controller"),
                     a.Number("bus"), a.Number("target"), a.Number("unit"));
}

}  // namespace

void ApplyDiskBuses(const Catalog& catalog, std::vector<Device>& devices) {
  for (Device& d : devices) {
    if (d.tag != std::string_view("disk") || ScanProp(d.props, "target/@bus") ||
        !ScanProp(d.props, "target/@dev")) {
      continue;
    }
    std::string bus = catalog.disk_buses.fallback;
    if (d.Is("@device", "floppy")) {
      bus = catalog.disk_buses.floppy;
    } else {
      const std::string& dev = *d.Get("target/@dev");
      for (const auto& [prefix, b] : catalog.disk_buses.prefixes) {
        if (dev.compare(0, prefix.size(), prefix) == 0) bus = b;
      }
    }
    d.Set("target/@bus", bus);
  }
}

int DiskNameIndex(const std::string& name) {
  static const char* kPrefixes[] = {"fd", "hd", "vd", "sd", "xvd", "ubd"};
  for (const char* p : kPrefixes) {
    std::string_view pv = p;
    if (std::string_view(name).substr(0, pv.size()) != pv) continue;
    int idx = -1;
    size_t i = pv.size();
    for (; i < name.size() && name[i] >= 'a' && name[i] <= 'z'; ++i) {
      idx = (idx + 1) * 26 + (name[i] - 'a');
      if (idx > (1 << 20)) return -1;
    }
    if (i == pv.size() || i != name.size()) return -1;
    return idx;
  }
  return -1;
}

bool CheckUsbControllers(const NonPciContext& ctx, Diagnostics& errs) {
  // Elements the parser takes once per domain.
  for (const std::string& element : ctx.catalog.single_per_domain) {
    int seen = 0;
    for (size_t i = 0; i < ctx.devices.size(); ++i) {
      if (ctx.devices[i].tag == element && ++seen > 1) {
        return Fail(ctx, errs, Rule::kSingleDevice,
                    fmt::format("a domain has at most one <{}> device", element),
                    static_cast<int>(i));
      }
    }
  }
  // Port paths are parsed with the XML (virDomainDeviceUSBAddressParsePort).
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    const Address& a = ctx.devices[i].address;
    if (a.type != AddressType::kUsb) continue;
    auto port = a.attrs.find("port");
    if (port == a.attrs.end() || ParsePortPath(port->second, ctx.catalog.usb_port_depth)) continue;
    return Fail(ctx, errs, Rule::kUsbPortPath,
                fmt::format("USB port '{}' is not a path of at most {} port numbers (\"1.2.3\")",
                            port->second, ctx.catalog.usb_port_depth),
                static_cast<int>(i));
  }
  // A USB controller of a model with no ports and no PCI function ("none") disables USB; no
  // other USB controller may then exist (libvirt's parser refuses it).
  int usb = 0;
  int disabled = -1;
  for (int i : ctx.controller_order) {
    const Device& c = ctx.devices[i];
    if (!c.Is("@type", "usb")) continue;
    ++usb;
    const DeviceClass* cls = ClassOf(ctx, i);
    if (cls && cls->usb_ports == 0 && cls->connect == ConnectNeed::kNone) disabled = i;
  }
  if (disabled >= 0 && usb > 1) {
    return Fail(ctx, errs, Rule::kUsbDisabled,
                "can't add another USB controller: USB is disabled for this domain", disabled);
  }
  // USB2 companions need their master controller at the same index.
  for (int i : ctx.controller_order) {
    const Device& c = ctx.devices[i];
    const DeviceClass* cls = ClassOf(ctx, i);
    if (!cls || cls->usb_master.empty()) continue;
    bool found = false;
    for (int o : ctx.controller_order) {
      const Device& m = ctx.devices[o];
      found |= m.GetOr("@type", "") == c.GetOr("@type", "") &&
               m.GetOr("@model", "") == cls->usb_master &&
               m.GetOr("@index", "") == c.GetOr("@index", "");
    }
    if (!found) {
      return Fail(ctx, errs, Rule::kUsbMaster,
                  fmt::format("no master USB controller specified ({} needs an {} with index {})",
                              c.GetOr("@model", ""), cls->usb_master, c.GetOr("@index", "")),
                  i);
    }
  }
  return true;
}

bool AssignDriveAddresses(const NonPciContext& ctx, Diagnostics& errs) {
  for (int i : ctx.disk_order) {
    Device& d = ctx.devices[i];
    if (d.address.type != AddressType::kNone) continue;
    const std::string* bus_attr = ScanProp(d.props, "target/@bus");
    std::string_view bus = bus_attr ? std::string_view(*bus_attr) : std::string_view();
    auto drive = std::find_if(ctx.catalog.drive_buses.begin(), ctx.catalog.drive_buses.end(),
                              [&](const DriveBus& b) { return SameText(b.bus, bus); });
    if (drive == ctx.catalog.drive_buses.end()) continue;
    std::string name = d.GetOr("target/@dev", "");
    int idx = DiskNameIndex(name);
    if (idx < 0) {
      return Fail(ctx, errs, Rule::kDriveAddress,
                  "unknown disk name '" + name + "' and no address specified", i);
    }
    uint32_t per_controller = drive->units * drive->buses;
    uint32_t u = static_cast<uint32_t>(idx);
    d.address.type = AddressType::kDrive;
    d.address.type_name = "drive";
    d.address.attrs = {{"controller", std::to_string(u / per_controller)},
                       {"bus", std::to_string(u % per_controller / drive->units)},
                       {"target", "0"},
                       {"unit", std::to_string(u % drive->units)}};
  }
  // SCSI host devices, in document order, after every disk has its address: controller by
  // controller, the first unit no SCSI disk or host device uses and the controller's model has.
  // Controllers are not added here, so only those already written cap the units.
  const DriveBus* scsi = HostdevDriveBus(ctx.catalog);
  if (!scsi || std::none_of(ctx.devices.begin(), ctx.devices.end(), [](const Device& d) {
        return d.address.type == AddressType::kNone && IsScsiHostdev(d);
      })) {
    return true;
  }
  std::set<std::string> used;
  for (const Device& d : ctx.devices) {
    if (d.address.type != AddressType::kDrive) continue;
    if ((d.tag == std::string_view("disk") && d.Is("target/@bus", scsi->bus)) || IsScsiHostdev(d)) {
      used.insert(DriveKey(d.address));
    }
  }
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    Device& d = ctx.devices[i];
    if (!IsScsiHostdev(d) || d.address.type != AddressType::kNone) continue;
    for (uint32_t c = 0;; ++c) {
      uint32_t limit = scsi->hostdev_units;
      if (const Device* ctl = FindController(ctx, scsi->bus, c)) {
        auto lim = scsi->unit_limits.find(ctl->GetOr("@model", ""));
        if (lim != scsi->unit_limits.end()) limit = std::min(limit, lim->second + 1);
      }
      std::optional<uint32_t> unit;
      for (uint32_t u = 0; u < limit && !unit; ++u) {
        if (!used.count(fmt::format("{}:0:0:{}", c, u))) unit = u;
      }
      if (!unit) continue;
      SetAddress(d, AddressType::kDrive, "drive",
                 {{"controller", std::to_string(c)},
                  {"bus", "0"},
                  {"target", "0"},
                  {"unit", std::to_string(*unit)}});
      used.insert(DriveKey(d.address));
      break;
    }
  }
  return true;
}

/// The model of a controller libvirt adds for a drive bus: the machine's default model of that
/// controller type (pseries: ibmvscsi), else the bus's.
std::string ImplicitModel(const NonPciContext& ctx, const DriveBus& bus) {
  auto it = ctx.family.model_defaults.find("controller-" + bus.bus);
  return it != ctx.family.model_defaults.end() ? it->second : bus.implicit_model;
}

bool AddScsiHostdevControllers(const NonPciContext& ctx, Unaddressed unaddressed) {
  // SCSI controllers up to the highest one SCSI host devices use
  // (virDomainDefMaybeAddHostdevSCSIcontroller), of the model of the controller the device that
  // raised the highest index sits on when that one exists: a full controller's model repeats.
  // libvirt runs this once per host device while parsing, when host devices without an address
  // still read as controller 0, and again with the implicit controllers.
  const DriveBus* scsi = HostdevDriveBus(ctx.catalog);
  if (!scsi) return true;
  int max = -1;
  int model_from = -1;  // the last controller that raised `max` and has a model, if any
  for (const Device& d : ctx.devices) {
    if (!IsScsiHostdev(d)) continue;
    bool none = d.address.type == AddressType::kNone && unaddressed == Unaddressed::kController0;
    if (d.address.type != AddressType::kDrive && !none) continue;
    int c = none ? 0 : static_cast<int>(std::min<uint32_t>(d.address.Number("controller"), 255));
    if (c <= max) continue;
    max = c;
    const Device* ctl = FindController(ctx, scsi->bus, static_cast<uint32_t>(c));
    if (ctl && ctl->Has("@model")) model_from = static_cast<int>(ctl - ctx.devices.data());
  }
  if (max < 0) return true;
  // A copy: appending controllers moves the devices.
  const std::string model =
      model_from >= 0 ? *ctx.devices[model_from].Get("@model") : ImplicitModel(ctx, *scsi);
  for (int c = 0; c <= max; ++c) {
    if (!HasController(ctx, scsi->bus, static_cast<uint32_t>(c))) {
      AppendController(ctx, scsi->bus, static_cast<uint32_t>(c), model);
    }
  }
  return true;
}

bool AddImplicitControllers(const NonPciContext& ctx, Diagnostics& errs) {
  (void)errs;
  // Drive buses first (scsi, fdc, ide, sata), each making indexes 0..max exist.
  for (const DriveBus& bus : ctx.catalog.drive_buses) {
    int max = -1;
    for (int i : ctx.disk_order) {
      const Device& d = ctx.devices[i];
      if (d.address.type != AddressType::kDrive) continue;
      const std::string* on = ScanProp(d.props, "target/@bus");
      if (!SameText(on ? std::string_view(*on) : std::string_view(), bus.bus)) continue;
      max = std::max(max, static_cast<int>(std::min<uint32_t>(d.address.Number("controller"), 255)));
    }
    for (int c = 0; c <= max; ++c) {
      if (!HasController(ctx, bus.bus, static_cast<uint32_t>(c))) {
        AppendController(ctx, bus.bus, static_cast<uint32_t>(c), ImplicitModel(ctx, bus));
      }
    }
  }
  // virtio-serial for virtio channels, then consoles: the controller they name, else index 0.
  // The second pass only when the first saw a virtio console.
  bool consoles = false;
  for (int pass = 0; pass < 2 && (pass == 0 || consoles); ++pass) {
    for (size_t i = 0; i < ctx.devices.size(); ++i) {
      const Device& d = ctx.devices[i];
      if (!IsVirtioChannel(d)) continue;
      if (pass == 0 && !SameText(d.tag, "channel")) consoles = true;
      if ((pass == 0) != SameText(d.tag, "channel")) continue;
      uint32_t c = d.address.type == AddressType::kVirtioSerial ? d.address.Number("controller") : 0;
      if (!HasController(ctx, "virtio-serial", c)) AppendController(ctx, "virtio-serial", c, "");
    }
  }
  // The smartcard's CCID controller (virDomainDefMaybeAddSmartcardController): the one its
  // address names, else index 0, where an address-less smartcard goes.
  // By index: AppendController grows ctx.devices, which would leave a reference dangling.
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    Device& d = ctx.devices[i];
    if (!SameText(d.tag, "smartcard")) continue;
    if (d.address.type == AddressType::kNone) {
      SetAddress(d, AddressType::kCcid, "ccid", {{"controller", "0"}, {"slot", "0"}});
    }
    if (d.address.type != AddressType::kCcid) continue;
    uint32_t c = std::min<uint32_t>(d.address.Number("controller"), 255);
    if (!HasController(ctx, "ccid", c)) AppendController(ctx, "ccid", c, "");
  }
  return AddScsiHostdevControllers(ctx, Unaddressed::kSkip);
}

namespace {

/// Whether any device has a spapr-vio address or is of a class that takes one (the pipeline's
/// classes: the pass runs after classification).
bool AnySpaprVio(const NonPciContext& ctx) {
  for (const Device& d : ctx.devices) {
    if (SameText(d.address.type_name, "spapr-vio")) return true;
  }
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    const DeviceClass* cls = ClassOf(ctx, static_cast<int>(i));
    if (cls && cls->spapr_vio_reg != 0) return true;
  }
  return false;
}

}  // namespace

bool AssignSpaprVio(const NonPciContext& ctx, Diagnostics& errs) {
  // Nothing to do without a spapr-vio address or a device of a class that takes one.
  if (!AnySpaprVio(ctx)) return true;
  std::set<uint32_t> used;
  std::vector<int> wanting;
  // The first console, when it is serial port 0's copy, is not a device of its own
  // (virDomainDeviceInfoIterate skips it): its address is the serial port's.
  int copy = -1;
  bool serials = false;
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    if (copy < 0 && ctx.devices[i].tag == std::string_view("console")) copy = static_cast<int>(i);
    serials = serials || ctx.devices[i].tag == std::string_view("serial");
  }
  if (copy >= 0 && (!serials || !ctx.devices[copy].Is("target/@type", "serial"))) copy = -1;
  for (const std::string& tag : ctx.catalog.collect_order) {
    std::vector<int> list;
    if (tag == "controller") {
      list.assign(ctx.controller_order.begin(), ctx.controller_order.end());
    } else {
      for (size_t i = 0; i < ctx.devices.size(); ++i) {
        if (ctx.devices[i].tag == tag) list.push_back(static_cast<int>(i));
      }
    }
    for (int i : list) {
      const Device& d = ctx.devices[i];
      if (i == copy) continue;
      if (d.address.type_name == "spapr-vio" && d.address.attrs.count("reg")) {
        // virDomainSpaprVIOAddressInUse, while the address is read (oracle).
        if (!used.insert(d.address.Number("reg")).second) {
          return Fail(ctx, errs, Rule::kDoubleUse,
                      fmt::format("spapr-vio address {:#x} already in use",
                                  d.address.Number("reg")),
                      i);
        }
        continue;
      }
      const DeviceClass* cls = ClassOf(ctx, i);
      if (!cls || cls->spapr_vio_reg == 0) continue;
      if (d.address.type == AddressType::kNone || d.address.type_name == "spapr-vio") {
        wanting.push_back(i);
      }
    }
  }
  for (int i : wanting) {
    Device& d = ctx.devices[i];
    uint32_t reg = ClassOf(ctx, i)->spapr_vio_reg;
    while (used.count(reg)) reg += 0x1000;
    used.insert(reg);
    SetAddress(d, AddressType::kOther, "spapr-vio", {{"reg", fmt::format("0x{:08x}", reg)}});
  }
  return true;
}

bool AssignMemorySlots(const NonPciContext& ctx, Diagnostics& errs) {
  // qemuDomainAssignMemorySlots: given slots first (virDomainDefGetMemorySlotmap), then the
  // lowest free slot for each device without one, in document order.
  uint32_t slots = ctx.input.memory_slots;
  std::vector<bool> taken(slots, false);
  std::vector<int> wanting;
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    const Device& d = ctx.devices[i];
    const DeviceClass* cls = ClassOf(ctx, static_cast<int>(i));
    if (!cls || !cls->dimm_slot) continue;
    auto slot = d.address.attrs.find("slot");
    if (d.address.type_name != "dimm" || slot == d.address.attrs.end()) {
      if (d.address.type == AddressType::kNone || d.address.type_name == "dimm") {
        wanting.push_back(static_cast<int>(i));
      }
      continue;
    }
    uint32_t n = d.address.Number("slot");
    if (n >= slots) {
      return Fail(ctx, errs, Rule::kMemorySlotRange,
                  fmt::format("memory slot {} is not below the {} slots of <maxMemory>", n, slots),
                  static_cast<int>(i));
    }
    if (taken[n]) {
      return Fail(ctx, errs, Rule::kMemorySlotDoubleUse,
                  fmt::format("memory slot {} is already used by another memory device", n),
                  static_cast<int>(i));
    }
    taken[n] = true;
  }
  for (int i : wanting) {
    auto free = std::find(taken.begin(), taken.end(), false);
    if (free == taken.end()) {
      return Fail(ctx, errs, Rule::kNoFreeSlot,
                  fmt::format("no free memory slot: <maxMemory> has {} slots", slots), i);
    }
    *free = true;
    Device& d = ctx.devices[i];
    Props attrs = d.address.attrs;
    attrs["slot"] = std::to_string(free - taken.begin());
    SetAddress(d, AddressType::kOther, "dimm", std::move(attrs));
  }
  return true;
}

bool AssignVirtioSerial(const NonPciContext& ctx, Diagnostics& errs) {
  (void)errs;
  std::map<uint32_t, std::set<uint32_t>> used;  // controller index -> ports taken
  std::vector<int> channels;
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    Device& d = ctx.devices[i];
    if (!SameText(d.tag, "channel") || !IsVirtioChannel(d)) continue;
    if (d.address.type == AddressType::kVirtioSerial && d.address.Number("port") != 0) {
      used[d.address.Number("controller")].insert(d.address.Number("port"));
    } else if (d.address.type == AddressType::kNone ||
               d.address.type == AddressType::kVirtioSerial) {
      channels.push_back(static_cast<int>(i));
    }
  }
  if (channels.empty()) return true;
  std::map<uint32_t, uint32_t> ports;  // controller index -> port count
  for (int i : ctx.controller_order) {
    const Device& c = ctx.devices[i];
    if (!c.Is("@type", "virtio-serial")) continue;
    uint32_t idx = ParseDecimal(c.GetOr("@index", "0")).value_or(0);
    ports[idx] = ParseUnsigned(c.GetOr("@ports", "")).value_or(ctx.catalog.virtio_serial_ports);
  }
  auto free_port = [&](uint32_t controller) -> std::optional<uint32_t> {
    auto it = ports.find(controller);
    if (it == ports.end()) return std::nullopt;
    for (uint32_t p = 1; p < it->second; ++p) {
      if (!used[controller].count(p)) return p;
    }
    return std::nullopt;
  };
  for (int i : channels) {
    Device& d = ctx.devices[i];
    std::optional<uint32_t> controller;
    std::optional<uint32_t> port;
    if (d.address.type == AddressType::kVirtioSerial) {
      controller = d.address.Number("controller");
      port = free_port(*controller);
    } else {
      for (const auto& [idx, count] : ports) {
        (void)count;
        if ((port = free_port(idx))) {
          controller = idx;
          break;
        }
      }
    }
    if (!port) {
      // Every controller is full: libvirt appends one with the lowest unused index.
      uint32_t idx = 0;
      while (ports.count(idx)) ++idx;
      AppendController(ctx, "virtio-serial", idx, "");
      ports[idx] = ctx.catalog.virtio_serial_ports;
      controller = idx;
      port = 1;
    }
    used[*controller].insert(*port);
    Device& dd = ctx.devices[i];
    dd.address = Address{};
    dd.address.type = AddressType::kVirtioSerial;
    dd.address.type_name = "virtio-serial";
    dd.address.attrs = {{"controller", std::to_string(*controller)},
                        {"bus", "0"},
                        {"port", std::to_string(*port)}};
  }
  return true;
}

namespace {

/// A USB hub (root or added) and what sits on each of its ports.
struct UsbHub {
  std::vector<int> occupant;                      // device index, or -1
  std::vector<std::unique_ptr<UsbHub>> children;  // the hub plugged into a port, if any

  explicit UsbHub(uint32_t ports) : occupant(ports, -1), children(ports) {}

  /// Lowest free port here, else depth-first into the hubs in port order: "1", "1.3", ...
  std::optional<std::vector<uint32_t>> FindFree() const {
    for (size_t p = 0; p < occupant.size(); ++p) {
      if (occupant[p] < 0) return std::vector<uint32_t>{static_cast<uint32_t>(p + 1)};
    }
    for (size_t p = 0; p < children.size(); ++p) {
      if (!children[p]) continue;
      if (auto sub = children[p]->FindFree()) {
        sub->insert(sub->begin(), static_cast<uint32_t>(p + 1));
        return sub;
      }
    }
    return std::nullopt;
  }
  UsbHub* Walk(const std::vector<uint32_t>& path, size_t depth) {
    if (depth + 1 == path.size()) return this;
    uint32_t p = path[depth] - 1;
    if (p >= children.size() || !children[p]) return nullptr;
    return children[p]->Walk(path, depth + 1);
  }
};

std::string PortString(const std::vector<uint32_t>& path) {
  std::string out;
  for (uint32_t p : path) out += (out.empty() ? "" : ".") + std::to_string(p);
  return out;
}

}  // namespace

bool AssignUsbPorts(const NonPciContext& ctx, Diagnostics& errs) {
  // USB devices in assignment order (none: nothing to do): (match, device) pairs in device
  // order, then stably by match. A device tries the matches of its element that its class does
  // not rule out, a bit each for the first kMasked (a catalogue with more tries the others on
  // every device): its class's bits from the catalogue's index, else (a device of no known
  // class, or an index built for other lists) found here, shared by consecutive devices of one
  // class, or of one element when their class is not known.
  std::vector<std::pair<size_t, int>> hits;
  const std::string* last_tag = nullptr;
  const DeviceClass* last_class = nullptr;
  const size_t matches = ctx.catalog.usb_devices.size();
  constexpr size_t kMasked = ClassIndex::kUsbMasked;
  const DeviceClass* classes = ctx.catalog.classes.data();
  const bool indexed = ctx.catalog.class_index.CoversUsb(ctx.catalog.classes.size(), matches);
  uint64_t candidates = 0;  // the first kMasked matches of last_tag's element
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    const Device& d = ctx.devices[i];
    const DeviceClass* cls = KnownClass(ctx, static_cast<int>(i));
    if (cls && indexed) {
      // A pointer into the catalogue's classes (the pipeline classifies with this catalogue).
      candidates = ctx.catalog.class_index.UsbCandidates(static_cast<size_t>(cls - classes));
      last_tag = nullptr;
    } else if (!last_tag || cls != last_class || (!cls && !SameText(d.tag, *last_tag))) {
      last_tag = &d.tag;
      last_class = cls;
      candidates = 0;
      for (size_t k = 0; k < matches && k < kMasked; ++k) {
        const Match& m = ctx.catalog.usb_devices[k];
        if ((m.element.empty() || SameText(m.element, d.tag)) && !(cls && cls->when.RulesOut(m))) {
          candidates |= uint64_t{1} << k;
        }
      }
    }
    for (uint64_t bits = candidates; bits != 0; bits &= bits - 1) {
      size_t k = static_cast<size_t>(std::countr_zero(bits));
      const Match& m = ctx.catalog.usb_devices[k];
      if (m.Matches(d.tag, d.props)) {
        hits.emplace_back(k, static_cast<int>(i));
      }
    }
    for (size_t k = kMasked; k < matches; ++k) {
      if (ctx.catalog.usb_devices[k].Matches(d.tag, d.props)) {
        hits.emplace_back(k, static_cast<int>(i));
      }
    }
  }
  if (hits.empty()) return true;
  std::stable_sort(hits.begin(), hits.end(),
                   [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<int> order;
  int user_hubs = 0;
  size_t next_hit = 0;
  for (size_t k = 0; k < matches; ++k) {
    for (; next_hit < hits.size() && hits[next_hit].first == k; ++next_hit) {
      order.push_back(hits[next_hit].second);
    }
    if (ctx.catalog.usb_devices[k].element == "hub") user_hubs = static_cast<int>(order.size());
  }
  if (order.empty()) return true;
  // USB buses by ascending index, with their root-hub port counts.
  std::map<uint32_t, std::unique_ptr<UsbHub>> buses;
  uint32_t total = 0;
  for (int i : ctx.controller_order) {
    const Device& c = ctx.devices[i];
    if (!c.Is("@type", "usb")) continue;
    const DeviceClass* cls = ClassOf(ctx, i);
    int ports = cls ? cls->usb_ports : 0;
    if (ports > 0 && c.Has("@ports")) ports = static_cast<int>(ParseUnsigned(*c.Get("@ports")).value_or(ports));
    if (ports <= 0) continue;
    uint32_t idx = ParseDecimal(c.GetOr("@index", "0")).value_or(0);
    buses[idx] = std::make_unique<UsbHub>(static_cast<uint32_t>(std::min(ports, 64)));
    total += static_cast<uint32_t>(ports);
  }
  total += ctx.catalog.usb_hub_ports * static_cast<uint32_t>(user_hubs);
  if (order.size() > total && !buses.empty()) {
    // libvirt adds ceil((count - ports + 1) / (hub ports - 1)) hubs, after the user's hubs.
    uint32_t extra = static_cast<uint32_t>(order.size()) - total + 1;
    uint32_t per = ctx.catalog.usb_hub_ports - 1;
    uint32_t hubs = (extra + per - 1) / per;
    std::vector<int> added;
    for (uint32_t h = 0; h < hubs; ++h) {
      Device hub;
      hub.tag = "hub";
      hub.origin = Origin::kPlanner;
      hub.Set("@type", "usb");
      ctx.devices.push_back(std::move(hub));
      added.push_back(static_cast<int>(ctx.devices.size()) - 1);
    }
    order.insert(order.begin() + user_hubs, added.begin(), added.end());
  }
  // Explicit addresses first.
  for (int i : order) {
    Device& d = ctx.devices[i];
    if (d.address.type != AddressType::kUsb) continue;
    uint32_t bus = d.address.Number("bus");
    auto it = buses.find(bus);
    if (it == buses.end()) {
      return Fail(ctx, errs, Rule::kBadValue, fmt::format("missing USB bus {}", bus), i);
    }
    auto port = d.address.attrs.find("port");
    if (port == d.address.attrs.end()) continue;
    const std::string& s = port->second;
    std::vector<uint32_t> path =
        ParsePortPath(s, ctx.catalog.usb_port_depth).value_or(std::vector<uint32_t>{0});
    if (path.front() == 0) continue;  // port 0: no port named, assigned below
    UsbHub* hub = it->second->Walk(path, 0);
    uint32_t p = path.back();
    if (!hub) {
      return Fail(ctx, errs, Rule::kUsbHubMissing,
                  fmt::format("USB port {} on bus {} goes through port {}, which has no hub", s,
                              bus, path.front()),
                  i);
    }
    if (p == 0 || p > hub->occupant.size()) {
      return Fail(ctx, errs, Rule::kUsbPort,
                  fmt::format("requested USB port {} not present on USB bus {}", s, bus), i);
    }
    hub->occupant[p - 1] = i;
    if (d.tag == "hub") hub->children[p - 1] = std::make_unique<UsbHub>(ctx.catalog.usb_hub_ports);
  }
  for (int i : order) {
    Device& d = ctx.devices[i];
    // No address, or a USB address naming its bus but no port (qemuDomainAssignUSBPorts; hubs
    // first, as the order has them).
    auto port = d.address.attrs.find("port");
    bool on_bus = d.address.type == AddressType::kUsb &&
                  (port == d.address.attrs.end() || ParseUnsigned(port->second) == 0u);
    if (d.address.type != AddressType::kNone && !on_bus) continue;
    if (buses.empty()) {
      return Fail(ctx, errs, Rule::kUnsupported,
                  "USB is disabled for this domain, but USB devices are present", i);
    }
    std::optional<std::vector<uint32_t>> path;
    uint32_t bus = 0;
    for (auto& [idx, root] : buses) {
      if (on_bus && idx != d.address.Number("bus")) continue;
      if ((path = root->FindFree())) {
        bus = idx;
        break;
      }
    }
    if (!path) return Fail(ctx, errs, Rule::kNoFreeSlot, "no free USB ports", i);
    UsbHub* hub = buses[bus]->Walk(*path, 0);
    hub->occupant[path->back() - 1] = i;
    if (d.tag == "hub") hub->children[path->back() - 1] = std::make_unique<UsbHub>(ctx.catalog.usb_hub_ports);
    d.address.type = AddressType::kUsb;
    d.address.type_name = "usb";
    d.address.attrs = {{"bus", std::to_string(bus)}, {"port", PortString(*path)}};
  }
  return true;
}

bool ValidateDiskDrives(const NonPciContext& ctx, Diagnostics& errs) {
  // Disk checks (per disk, list order): a drive on a controller index QEMU does not have
  // (only one IDE controller, one floppy controller).
  for (int i : ctx.disk_order) {
    const Device& d = ctx.devices[i];
    if (d.address.type != AddressType::kDrive) continue;
    std::string bus = d.GetOr("target/@bus", "");
    for (const DriveBus& b : ctx.catalog.drive_buses) {
      if (b.bus == bus && b.max_controllers > 0 && d.address.Number("controller") >= b.max_controllers) {
        std::string upper = bus;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return Fail(ctx, errs, Rule::kControllerCount,
                    fmt::format("only {} {} controller is supported", b.max_controllers, upper), i);
      }
    }
  }
  return true;
}

bool ValidateDevices(const NonPciContext& ctx, Diagnostics& errs) {
  int smartcards = 0;
  for (size_t k = 0; k < ctx.devices.size(); ++k) {
    const Device& d = ctx.devices[k];
    int i = static_cast<int>(k);
    const DeviceClass* cls = ClassOf(ctx, i);
    if (cls && !cls->address_types.empty() && d.address.type != AddressType::kNone &&
        std::find(cls->address_types.begin(), cls->address_types.end(), d.address.type_name) ==
            cls->address_types.end()) {
      std::string takes;
      for (const std::string& t : cls->address_types) {
        takes += (takes.empty() ? "an address of type '" : " or '") + t + "'";
      }
      if (cls->address_types == std::vector<std::string>{"none"}) takes = "no address";
      return Fail(ctx, errs, Rule::kAddressType,
                  fmt::format("an address of type '{}' does not fit this device, which takes {}",
                              d.address.type_name, takes),
                  i);
    }
    if (cls && !cls->machines.empty() &&
        std::find(cls->machines.begin(), cls->machines.end(), ctx.family.name) ==
            cls->machines.end()) {
      return Fail(ctx, errs, Rule::kDeviceMachine,
                  fmt::format("{} (this is a '{}' machine)", cls->machine_error, ctx.family.name),
                  i);
    }
    if (cls && cls->requires_acpi && !ctx.input.acpi) {
      return Fail(ctx, errs, Rule::kIommuAcpi,
                  "this device requires ACPI: add <features><acpi/></features>", i);
    }
    if (cls && cls->usb_ports_max >= 0 && d.Has("@ports")) {
      std::optional<uint32_t> n = ParseUnsigned(*d.Get("@ports"));
      if (!n || *n > static_cast<uint32_t>(cls->usb_ports_max)) {
        return Fail(ctx, errs, Rule::kUsbPortCount,
                    fmt::format("ports='{}': a '{}' controller has at most {} ports",
                                *d.Get("@ports"), d.GetOr("@model", ""), cls->usb_ports_max),
                    i);
      }
    }
    if (SameText(d.tag, "smartcard")) {
      // QEMU 7.2 has one CCID slot (qemuValidateDomainSmartcardDef).
      bool at_zero = d.address.type == AddressType::kCcid && d.address.Number("controller") == 0 &&
                     d.address.Number("slot") == 0;
      if (++smartcards > 1 || !at_zero) {
        return Fail(ctx, errs, Rule::kSmartcardCount,
                    "only one smartcard is supported, at CCID controller 0 slot 0", i);
      }
    }
  }
  return true;
}

bool ValidateIdeAndDuplicates(const NonPciContext& ctx, Diagnostics& errs) {
  for (const UnsupportedDevice& u : ctx.family.unsupported_devices) {
    // Devices of a class its rule rules out are skipped; consecutive ones share the answer.
    const DeviceClass* last_class = nullptr;
    bool ruled_out = false;
    for (size_t i = 0; i < ctx.devices.size(); ++i) {
      const Device& d = ctx.devices[i];
      if (!u.match.element.empty() && !SameText(d.tag, u.match.element)) continue;
      const DeviceClass* cls = KnownClass(ctx, static_cast<int>(i));
      if (cls && cls != last_class) ruled_out = cls->when.RulesOut(u.match);
      last_class = cls;
      if (cls && ruled_out) continue;
      if (u.match.Matches(d.tag, d.props)) {
        return Fail(ctx, errs, Rule::kDeviceUnsupported, u.message, static_cast<int>(i));
      }
    }
  }
  // The disks and host devices, in device order: the checks below look at nothing else.
  std::vector<int> disks, hostdevs_at;
  for (size_t i = 0; i < ctx.devices.size(); ++i) {
    const std::string& tag = ctx.devices[i].tag;
    if (SameText(tag, "disk")) disks.push_back(static_cast<int>(i));
    if (SameText(tag, "hostdev")) hostdevs_at.push_back(static_cast<int>(i));
  }
  // Duplicate disk targets, then duplicate host devices (virDomainDefValidateInternal): the
  // first disk whose target an earlier disk has is refused, naming that earlier disk. The
  // targets seen so far are in an open-addressing table of disks (views, no copies); one disk
  // needs none.
  size_t buckets = 16;
  while (buckets < 2 * disks.size()) buckets *= 2;
  std::vector<int> seen;
  if (disks.size() > 1) seen.assign(buckets, -1);
  auto target_of = [&](int i) {
    const std::string* target = ScanProp(ctx.devices[i].props, "target/@dev");
    return target ? std::string_view(*target) : std::string_view();
  };
  int duplicate = -1, holder = -1;
  for (size_t k = 0; k < disks.size() && !seen.empty(); ++k) {
    int i = disks[k];
    std::string_view dev = target_of(i);
    size_t b = std::hash<std::string_view>()(dev) & (buckets - 1);
    while (seen[b] >= 0 && target_of(seen[b]) != dev) b = (b + 1) & (buckets - 1);
    if (seen[b] < 0) {
      seen[b] = i;
      continue;
    }
    duplicate = i;
    holder = seen[b];
    break;
  }
  if (duplicate >= 0) {
    auto source = [&](const Device& x) {
      for (const char* k : {"source/@file", "source/@dev", "source/@dir", "source/@name"}) {
        if (const std::string* v = x.Get(k)) return *v;
      }
      return std::string("<null>");
    };
    return Fail(ctx, errs, Rule::kDuplicateDiskTarget,
                fmt::format("target '{}' duplicated for disk sources '{}' and '{}'",
                            ctx.devices[duplicate].GetOr("target/@dev", ""),
                            source(ctx.devices[holder]), source(ctx.devices[duplicate])),
                duplicate);
  }
  // Drive addresses (virDomainDefDuplicateDriveAddressesValidate): disks on one bus, then SCSI
  // host devices against each other and against SCSI disks.
  std::map<std::string, int> drives;  // "bus/controller:bus:target:unit" -> disk
  for (int i : ctx.disk_order) {
    const Device& d = ctx.devices[i];
    if (d.address.type != AddressType::kDrive) continue;
    std::string key = d.GetOr("target/@bus", "") + "/" + DriveKey(d.address);
    auto [it, fresh] = drives.emplace(key, i);
    if (fresh) continue;
    return Fail(ctx, errs, Rule::kDriveDoubleUse,
                fmt::format("drive address {} is already used by disk '{}'", DriveText(d.address),
                            ctx.devices[it->second].GetOr("target/@dev", "")),
                i);
  }
  std::map<std::string, int> scsi_hostdevs;
  for (int at : hostdevs_at) {
    size_t i = static_cast<size_t>(at);
    const Device& d = ctx.devices[i];
    if (!IsScsiHostdev(d) || d.address.type != AddressType::kDrive) continue;
    auto [it, fresh] = scsi_hostdevs.emplace(DriveKey(d.address), static_cast<int>(i));
    if (!fresh) {
      return Fail(ctx, errs, Rule::kDriveDoubleUse,
                  fmt::format("SCSI address {} is already used by another SCSI host device",
                              DriveText(d.address)),
                  static_cast<int>(i));
    }
    auto disk = drives.find("scsi/" + DriveKey(d.address));
    if (disk != drives.end()) {
      return Fail(ctx, errs, Rule::kDriveDoubleUse,
                  fmt::format("SCSI address {} is already used by disk '{}'", DriveText(d.address),
                              ctx.devices[disk->second].GetOr("target/@dev", "")),
                  static_cast<int>(i));
    }
  }
  std::set<std::string> identities;
  for (int at : hostdevs_at) {
    size_t i = static_cast<size_t>(at);
    const Device& d = ctx.devices[i];
    if (d.tag != std::string_view("hostdev")) continue;
    for (const HostdevIdentity& id : ctx.catalog.hostdev_identities) {
      if (!d.Is("@type", id.type)) continue;
      // The first key set the device fills in names it; numbers compare as numbers.
      for (size_t k = 0; k < id.keys.size(); ++k) {
        std::string key = id.type + "#" + std::to_string(k);
        bool complete = true;
        for (const std::string& prop : id.keys[k]) {
          const std::string* v = d.Get(prop);
          std::optional<uint32_t> n = v ? ParseUnsigned(*v) : std::nullopt;
          complete &= v && !v->empty();
          key += "|" + (n ? std::to_string(*n) : v ? *v : std::string());
        }
        if (!complete) continue;
        if (!identities.insert(key).second) {
          return Fail(
              ctx, errs, Rule::kDuplicateHostdev,
              fmt::format("this {} host device is already in the domain configuration", id.type),
              static_cast<int>(i));
        }
        break;
      }
    }
  }
  std::set<PciAddress> hostdevs;
  for (int at : hostdevs_at) {
    size_t i = static_cast<size_t>(at);
    const Device& d = ctx.devices[i];
    if (d.tag != std::string_view("hostdev") || !d.Is("@type", "pci") ||
        !d.Has("source/address/")) {
      continue;
    }
    auto n = [&](const char* k) { return ParseUnsigned(d.GetOr(k, "0")).value_or(0); };
    PciAddress src{n("source/address/@domain"), n("source/address/@bus"),
                   n("source/address/@slot"), n("source/address/@function")};
    if (!hostdevs.insert(src).second) {
      return Fail(ctx, errs, Rule::kDuplicateHostdev,
                  "host device " + src.ToString() + " already exists in the domain configuration",
                  static_cast<int>(i));
    }
  }
  return true;
}

}  // namespace pciplan
