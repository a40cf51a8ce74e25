#include "fuzz_checks.h"

#include <fmt/format.h>

#include <map>
#include <vector>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/edit/attach.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/verify.h"

namespace pciplan::fuzz {
namespace {

std::optional<std::string> Violation(std::string what, const Diagnostics& errs = {}) {
  if (!errs.empty()) what += ": " + errs.front().Render("fuzz");
  return what;
}

/// The written domain must read, plan and write back to exactly the same bytes.
std::optional<std::string> CheckFixedPoint(const std::string& xml) {
  Result<Domain> again = ReadDomain(xml);
  if (!again) return Violation("the planned output does not read", again.errors());
  Result<Plan> plan = MakePlan(*again, BuiltinCatalog(), PolicyName::kLibvirt);
  // The one known exception, libvirt's own: a USB controller model='none' with an index other
  // than 0 is accepted, the default USB controller is added beside it, and the result is then
  // refused ("USB is disabled"). pciplan reproduces both decisions (README, "Known libvirt
  // defects pciplan reproduces").
  if (!plan && plan.errors().front().rule == Rule::kUsbDisabled) return std::nullopt;
  if (!plan) return Violation("the planned output does not re-plan", plan.errors());
  Result<std::string> out = WriteDomain(*again, *plan, BuiltinCatalog());
  if (!out) return Violation("the re-planned output does not write", out.errors());
  if (*out != xml) return Violation("re-planning the planned output changed it");
  return std::nullopt;
}

/// qemu-args in both renderings, and a verify report built from the command (as if QEMU had
/// put every device where planned), rendered as text and JSON: no user string may break them.
void RenderOutputs(const Domain& domain, const Plan& plan) {
  Result<QemuCommand> cmd = BuildQemuCommand(domain, plan, BuiltinCatalog());
  if (!cmd) return;
  (void)RenderQemuShell(*cmd);
  (void)RenderQemuJson(*cmd).dump(2);
  VerifyReport report;
  report.binary = cmd->binary;
  for (const QemuDeviceArg& d : cmd->devices) {
    DeviceCheck c;
    c.device = DeviceRef::DescribeAt(plan.devices, d.device);
    c.id = d.object.value("id", "");
    c.driver = d.object.value("driver", "");
    c.planned_bus = d.bus;
    c.planned = d.address;
    c.actual_bus = d.bus;
    c.actual = d.address;
    report.devices.push_back(std::move(c));
  }
  (void)RenderVerifyText(report);
  (void)RenderVerifyJson(report);
}

/// Whether two addresses name the same place. multifunction='on' may be added to function 0
/// when a device takes another function of its slot, as libvirt does: that moves nothing
/// (found by fuzzing: tests/fuzz/corpus/attach/crash-df8a1a8bd04dea8b).
bool SamePlace(Address a, Address b) {
  a.attrs.erase("multifunction");
  b.attrs.erase("multifunction");
  return a.type == b.type && a.pci == b.pci && a.attrs == b.attrs;
}

std::optional<std::string> CheckNothingMoved(const Domain& before, const std::string& xml) {
  Result<Domain> after = ReadDomain(xml);
  if (!after) return Violation("the edited domain does not read", after.errors());
  std::map<std::string, Address> now = AddressesByKey(*after);
  for (const auto& [key, addr] : AddressesByKey(before)) {
    auto it = now.find(key);
    if (it != now.end() && !SamePlace(it->second, addr)) return Violation(key + " moved");
  }
  return CheckFixedPoint(xml);
}

// Small base domains, every device with a user alias so that a move can be seen.
constexpr const char* kBaseDevices =
    "    <disk type='file' device='disk'><source file='/var/lib/b.img'/>"
    "<target dev='vda' bus='virtio'/><alias name='ua-vda'/></disk>\n"
    "    <interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/>"
    "<alias name='ua-net'/></interface>\n"
    "    <interface type='user'><mac address='52:54:00:00:00:02'/><model type='e1000'/>"
    "<alias name='ua-e1000'/></interface>\n";
constexpr const char* kBaseOs[] = {
    "<os><type arch='x86_64' machine='pc'>hvm</type></os>",
    "<os><type arch='x86_64' machine='q35'>hvm</type></os>",
    ("<os><type arch='aarch64' machine='virt'>hvm</type></os>"
     "<cpu mode='custom'><model>cortex-a57</model></cpu>"),
};

/// The unplanned base domains as text, one per machine family.
std::string BaseText(const char* os, const std::string& metadata = "") {
  return fmt::format("<domain type='qemu'>\n  <name>f</name>\n{}  {}\n  <devices>\n{}  </devices>\n"
                     "</domain>\n",
                     metadata, os, kBaseDevices);
}

/// The planned base domains, planned once.
const std::vector<Domain>& BaseDomains() {
  static const std::vector<Domain> bases = [] {
    std::vector<Domain> out;
    for (const char* os : kBaseOs) {
      Result<Domain> d = ReadDomain(BaseText(os));
      Result<Plan> p = MakePlan(*d, BuiltinCatalog(), PolicyName::kLibvirt);
      Result<Domain> planned = ReadDomain(WriteDomain(*d, *p, BuiltinCatalog()).value());
      out.push_back(std::move(planned.value()));
    }
    return out;
  }();
  return bases;
}

}  // namespace

std::map<std::string, Address> AddressesByKey(const Domain& d) {
  std::map<std::string, Address> out;
  for (const Device& dev : d.devices) {
    std::string key = dev.GetOr("alias/@name", "");
    if (key.empty() && dev.tag == "controller") {
      key = "controller " + dev.GetOr("@type", "") + " " + dev.GetOr("@index", "");
    }
    if (!key.empty() && dev.address.type != AddressType::kNone) out.emplace(key, dev.address);
  }
  return out;
}

std::optional<std::string> CheckPlan(std::string_view bytes) {
  Result<Domain> domain = ReadDomain(std::string(bytes));
  if (!domain) return std::nullopt;
  Result<Plan> plan = MakePlan(*domain, BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) return std::nullopt;
  Result<std::string> xml = WriteDomain(*domain, *plan, BuiltinCatalog());
  // The writer may refuse what it cannot write (a domain without <devices> that needs default
  // devices): a diagnostic, not a broken promise.
  if (!xml) return std::nullopt;
  RenderOutputs(*domain, *plan);
  return CheckFixedPoint(*xml);
}

std::optional<std::string> CheckAttachDetach(std::string_view bytes) {
  if (bytes.size() < 2) return std::nullopt;
  const std::vector<Domain>& bases = BaseDomains();
  const Domain& base = bases[static_cast<uint8_t>(bytes[0]) % bases.size()];
  uint8_t mode = static_cast<uint8_t>(bytes[1]);
  std::string device(bytes.substr(2));
  Result<Edited> attached = AttachDevice(base, device, BuiltinCatalog(),
                                         mode & 1 ? AttachMode::kLive : AttachMode::kConfig);
  if (!attached) return std::nullopt;
  if (auto v = CheckNothingMoved(base, attached->xml)) return "attach: " + *v;
  RenderOutputs(attached->domain, attached->plan);
  Result<Domain> now = ReadDomain(attached->xml);
  if (!now) return Violation("attach: the result does not read", now.errors());
  DetachRequest req{"", device, mode & 2 ? Prune::kEmptyControllers : Prune::kNothing};
  Result<Edited> detached = DetachDevice(*now, req, BuiltinCatalog());
  // Matching by element may find no device (or another one): only a success is checked.
  if (!detached) return std::nullopt;
  if (auto v = CheckNothingMoved(*now, detached->xml)) return "detach: " + *v;
  return std::nullopt;
}

std::optional<std::string> CheckWishes(std::string_view bytes) {
  if (bytes.size() < 2) return std::nullopt;
  constexpr size_t kFamilies = std::size(kBaseOs);
  size_t pick = static_cast<uint8_t>(bytes[0]) % (2 * kFamilies);
  bool json = static_cast<uint8_t>(bytes[1]) & 1;
  std::string text(bytes.substr(2));
  const Domain& planned_base = BaseDomains()[pick % kFamilies];
  bool planned = pick >= kFamilies;
  std::string base = planned ? planned_base.text : BaseText(kBaseOs[pick % kFamilies]);
  std::optional<Domain> domain;
  if (json) {
    Result<Wishes> w = ParsePolicyFile(text);
    if (!w) return std::nullopt;
    Result<Domain> d = ReadDomain(base);
    if (!d) return Violation("a base domain does not read", d.errors());
    domain = std::move(d.value());
    domain->wishes = Overlay(domain->wishes, *w);
  } else {
    // The element goes into a <metadata> after <name>.
    size_t name_end = base.find("</name>\n") + 8;
    Result<Domain> d = ReadDomain(base.substr(0, name_end) + "  <metadata>" + text +
                                  "</metadata>\n" + base.substr(name_end));
    if (!d) return std::nullopt;
    domain = std::move(d.value());
  }
  Result<Plan> plan = MakePlan(*domain, BuiltinCatalog(), PolicyName::kLibvirt);
  if (!plan) return std::nullopt;
  HotplugCapacity free = FreeHotplugSlots(*plan, BuiltinCatalog());
  if (free.pcie < domain->wishes.pcie_hotplug_slots.value_or(0) ||
      free.pci < domain->wishes.pci_hotplug_slots.value_or(0)) {
    return Violation(fmt::format("the plan has {} PCIe and {} PCI free hot-plug slots, fewer than "
                                 "the wishes say",
                                 free.pcie, free.pci));
  }
  Result<std::string> xml = WriteDomain(*domain, *plan, BuiltinCatalog());
  if (!xml) return std::nullopt;
  RenderOutputs(*domain, *plan);
  Result<Domain> written = ReadDomain(*xml);
  if (!written) return Violation("the planned output does not read", written.errors());
  std::string recorded = WithWishesText(*written, domain->wishes);
  Result<Domain> again = ReadDomain(recorded);
  if (!again) return Violation("the output with its wishes recorded does not read", again.errors());
  if (!(again->wishes == domain->wishes)) return Violation("the recorded wishes read back changed");
  if (planned) {
    if (auto v = CheckNothingMoved(planned_base, recorded)) return "wishes: " + *v;
    return std::nullopt;
  }
  return CheckFixedPoint(recorded);
}

}  // namespace pciplan::fuzz
