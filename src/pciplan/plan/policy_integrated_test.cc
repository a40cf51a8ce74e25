#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

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

namespace pciplan {
namespace {

// --- NUMA placement ----------------------------------------------------------------------------

Result<Plan> PlanNuma(const std::string& machine, int cells, const std::string& devices,
                      const std::string& wishes, const std::string& arch = "x86_64") {
  std::string numa;
  for (int i = 0; i < cells; ++i) {
    numa += "<cell id='" + std::to_string(i) + "' cpus='" + std::to_string(i) +
            "' memory='131072' unit='KiB'/>";
  }
  Result<Domain> dom = ReadDomain(
      "<domain type='qemu'><name>t</name><metadata><p:wishes "
      "xmlns:p='https://pciplan.dev/xmlns/wishes/1' version='1'>" +
      wishes + "</p:wishes></metadata><os><type arch='" + arch + "' machine='" + machine +
      "'>hvm</type></os><cpu><numa>" + numa + "</numa></cpu><devices>" + devices +
      "</devices></domain>");
  if (!dom) return dom.errors();
  return MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
}

std::string Disk(int i) {
  return "<disk type='file' device='disk'><source file='/d" + std::to_string(i) +
         ".img'/><target dev='vd" + std::string(1, static_cast<char>('a' + i)) +
         "' bus='virtio'/><alias name='ua-d" + std::to_string(i) + "'/></disk>";
}

const Device* Controller(const Plan& p, uint32_t index) {
  for (const Device& d : p.devices) {
    if (d.Is("@type", "pci") && d.GetOr("@index", "") == std::to_string(index)) return &d;
  }
  return nullptr;
}

// The NUMA node of the expander bus a device is behind, or -1.
int NodeOf(const Plan& p, const Device& d) {
  uint32_t bus = d.address.pci.bus;
  for (int steps = 0; steps < 8 && bus != 0; ++steps) {
    const Device* c = Controller(p, bus);
    if (!c) return -1;
    if (c->Has("target/node")) return std::stoi(*c->Get("target/node"));
    bus = c->address.pci.bus;
  }
  return -1;
}

TEST(PolicyNuma, DevicesGoBehindAnExpanderBusOfTheirNodeWithBusNrRangesApart) {
  for (const char* m : {"pc", "q35", "virt"}) {
    SCOPED_TRACE(m);
    std::string arch = std::string(m) == "virt" ? "aarch64" : "x86_64";
    Result<Plan> p = PlanNuma(m, 3, Disk(0) + Disk(1) + Disk(2) + Disk(3),
                              "<p:device name='ua-d0' numaNode='0'/>"
                              "<p:device name='ua-d1' numaNode='2'/>"
                              "<p:device name='ua-d2' numaNode='2'/>",
                              arch);
    ASSERT_TRUE(p.ok()) << p.errors().front().message;
    std::map<std::string, int> want = {{"ua-d0", 0}, {"ua-d1", 2}, {"ua-d2", 2}, {"ua-d3", -1}};
    for (const Device& d : p->devices) {
      if (d.tag == "disk") {
        EXPECT_EQ(NodeOf(*p, d), want[d.GetOr("alias/@name", "")]);
      }
    }
    // busNr ranges [busNr, busNr + buses behind] never overlap, and lie above the main root's.
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    for (const Device& d : p->devices) {
      if (!d.Has("target/@busNr")) continue;
      uint32_t nr = std::stoul(*d.Get("target/@busNr"));
      uint32_t behind = 0;
      for (const Device& c : p->devices) {
        behind += c.Is("@type", "pci") && c.address.type == AddressType::kPci &&
                  c.address.pci.bus == std::stoul(d.GetOr("@index", "0"));
      }
      ranges.emplace_back(nr, nr + behind);
    }
    ASSERT_EQ(ranges.size(), 2u);
    EXPECT_TRUE(ranges[0].second < ranges[1].first || ranges[1].second < ranges[0].first);
  }
}

TEST(PolicyNuma, ANodeTheDomainLacksIsAWishUnmetAndAUserExpanderKeepsItsBusNr) {
  Result<Plan> missing = PlanNuma("q35", 2, Disk(0), "<p:device name='ua-d0' numaNode='2'/>");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.errors().front().rule, Rule::kWishUnmet);
  EXPECT_NE(missing.errors().front().message.find("2 NUMA cell(s)"), std::string::npos);
  Result<Plan> p = PlanNuma(
      "q35", 2,
      "<controller type='pci' index='1' model='pcie-expander-bus'><target busNr='200'>"
      "<node>0</node></target></controller>" + Disk(0),
      "<p:device name='ua-d0' numaNode='1'/>");
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  for (const Device& d : p->devices) {
    if (d.Has("target/@busNr") && d.GetOr("target/node", "") == "1") {
      EXPECT_LE(std::stoul(*d.Get("target/@busNr")) + 1, 199u);
    }
  }
  Result<Plan> bad = PlanNuma("q35", 2, Disk(0), "<p:device name='ua-d0' numaNode='x'/>");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.errors().front().rule, Rule::kBadWish);
}

}  // namespace
}  // namespace pciplan
