#include "pciplan/emit/domain_writer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "pciplan/domain/domain_reader.h"
#include "pciplan/model/model_loader.h"
#include "pciplan/plan/planner.h"

namespace pciplan {
namespace {

std::string PlanToText(const std::string& xml) {
  Result<Domain> dom = ReadDomain(xml);
  EXPECT_TRUE(dom.ok());
  if (!dom) return {};
  Result<Plan> plan = MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
  EXPECT_TRUE(plan.ok()) << plan.errors().front().message;
  if (!plan) return {};
  Result<std::string> out = WriteDomain(*dom, *plan, BuiltinCatalog());
  EXPECT_TRUE(out.ok());
  return out.ok() ? out.value() : std::string();
}

// A hand-written domain: comments, odd spacing, double quotes, entities, an unknown element
// and a foreign namespace in metadata, all of which must survive.
const char kHandMade[] =
    "<?xml version=\"1.0\"?>\n"
    "<!-- managed by hand -->\n"
    "<domain type=\"qemu\"   xmlns:my=\"http://example.org/my\">\n"
    "  <name>web &amp; db</name>\n"
    "  <metadata><my:owner team=\"ops\">alice</my:owner></metadata>\n"
    "  <os>\n"
    "    <type arch=\"x86_64\" machine=\"q35\">hvm</type>\n"
    "  </os>\n"
    "  <devices>\n"
    "    <!-- the root disk -->\n"
    "    <disk type=\"file\" device=\"disk\">\n"
    "      <source file=\"/var/lib/x.img\"/>\n"
    "      <target dev=\"vda\" bus=\"virtio\"/>\n"
    "      <frobnicate level=\"11\"/>\n"
    "    </disk>\n"
    "    <controller type=\"usb\" model=\"none\"/>\n"
    "    <memballoon model=\"none\"/>\n"
    "  </devices>\n"
    "</domain>\n";

// libvirt writes the machine type it chose into a <type> that had none; so does pciplan, in the
// quotes of the element's other attributes, so that the output re-plans the same.
TEST(DomainWriter, ATypeWithoutMachineGetsTheArchsDefaultWrittenIn) {
  std::string pc = PlanToText(
      "<domain type='qemu'><name>t</name><os><type arch='x86_64'>hvm</type></os></domain>");
  EXPECT_NE(pc.find("<type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>"), std::string::npos)
      << pc;
  std::string virt = PlanToText(
      "<domain type=\"qemu\"><name>t</name><os><type arch=\"aarch64\">hvm</type></os></domain>");
  EXPECT_NE(virt.find("<type arch=\"aarch64\" machine=\"virt-7.2\">hvm</type>"),
            std::string::npos)
      << virt;
  EXPECT_EQ(PlanToText(virt), virt);
}

TEST(DomainWriter, UntouchedPartsComeOutAsTheyWentIn) {
  std::string out = PlanToText(kHandMade);
  for (const char* kept :
       {"<?xml version=\"1.0\"?>\n<!-- managed by hand -->\n<domain type=\"qemu\"   xmlns:my=",
        "<name>web &amp; db</name>", "<my:owner team=\"ops\">alice</my:owner>",
        "    <!-- the root disk -->\n", "      <frobnicate level=\"11\"/>\n"}) {
    EXPECT_NE(out.find(kept), std::string::npos) << "lost: " << kept << "\n" << out;
  }
}

TEST(DomainWriter, NewChildIsIndentedLikeItsSiblingsInTheInputsQuotes) {
  std::string out = PlanToText(kHandMade);
  EXPECT_NE(out.find("      <frobnicate level=\"11\"/>\n      <address type=\"pci\" "
                     "domain=\"0x0000\" bus=\"0x01\" slot=\"0x00\" function=\"0x0\"/>\n    </disk>"),
            std::string::npos)
      << out;
}

TEST(DomainWriter, NewControllersFollowTheControllersOfTheirType) {
  std::string out = PlanToText(kHandMade);
  size_t usb = out.find("<controller type=\"usb\" model=\"none\" index=\"0\"/>");
  size_t root = out.find("<controller type=\"pci\" index=\"0\" model=\"pcie-root\"/>");
  size_t port = out.find("<controller type=\"pci\" index=\"1\" model=\"pcie-root-port\">\n"
                         "      <model name=\"pcie-root-port\"/>");
  ASSERT_NE(usb, std::string::npos) << out;
  ASSERT_NE(root, std::string::npos) << out;
  ASSERT_NE(port, std::string::npos) << out;
  EXPECT_LT(usb, root);
  EXPECT_LT(root, port);
}

TEST(DomainWriter, PlanningThePlannedDomainChangesNothing) {
  std::string once = PlanToText(kHandMade);
  EXPECT_EQ(PlanToText(once), once);
}

TEST(DomainWriter, InlineDeviceGetsAnInlineAddress) {
  std::string out = PlanToText(
      "<domain><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk "
      "type='file'><target dev='vda' bus='virtio'/></disk></devices></domain>");
  EXPECT_NE(out.find("<target dev='vda' bus='virtio'/><address type='pci' domain='0x0000' "
                     "bus='0x00' slot='0x02' function='0x0'/></disk>"),
            std::string::npos)
      << out;
}

TEST(DomainWriter, PartialAddressIsReplaced) {
  std::string out = PlanToText(
      "<domain><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk "
      "type='file'><target dev='vda' bus='virtio'/><address type='pci'/></disk></devices>"
      "</domain>");
  EXPECT_EQ(out.find("<address type='pci'/>"), std::string::npos) << out;
  EXPECT_NE(out.find("slot='0x03'"), std::string::npos) << out;
}

TEST(DomainWriter, SelfClosingDevicesIsOpenedOnceForAllTheNewDevices) {
  const std::string head =
      "<domain type='qemu'>\n  <name>t</name>\n  <os>\n"
      "    <type arch='x86_64' machine='pc'>hvm</type>\n  </os>\n";
  std::string out = PlanToText(head + "  <devices/>\n</domain>\n");
  EXPECT_EQ(out,
            head +
                "  <devices>\n"
                "    <controller type='usb' index='0' model='piix3-uhci'>\n"
                "      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' "
                "function='0x2'/>\n"
                "    </controller>\n"
                "    <controller type='pci' index='0' model='pci-root'/>\n"
                "    <input type='mouse' bus='ps2'/>\n"
                "    <input type='keyboard' bus='ps2'/>\n"
                "    <memballoon model='virtio'>\n"
                "      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' "
                "function='0x0'/>\n"
                "    </memballoon>\n"
                "  </devices>\n"
                "</domain>\n");
}

TEST(DomainWriter, DomainWithoutDevicesGetsThemAfterItsLastElement) {
  // libvirt accepts a domain without <devices> and adds its default devices.
  std::string out = PlanToText(
      "<domain type='qemu'>\n  <name>t</name>\n  <os>\n"
      "    <type arch='aarch64' machine='virt'>hvm</type>\n  </os>\n</domain>\n");
  EXPECT_EQ(out,
            "<domain type='qemu'>\n  <name>t</name>\n  <os>\n"
            "    <type arch='aarch64' machine='virt'>hvm</type>\n  </os>\n"
            "  <devices>\n    <controller type='pci' index='0' model='pcie-root'/>\n"
            "  </devices>\n</domain>\n");
  std::string one_line = PlanToText(
      "<domain><os><type arch='aarch64' machine='virt'>hvm</type></os></domain>");
  EXPECT_EQ(one_line,
            "<domain><os><type arch='aarch64' machine='virt'>hvm</type></os><devices><controller "
            "type='pci' index='0' model='pcie-root'/></devices></domain>");
}

TEST(DomainWriter, AddressXmlFormatsLikeLibvirt) {
  Address a{};
  a.type = AddressType::kPci;
  a.type_name = "pci";
  a.pci = PciAddress{0, 1, 0x1f, 7};
  a.multifunction = "on";
  EXPECT_EQ(AddressXml(a, '\''),
            "<address type='pci' domain='0x0000' bus='0x01' slot='0x1f' function='0x7' "
            "multifunction='on'/>");
}

// Found by fuzzing (tests/fuzz/corpus/plan/tiny-pc-devices-empty.xml): every added device
// used to close "<devices/>" again, leaving "</devices>" after each one.
TEST(DomainWriter, SelfClosingDevicesGetsEveryAddedDeviceInsideOneElement) {
  std::string out =
      PlanToText("<domain><os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>");
  EXPECT_EQ(out.find("</devices>"), out.rfind("</devices>"));
  Result<Domain> again = ReadDomain(out);
  ASSERT_TRUE(again.ok()) << out;
  EXPECT_EQ(PlanToText(out), out);
}

TEST(DomainWriter, IndentedSelfClosingDevicesIsOpenedAndIndented) {
  std::string out = PlanToText(
      "<domain>\n  <os><type arch='x86_64' machine='pc'>hvm</type></os>\n  <devices/>\n"
      "</domain>\n");
  EXPECT_NE(out.find("  <devices>\n    <controller type='usb'"), std::string::npos) << out;
  EXPECT_NE(out.find("</memballoon>\n  </devices>\n</domain>"), std::string::npos) << out;
  EXPECT_EQ(PlanToText(out), out);
}

// libvirt 9.0 defines this and adds its default USB controller beside it, then refuses its own
// output; pciplan reproduces both decisions (README, "Known libvirt defects pciplan
// reproduces").
TEST(DomainWriter, UsbNoneAtIndexOnePlansLikeLibvirtAndItsOutputIsRefusedLikeLibvirts) {
  std::string out = PlanToText(
      "<domain><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>"
      "<controller type='usb' model='none' index='1'/></devices></domain>");
  EXPECT_NE(out.find("model='qemu-xhci'"), std::string::npos) << out;
  Result<Domain> again = ReadDomain(out);
  ASSERT_TRUE(again.ok());
  Result<Plan> replan = MakePlan(*again, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_FALSE(replan.ok());
  EXPECT_EQ(replan.errors().front().rule, Rule::kUsbDisabled);
}

}  // namespace
// Devices written on one line get their address right before their end tag, whatever follows
// them: a comment naming an end tag, text, spaces inside the end tag, an <emulator>, a
// processing instruction, an attribute value that reads like an end tag; after an alias; in the
// quotes of their own attributes.
TEST(DomainWriter, OneLineDevicesGetTheAddressBeforeTheirEndTagWhateverFollows) {
  const std::string addr = "<address type='pci' domain='0x0000' bus='0x0";
  std::string out = PlanToText(
      "<domain type='kvm'><name>a</name><os><type arch='x86_64' machine='q35'>hvm</type></os>"
      "<devices><emulator>/e</emulator>"
      "<disk type='file' device='disk'><source file='/a'/><target dev='vda' bus='virtio'/></disk>"
      "<!-- </disk> -->"
      "<disk type=\"file\" device=\"disk\"><source file=\"/b\"/>"
      "<target dev=\"vdb\" bus=\"virtio\"/></disk >\n"
      "<disk type='file' device='disk'><source file='/c'/><target dev='vdc' bus='virtio'/></disk>x"
      "<disk type='file' device='disk'><source file='/d'/><target dev='vdd' bus='virtio'/>"
      "<alias name='ua-d'/></disk> <?pi </disk>?>"
      "<disk type='file' device='disk'><source file='/e'/><target dev='vde' bus='virtio'/>"
      "<x a='</disk >'/></disk><emulator>/x</emulator>"
      "<disk type='file' device='disk'><source file='/f'/><target dev='vdf' bus='virtio'/>\n"
      "</disk><disk type='file' device='disk'><source file='/g'/>"
      "<target dev='vdg' bus='virtio'/></disk></devices></domain>");
  auto expect = [&](const std::string& before, const std::string& address_and_after) {
    size_t at = out.find(before);
    ASSERT_NE(at, std::string::npos) << before << "\n" << out;
    EXPECT_EQ(out.compare(at + before.size(), address_and_after.size(), address_and_after), 0)
        << before << "\n" << out;
  };
  expect("<target dev='vda' bus='virtio'/>", addr + "2' slot='0x00' function='0x0'/></disk><!--");
  expect("<target dev=\"vdb\" bus=\"virtio\"/>",
         "<address type=\"pci\" domain=\"0x0000\" bus=\"0x03\" slot=\"0x00\" "
         "function=\"0x0\"/></disk >\n");
  expect("<target dev='vdc' bus='virtio'/>", addr + "4' slot='0x00' function='0x0'/></disk>x");
  expect("<alias name='ua-d'/>", addr + "5' slot='0x00' function='0x0'/></disk> <?pi");
  expect("<x a='</disk >'/>", addr + "6' slot='0x00' function='0x0'/></disk><emulator>");
  expect("<target dev='vdf' bus='virtio'/>\n", addr + "7' slot='0x00' function='0x0'/>\n</disk>");
  expect("<target dev='vdg' bus='virtio'/>", addr + "8' slot='0x00' function='0x0'/></disk>");
  EXPECT_EQ(PlanToText(out), out);
}

// A device whose address a replan dropped still has its <address> in the text: on one line as
// on many, the planned address replaces it instead of coming beside it.
TEST(DomainWriter, AnAddressDroppedBeforePlanningIsReplacedOnOneLine) {
  Result<Domain> dom = ReadDomain(
      "<domain type='kvm'><name>r</name><os><type arch='x86_64' machine='q35'>hvm</type></os>"
      "<devices><disk type='file' device='disk'><source file='/a'/><target dev='vda' "
      "bus='virtio'/><address type='pci' domain='0x0000' bus='0x00' slot='0x1e' "
      "function='0x0'/></disk> <disk type='file' device='disk'><source file='/b'/>"
      "<target dev='vdb' bus='virtio'/></disk></devices></domain>");
  ASSERT_TRUE(dom.ok());
  dom->devices[0].address = Address();  // what --replan does to the device
  Result<Plan> plan = MakePlan(*dom, BuiltinCatalog(), PolicyName::kLibvirt);
  ASSERT_TRUE(plan.ok()) << plan.errors().front().message;
  Result<std::string> out = WriteDomain(*dom, *plan, BuiltinCatalog());
  ASSERT_TRUE(out.ok());
  size_t vda = out->find("<target dev='vda' bus='virtio'/>");
  size_t end = out->find("</disk>", vda);
  ASSERT_NE(end, std::string::npos) << *out;
  std::string disk = out->substr(vda, end - vda);
  EXPECT_EQ(disk.find("<address"), disk.rfind("<address")) << disk;
  EXPECT_EQ(disk.find("slot='0x1e'"), std::string::npos) << disk;
}

// The controllers a plan adds are alike but for their numbers: each is written with its own
// index, chassis, port and address (the writer lays out one shape once and fills it in).
TEST(DomainWriter, AddedControllersOfOneShapeEachHaveTheirOwnValues) {
  std::string disks;
  for (char c = 'a'; c <= 'h'; ++c) {
    disks += std::string("    <disk type='file' device='disk'><source file='/") + c +
             "'/><target dev='vd" + c + "' bus='virtio'/></disk>\n";
  }
  std::string out = PlanToText(
      "<domain type='kvm'>\n  <name>s</name>\n  <os>\n"
      "    <type arch='x86_64' machine='q35'>hvm</type>\n  </os>\n  <devices>\n" +
      disks + "  </devices>\n</domain>\n");
  for (int i = 1; i <= 8; ++i) {
    std::string index = std::to_string(i);
    char port[8];
    std::snprintf(port, sizeof(port), "0x%x", 0x8 + i - 1);
    char function[8];
    std::snprintf(function, sizeof(function), "0x%x", i - 1);
    std::string controller =
        "    <controller type='pci' index='" + index + "' model='pcie-root-port'>\n"
        "      <model name='pcie-root-port'/>\n"
        "      <target chassis='" + index + "' port='" + port + "'/>\n"
        "      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='" + function +
        "'" + (i == 1 ? " multifunction='on'" : "") + "/>\n"
        "    </controller>\n";
    EXPECT_NE(out.find(controller), std::string::npos) << controller << "\n" << out;
  }
  EXPECT_EQ(PlanToText(out), out);
}

// More new devices than the writer keeps inline (its lists move to the heap, its key sort is a
// merge sort): they still come in libvirt's order, each with its own values.
TEST(DomainWriter, ManyAddedDevicesComeInLibvirtsOrder) {
  std::string disks;
  for (int i = 0; i < 40; ++i) {
    disks += "    <disk type='file' device='disk'><source file='/d" + std::to_string(i) +
             "'/><target dev='vd" + std::string(1, static_cast<char>('a' + i / 26)) +
             static_cast<char>('a' + i % 26) + "' bus='virtio'/></disk>\n";
  }
  std::string out = PlanToText(
      "<domain type='kvm'>\n  <name>s</name>\n  <os>\n"
      "    <type arch='x86_64' machine='q35'>hvm</type>\n  </os>\n  <devices>\n" +
      disks + "  </devices>\n</domain>\n");
  size_t at = 0;
  for (int i = 1; i <= 40; ++i) {
    std::string port = "<controller type='pci' index='" + std::to_string(i) +
                       "' model='pcie-root-port'>\n      <model name='pcie-root-port'/>\n"
                       "      <target chassis='" +
                       std::to_string(i) + "'";
    size_t found = out.find(port);
    ASSERT_NE(found, std::string::npos) << port << "\n" << out;
    EXPECT_GT(found, at) << "root port " << i << " is out of order";
    at = found;
  }
  EXPECT_LT(out.find("<controller type='pci' index='0' model='pcie-root'/>"),
            out.find("<controller type='pci' index='1'"));
  EXPECT_EQ(PlanToText(out), out);
}

}  // namespace pciplan
