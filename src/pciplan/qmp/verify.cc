#include "pciplan/qmp/verify.h"

#include <fmt/format.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "pciplan/base/numbers.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/qmp/qemu_process.h"

namespace pciplan {
namespace {

using Json = nlohmann::json;

constexpr const char* kProbePrefix = "pciplan-probe-";
constexpr const char* kMmioBus = "virtio-mmio-bus";
// QEMU's main system bus, where an extra root bus's host bridge (a pseries PHB) sits.
constexpr const char* kSysBus = "sysbus";

/// The last component of a QOM path: "/machine/peripheral/pci.1/pci.1" -> "pci.1".
std::string LastComponent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

class Verifier {
 public:
  Verifier(const Domain& domain, const Plan& plan, const Catalog& catalog,
           const VerifyOptions& options)
      : domain_(domain), plan_(plan), cat_(catalog), opt_(options) {}

  Result<VerifyReport> Run();

 private:
  Result<bool> CheckDevices(const QemuCommand& cmd);
  /// Fills in where QEMU has device `c.id`: its parent bus and slot.function.
  void ReadPlace(DeviceCheck& c);
  Result<bool> CheckBuiltins(const QemuCommand& cmd);
  Result<bool> Probe();
  ProbeCheck ProbeSlot(const PlanBus& bus, uint32_t slot, ProbeExpect expect);

  const Domain& domain_;
  const Plan& plan_;
  const Catalog& cat_;
  const VerifyOptions& opt_;
  std::unique_ptr<QemuProcess> qemu_;
  VerifyReport report_;
  int probes_ = 0;
};

void Verifier::ReadPlace(DeviceCheck& c) {
  std::string path = "/machine/peripheral/" + c.id;
  Result<Json> bus = qemu_->qmp().Execute(
      "qom-get", Json{{"path", path}, {"property", "parent_bus"}}, opt_.timeout_ms);
  if (!bus || !bus->is_string()) return;
  c.actual_bus = LastComponent(bus->get<std::string>());
  // virtio-mmio transports name their buses "virtio-mmio-bus.N".
  if (c.actual_bus.rfind(kMmioBus, 0) == 0) c.actual_bus = kMmioBus;
  Result<Json> addr =
      qemu_->qmp().Execute("qom-get", Json{{"path", path}, {"property", "addr"}}, opt_.timeout_ms);
  if (addr && addr->is_number_integer()) {
    int devfn = addr->get<int>();
    c.actual = PciAddress{0, c.planned.bus, static_cast<uint32_t>(devfn >> 3),
                          static_cast<uint32_t>(devfn & 7)};
  }
}

Result<bool> Verifier::CheckDevices(const QemuCommand& cmd) {
  for (const QemuDeviceArg& d : cmd.devices) {
    DeviceCheck c;
    c.device = DeviceRef::DescribeAt(plan_.devices, d.device);
    c.id = d.object.value("id", "");
    c.driver = d.object.value("driver", "");
    c.mmio = !d.pci;
    // A PCI controller with no PCI address is an extra root bus: its host bridge is on sysbus.
    c.planned_bus = !c.mmio ? d.bus : d.controller ? kSysBus : kMmioBus;
    c.planned = d.address;
    ReadPlace(c);
    // A virtio-mmio device only has to be on a virtio-mmio bus; a PCI one at its slot.
    bool same = c.mmio ? c.actual_bus == c.planned_bus
                       : c.actual && c.actual_bus == c.planned_bus &&
                             c.actual->slot == c.planned.slot &&
                             c.actual->function == c.planned.function;
    c.status = same ? CheckStatus::kOk : CheckStatus::kMismatch;
    report_.devices.push_back(std::move(c));
  }
  return true;
}

Result<bool> Verifier::CheckBuiltins(const QemuCommand& cmd) {
  // Built-ins and the root bus: QEMU numbers the root bus 0 before any firmware runs, so
  // query-pci lists what sits there.
  Result<Json> pci = qemu_->qmp().Execute("query-pci", Json::object(), opt_.timeout_ms);
  if (!pci) return pci.errors();
  std::map<std::pair<uint32_t, uint32_t>, Json> root;
  // query-pci lists every root bus (expander buses are roots to QEMU), the host bridge created
  // last first: the last bus 0 is the machine's (extra host bridges, as pseries' PHBs, number
  // their root buses 0 too).
  Json devices = Json::array();
  for (const Json& bus : pci->is_array() ? *pci : Json::array()) {
    if (bus.value("bus", -1) == 0) devices = bus.value("devices", Json::array());
  }
  for (const Json& dev : devices) {
    root[{dev.value("slot", 0u), dev.value("function", 0u)}] = dev;
  }
  std::vector<PlanBus> buses = PlanBuses(plan_, cat_);
  std::string root_name = !buses.empty() && buses[0].index == 0 ? buses[0].name : "";
  std::set<std::pair<uint32_t, uint32_t>> planned;
  for (const QemuDeviceArg& d : cmd.devices) {
    if (d.pci && d.address.bus == 0) planned.insert({d.address.slot, d.address.function});
  }
  for (const QemuBuiltin& b : cmd.builtins) {
    DeviceCheck c;
    c.device = DeviceRef::DescribeAt(plan_.devices, b.device);
    c.planned = b.address;
    c.planned_bus = root_name;
    auto it = root.find({b.address.slot, b.address.function});
    if (it != root.end()) {
      c.actual = b.address;
      c.driver = it->second.value("qdev_id", "");
      c.actual_bus = c.planned_bus;
    }
    c.status = c.actual ? CheckStatus::kOk : CheckStatus::kMismatch;
    planned.insert({b.address.slot, b.address.function});
    report_.devices.push_back(std::move(c));
  }
  std::set<uint32_t> reserved;
  if (plan_.family) {
    for (const ReservedFunction& r : plan_.family->reserved) reserved.insert(r.slot);
  }
  for (const auto& [sf, dev] : root) {
    if (sf.first == 0 || reserved.count(sf.first) || planned.count(sf)) continue;
    std::string desc = dev.contains("class_info") ? dev["class_info"].value("desc", "") : "";
    report_.warnings.push_back(fmt::format(
        "QEMU has a device the plan does not place at 00:{:02x}.{} ({}{}{})", sf.first, sf.second,
        desc, dev.value("qdev_id", "").empty() ? "" : ", id ", dev.value("qdev_id", "")));
  }
  return true;
}

ProbeCheck Verifier::ProbeSlot(const PlanBus& bus, uint32_t slot, ProbeExpect expect) {
  ProbeCheck p;
  p.bus = bus.name;
  p.slot = slot;
  p.expect = expect;
  std::string id = fmt::format("{}{}", kProbePrefix, probes_++);
  Result<Json> added = qemu_->qmp().Execute("device_add",
                                            Json{{"driver", cat_.qemu().probe_driver},
                                                 {"id", id},
                                                 {"bus", bus.name},
                                                 {"addr", QemuAddr(PciAddress{0, 0, slot, 0})}},
                                            opt_.timeout_ms);
  p.accepted = added.ok();
  if (!added) p.qemu_message = added.errors().front().message;
  if (p.accepted) {
    // A paused guest cannot answer an unplug request (ACPI hot-plug, q35's default since QEMU
    // 6.1, needs the guest OS); native PCIe and SHPC unplug without one. A second device_del
    // tells which: "not found" once the unplug completed, "already in the process of unplug"
    // while it waits for the guest.
    Result<Json> del = qemu_->qmp().Execute("device_del", Json{{"id", id}}, opt_.timeout_ms);
    if (!del) {
      p.qemu_message = del.errors().front().message;
    } else {
      Result<Json> again = qemu_->qmp().Execute("device_del", Json{{"id", id}}, opt_.timeout_ms);
      p.unplugged =
          !again && again.errors().front().message.find("DeviceNotFound") != std::string::npos;
    }
  }
  bool want = expect == ProbeExpect::kAccept;
  p.status = p.accepted == want ? CheckStatus::kOk : CheckStatus::kMismatch;
  return p;
}

Result<bool> Verifier::Probe() {
  for (const PlanBus& bus : PlanBuses(plan_, cat_)) {
    if (!bus.model->offers.HasEndpoint()) continue;  // only controllers plug in there
    if (bus.hotplug) {
      for (uint32_t s = bus.model->min_slot; s <= bus.model->max_slot; ++s) {
        if (!bus.used.count(s)) report_.probes.push_back(ProbeSlot(bus, s, ProbeExpect::kAccept));
      }
      continue;
    }
    // One free slot is enough to show QEMU refuses what the plan says is not hot-pluggable.
    for (uint32_t s = bus.model->min_slot; s <= bus.model->max_slot; ++s) {
      if (bus.used.count(s)) continue;
      report_.probes.push_back(ProbeSlot(bus, s, ProbeExpect::kRefuse));
      break;
    }
  }
  return true;
}

Result<VerifyReport> Verifier::Run() {
  std::error_code ec;
  std::filesystem::path scratch = std::filesystem::temp_directory_path(ec);
  Result<QemuCommand> cmd =
      BuildQemuCommand(domain_, plan_, cat_, QemuArgsOptions::ForVerify(scratch.string()));
  if (!cmd) return cmd.errors();
  QemuLaunch launch;
  launch.binary = opt_.qemu.empty() ? cmd->binary : opt_.qemu;
  launch.args = cmd->Argv();
  for (const char* a : {"-S", "-display", "none", "-accel", "tcg"}) launch.args.push_back(a);
  launch.timeout_ms = opt_.timeout_ms;
  report_.binary = launch.binary;
  Result<std::unique_ptr<QemuProcess>> started = QemuProcess::Start(launch);
  if (!started) return started.errors();
  qemu_ = std::move(started.value());
  if (Result<bool> r = CheckDevices(*cmd); !r) return r.errors();
  if (Result<bool> r = CheckBuiltins(*cmd); !r) return r.errors();
  if (opt_.probes == Probes::kHotplug) {
    if (Result<bool> r = Probe(); !r) return r.errors();
  }
  qemu_.reset();  // reaps QEMU before the report is returned
  return std::move(report_);
}

std::string Where(const std::string& bus, const PciAddress& a) {
  return fmt::format("{}:{:02x}.{}", bus, a.slot, a.function);
}

std::string Planned(const DeviceCheck& d) {
  return d.mmio ? d.planned_bus : Where(d.planned_bus, d.planned);
}

std::string Actual(const DeviceCheck& d) {
  if (d.actual_bus.empty()) return "absent";
  if (!d.actual) return d.actual_bus;
  return Where(d.actual_bus, *d.actual);
}

}  // namespace

bool VerifyReport::ok() const {
  for (const DeviceCheck& d : devices) {
    if (d.status != CheckStatus::kOk) return false;
  }
  for (const ProbeCheck& p : probes) {
    if (p.status != CheckStatus::kOk) return false;
  }
  return true;
}

Result<VerifyReport> Verify(const Domain& domain, const Plan& plan, const Catalog& catalog,
                            const VerifyOptions& options) {
  return Verifier(domain, plan, catalog, options).Run();
}

std::string RenderVerifyText(const VerifyReport& report) {
  std::string out;
  int bad = 0, accepted = 0, refused = 0;
  for (const DeviceCheck& d : report.devices) {
    bool ok = d.status == CheckStatus::kOk;
    bad += ok ? 0 : 1;
    out += fmt::format("{:<8} {}{}: planned {}, QEMU {}\n", ok ? "OK" : "MISMATCH", d.device,
                       d.id.empty() ? " (built in)" : fmt::format(" [{}]", d.id), Planned(d),
                       Actual(d));
  }
  for (const ProbeCheck& p : report.probes) {
    bool ok = p.status == CheckStatus::kOk;
    bad += ok ? 0 : 1;
    (p.accepted ? accepted : refused) += 1;
    std::string what = p.accepted ? (p.unplugged ? "hot-plug accepted, unplugged"
                                                 : "hot-plug accepted, unplug requested")
                                  : "hot-plug refused: " + p.qemu_message;
    out +=
        fmt::format("{:<8} {} slot {:#04x}: {} (plan: {})\n", ok ? "OK" : "MISMATCH", p.bus, p.slot,
                    what, p.expect == ProbeExpect::kAccept ? "hot-pluggable" : "not hot-pluggable");
  }
  for (const std::string& w : report.warnings) out += "warning: " + w + "\n";
  out +=
      fmt::format("{}: {} devices, {} hot-plug probes ({} accepted, {} refused), {} mismatches\n",
                  bad == 0 ? "verified" : "NOT verified", report.devices.size(),
                  report.probes.size(), accepted, refused, bad);
  return out;
}

std::string RenderVerifyJson(const VerifyReport& report) {
  Json out;
  out["ok"] = report.ok();
  out["binary"] = report.binary;
  out["devices"] = Json::array();
  for (const DeviceCheck& d : report.devices) {
    Json j{{"device", d.device},
           {"id", d.id},
           {"driver", d.driver},
           {"planned", Planned(d)},
           {"actual", d.actual_bus.empty() ? Json(nullptr) : Json(Actual(d))},
           {"status", d.status == CheckStatus::kOk ? "ok" : "mismatch"}};
    out["devices"].push_back(std::move(j));
  }
  out["probes"] = Json::array();
  for (const ProbeCheck& p : report.probes) {
    out["probes"].push_back(Json{{"bus", p.bus},
                                 {"slot", p.slot},
                                 {"expect", p.expect == ProbeExpect::kAccept ? "accept" : "refuse"},
                                 {"accepted", p.accepted},
                                 {"unplugged", p.unplugged},
                                 {"qemu_message", p.qemu_message},
                                 {"status", p.status == CheckStatus::kOk ? "ok" : "mismatch"}});
  }
  out["warnings"] = report.warnings;
  return out.dump(2) + "\n";
}

}  // namespace pciplan
