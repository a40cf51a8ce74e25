// Live attach and detach against a real, running QEMU: a hot-plug lands where pciplan planned it,
// a hot-plug QEMU refuses or pciplan cannot place leaves the domain file untouched and says why,
// and a detach frees the slot for the next hot-plug.
#include "pciplan/qmp/live.h"

#include <gtest/gtest.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/edit/attach.h"
#include "pciplan/emit/domain_writer.h"
#include "pciplan/emit/qemu_args.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/hotplug.h"
#include "pciplan/plan/planner.h"
#include "pciplan/qmp/qemu_process.h"
#include "test_support.h"

namespace pciplan {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using pciplan::testing::RunPciplan;
using pciplan::testing::Slurp;

constexpr int kTimeoutMs = 20000;

const char kNic[] =
    "<interface type='user'><mac address='52:54:00:00:00:42'/>"
    "<model type='virtio'/></interface>";

/// A domain as a defined one: planned, read back.
Domain Defined(const std::string& text) {
  Result<Domain> raw = ReadDomain(text);
  EXPECT_TRUE(raw.ok());
  Result<Plan> plan = MakePlan(*raw, BuiltinCatalog(), PolicyName::kLibvirt);
  EXPECT_TRUE(plan.ok());
  Result<Domain> planned = ReadDomain(WriteDomain(*raw, *plan, BuiltinCatalog()).value());
  EXPECT_TRUE(planned.ok());
  return std::move(planned.value());
}

/// QEMU running `domain` paused, with `extra` arguments.
std::unique_ptr<QemuProcess> StartPaused(const Domain& domain,
                                         std::vector<std::string> extra = {}) {
  Result<Plan> plan = MakePlan(domain, BuiltinCatalog(), PolicyName::kLibvirt);
  EXPECT_TRUE(plan.ok());
  Result<QemuCommand> cmd = BuildQemuCommand(domain, *plan, BuiltinCatalog());
  EXPECT_TRUE(cmd.ok());
  QemuLaunch launch;
  launch.binary = cmd->binary;
  launch.args = cmd->Argv();
  for (const char* a : {"-S", "-display", "none", "-accel", "tcg"}) launch.args.push_back(a);
  launch.args.insert(launch.args.end(), extra.begin(), extra.end());
  launch.timeout_ms = kTimeoutMs;
  Result<std::unique_ptr<QemuProcess>> p = QemuProcess::Start(launch);
  EXPECT_TRUE(p.ok()) << (p.ok() ? "" : p.errors().front().message);
  return p.ok() ? std::move(p.value()) : nullptr;
}

std::string Example() {
  return Slurp(fs::path(PCIPLAN_SOURCE_DIR) / "examples" / "q35-server.xml");
}

TEST(Live, HotplugLandsAtThePlannedAddress) {
  Domain dom = Defined(Example());
  std::unique_ptr<QemuProcess> qemu = StartPaused(dom);
  ASSERT_NE(qemu, nullptr);
  Result<Edited> e = AttachDevice(dom, kNic, BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(e.ok()) << e.errors().front().message;
  Result<bool> done = HotplugAttached(qemu->qmp(), *e, BuiltinCatalog(), kTimeoutMs);
  ASSERT_TRUE(done.ok()) << done.errors().front().message;
  const PciAddress& planned = e->plan.devices[e->device].address.pci;
  std::string id = "net2";  // the third interface
  Result<json> bus = qemu->qmp().Execute(
      "qom-get", json{{"path", "/machine/peripheral/" + id}, {"property", "parent_bus"}});
  Result<json> addr = qemu->qmp().Execute(
      "qom-get", json{{"path", "/machine/peripheral/" + id}, {"property", "addr"}});
  ASSERT_TRUE(bus.ok() && addr.ok());
  EXPECT_EQ(bus->get<std::string>().substr(bus->get<std::string>().rfind('/') + 1),
            "pci." + std::to_string(planned.bus));
  EXPECT_EQ(addr->get<int>(), static_cast<int>(planned.slot * 8 + planned.function));
}

TEST(Live, RefusalsLeaveTheDomainFileUntouched) {
  fs::path dir = fs::temp_directory_path() / ("pciplan-live-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Domain dom = Defined(Example());
  std::ofstream(dir / "vm.xml") << dom.text;
  std::ofstream(dir / "nic.xml") << kNic;
  // QEMU has something of its own in the slot pciplan will choose: QEMU refuses the device_add.
  Result<Edited> e = AttachDevice(dom, kNic, BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(e.ok());
  const PciAddress& slot = e->plan.devices[e->device].address.pci;
  fs::path sock = dir / "qmp.sock";
  std::unique_ptr<QemuProcess> qemu =
      // JSON, like pciplan's own -device options: QEMU creates keyval ones before JSON ones.
      StartPaused(dom, {"-device",
                        json{{"driver", "virtio-rng-pci"},
                             {"id", "squatter"},
                             {"bus", "pci." + std::to_string(slot.bus)}}
                            .dump(),
                        "-qmp", "unix:" + sock.string() + ",server=on,wait=off"});
  ASSERT_NE(qemu, nullptr);
  testing::RunResult r = RunPciplan(
      dir, {"attach", "--live", "--qmp", sock.string(), "--in-place", "vm.xml", "nic.xml"}, {});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("in use by virtio-rng-pci"), std::string::npos) << r.err;
  EXPECT_EQ(Slurp(dir / "vm.xml"), dom.text);
  // No free hot-pluggable slot left: pciplan refuses before asking QEMU.
  std::ofstream(dir / "vm.xml") << e->xml;
  std::string full = e->xml;
  r = RunPciplan(
      dir, {"attach", "--live", "--qmp", sock.string(), "--in-place", "vm.xml", "nic.xml"}, {});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("[no-free-slot]"), std::string::npos) << r.err;
  EXPECT_EQ(Slurp(dir / "vm.xml"), full);
  fs::remove_all(dir);
}

TEST(Live, DetachFreesTheSlotForTheNextHotplug) {
  // aarch64 virt: native PCI Express hot-plug, so QEMU completes the unplug of a hot-plugged
  // device without a guest (a device present at start would need the guest's consent).
  Domain dom = Defined(
      "<domain type='qemu'><name>v</name><os><type arch='aarch64' machine='virt'>hvm</type></os>"
      "<cpu mode='custom'><model>cortex-a57</model></cpu><devices>"
      "<disk type='file' device='disk'><source file='/x'/><target dev='vda' bus='virtio'/>"
      "<address type='pci'/></disk></devices></domain>");
  std::unique_ptr<QemuProcess> qemu = StartPaused(dom);
  ASSERT_NE(qemu, nullptr);
  Result<Edited> attached = AttachDevice(dom, kNic, BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(attached.ok()) << attached.errors().front().message;
  ASSERT_TRUE(HotplugAttached(qemu->qmp(), *attached, BuiltinCatalog(), kTimeoutMs).ok());
  PciAddress was = attached->plan.devices[attached->device].address.pci;
  Result<Domain> live = ReadDomain(attached->xml);
  ASSERT_TRUE(live.ok());
  Result<Plan> plan = MakePlan(*live, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_TRUE(plan.ok());
  DetachRequest nic{"", kNic, Prune::kNothing};
  Result<int> index = FindDevice(*live, nic);
  ASSERT_TRUE(index.ok());
  Result<bool> gone = HotUnplug(qemu->qmp(), *live, *plan, *index, BuiltinCatalog(), kTimeoutMs);
  ASSERT_TRUE(gone.ok()) << gone.errors().front().message;
  Result<Edited> detached = DetachDevice(*live, nic, BuiltinCatalog());
  ASSERT_TRUE(detached.ok());
  Result<Domain> after = ReadDomain(detached->xml);
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->text, dom.text);  // back to the domain as it was
  Result<Edited> again = AttachDevice(*after, kNic, BuiltinCatalog(), AttachMode::kLive);
  ASSERT_TRUE(again.ok()) << again.errors().front().message;
  EXPECT_EQ(again->plan.devices[again->device].address.pci, was);
  Result<bool> added = HotplugAttached(qemu->qmp(), *again, BuiltinCatalog(), kTimeoutMs);
  EXPECT_TRUE(added.ok()) << added.errors().front().message;
}

}  // namespace
}  // namespace pciplan
