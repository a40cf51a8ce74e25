#include <gtest/gtest.h>

#include <string>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

Result<Plan> PlanXml(const std::string& machine, const std::string& devices,
                     const std::string& wishes, const std::string& arch = "x86_64") {
  Result<Domain> dom = ReadDomain(
      "<domain type='qemu'><name>t</name><metadata><p:wishes "
      "xmlns:p='https://pciplan.dev/xmlns/wishes/1' version='1' " +
      wishes + "</metadata><os><type arch='" + arch + "' machine='" + machine +
      "'>hvm</type></os><devices>" + devices + "</devices></domain>");
  if (!dom) return dom.errors();
  return MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
}

std::string Disks(int n) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    out += "<disk type='file' device='disk'><source file='/d" + std::to_string(i) +
           ".img'/><target dev='vd" + std::string(1, static_cast<char>('a' + i % 26)) +
           (i >= 26 ? "a" : "") + "' bus='virtio'/></disk>";
  }
  return out;
}

int PciControllers(const Plan& p) {
  int n = 0;
  for (const Device& d : p.devices) n += d.tag == "controller" && d.Is("@type", "pci");
  return n;
}

TEST(PolicyIntegrated, EveryOpenEndpointGoesOnTheRootBusAndNoControllerIsAdded) {
  for (const char* m : {"pc", "q35", "virt"}) {
    SCOPED_TRACE(m);
    std::string arch = std::string(m) == "virt" ? "aarch64" : "x86_64";
    Result<Plan> p = PlanXml(m,
                             Disks(3) +
                                 "<interface type='user'><model type='e1000'/></interface>"
                                 "<rng model='virtio'><backend model='random'/></rng>",
                             "policy='integrated'/>", arch);
    ASSERT_TRUE(p.ok()) << p.errors().front().message;
    EXPECT_EQ(PciControllers(*p), 1);  // the root
    for (const Device& d : p->devices) {
      if (d.address.type == AddressType::kPci) {
        EXPECT_EQ(d.address.pci.bus, 0u) << DeviceRef::DescribeAt(p->devices, 0);
      }
    }
  }
}

TEST(PolicyIntegrated, AFullRootBusPacksFurtherEndpointsAsFunctionsOfTheLastSlot) {
  // q35: 30 slots for endpoints (the SATA controller's 0x1f is the chipset's); 40 disks and the
  // default USB controller and balloon cannot have a slot each.
  Result<Plan> p = PlanXml("q35", Disks(40), "policy='integrated'/>");
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(PciControllers(*p), 1);
  int packed = 0;
  uint32_t highest = 0;
  for (const Device& d : p->devices) {
    if (d.address.type != AddressType::kPci) continue;
    EXPECT_EQ(d.address.pci.bus, 0u);
    if (d.tag == "disk" && d.address.pci.function > 0) {
      ++packed;
      highest = std::max(highest, d.address.pci.slot);
    }
  }
  EXPECT_GT(packed, 0);
  EXPECT_EQ(highest, 0x1eu);  // the last slot taken is packed first
  for (const Device& d : p->devices) {
    if (d.address.type == AddressType::kPci && d.address.pci.slot == 0x1e &&
        d.address.pci.function == 0) {
      EXPECT_EQ(d.address.multifunction, "on");
    }
  }
}

TEST(PolicyIntegrated, ADeviceWishStillWins) {
  Result<Plan> p = PlanXml(
      "q35", Disks(2) + "<interface type='user'><model type='virtio'/><alias name='ua-n'/>"
                        "</interface>",
      "policy='integrated'><p:device name='ua-n' hotpluggable='yes'/></p:wishes>");
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(PciControllers(*p), 2);  // the root and the NIC's root port
  for (const Device& d : p->devices) {
    if (d.tag == "interface") {
      EXPECT_NE(d.address.pci.bus, 0u);
    } else if (d.tag == "disk") {
      EXPECT_EQ(d.address.pci.bus, 0u);
    }
  }
}

TEST(PolicyIntegrated, PolicyLibvirtPlansAsWithoutWishesAndAnUnknownPolicyIsABadWish) {
  Result<Plan> named = PlanXml("q35", Disks(3), "policy='libvirt'/>");
  Result<Domain> plain = ReadDomain(
      "<domain type='qemu'><name>t</name><os><type arch='x86_64' machine='q35'>hvm</type></os>"
      "<devices>" + Disks(3) + "</devices></domain>");
  ASSERT_TRUE(named.ok() && plain.ok());
  Result<Plan> libvirt = MakePlan(*plain, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_TRUE(libvirt.ok());
  ASSERT_EQ(named->devices.size(), libvirt->devices.size());
  for (size_t i = 0; i < named->devices.size(); ++i) {
    EXPECT_EQ(named->devices[i].address, libvirt->devices[i].address) << i;
  }
  Result<Plan> bad = PlanXml("q35", Disks(1), "policy='fast'/>");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.errors().front().rule, Rule::kBadWish);
}

}  // namespace
}  // namespace pciplan
