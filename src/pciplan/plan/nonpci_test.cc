// The non-PCI part of the libvirt policy: addresses beside PCI (drive, CCID, USB, dimm,
// spapr-vio) and the define-time checks that are not about PCI slots.
#include "pciplan/plan/nonpci.h"

#include <gtest/gtest.h>

#include "pciplan/plan/plan_test_support.h"

namespace pciplan {
namespace {

using pciplan::testing::DomainXml;
using pciplan::testing::PlanXml;

/// The address of the `n`th planned device with this tag, as "type k=v k=v".
std::string AddressOf(const Plan& p, const std::string& tag, int n = 0) {
  for (const Device& d : p.devices) {
    if (d.tag != tag || n-- > 0) continue;
    std::string out = d.address.type_name;
    for (const auto& [k, v] : d.address.attrs) out += " " + k + "=" + v;
    return out;
  }
  return "missing";
}

int Controllers(const Plan& p, const std::string& type) {
  int n = 0;
  for (const Device& d : p.devices) n += d.tag == "controller" && d.Is("@type", type);
  return n;
}

/// A SCSI host device on host adapter `n`.
std::string ScsiHostdev(int n) {
  return "<hostdev mode='subsystem' type='scsi'><source><adapter name='scsi_host" +
         std::to_string(n) + "'/><address bus='0' target='0' unit='0'/></source></hostdev>";
}
const char kDimm[] = "<memory model='dimm'><target><size unit='MiB'>256</size></target></memory>";
const char kSlots[] = "<maxMemory slots='2' unit='MiB'>4096</maxMemory>";

TEST(NonPci, DiskWithoutBusTakesTheBusOfItsNamePrefix) {
  Result<Plan> p =
      PlanXml(DomainXml("pc",
                        "<disk type='file' device='disk'><target dev='hda'/></disk>"
                        "<disk type='file' device='floppy'><target dev='fda'/></disk>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(p->devices[0].GetOr("target/@bus", ""), "ide");
  EXPECT_EQ(p->devices[1].GetOr("target/@bus", ""), "fdc");
  EXPECT_EQ(Controllers(*p, "ide"), 1);
}

TEST(NonPci, SmartcardGetsCcidZeroAndItsControllerAUsbPort) {
  Result<Plan> p = PlanXml(DomainXml("pc", "<smartcard mode='host'/>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "smartcard"), "ccid controller=0 slot=0");
  for (const Device& d : p->devices) {
    if (d.Is("@type", "ccid")) {
      EXPECT_EQ(d.address.type, AddressType::kUsb);
    }
  }
  EXPECT_EQ(Controllers(*p, "ccid"), 1);
}

TEST(NonPci, ScsiHostdevsFillSevenUnitsThenAddAController) {
  std::string devices;
  for (int i = 0; i < 8; ++i) devices += ScsiHostdev(i);
  Result<Plan> p = PlanXml(DomainXml("pc", devices));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "hostdev", 6), "drive bus=0 controller=0 target=0 unit=6");
  EXPECT_EQ(AddressOf(*p, "hostdev", 7), "drive bus=0 controller=1 target=0 unit=0");
  EXPECT_EQ(Controllers(*p, "scsi"), 2);
}

TEST(NonPci, ScsiHostdevOnASmallControllerModelMovesOnAndRepeatsTheModel) {
  Result<Plan> p =
      PlanXml(DomainXml("pc", "<controller type='scsi' index='0' model='lsisas1068'/>" +
                                  ScsiHostdev(0) + ScsiHostdev(1) + ScsiHostdev(2)));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "hostdev", 2), "drive bus=0 controller=1 target=0 unit=0");
  for (const Device& d : p->devices) {
    if (d.tag == "controller" && d.Is("@type", "scsi")) {
      EXPECT_EQ(d.GetOr("@model", ""), "lsisas1068");
    }
  }
}

TEST(NonPci, DimmsTakeTheLowestFreeSlots) {
  Result<Plan> p = PlanXml(DomainXml(
      "q35",
      std::string(kDimm) + "<memory model='dimm'><target><size unit='MiB'>256</size></target>"
                           "<address type='dimm' slot='0'/></memory>",
      "x86_64", kSlots));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "memory", 0), "dimm slot=1");
}

TEST(NonPci, IbmvscsiGetsSpaprVioRegsOnAnyMachine) {
  Result<Plan> p = PlanXml(DomainXml("q35",
                                     "<controller type='scsi' index='0' model='ibmvscsi'/>"
                                     "<controller type='scsi' index='1' model='ibmvscsi'/>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "controller", 0), "spapr-vio reg=0x00002000");
  EXPECT_EQ(AddressOf(*p, "controller", 1), "spapr-vio reg=0x00003000");
}

TEST(NonPci, PseriesSpaprVioDevicesGetRegsPastTheTakenOnes) {
  // spapr-vlan from 0x1000, nvram 0x3000, serial ports from 0x30000000: the next free reg past
  // every given one, whatever the order; a serial port without target is pseries' spapr-vio one.
  Result<Plan> p = PlanXml(DomainXml(
      "pseries",
      "<interface type='user'><model type='spapr-vlan'/></interface>"
      "<interface type='user'><model type='spapr-vlan'/>"
      "<address type='spapr-vio' reg='0x1000'/></interface>"
      "<serial type='pty'/><serial type='pty'/><nvram/>",
      "ppc64"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "interface", 0), "spapr-vio reg=0x00002000");
  EXPECT_EQ(AddressOf(*p, "interface", 1), "spapr-vio reg=0x1000");
  EXPECT_EQ(AddressOf(*p, "serial", 0), "spapr-vio reg=0x30000000");
  EXPECT_EQ(AddressOf(*p, "serial", 1), "spapr-vio reg=0x30001000");
  EXPECT_EQ(AddressOf(*p, "nvram", 0), "spapr-vio reg=0x00003000");
  // The console libvirt adds is serial port 0's copy, at its address.
  EXPECT_EQ(AddressOf(*p, "console", 0), "spapr-vio reg=0x30000000");
}

TEST(NonPci, ALoneConsoleBecomesSerialPortZero) {
  Result<Plan> p = PlanXml(DomainXml("pseries", "<console type='pty'/>", "ppc64"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "serial", 0), "spapr-vio reg=0x30000000");
  EXPECT_EQ(AddressOf(*p, "console", 0), "spapr-vio reg=0x30000000");
  EXPECT_EQ(AddressOf(*p, "serial", 1), "missing");
}

TEST(NonPci, ASpaprVioRegGivenTwiceIsRefused) {
  Result<Plan> p = PlanXml(DomainXml("pseries",
                                     "<controller type='scsi' model='ibmvscsi'>"
                                     "<address type='spapr-vio' reg='0x2000'/></controller>"
                                     "<nvram><address type='spapr-vio' reg='0x2000'/></nvram>",
                                     "ppc64"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kDoubleUse);
  EXPECT_EQ(p.errors().front().message, "spapr-vio address 0x2000 already in use");
}

TEST(NonPci, TheSpaprVioAddressOfANoneMemballoonIsDroppedAndTakesNoReg) {
  // libvirt drops the address of a memballoon of model none (oracle: libvirt 9.0 defines this
  // domain and gives the controller its reg).
  Result<Plan> p = PlanXml(DomainXml(
      "pc",
      "<controller type='scsi' index='0' model='ibmvscsi'><address type='spapr-vio' "
      "reg='0x2000'/></controller><memballoon model='none'><address type='spapr-vio' "
      "reg='0x2000'/></memballoon>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "controller"), "spapr-vio reg=0x2000");
  EXPECT_EQ(AddressOf(*p, "memballoon"), "");
  // Nor does it keep the controller from the first reg (oracle: 0x00002000).
  Result<Plan> q = PlanXml(DomainXml(
      "pc",
      "<controller type='scsi' index='0' model='ibmvscsi'/><memballoon model='none'><address "
      "type='spapr-vio' reg='0x2000'/></memballoon>"));
  ASSERT_TRUE(q.ok()) << q.errors().front().message;
  EXPECT_EQ(AddressOf(*q, "controller"), "spapr-vio reg=0x00002000");
}

TEST(NonPci, NvramIsPseriesOnly) {
  Result<Plan> p = PlanXml(DomainXml("pc", "<nvram/>"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kDeviceMachine);
}

TEST(NonPci, ImplicitScsiControllersTakeTheMachinesScsiModel) {
  const char disk[] = "<disk type='file' device='disk'><source file='/a'/>"
                      "<target dev='sda' bus='scsi'/></disk>";
  Result<Plan> pseries = PlanXml(DomainXml("pseries", disk, "ppc64"));
  ASSERT_TRUE(pseries.ok()) << pseries.errors().front().message;
  Result<Plan> pc = PlanXml(DomainXml("pc", disk));
  ASSERT_TRUE(pc.ok()) << pc.errors().front().message;
  auto scsi_model = [](const Plan& p) {
    for (const Device& d : p.devices) {
      if (d.tag == "controller" && d.Is("@type", "scsi")) return d.GetOr("@model", "");
    }
    return std::string("missing");
  };
  EXPECT_EQ(scsi_model(*pseries), "ibmvscsi");
  EXPECT_EQ(scsi_model(*pc), "lsilogic");
}

TEST(NonPci, UsbAddressWithoutPortGetsAPortOnItsBusAfterTheHubs) {
  Result<Plan> p =
      PlanXml(DomainXml("pc",
                        "<input type='tablet' bus='usb'><address type='usb' bus='0'/></input>"
                        "<hub type='usb'><address type='usb' bus='0'/></hub>"
                        "<input type='mouse' bus='usb'/>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "hub"), "usb bus=0 port=1");
  EXPECT_EQ(AddressOf(*p, "input", 0), "usb bus=0 port=2");
  EXPECT_EQ(AddressOf(*p, "input", 1), "usb bus=0 port=1.1");
}

TEST(NonPci, VdpaInterfaceDefaultsToVirtio) {
  Result<Plan> p = PlanXml(
      DomainXml("q35", "<interface type='vdpa'><source dev='/dev/vhost-vdpa-0'/></interface>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(p->devices[0].GetOr("model/@type", ""), "virtio");
}

TEST(NonPci, TransitionalVsockAndVhostScsiAreConventionalPci) {
  Result<Plan> p =
      PlanXml(DomainXml("q35",
                        "<hostdev mode='subsystem' type='scsi_host' model='virtio-transitional'>"
                        "<source protocol='vhost' wwpn='naa.5123456789abcde0'/></hostdev>"
                        "<vsock model='virtio-transitional'/>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  // Both behind the pcie-to-pci-bridge libvirt adds for conventional devices.
  for (const Device& d : p->devices) {
    if (d.tag != "hostdev" && d.tag != "vsock") continue;
    ASSERT_EQ(d.address.type, AddressType::kPci);
    EXPECT_NE(d.address.pci.slot, 0u) << d.tag;
  }
}

struct RuleCase {
  const char* name;
  std::string xml;
  Rule rule;
};

TEST(NonPci, InvalidDomainsAreRefusedNamingTheRule) {
  const std::string disk = "<disk type='file' device='disk'><target dev='sda' bus='scsi'/>";
  const std::string drive0 = "<address type='drive' controller='0' bus='0' target='0' unit='0'/>";
  const std::string pci5 = "<address type='pci' domain='0' bus='0' slot='5' function='0'/>";
  const RuleCase cases[] = {
      {"two disks on one drive address",
       DomainXml("pc", disk + drive0 +
                           "</disk><disk type='file' device='disk'><target dev='sdb' "
                           "bus='scsi'/>" +
                           drive0 + "</disk>"),
       Rule::kDriveDoubleUse},
      {"pci address on an ide disk",
       DomainXml("pc", "<disk type='file' device='disk'><target dev='hda' bus='ide'/>" + pci5 +
                           "</disk>"),
       Rule::kAddressType},
      {"drive address on a virtio disk",
       DomainXml("pc", "<disk type='file' device='disk'><target dev='vda' bus='virtio'/>" + drive0 +
                           "</disk>"),
       Rule::kAddressType},
      {"pci address on ramfb", DomainXml("q35", "<video><model type='ramfb'/>" + pci5 + "</video>"),
       Rule::kAddressType},
      {"xhci port 5",
       DomainXml("q35",
                 "<input type='tablet' bus='usb'><address type='usb' "
                 "bus='0' port='5'/></input>"),
       Rule::kUsbPort},
      {"xhci ports=16",
       DomainXml("q35", "<controller type='usb' index='0' model='qemu-xhci' ports='16'/>"),
       Rule::kUsbPortCount},
      {"usb port path of 5 levels",
       DomainXml("pc",
                 "<input type='tablet' bus='usb'><address type='usb' bus='0' "
                 "port='1.1.1.1.1'/></input>"),
       Rule::kUsbPortPath},
      {"usb port behind a port without hub",
       DomainXml("pc",
                 "<input type='tablet' bus='usb'><address type='usb' bus='0' "
                 "port='1.1'/></input>"),
       Rule::kUsbHubMissing},
      {"same usb host device twice",
       DomainXml("pc",
                 "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/>"
                 "<product id='0x5678'/></source></hostdev><hostdev mode='subsystem' "
                 "type='usb'><source><vendor id='4660'/><product id='0x5678'/></source>"
                 "</hostdev>"),
       Rule::kDuplicateHostdev},
      {"same scsi host device twice", DomainXml("pc", ScsiHostdev(0) + ScsiHostdev(0)),
       Rule::kDuplicateHostdev},
      {"intel iommu on pc", DomainXml("pc", "<iommu model='intel'/>"), Rule::kDeviceMachine},
      {"smmuv3 on q35", DomainXml("q35", "<iommu model='smmuv3'/>"), Rule::kDeviceMachine},
      {"virtio iommu without acpi", DomainXml("q35", "<iommu model='virtio'/>"), Rule::kIommuAcpi},
      {"two vsocks", DomainXml("q35", "<vsock model='virtio'/><vsock model='virtio'/>"),
       Rule::kSingleDevice},
      {"two smartcards", DomainXml("pc", "<smartcard mode='host'/><smartcard mode='host'/>"),
       Rule::kSmartcardCount},
      {"dimm slot beyond maxMemory slots",
       DomainXml("q35",
                 "<memory model='dimm'><target><size unit='MiB'>256</size></target>"
                 "<address type='dimm' slot='2'/></memory>",
                 "x86_64", kSlots),
       Rule::kMemorySlotRange},
      {"more dimms than slots",
       DomainXml("q35", std::string(kDimm) + kDimm + kDimm, "x86_64", kSlots), Rule::kNoFreeSlot},
      // The machine's other controllers are of classes that cannot be IDE ones; this one is.
      {"ide controller on q35", DomainXml("q35", "<controller type='ide' index='0'/>"),
       Rule::kDeviceUnsupported},
      // The smallest table of targets: two disks.
      {"two disks with one target",
       DomainXml("pc",
                 "<disk type='file' device='disk'><source file='/a'/><target dev='vda' "
                 "bus='virtio'/></disk><disk type='file' device='disk'><source file='/b'/>"
                 "<target dev='vda' bus='virtio'/></disk>"),
       Rule::kDuplicateDiskTarget},
  };
  for (const RuleCase& c : cases) {
    SCOPED_TRACE(c.name);
    Result<Plan> p = PlanXml(c.xml);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(RuleId(p.errors().front().rule), RuleId(c.rule))
        << p.errors().front().Render("t.xml");
  }
}

TEST(NonPci, OnlyUsbDevicesAmongDevicesOfOtherClassesTakeUsbPorts) {
  // The controllers and the PS/2 inputs are of classes no USB device match fits; the tablet and
  // the ccid controller (no class rules it out) take ports, in the catalogue's order.
  Result<Plan> p = PlanXml(DomainXml("q35",
                                     "<input type='mouse' bus='ps2'/><input type='tablet' "
                                     "bus='usb'/><smartcard mode='host'/>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(AddressOf(*p, "input", 0), "");
  EXPECT_EQ(AddressOf(*p, "input", 1), "usb bus=0 port=2");
  for (const Device& d : p->devices) {
    if (d.tag != "controller") continue;
    EXPECT_EQ(d.address.type == AddressType::kUsb, d.Is("@type", "ccid")) << d.GetOr("@type", "");
    if (d.Is("@type", "ccid")) {
      EXPECT_EQ(d.address.attrs.at("port"), "1");
    }
  }
}

TEST(NonPci, UsbPortsAreTheSameWithoutTheCataloguesClassIndex) {
  // The pass takes a class's USB matches from the catalogue's index, else finds them itself
  // (an index built for other lists, or none).
  Catalog unindexed = BuiltinCatalog();
  unindexed.class_index = ClassIndex{};
  Result<Domain> dom = ReadDomain(DomainXml(
      "q35",
      "<input type='mouse' bus='ps2'/><input type='tablet' bus='usb'/><smartcard mode='host'/>"
      "<hub type='usb'/><redirdev bus='usb' type='spicevmc'/><sound model='usb'/>"
      "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1'/><product id='0x2'/>"
      "</source></hostdev><disk type='file' device='disk'><target dev='sda' bus='usb'/></disk>"));
  ASSERT_TRUE(dom.ok());
  Result<Plan> indexed_plan = MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
  Result<Plan> unindexed_plan = MakePlan(*dom, unindexed, PolicyName::kLibvirt);
  ASSERT_TRUE(indexed_plan.ok()) << indexed_plan.errors().front().message;
  ASSERT_TRUE(unindexed_plan.ok()) << unindexed_plan.errors().front().message;
  ASSERT_EQ(indexed_plan->devices.size(), unindexed_plan->devices.size());
  int usb = 0;
  for (size_t i = 0; i < indexed_plan->devices.size(); ++i) {
    const Device& a = indexed_plan->devices[i];
    const Device& b = unindexed_plan->devices[i];
    SCOPED_TRACE(a.tag);
    EXPECT_EQ(a.tag, b.tag);
    EXPECT_TRUE(a.address == b.address);
    usb += a.address.type == AddressType::kUsb;
  }
  EXPECT_EQ(usb, 7);  // the tablet, ccid, hub, redirdev, sound, host device and disk
}

TEST(NonPci, AVirtioConsoleWithoutChannelsGetsAVirtioSerialController) {
  Result<Plan> p =
      PlanXml(DomainXml("pc", "<console type='pty'><target type='virtio' port='0'/></console>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(Controllers(*p, "virtio-serial"), 1);
  Result<Plan> none = PlanXml(DomainXml("pc", ""));
  ASSERT_TRUE(none.ok()) << none.errors().front().message;
  EXPECT_EQ(Controllers(*none, "virtio-serial"), 0);
}

TEST(NonPci, ErrorNamesANonPciHostdevByItsOrdinalNotAPciAddress) {
  Result<Plan> p = PlanXml(DomainXml("pc", ScsiHostdev(0) + ScsiHostdev(0)));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().device, "hostdev #1");
}

}  // namespace
}  // namespace pciplan
