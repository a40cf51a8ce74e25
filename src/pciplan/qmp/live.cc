#include "pciplan/qmp/live.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "pciplan/emit/qemu_args.h"

namespace pciplan {
namespace {

using Json = nlohmann::json;

const QemuDeviceArg* ArgOf(const QemuCommand& cmd, int device) {
  for (const QemuDeviceArg& a : cmd.devices) {
    if (a.device == device) return &a;
  }
  return nullptr;
}

}  // namespace

Result<bool> HotplugAttached(QmpClient& qmp, const Edited& edited, const Catalog& catalog,
                             int timeout_ms) {
  Result<QemuCommand> cmd = BuildQemuCommand(edited.domain, edited.plan, catalog);
  if (!cmd) return cmd.errors();
  const QemuDeviceArg* arg = ArgOf(*cmd, edited.device);
  std::string who = DeviceRef::DescribeAt(edited.plan.devices, edited.device);
  if (!arg) {
    return Error(Rule::kHotplug,
                 "it has no QEMU device of its own to hot-plug (it is not a PCI or "
                 "virtio-mmio device)",
                 who);
  }
  // Placeholders become their QMP counterparts; the ones QEMU cannot add live are refused.
  for (size_t i = 0; i + 1 < arg->backends.size(); i += 2) {
    const std::string& option = arg->backends[i];
    Json value = Json::parse(arg->backends[i + 1], nullptr, false);
    const char* command = option == "-blockdev" ? "blockdev-add"
                          : option == "-object" ? "object-add"
                                                : nullptr;
    if (!command || value.is_discarded()) {
      return Error(Rule::kHotplug,
                   fmt::format("its backend ({}) cannot be added to a running QEMU", option), who);
    }
    if (Result<Json> r = qmp.Execute(command, value, timeout_ms); !r) return r.errors();
  }
  Json device = Json::parse(arg->object.dump());
  if (Result<Json> r = qmp.Execute("device_add", device, timeout_ms); !r) {
    Diagnostics errs = r.errors();
    for (Diagnostic& d : errs) d.device = who;
    return errs;
  }
  return true;
}

Result<bool> HotUnplug(QmpClient& qmp, const Domain& domain, const Plan& plan, int index,
                       const Catalog& catalog, int timeout_ms) {
  Result<QemuCommand> cmd = BuildQemuCommand(domain, plan, catalog);
  if (!cmd) return cmd.errors();
  const QemuDeviceArg* arg = ArgOf(*cmd, index);
  std::string who = DeviceRef::DescribeAt(plan.devices, index);
  if (!arg || !arg->object.contains("id")) {
    return Error(Rule::kHotplug, "it has no QEMU device of its own to unplug", who);
  }
  std::string id = arg->object["id"].get<std::string>();
  if (Result<Json> r = qmp.Execute("device_del", Json{{"id", id}}, timeout_ms); !r) {
    Diagnostics errs = r.errors();
    for (Diagnostic& d : errs) d.device = who;
    return errs;
  }
  Result<Json> gone = qmp.WaitEvent(
      "DEVICE_DELETED", [&](const Json& data) { return data.value("device", "") == id; },
      timeout_ms);
  if (!gone) {
    return Error(Rule::kHotplug,
                 fmt::format("QEMU did not finish unplugging '{}' within {} ms (the guest must "
                             "acknowledge the removal); the domain is left as it was",
                             id, timeout_ms),
                 who);
  }
  return true;
}

}  // namespace pciplan
