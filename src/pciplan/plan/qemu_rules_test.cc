#include "pciplan/plan/qemu_rules.h"

#include <gtest/gtest.h>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

Result<Plan> PlanFor(const std::string& arch, const std::string& devices) {
  std::string machine = arch == "x86_64" ? "q35" : "virt";
  Result<Domain> dom = ReadDomain("<domain type='qemu'><name>t</name><os><type arch='" + arch +
                                  "' machine='" + machine + "'>hvm</type></os><devices>\n" +
                                  devices + "</devices></domain>");
  if (!dom) return dom.errors();
  return MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
}

Result<Plan> PlanQ35(const std::string& devices) { return PlanFor("x86_64", devices); }

/// `n` virtio disks (vda, vdb, ...), the first on virtio-mmio, one per line after the first.
std::string MmioDisks(int n) {
  std::string out = "<memballoon model='none'/>\n";
  for (int i = 0; i < n; ++i) {
    out += std::string("<disk type='file' device='disk'><target dev='vd") +
           static_cast<char>('a' + i) + "' bus='virtio'/>" +
           (i == 0 ? "<address type='virtio-mmio'/>" : "") + "</disk>\n";
  }
  return out;
}

TEST(QemuRules, RootPortsWithTheSameChassisAreRefusedNamingTheSecond) {
  // Different ports do not help: QEMU keys the slot by chassis and its slot property (0).
  Result<Plan> p = PlanQ35(
      "<controller type='pci' index='1' model='pcie-root-port'><target chassis='7' port='1'/>"
      "</controller>\n"
      "<controller type='pci' index='2' model='pcie-root-port'><target chassis='7' port='2'/>"
      "</controller>\n");
  ASSERT_FALSE(p.ok());
  const Diagnostic& d = p.errors().front();
  EXPECT_EQ(d.rule, Rule::kChassisClash);
  EXPECT_EQ(d.line, 3);
  EXPECT_NE(d.device.find("index 2"), std::string::npos) << d.device;
  EXPECT_NE(d.message.find("index 1"), std::string::npos) << d.message;
}

TEST(QemuRules, AUserChassisEqualToAnotherPortsDefaultIsRefused) {
  // Root port 1 gets chassis 1 from libvirt's default (its index); port 2 asks for 1.
  Result<Plan> p = PlanQ35(
      "<controller type='pci' index='1' model='pcie-root-port'/>\n"
      "<controller type='pci' index='2' model='pcie-switch-downstream-port'>"
      "<target chassis='1'/></controller>\n"
      "<controller type='pci' index='3' model='pcie-switch-upstream-port'/>\n");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kChassisClash);
}

TEST(QemuRules, DistinctChassisAndABridgeChassisNrLikeAPortChassisArePlanned) {
  Result<Plan> p = PlanQ35(
      "<controller type='pci' index='1' model='pcie-root-port'><target chassis='7'/></controller>"
      "<controller type='pci' index='2' model='pcie-root-port'><target chassis='8'/></controller>"
      "<controller type='pci' index='5' model='pci-bridge'><target chassisNr='7'/>"
      "<address type='pci' bus='0x04' slot='0x01'/></controller>"
      "<controller type='pci' index='4' model='pcie-to-pci-bridge'/>");
  ASSERT_TRUE(p.ok()) << p.errors().front().Render("t");
}

TEST(QemuRules, ExpanderBusesWithTheSameBusNrAreRefused) {
  Result<Plan> p = PlanQ35(
      "<controller type='pci' index='1' model='pcie-expander-bus'><target busNr='100'/>"
      "</controller>\n"
      "<controller type='pci' index='2' model='pcie-expander-bus'><target busNr='100'/>"
      "</controller>\n");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kBusNrClash);
  EXPECT_EQ(p.errors().front().line, 3);
}

TEST(QemuRules, AnUpstreamPortPlacedBehindItsOwnDownstreamPortIsACycle) {
  // libvirt puts the upstream port (index 2) on the first free downstream port: index 1, which
  // sits on the upstream port's own bus.
  Result<Plan> p = PlanQ35(
      "<controller type='pci' index='2' model='pcie-switch-upstream-port'/>\n"
      "<controller type='pci' index='1' model='pcie-switch-downstream-port'>"
      "<address type='pci' bus='0x02' slot='0x00'/></controller>\n");
  ASSERT_FALSE(p.ok());
  const Diagnostic& d = p.errors().front();
  EXPECT_EQ(d.rule, Rule::kControllerCycle);
  EXPECT_NE(d.message.find("2 -> 1 -> 2"), std::string::npos) << d.message;
}

TEST(QemuRules, AControllerOnAHigherIndexedControllerIsNoCycle) {
  Result<Plan> p = PlanQ35(
      "<controller type='pci' index='3' model='pcie-root-port'>"
      "<address type='pci' bus='0x05' slot='0x00'/></controller>"
      "<controller type='pci' index='5' model='pcie-expander-bus'><target busNr='100'/>"
      "</controller>");
  ASSERT_TRUE(p.ok()) << p.errors().front().Render("t");
}

TEST(QemuRules, WhatTheCallerKnowsOfItsControllersIsNotLookedUpAgain) {
  Result<Plan> p = PlanQ35(
      "<controller type='pci' index='1' model='pcie-root-port'><target chassis='7'/></controller>"
      "<controller type='pci' index='2' model='pcie-root-port'><target chassis='8'/></controller>");
  ASSERT_TRUE(p.ok()) << p.errors().front().Render("t");
  std::vector<Device> devices = p->devices;
  int second = -1;
  for (size_t i = 0; i < devices.size(); ++i) {
    if (devices[i].Is("@index", "2") && devices[i].Is("@type", "pci")) second = static_cast<int>(i);
  }
  ASSERT_GE(second, 0);
  devices[second].Set("target/@chassis", "7");
  const Catalog& cat = BuiltinCatalog();
  // From the properties alone: the clash.
  Diagnostics found = CheckQemuRules(devices, cat, *p->family);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found.front().rule, Rule::kChassisClash);
  // Known models and indexes, as the properties give them: the same.
  std::vector<ControllerModelId> models(devices.size(), -2);
  std::vector<int> indexes(devices.size(), -2);
  const ControllerModelId port = cat.FindController("pcie-root-port", p->family->name);
  models[second] = port;
  indexes[second] = 2;
  found = CheckQemuRules(devices, cat, *p->family, {models, indexes});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found.front().rule, Rule::kChassisClash);
  // What is known is taken as it is: a port known to have no model is no controller QEMU
  // checks, one known to have no index neither.
  models[second] = -1;
  EXPECT_TRUE(CheckQemuRules(devices, cat, *p->family, {models, indexes}).empty());
  models[second] = port;
  indexes[second] = -1;
  EXPECT_TRUE(CheckQemuRules(devices, cat, *p->family, {models, indexes}).empty());
}

TEST(QemuRules, RiscvVirtHasEightVirtioMmioTransports) {
  // libvirt 9.0 makes every virtio device virtio-mmio once one is (corpus 519, 550); QEMU 7.2's
  // riscv64 virt has 8 transports (data: virtio_mmio_transports) and refuses the ninth device.
  ASSERT_TRUE(PlanFor("riscv64", MmioDisks(8)).ok());
  Result<Plan> p = PlanFor("riscv64", MmioDisks(9));
  ASSERT_FALSE(p.ok());
  const Diagnostic& d = p.errors().front();
  EXPECT_EQ(d.rule, Rule::kMmioTransports);
  EXPECT_EQ(d.line, 11);  // vdi, the ninth disk
  EXPECT_NE(d.message.find("8 virtio-mmio transports"), std::string::npos) << d.message;
  // aarch64 virt has 32.
  EXPECT_TRUE(PlanFor("aarch64", MmioDisks(9)).ok());
}

TEST(QemuRules, ADeviceWithoutAVirtioMmioTransportTakesNone) {
  // lsilogic gets libvirt's virtio-mmio address but QEMU puts it on PCI (qemu-misplaces).
  Result<Plan> p = PlanFor("riscv64", MmioDisks(8) +
                                          "<controller type='scsi' index='0' model='lsilogic'>"
                                          "<address type='virtio-mmio'/></controller>\n");
  EXPECT_TRUE(p.ok()) << p.errors().front().Render("t");
}

}  // namespace
}  // namespace pciplan
