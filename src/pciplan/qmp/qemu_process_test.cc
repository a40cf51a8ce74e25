// QemuProcess against the real qemu-system-x86_64 and qemu-system-aarch64 (7.2), and what
// QEMU itself decides about hot-plug on a paused (-S) guest: which buses take a device_add, and
// whether device_del completes without a guest to answer it. Every QEMU is reaped by its
// QemuProcess's destructor, also when an assertion fails.
#include "pciplan/qmp/qemu_process.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

namespace pciplan {
namespace {

using Json = nlohmann::json;

constexpr int kTimeoutMs = 20000;  // generous: CI machines are slow

QemuLaunch Machine(const std::string& arch, const std::string& machine,
                   const std::vector<std::string>& extra = {}) {
  QemuLaunch launch;
  launch.binary = QemuBinaryFor(arch);
  launch.args = {"-M", machine, "-nodefaults", "-S", "-display", "none", "-accel", "tcg"};
  launch.args.insert(launch.args.end(), extra.begin(), extra.end());
  launch.timeout_ms = kTimeoutMs;
  return launch;
}

QemuLaunch Q35(const std::vector<std::string>& extra = {}) {
  return Machine("x86_64", "q35", extra);
}
QemuLaunch Pc(const std::vector<std::string>& extra = {}) { return Machine("x86_64", "pc", extra); }

/// A started QEMU, or a test failure naming why it did not start.
std::unique_ptr<QemuProcess> StartOrFail(const QemuLaunch& launch) {
  Result<std::unique_ptr<QemuProcess>> qemu = QemuProcess::Start(launch);
  if (!qemu) {
    ADD_FAILURE() << "QEMU did not start: " << qemu.errors().front().message;
    return nullptr;
  }
  return std::move(qemu.value());
}

/// The probe every hot-plug test adds: an endpoint that fits both PCI and PCIe slots.
Json Probe(const std::string& bus, const std::string& addr) {
  return {{"driver", "virtio-net-pci"}, {"id", "probe"}, {"bus", bus}, {"addr", addr}};
}

Result<Json> HotAdd(QemuProcess& qemu, const std::string& bus, const std::string& addr) {
  return qemu.qmp().Execute("device_add", Probe(bus, addr), kTimeoutMs);
}

/// Hot-adds the probe, asks QEMU to remove it, and tells whether the removal completed: the
/// DEVICE_DELETED event arrived. A removal that waits for the guest is told by QEMU itself: a
/// second device_del is refused as "already in the process of unplug".
enum class Unplug { kCompleted, kPending };

void ExpectUnplug(const QemuLaunch& launch, const std::string& bus, const std::string& addr,
                  Unplug expected) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(launch);
  ASSERT_TRUE(qemu);
  Result<Json> added = HotAdd(*qemu, bus, addr);
  ASSERT_TRUE(added.ok()) << added.errors().front().message;

  Result<Json> requested = qemu->qmp().Execute("device_del", {{"id", "probe"}}, kTimeoutMs);
  ASSERT_TRUE(requested.ok()) << requested.errors().front().message;

  if (expected == Unplug::kCompleted) {
    Result<Json> deleted = qemu->qmp().WaitEvent(
        "DEVICE_DELETED", [](const Json& data) { return data.value("device", "") == "probe"; },
        kTimeoutMs);
    EXPECT_TRUE(deleted.ok()) << deleted.errors().front().message;
  } else {
    Result<Json> again = qemu->qmp().Execute("device_del", {{"id", "probe"}}, kTimeoutMs);
    ASSERT_FALSE(again.ok()) << "the first device_del completed";
    EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Device probe is already in the process of unplug",
                        again.errors().front().message);
  }
}

const std::vector<std::string> kRootPort = {
    "-device", "pcie-root-port,id=rp1,bus=pcie.0,addr=0x2,chassis=1,port=0x10"};

std::vector<std::string> Plus(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(QemuProcess, QueryPciOnQ35ListsTheHostBridgeAt00_00_0) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Q35());
  ASSERT_TRUE(qemu);

  Result<Json> pci = qemu->qmp().Execute("query-pci", Json::object(), kTimeoutMs);

  ASSERT_TRUE(pci.ok()) << pci.errors().front().message;
  ASSERT_TRUE(pci->is_array() && !pci->empty());
  const Json& bus0 = (*pci)[0];
  EXPECT_EQ(bus0["bus"], 0);
  ASSERT_FALSE(bus0["devices"].empty());
  const Json& first = bus0["devices"][0];
  EXPECT_EQ(first["slot"], 0);
  EXPECT_EQ(first["function"], 0);
  EXPECT_EQ(first["class_info"]["desc"], "Host bridge");
}

TEST(QemuProcess, BadArgumentFailsWithQemusOwnMessage) {
  Result<std::unique_ptr<QemuProcess>> qemu = QemuProcess::Start(Q35({"-device", "nosuchdevice"}));

  ASSERT_FALSE(qemu.ok());
  const Diagnostic& d = qemu.errors().front();
  EXPECT_EQ(d.rule, Rule::kQemu);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring,
                      "-device nosuchdevice: 'nosuchdevice' is not a valid device model name",
                      d.message);
}

TEST(QemuProcess, MissingBusFailsWithQemusOwnMessage) {
  Result<std::unique_ptr<QemuProcess>> qemu =
      QemuProcess::Start(Q35({"-device", "virtio-net-pci,bus=pci.9"}));

  ASSERT_FALSE(qemu.ok());
  EXPECT_EQ(qemu.errors().front().rule, Rule::kQemu);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Bus 'pci.9' not found",
                      qemu.errors().front().message);
}

TEST(QemuProcess, UnknownBinaryFailsNamingIt) {
  QemuLaunch launch = Q35();
  launch.binary = "qemu-system-pciplan-nonexistent";

  Result<std::unique_ptr<QemuProcess>> qemu = QemuProcess::Start(launch);

  ASSERT_FALSE(qemu.ok());
  EXPECT_EQ(qemu.errors().front().rule, Rule::kQemu);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "'qemu-system-pciplan-nonexistent'",
                      qemu.errors().front().message);
}

TEST(QemuProcess, DestroyingItLeavesNoProcess) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Q35());
  ASSERT_TRUE(qemu);
  pid_t pid = qemu->pid();
  ASSERT_EQ(kill(pid, 0), 0);

  qemu.reset();

  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(QemuProcess, ExitedTellsAndReapsAQemuThatEndedByItself) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Q35());
  ASSERT_TRUE(qemu);
  pid_t pid = qemu->pid();
  EXPECT_FALSE(qemu->Exited());
  ASSERT_TRUE(qemu->qmp().Execute("quit", Json::object(), kTimeoutMs).ok());
  bool exited = false;
  for (int waited = 0; waited < kTimeoutMs && !(exited = qemu->Exited()); waited += 10) {
    usleep(10000);
  }
  EXPECT_TRUE(exited);
  // Reaped already: no zombie is left for the destructor, which only cleans up.
  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
  qemu.reset();
}

TEST(QemuProcess, DestroyingItKillsAQemuThatDoesNotAnswer) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Q35());
  ASSERT_TRUE(qemu);
  pid_t pid = qemu->pid();
  ASSERT_EQ(kill(pid, SIGSTOP), 0);

  qemu.reset();

  EXPECT_EQ(kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(QemuBinaryFor, NamesTheSystemEmulatorOfTheArchitecture) {
  EXPECT_EQ(QemuBinaryFor("x86_64"), "qemu-system-x86_64");
  EXPECT_EQ(QemuBinaryFor("i686"), "qemu-system-x86_64");
  EXPECT_EQ(QemuBinaryFor("aarch64"), "qemu-system-aarch64");
  EXPECT_EQ(QemuBinaryFor("riscv64"), "qemu-system-riscv64");
}

// Where QEMU 7.2 takes a hot-added device on a paused guest.

TEST(QemuHotplug, DeviceAddOnPcieRootIsRefusedWithQemusMessage) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Q35());
  ASSERT_TRUE(qemu);

  Result<Json> added = HotAdd(*qemu, "pcie.0", "0x5");

  ASSERT_FALSE(added.ok());
  EXPECT_EQ(added.errors().front().rule, Rule::kQemu);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Bus 'pcie.0' does not support hotplugging",
                      added.errors().front().message);
}

TEST(QemuHotplug, DeviceAddOnAFreeRootPortSucceeds) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Q35(kRootPort));
  ASSERT_TRUE(qemu);

  Result<Json> added = HotAdd(*qemu, "rp1", "0x0");

  EXPECT_TRUE(added.ok()) << added.errors().front().message;
}

TEST(QemuHotplug, DeviceAddOnARootPortWithHotplugOffIsRefused) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Q35(
      {"-device", "pcie-root-port,id=rp1,bus=pcie.0,addr=0x2,chassis=1,port=0x10,hotplug=off"}));
  ASSERT_TRUE(qemu);

  Result<Json> added = HotAdd(*qemu, "rp1", "0x0");

  ASSERT_FALSE(added.ok());
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Bus 'rp1' does not support hotplugging",
                      added.errors().front().message);
}

TEST(QemuHotplug, DeviceAddOnPcRootBusSucceeds) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Pc());
  ASSERT_TRUE(qemu);

  Result<Json> added = HotAdd(*qemu, "pci.0", "0x5");

  EXPECT_TRUE(added.ok()) << added.errors().front().message;
}

TEST(QemuHotplug, DeviceAddOnPxbIsRefused) {
  std::unique_ptr<QemuProcess> qemu =
      StartOrFail(Pc({"-device", "pxb,id=pxb1,bus=pci.0,addr=0x4,bus_nr=0x10"}));
  ASSERT_TRUE(qemu);

  Result<Json> added = HotAdd(*qemu, "pxb1", "0x1");

  ASSERT_FALSE(added.ok());
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Bus 'pxb1' does not support hotplugging",
                      added.errors().front().message);
}

TEST(QemuHotplug, DeviceAddOnPxbPcieIsRefused) {
  std::unique_ptr<QemuProcess> qemu =
      StartOrFail(Q35({"-device", "pxb-pcie,id=pxb1,bus=pcie.0,addr=0x4,bus_nr=0x10"}));
  ASSERT_TRUE(qemu);

  Result<Json> added = HotAdd(*qemu, "pxb1", "0x0");

  ASSERT_FALSE(added.ok());
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Bus 'pxb1' does not support hotplugging",
                      added.errors().front().message);
}

TEST(QemuHotplug, DeviceAddOnDmiToPciBridgeSucceedsThroughAcpiHotplug) {
  std::unique_ptr<QemuProcess> qemu =
      StartOrFail(Q35({"-device", "i82801b11-bridge,id=dmi,bus=pcie.0,addr=0x1e"}));
  ASSERT_TRUE(qemu);

  Result<Json> added = HotAdd(*qemu, "dmi", "0x1");

  EXPECT_TRUE(added.ok()) << added.errors().front().message;
}

TEST(QemuHotplug, DeviceAddOnDmiToPciBridgeIsRefusedWithoutAcpiHotplug) {
  // The i82801b11-bridge has no SHPC: without ACPI hot-plug nothing can announce a device.
  std::unique_ptr<QemuProcess> qemu =
      StartOrFail(Q35({"-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off", "-device",
                       "i82801b11-bridge,id=dmi,bus=pcie.0,addr=0x1e"}));
  ASSERT_TRUE(qemu);

  Result<Json> added = HotAdd(*qemu, "dmi", "0x1");

  ASSERT_FALSE(added.ok());
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Bus 'dmi' does not support hotplugging",
                      added.errors().front().message);
}

TEST(QemuHotplug, DeviceAddOnAnOccupiedSlotIsRefusedWithQemusMessage) {
  std::unique_ptr<QemuProcess> qemu = StartOrFail(Q35(kRootPort));
  ASSERT_TRUE(qemu);
  ASSERT_TRUE(HotAdd(*qemu, "rp1", "0x0").ok());

  Result<Json> second = qemu->qmp().Execute(
      "device_add",
      {{"driver", "virtio-net-pci"}, {"id", "probe2"}, {"bus", "rp1"}, {"addr", "0x0"}},
      kTimeoutMs);

  ASSERT_FALSE(second.ok());
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "PCI: slot 0 function 0 not available",
                      second.errors().front().message);
}

// Whether device_del completes on a paused guest. ACPI hot-plug (the default on pc, and on q35
// since QEMU 6.1 for everything below pcie.0) waits for the guest's _EJ0; native PCIe and SHPC
// hot-plug remove a device at once from a slot the guest never powered.

TEST(QemuHotplug, UnplugFromQ35RootPortWaitsForTheGuest) {
  ExpectUnplug(Q35(kRootPort), "rp1", "0x0", Unplug::kPending);
}

TEST(QemuHotplug, UnplugFromQ35RootPortCompletesWithNativeHotplug) {
  ExpectUnplug(
      Q35(Plus({"-global", "ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"}, kRootPort)), "rp1",
      "0x0", Unplug::kCompleted);
}

TEST(QemuHotplug, UnplugFromRootPortOnPxbPcieCompletes) {
  // ACPI hot-plug covers pcie.0's hierarchy only; a root port on an expander uses native.
  ExpectUnplug(Q35({"-device", "pxb-pcie,id=pxb1,bus=pcie.0,addr=0x4,bus_nr=0x10", "-device",
                    "pcie-root-port,id=rp2,bus=pxb1,addr=0x0,chassis=2,port=0x11"}),
               "rp2", "0x0", Unplug::kCompleted);
}

TEST(QemuHotplug, UnplugFromPcieToPciBridgeWaitsForTheGuest) {
  ExpectUnplug(Q35(Plus(kRootPort, {"-device", "pcie-pci-bridge,id=ppb,bus=rp1,addr=0x0"})), "ppb",
               "0x1", Unplug::kPending);
}

TEST(QemuHotplug, UnplugFromDmiToPciBridgeWaitsForTheGuest) {
  ExpectUnplug(Q35({"-device", "i82801b11-bridge,id=dmi,bus=pcie.0,addr=0x1e"}), "dmi", "0x1",
               Unplug::kPending);
}

TEST(QemuHotplug, UnplugFromPcRootBusWaitsForTheGuest) {
  ExpectUnplug(Pc(), "pci.0", "0x5", Unplug::kPending);
}

TEST(QemuHotplug, UnplugFromPciBridgeOnPcWaitsForTheGuest) {
  ExpectUnplug(Pc({"-device", "pci-bridge,id=br1,bus=pci.0,addr=0x3,chassis_nr=1"}), "br1", "0x1",
               Unplug::kPending);
}

TEST(QemuHotplug, UnplugFromPciBridgeOnPcCompletesWithShpc) {
  ExpectUnplug(Pc({"-global", "PIIX4_PM.acpi-pci-hotplug-with-bridge-support=off", "-device",
                   "pci-bridge,id=br1,bus=pci.0,addr=0x3,chassis_nr=1"}),
               "br1", "0x1", Unplug::kCompleted);
}

TEST(QemuHotplug, UnplugFromPciBridgeOnPxbCompletes) {
  // ACPI hot-plug does not reach below an expander bus; the bridge's SHPC does the work.
  ExpectUnplug(Pc({"-device", "pxb,id=pxb1,bus=pci.0,addr=0x4,bus_nr=0x10", "-device",
                   "pci-bridge,id=br1,bus=pxb1,addr=0x1,chassis_nr=1"}),
               "br1", "0x1", Unplug::kCompleted);
}

TEST(QemuHotplug, UnplugFromVirtRootPortCompletes) {
  ExpectUnplug(Machine("aarch64", "virt", kRootPort), "rp1", "0x0", Unplug::kCompleted);
}

}  // namespace
}  // namespace pciplan
