#include "pciplan/plan/hotplug.h"

#include <gtest/gtest.h>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

bool BusHotplug(const std::string& devices, uint32_t index,
                const std::string& type = "arch='x86_64' machine='q35'") {
  Result<Domain> dom = ReadDomain("<domain type='qemu'><name>t</name><os><type " + type +
                                  ">hvm</type></os><devices>" + devices + "</devices></domain>");
  EXPECT_TRUE(dom.ok());
  Result<Plan> plan = MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
  EXPECT_TRUE(plan.ok()) << plan.errors().front().Render("t");
  for (const PlanBus& b : PlanBuses(*plan, BuiltinCatalog())) {
    if (b.index == index) return b.hotplug;
  }
  ADD_FAILURE() << "no bus " << index;
  return false;
}

TEST(Hotplug, ADmiToPciBridgeOnTheMainRootTakesHotplugs) {
  EXPECT_TRUE(BusHotplug("<controller type='pci' index='1' model='dmi-to-pci-bridge'/>", 1));
}

TEST(Hotplug, ADmiToPciBridgeBehindAnExpanderBusTakesNone) {
  // Found by the fuzzer: QEMU's ACPI hot-plug serves only the main root's hierarchy.
  EXPECT_FALSE(BusHotplug(
      "<controller type='pci' index='1' model='pcie-expander-bus'><target busNr='200'/>"
      "</controller><controller type='pci' index='2' model='dmi-to-pci-bridge'>"
      "<address type='pci' bus='0x01' slot='0x00'/></controller>",
      2));
}

TEST(Hotplug, ADmiToPciBridgeOnAVirtBoardTakesNone) {
  // QEMU 7.2's virt boards have no ACPI PCI hot-plug (data: acpi_pci_hotplug): "Bus 'pci.1'
  // does not support hotplugging" (verify, corpus 577 and 580).
  const std::string bridge = "<controller type='pci' index='1' model='dmi-to-pci-bridge'/>";
  EXPECT_FALSE(BusHotplug(bridge, 1, "arch='aarch64' machine='virt'"));
  EXPECT_FALSE(BusHotplug(bridge, 1, "arch='riscv64' machine='virt'"));
  // A root port beside it still takes them.
  EXPECT_TRUE(BusHotplug(bridge + "<controller type='pci' index='2' model='pcie-root-port'/>", 2,
                         "arch='riscv64' machine='virt'"));
}

}  // namespace
}  // namespace pciplan
