#include "pciplan/plan/planner.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "pciplan/plan/plan_test_support.h"

namespace pciplan {
namespace {

using pciplan::testing::DomainXml;
using pciplan::testing::PlanXml;

Rule FirstRule(const Result<Plan>& r) { return r.errors().front().rule; }

const Device* Find(const Plan& p, const std::string& tag, const std::string& path,
                   const std::string& value) {
  for (const Device& d : p.devices) {
    if (d.tag == tag && d.GetOr(path, "") == value) return &d;
  }
  return nullptr;
}

std::string PciOf(const Plan& p, const std::string& tag, const std::string& path,
                  const std::string& value) {
  const Device* d = Find(p, tag, path, value);
  if (!d || d->address.type != AddressType::kPci) return "none";
  return d->address.pci.ToString();
}

std::string kVirtioDisk(const char* dev) {
  return std::string("<disk type='file' device='disk'><source file='/x'/><target dev='") + dev +
         "' bus='virtio'/></disk>";
}

// --- placement -------------------------------------------------------------------------------

TEST(Planner, EmptyPcDomainGetsLibvirtsDefaults) {
  Result<Plan> p = PlanXml(DomainXml("pc", ""));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(PciOf(*p, "controller", "@type", "usb"), "0000:00:01.2");
  EXPECT_EQ(PciOf(*p, "memballoon", "@model", "virtio"), "0000:00:02.0");
  EXPECT_EQ(p->machine, "pc-i440fx-7.2");
}

TEST(Planner, EmptyQ35DomainGetsThreeRootPortsWithASpare) {
  Result<Plan> p = PlanXml(DomainXml("q35", ""));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  int ports = 0;
  for (const Device& d : p->devices) ports += d.GetOr("@model", "") == "pcie-root-port";
  EXPECT_EQ(ports, 3);
  EXPECT_EQ(PciOf(*p, "controller", "@type", "usb"), "0000:01:00.0");
  EXPECT_EQ(PciOf(*p, "memballoon", "@model", "virtio"), "0000:02:00.0");
  EXPECT_EQ(PciOf(*p, "controller", "@type", "sata"), "0000:00:1f.2");
  const Device* rp1 = Find(*p, "controller", "@index", "1");
  ASSERT_NE(rp1, nullptr);
  EXPECT_EQ(rp1->GetOr("target/@port", ""), "0x8");
  EXPECT_EQ(rp1->address.multifunction, "on");
}

TEST(Planner, ConventionalDeviceOnQ35GetsRootPortAndBridge) {
  Result<Plan> p = PlanXml(DomainXml(
      "q35", "<controller type='usb' model='none'/><memballoon model='none'/>"
             "<interface type='user'><model type='e1000'/></interface>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(PciOf(*p, "interface", "model/@type", "e1000"), "0000:02:01.0");
  EXPECT_EQ(PciOf(*p, "controller", "@model", "pcie-to-pci-bridge"), "0000:01:00.0");
  EXPECT_EQ(Find(*p, "controller", "@index", "3")->GetOr("@model", ""), "pcie-root-port");
}

TEST(Planner, PcAddsABridgeWhenTheLastRootSlotWouldBeUsed) {
  std::string disks = "<controller type='usb' model='none'/>";
  const char* names[] = {"vda", "vdb", "vdc", "vdd", "vde", "vdf", "vdg", "vdh", "vdi", "vdj",
                         "vdk", "vdl", "vdm", "vdn", "vdo", "vdp", "vdq", "vdr", "vds", "vdt",
                         "vdu", "vdv", "vdw", "vdx", "vdy", "vdz", "vdaa", "vdab", "vdac"};
  for (const char* n : names) disks += kVirtioDisk(n);
  Result<Plan> p = PlanXml(DomainXml("pc", disks));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(PciOf(*p, "controller", "@model", "pci-bridge"), "0000:00:02.0");
  EXPECT_EQ(PciOf(*p, "memballoon", "@model", "virtio"), "0000:01:01.0");
}

std::string DiskName(int i) {
  std::string s;
  for (++i; i > 0; i /= 26) s.insert(s.begin(), static_cast<char>('a' + (--i) % 26));
  return "vd" + s;
}

TEST(Planner, ManyDisksOnPcGetTheBridgesLibvirtCannotPlace) {
  // libvirt 9.0 refuses this domain ("a PCI slot is needed to connect a PCI controller
  // model='pci-bridge'"); pciplan adds the bridge it is missing (README).
  std::string disks;
  for (int i = 0; i < 150; ++i) disks += kVirtioDisk(DiskName(i).c_str());
  Result<Plan> p = PlanXml(DomainXml("pc", disks));
  ASSERT_TRUE(p.ok()) << p.errors().front().Render("t.xml");
  int bridges = 0;
  for (const Device& d : p->devices) {
    if (d.Is("@model", "pci-bridge")) {
      ++bridges;
      EXPECT_EQ(d.address.pci.bus, 0u) << "bridges sit on pci-root";
    }
    if (d.tag == "disk") {
      EXPECT_FALSE(d.address.WantsPci()) << d.GetOr("target/@dev", "");
    }
  }
  EXPECT_EQ(bridges, 5);
}

TEST(Planner, ClassesMatchNothingThePlannerWritesAfterClassifying) {
  // The define pipeline classifies every device once, before PCI assignment, and its later
  // passes reuse that class; the controllers it adds share one class per model. That holds while
  // no class looks at what is written after: a controller's index, its model name and the
  // <target> defaults of FillControllerDefaults.
  const Catalog& cat = BuiltinCatalog();
  std::set<std::string> written = {"@index", "model/@name"};
  for (const ControllerModel& m : cat.controllers) {
    for (const auto& [attr, rule] : m.target) written.insert("target/@" + attr);
  }
  for (const DeviceClass& c : cat.classes) {
    for (const auto& [path, values] : c.when.props) {
      EXPECT_EQ(written.count(path), 0u) << c.name << " matches on " << path;
    }
  }
}

TEST(Planner, TheFirstDuplicateDiskTargetInDocumentOrderIsRefused) {
  // The third disk repeats the second's target, the fourth the first's: the third is the first
  // duplicate, named with the second's source.
  auto disk = [](const char* file, const char* dev) {
    return std::string("<disk type='file' device='disk'><source file='") + file +
           "'/><target dev='" + dev + "' bus='virtio'/></disk>";
  };
  Result<Plan> p = PlanXml(DomainXml(
      "pc", disk("/a", "vdb") + disk("/b", "vda") + disk("/c", "vda") + disk("/d", "vdb")));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kDuplicateDiskTarget);
  EXPECT_EQ(p.errors().front().message, "target 'vda' duplicated for disk sources '/b' and '/c'");
}

TEST(Planner, TheFirstDuplicateControllerIndexInListOrderIsRefused) {
  // Two pairs of duplicates. In document order the SATA pair repeats first, but libvirt's list
  // keeps same-type controllers together (section 6.1): scsi 1, scsi 1, sata 2, sata 2. The first
  // controller in list order whose (type, index) an earlier one has is named.
  Result<Plan> p =
      PlanXml(DomainXml("q35",
                        "<controller type='scsi' index='1'/><controller type='sata' index='2'/>"
                        "<controller type='sata' index='2'/><controller type='scsi' index='1'/>"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.errors().front().rule, Rule::kDuplicateIndex);
  EXPECT_EQ(p.errors().front().message, "multiple 'scsi' controllers with index '1'");
}

TEST(Planner, DisksAreAssignedInTargetOrder) {
  Result<Plan> p = PlanXml(DomainXml("pc", kVirtioDisk("vdb") + kVirtioDisk("vda")));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(PciOf(*p, "disk", "target/@dev", "vda"), "0000:00:02.0");
  EXPECT_EQ(PciOf(*p, "disk", "target/@dev", "vdb"), "0000:00:03.0");
}

TEST(Planner, ExplicitAddressIsKept) {
  Result<Plan> p = PlanXml(DomainXml(
      "pc", "<disk type='file'><target dev='vda' bus='virtio'/><address type='pci' "
            "domain='0' bus='0' slot='9' function='0'/></disk>"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(PciOf(*p, "disk", "target/@dev", "vda"), "0000:00:09.0");
}

TEST(Planner, VirtioMmioSpreadsOnVirtWhenOneDeviceUsesIt) {
  Result<Plan> p = PlanXml(DomainXml(
      "virt",
      kVirtioDisk("vda") +
          "<interface type='user'><model type='virtio'/><address type='virtio-mmio'/></interface>",
      "aarch64"));
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(Find(*p, "disk", "target/@dev", "vda")->address.type, AddressType::kVirtioMmio);
}

TEST(Planner, ScsiHbaOnMmioVirtGetsAPciAddressBehindABridge) {
  // libvirt 9.0 makes the implicit lsilogic virtio-mmio too, which QEMU cannot realize
  // (qemu-misplaces): it has no virtio-mmio transport, so it is a conventional PCI device.
  Result<Plan> p = PlanXml(DomainXml(
      "virt",
      "<disk type='file'><target dev='sda' bus='scsi'/></disk>"
      "<interface type='user'><model type='virtio'/><address type='virtio-mmio'/></interface>",
      "aarch64"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  const Device* hba = Find(*p, "controller", "@type", "scsi");
  ASSERT_NE(hba, nullptr);
  ASSERT_EQ(hba->address.type, AddressType::kPci);
  const Device* bridge = Find(*p, "controller", "@model", "pcie-to-pci-bridge");
  ASSERT_NE(bridge, nullptr);
  EXPECT_EQ(std::to_string(hba->address.pci.bus), bridge->GetOr("@index", ""));
}

TEST(Planner, ConsoleMirroringAPciSerialSharesItsAddress) {
  // libvirt's console of the first serial port is that port, not a second device on its slot.
  const std::string serial = "<serial type='pty'><target type='pci-serial'/>"
                             "<address type='pci' domain='0' bus='0' slot='5' function='0'/>"
                             "</serial>";
  Result<Plan> kept = PlanXml(DomainXml(
      "q35", serial + "<console type='pty'><target type='serial'/><address type='pci' "
                      "domain='0' bus='0' slot='5' function='0'/></console>"));
  ASSERT_TRUE(kept.ok()) << kept.errors().front().message;
  EXPECT_EQ(PciOf(*kept, "console", "target/@type", "serial"), "0000:00:05.0");
  Result<Plan> filled =
      PlanXml(DomainXml("pc", "<serial type='pty'><target type='pci-serial'/></serial>"
                              "<console type='pty'><target type='serial'/></console>"));
  ASSERT_TRUE(filled.ok()) << filled.errors().front().message;
  EXPECT_EQ(PciOf(*filled, "console", "target/@type", "serial"),
            PciOf(*filled, "serial", "target/@type", "pci-serial"));
  EXPECT_EQ(PciOf(*filled, "console", "target/@type", "serial"), "0000:00:03.0");
}

TEST(Planner, SataDisksGetDriveAddressesAndControllers) {
  Result<Plan> p = PlanXml(DomainXml(
      "pc", "<disk type='file'><target dev='sdg' bus='sata'/></disk>"));
  ASSERT_TRUE(p.ok());
  const Device* d = Find(*p, "disk", "target/@dev", "sdg");
  ASSERT_EQ(d->address.type, AddressType::kDrive);
  EXPECT_EQ(d->address.Number("controller"), 1u);
  EXPECT_EQ(d->address.Number("unit"), 0u);
  EXPECT_NE(Find(*p, "controller", "@index", "1"), nullptr);
}

TEST(Planner, IndexlessRootPortsWithoutRootArePlanned) {
  // libvirt 9.0 refuses this (DEVIATIONS.tsv libvirt-limit); pciplan numbers from 1.
  Result<Plan> p = PlanXml(DomainXml("q35", "<controller type='pci' model='pcie-root-port'/>"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  const Device* root = Find(*p, "controller", "@model", "pcie-root");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->GetOr("@index", ""), "0");
  EXPECT_EQ(Find(*p, "controller", "@model", "pcie-root-port")->GetOr("@index", ""), "1");
}

// --- validation rules ------------------------------------------------------------------------

struct RuleCase {
  const char* name;
  std::string xml;
  Rule rule;
};

// --- pseries: spapr PHBs ---------------------------------------------------------------------

TEST(Planner, PseriesRootIsAPhbWithTargetIndexZero) {
  Result<Plan> p = PlanXml(DomainXml("pseries", kVirtioDisk("vda"), "ppc64"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(p->machine, "pseries-7.2");
  const Device* root = Find(*p, "controller", "@model", "pci-root");
  ASSERT_NE(root, nullptr);
  EXPECT_EQ(root->GetOr("model/@name", ""), "spapr-pci-host-bridge");
  EXPECT_EQ(root->GetOr("target/@index", ""), "0");
  EXPECT_EQ(root->address.type, AddressType::kNone);
  // USB first (controllers before disks), then the disk, then the balloon; slot 0 stays free.
  EXPECT_EQ(PciOf(*p, "controller", "@type", "usb"), "0000:00:01.0");
  EXPECT_EQ(PciOf(*p, "disk", "target/@dev", "vda"), "0000:00:02.0");
  EXPECT_EQ(PciOf(*p, "memballoon", "@model", "virtio"), "0000:00:03.0");
}

TEST(Planner, PhbTargetIndexesAreTheLowestFreeInListOrder) {
  // Index 1 names target 2; index 3 has none and takes 1; the gap at index 2 is filled with a
  // PHB after the given ones, which takes the next free number, 3.
  Result<Plan> p = PlanXml(DomainXml(
      "pseries",
      "<controller type='pci' index='1' model='pci-root'><target index='2'/></controller>"
      "<controller type='pci' index='3' model='pci-root'/>",
      "ppc64"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  EXPECT_EQ(Find(*p, "controller", "@index", "1")->GetOr("target/@index", ""), "2");
  EXPECT_EQ(Find(*p, "controller", "@index", "3")->GetOr("target/@index", ""), "1");
  const Device* gap = Find(*p, "controller", "@index", "2");
  ASSERT_NE(gap, nullptr);
  EXPECT_EQ(gap->GetOr("@model", ""), "pci-root");
  EXPECT_EQ(gap->GetOr("target/@index", ""), "3");
}

TEST(Planner, AFullPhbMakesLibvirtAddAnotherPhbNotABridge) {
  std::string nics;
  for (int i = 0; i < 31; ++i) nics += "<interface type='user'><model type='virtio'/></interface>";
  Result<Plan> p = PlanXml(DomainXml("pseries", nics, "ppc64"));
  ASSERT_TRUE(p.ok()) << p.errors().front().message;
  const Device* phb = Find(*p, "controller", "@index", "1");
  ASSERT_NE(phb, nullptr);
  EXPECT_EQ(phb->GetOr("@model", ""), "pci-root");
  EXPECT_EQ(phb->GetOr("target/@index", ""), "1");
  EXPECT_EQ(phb->address.type, AddressType::kNone);
  EXPECT_EQ(Find(*p, "controller", "@model", "pci-bridge"), nullptr);
  EXPECT_EQ(PciOf(*p, "controller", "@type", "usb"), "0000:01:01.0");
  EXPECT_EQ(PciOf(*p, "memballoon", "@model", "virtio"), "0000:01:02.0");
}

TEST(Planner, EachValidationRuleIsReported) {
  const RuleCase cases[] = {
      {"double use",
       DomainXml("pc", "<disk type='file'><target dev='vda' bus='virtio'/><address type='pci' "
                       "domain='0' bus='0' slot='5' function='0'/></disk><disk type='file'>"
                       "<target dev='vdb' bus='virtio'/><address type='pci' domain='0' bus='0' "
                       "slot='5' function='0'/></disk>"),
       Rule::kDoubleUse},
      {"reserved function",
       DomainXml("q35", "<disk type='file'><target dev='vda' bus='virtio'/><address type='pci' "
                        "domain='0' bus='0' slot='0x1f' function='0'/></disk>"),
       Rule::kDoubleUse},
      {"slot out of range",
       DomainXml("pc", "<disk type='file'><target dev='vda' bus='virtio'/><address type='pci' "
                       "domain='0' bus='0' slot='0x20' function='0'/></disk>"),
       Rule::kSlotRange},
      {"function out of range",
       DomainXml("pc", "<disk type='file'><target dev='vda' bus='virtio'/><address type='pci' "
                       "domain='0' bus='0' slot='3' function='8'/></disk>"),
       Rule::kFunctionRange},
      {"domain not zero",
       DomainXml("pc", "<disk type='file'><target dev='vda' bus='virtio'/><address type='pci' "
                       "domain='1' bus='0' slot='3' function='0'/></disk>"),
       Rule::kPciDomain},
      {"slot on a root port",
       DomainXml("q35", "<controller type='pci' index='1' model='pcie-root-port'/><disk "
                        "type='file'><target dev='vda' bus='virtio'/><address type='pci' "
                        "domain='0' bus='1' slot='3' function='0'/></disk>"),
       Rule::kSlotAboveMax},
      {"slot 0 on a bridge",
       DomainXml("pc", "<controller type='pci' index='1' model='pci-bridge'/><disk "
                       "type='file'><target dev='vda' bus='virtio'/><address type='pci' "
                       "domain='0' bus='1' slot='0' function='0'/></disk>"),
       Rule::kSlotBelowMin},
      {"root port on pci-root",
       DomainXml("pc", "<controller type='pci' index='1' model='pcie-root-port'><address "
                       "type='pci' domain='0' bus='0' slot='5' function='0'/></controller>"),
       Rule::kConnectMismatch},
      {"wrong root model",
       DomainXml("q35", "<controller type='pci' index='0' model='pci-root'/>"), Rule::kRootModel},
      {"duplicate controller index",
       DomainXml("q35", "<controller type='pci' index='1' model='pcie-root-port'/><controller "
                        "type='pci' index='1' model='pcie-root-port'/>"),
       Rule::kDuplicateIndex},
      {"index too high",
       DomainXml("pc", "<controller type='pci' index='256' model='pci-bridge'/>"),
       Rule::kIndexTooHigh},
      {"more root ports than pcie-root holds",
       DomainXml("q35", "<controller type='pci' index='256' model='pcie-root-port'/>"),
       Rule::kCannotAddController},
      {"index beyond what is planned at all",
       DomainXml("q35", "<controller type='pci' index='5000' model='pcie-root-port'/>"),
       Rule::kIndexTooHigh},
      {"ide on q35",
       DomainXml("q35", "<disk type='file'><target dev='hda' bus='ide'/></disk>"),
       Rule::kDeviceUnsupported},
      {"second ide controller",
       DomainXml("pc", "<disk type='file'><target dev='hde' bus='ide'/></disk>"), Rule::kControllerCount},
      {"duplicate disk target",
       DomainXml("pc", kVirtioDisk("vda") + kVirtioDisk("vda")),
       Rule::kDuplicateDiskTarget},
      {"expander bus on the wrong machine",
       DomainXml("q35", "<controller type='pci' index='1' model='pci-expander-bus'/>"),
       Rule::kExpanderMachine},
      {"busNr out of range",
       DomainXml("pc", "<controller type='pci' index='1' model='pci-expander-bus'><target "
                       "busNr='255'/></controller>"),
       Rule::kBusNrRange},
      {"numa node missing",
       DomainXml("q35", "<controller type='pci' index='1' model='pcie-expander-bus'><target>"
                        "<node>1</node></target></controller>"),
       Rule::kNumaNode},
      {"bridge index not above its bus",
       DomainXml("pc", "<controller type='pci' index='1' model='pci-bridge'><address type='pci' "
                       "domain='0' bus='2' slot='1' function='0'/></controller><controller "
                       "type='pci' index='2' model='pci-bridge'/>"),
       Rule::kIndexNotAboveBus},
      {"fixed SATA address",
       DomainXml("q35", "<controller type='sata' index='0'><address type='pci' domain='0' "
                        "bus='0' slot='5' function='0'/></controller>"),
       Rule::kFixedAddress},
      {"qxl on virt",
       DomainXml("virt", "<video><model type='qxl'/></video>", "aarch64"), Rule::kDeviceUnsupported},
      {"usb disabled and another usb controller",
       DomainXml("pc", "<controller type='usb' index='0' model='none'/><controller type='usb' "
                       "index='1' model='qemu-xhci'/>"),
       Rule::kUsbDisabled},
      {"usb2 companion without master",
       DomainXml("q35", "<controller type='usb' index='0' model='ich9-uhci1'/>"), Rule::kUsbMaster},
      {"vga as secondary video",
       DomainXml("q35", "<video><model type='virtio'/></video><video><model type='vga'/></video>"),
       Rule::kVideoPrimaryOnly},
      {"PHB target index 0 on another PHB",
       DomainXml("pseries", "<controller type='pci' index='1' model='pci-root'><target "
                            "index='0'/></controller>", "ppc64"),
       Rule::kTargetIndex},
      {"PHB target index out of range",
       DomainXml("pseries", "<controller type='pci' index='1' model='pci-root'><target "
                            "index='31'/></controller>", "ppc64"),
       Rule::kTargetIndex},
      {"two PHBs with one target index (QEMU refuses)",
       DomainXml("pseries", "<controller type='pci' index='1' model='pci-root'><target "
                            "index='4'/></controller><controller type='pci' index='2' "
                            "model='pci-root'><target index='4'/></controller>", "ppc64"),
       Rule::kTargetIndexClash},
      {"hotplug option on a pci-bridge",
       DomainXml("pc", "<controller type='pci' index='1' model='pci-bridge'><target "
                       "hotplug='off'/></controller>"),
       Rule::kTargetOption},
      {"busNr option on a root port",
       DomainXml("q35", "<controller type='pci' index='1' model='pcie-root-port'><target "
                        "busNr='5'/></controller>"),
       Rule::kTargetOption},
      {"target index on a root port",
       DomainXml("q35", "<controller type='pci' index='1' model='pcie-root-port'><target "
                        "index='3'/></controller>"),
       Rule::kTargetOption},
      {"a PCI controller model name libvirt does not know",
       DomainXml("q35", "<controller type='pci' index='1' model='pcie-root-port'><model "
                        "name='pcie-root-porte'/></controller>"),
       Rule::kModelName},
      {"a bridge's model name on a root port",
       DomainXml("q35", "<controller type='pci' index='1' model='pcie-root-port'><model "
                        "name='pci-bridge'/></controller>"),
       Rule::kModelName},
      {"a model name on pcie-root, which takes none",
       DomainXml("q35", "<controller type='pci' index='0' model='pcie-root'><model "
                        "name='pcie-root-port'/></controller>"),
       Rule::kModelName},
      {"target index 0 on a root port",
       DomainXml("q35", "<controller type='pci' index='1' model='pcie-root-port'><target "
                        "index='0'/></controller>"),
       Rule::kTargetIndex},
      {"NUMA node on controller 0",
       DomainXml("q35", "<controller type='pci' index='0' model='pcie-root'><target><node>0"
                        "</node></target></controller>"),
       Rule::kNumaNode},
      {"extra pci-root on pc",
       DomainXml("pc", "<controller type='pci' index='1' model='pci-root'/>"), Rule::kRootIndex},
      {"unknown machine", DomainXml("isapc", ""), Rule::kUnknownMachine},
      {"malformed XML", "<domain><devices>", Rule::kXmlMalformed},
      {"doctype",
       "<!DOCTYPE d [<!ENTITY x 'y'>]><domain><os><type arch='x86_64' machine='pc'>hvm</type>"
       "</os></domain>",
       Rule::kXmlDoctype},
      {"no os type", "<domain><devices/></domain>", Rule::kMissingOsType},
      {"not a domain", "<network/>", Rule::kNotADomain},
  };
  for (const RuleCase& c : cases) {
    SCOPED_TRACE(c.name);
    Result<Plan> p = PlanXml(c.xml);
    ASSERT_FALSE(p.ok());
    EXPECT_EQ(RuleId(FirstRule(p)), RuleId(c.rule)) << p.errors().front().Render("t.xml");
  }
}

// libvirt 9.0 takes QEMU's default machine when <type> names none: pc-i440fx-7.2 on x86_64.
// QEMU 7.2 has no aarch64 default and libvirt falls to integratorcp (no PCI); pciplan plans for
// virt (DEVIATIONS.tsv libvirt-limit). An arch with no default is refused on <type>'s line.
TEST(Planner, NoMachineAttributeMeansTheArchsDefaultMachine) {
  auto no_machine = [](const std::string& arch) {
    return "<domain type='qemu'><name>t</name><os>\n<type arch='" + arch +
           "'>hvm</type></os><devices>" + kVirtioDisk("vda") + "</devices></domain>";
  };
  Result<Plan> pc = PlanXml(no_machine("x86_64"));
  ASSERT_TRUE(pc.ok()) << pc.errors().front().message;
  EXPECT_EQ(pc->family->name, "pc");
  EXPECT_EQ(pc->machine, "pc-i440fx-7.2");
  EXPECT_EQ(PciOf(*pc, "disk", "target/@dev", "vda"), "0000:00:02.0");
  Result<Plan> virt = PlanXml(no_machine("aarch64"));
  ASSERT_TRUE(virt.ok()) << virt.errors().front().message;
  EXPECT_EQ(virt->family->name, "virt");
  EXPECT_EQ(virt->machine, "virt-7.2");
  // QEMU's default riscv64 machine is spike, with no PCI; pciplan plans for virt (corpus 574).
  Result<Plan> rv = PlanXml(no_machine("riscv64"));
  ASSERT_TRUE(rv.ok()) << rv.errors().front().message;
  EXPECT_EQ(rv->family->name, "riscv-virt");
  EXPECT_EQ(rv->machine, "virt");
  // QEMU 7.2's default ppc64 machine, pseries-7.2 (corpus 693).
  Result<Plan> ppc = PlanXml(no_machine("ppc64"));
  ASSERT_TRUE(ppc.ok()) << ppc.errors().front().message;
  EXPECT_EQ(ppc->family->name, "pseries");
  EXPECT_EQ(ppc->machine, "pseries-7.2");
  Result<Plan> s390 = PlanXml(no_machine("s390x"));
  ASSERT_FALSE(s390.ok());
  EXPECT_EQ(FirstRule(s390), Rule::kUnknownMachine);
  EXPECT_EQ(s390.errors().front().line, 2);
  EXPECT_NE(s390.errors().front().message.find("no machine attribute"), std::string::npos);
}

TEST(Planner, ErrorNamesDeviceAndAddress) {
  Result<Plan> p = PlanXml(DomainXml(
      "pc", "<disk type='file'><target dev='vda' bus='virtio'/><address type='pci' "
            "domain='0' bus='0' slot='1' function='0'/></disk>"));
  ASSERT_FALSE(p.ok());
  const Diagnostic& d = p.errors().front();
  EXPECT_EQ(d.rule, Rule::kDoubleUse);
  EXPECT_EQ(d.device, "disk 'vda'");
  EXPECT_EQ(d.address, "0000:00:01.0");
}

// libvirt reads a controller index as an int: above INT_MAX there is no value ("Invalid value
// for attribute 'index'"); below it, a huge index is too high, and the message shows the index
// as written (it used to show the capped 1073741824).
TEST(Planner, ControllerIndexAboveIntMaxIsABadValueNamingIt) {
  Result<Plan> p = PlanXml(
      DomainXml("q35", "<controller type='pci' index='4294967295' model='pcie-root-port'/>"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(FirstRule(p), Rule::kBadValue);
  EXPECT_NE(p.errors().front().message.find("'4294967295'"), std::string::npos);
}

TEST(Planner, HugeControllerIndexIsTooHighNamingTheIndexAsWritten) {
  Result<Plan> p = PlanXml(
      DomainXml("q35", "<controller type='pci' index='2147483647' model='pcie-root-port'/>"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(FirstRule(p), Rule::kIndexTooHigh);
  EXPECT_NE(p.errors().front().message.find("index 2147483647 too high"), std::string::npos);
}

TEST(Planner, TwoHugeDifferentIndexesAreNotDuplicates) {
  Result<Plan> p = PlanXml(
      DomainXml("q35", "<controller type='pci' index='1073741824' model='pcie-root-port'/>"
                       "<controller type='pci' index='1073741825' model='pcie-root-port'/>"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(FirstRule(p), Rule::kIndexTooHigh);
}

}  // namespace
}  // namespace pciplan
