#include "pciplan/domain/wishes.h"

#include <gtest/gtest.h>

#include "pciplan/domain/domain_reader.h"

namespace pciplan {
namespace {

std::string WithMetadata(const std::string& metadata, const std::string& devices = "") {
  return "<domain type='qemu'><name>t</name><metadata>" + metadata +
         "</metadata><os><type arch='x86_64' machine='q35'>hvm</type></os><devices>" + devices +
         "</devices></domain>";
}

const char* kNs = "xmlns:p='https://pciplan.dev/xmlns/wishes/1'";

TEST(Wishes, MetadataElementIsReadWithItsPrefix) {
  Result<Domain> d = ReadDomain(WithMetadata(
      std::string("<p:wishes ") + kNs +
      " version='1' pcieHotplugSlots='5' pciHotplugSlots='2'>"
      "<p:device name='ua-net0' hotpluggable='no' bus='pcie' connection='pcie-root-port'/>"
      "</p:wishes>"));
  ASSERT_TRUE(d.ok()) << d.errors().front().message;
  EXPECT_EQ(d->wishes.pcie_hotplug_slots, 5u);
  EXPECT_EQ(d->wishes.pci_hotplug_slots, 2u);
  ASSERT_EQ(d->wishes.devices.size(), 1u);
  EXPECT_EQ(d->wishes.devices[0].key, "ua-net0");
  EXPECT_EQ(d->wishes.devices[0].hotpluggable, Hotpluggable::kNo);
  EXPECT_EQ(d->wishes.devices[0].bus, BusWish::kPcie);
  EXPECT_EQ(d->wishes.devices[0].connection, "pcie-root-port");
}

TEST(Wishes, NamespaceDeclaredOnMetadataLikeLibvirtWritesItIsRead) {
  std::string xml =
      "<domain type='qemu'><name>t</name><metadata xmlns:ns0='https://pciplan.dev/xmlns/wishes/1'>"
      "<ns0:wishes version='1' defaultAddressType='pci'/></metadata>"
      "<os><type arch='aarch64' machine='virt'>hvm</type></os></domain>";
  Result<Domain> d = ReadDomain(xml);
  ASSERT_TRUE(d.ok()) << d.errors().front().message;
  EXPECT_EQ(d->wishes.default_address_type, TransportWish::kPci);
}

TEST(Wishes, OtherNamespacesInMetadataAreLeftAlone) {
  Result<Domain> d =
      ReadDomain(WithMetadata("<x:app xmlns:x='http://example.com/app' pcieHotplugSlots='oops'/>"));
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->wishes.empty());
}

TEST(Wishes, BadMetadataIsAnErrorAtItsLine) {
  struct Case {
    const char* what;
    std::string element;
  };
  const Case cases[] = {
      {"unknown domain wish", std::string("<p:wishes ") + kNs + " version='1' spareSlots='3'/>"},
      {"bad number", std::string("<p:wishes ") + kNs + " version='1' pcieHotplugSlots='x'/>"},
      {"missing version", std::string("<p:wishes ") + kNs + "/>"},
      {"other version", std::string("<p:wishes ") + kNs + " version='2'/>"},
      {"next namespace", "<p:wishes xmlns:p='https://pciplan.dev/xmlns/wishes/2' version='1'/>"},
      {"unknown device wish",
       std::string("<p:wishes ") + kNs + " version='1'>\n<p:device name='a' numa='1'/></p:wishes>"},
      {"bad device value",
       std::string("<p:wishes ") + kNs +
           " version='1'>\n<p:device name='a' hotpluggable='maybe'/></p:wishes>"},
      {"unnamed device",
       std::string("<p:wishes ") + kNs + " version='1'>\n<p:device bus='pci'/></p:wishes>"},
      {"unknown child", std::string("<p:wishes ") + kNs + " version='1'>\n<p:spare/></p:wishes>"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Result<Domain> d = ReadDomain(WithMetadata(c.element));
    ASSERT_FALSE(d.ok());
    EXPECT_EQ(d.errors().front().rule, Rule::kBadWish);
    EXPECT_EQ(d.errors().front().line, c.element.find('\n') == std::string::npos ? 1 : 2);
  }
}

TEST(Wishes, TwoWishesElementsAreAnError) {
  std::string e = std::string("<p:wishes ") + kNs + " version='1'/>";
  Result<Domain> d = ReadDomain(WithMetadata(e + e));
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.errors().front().rule, Rule::kBadWish);
}

TEST(Wishes, PolicyFileIsReadStrictly) {
  Result<Wishes> w = ParsePolicyFile(
      R"({"version": 1, "pcieHotplugSlots": 5, "pciHotplugSlots": "2",
          "defaultAddressType": "virtio-mmio", "devices": {"disk:vdb": {"bus": "pci"}}})");
  ASSERT_TRUE(w.ok()) << w.errors().front().message;
  EXPECT_EQ(w->pcie_hotplug_slots, 5u);
  EXPECT_EQ(w->pci_hotplug_slots, 2u);
  EXPECT_EQ(w->default_address_type, TransportWish::kVirtioMmio);
  ASSERT_NE(w->Find("disk:vdb"), nullptr);
  EXPECT_EQ(w->Find("disk:vdb")->bus, BusWish::kPci);
  for (const char* bad :
       {R"({"pcieHotplugSlots": 5})", R"({"version": 2})", R"({"version": 1, "spare": 5})",
        R"({"version": 1, "devices": []})", R"({"version": 1, "devices": {"a": {"bus": 1}}})",
        R"({"version": 1, "pcieHotplugSlots": -1})", "[", "{"}) {
    SCOPED_TRACE(bad);
    Result<Wishes> r = ParsePolicyFile(bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.errors().front().rule, Rule::kBadWish);
  }
}

TEST(Wishes, FlagsParse) {
  Result<Wishes> slots = ParseHotplugSlotsFlag("pcie=5,pci=2");
  ASSERT_TRUE(slots.ok());
  EXPECT_EQ(slots->pcie_hotplug_slots, 5u);
  EXPECT_EQ(slots->pci_hotplug_slots, 2u);
  Result<DeviceWish> mac = ParseWishFlag("interface:52:54:00:00:00:01:hotpluggable=no,bus=pcie");
  ASSERT_TRUE(mac.ok());
  EXPECT_EQ(mac->key, "interface:52:54:00:00:00:01");
  EXPECT_EQ(mac->hotpluggable, Hotpluggable::kNo);
  EXPECT_EQ(mac->bus, BusWish::kPcie);
  for (const char* bad : {"pcie", "usb=2", "pcie=x", "pcie=5,"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ParseHotplugSlotsFlag(bad).ok());
  }
  for (const char* bad :
       {"ua-x", "hotpluggable=no", "ua-x:hot=no", "ua-x:bus=isa", "ua-x:bus=pci,"}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(ParseWishFlag(bad).ok());
  }
}

DeviceWish Named(const std::string& key, Hotpluggable h = Hotpluggable::kUnset,
                 BusWish bus = BusWish::kUnset, const std::string& connection = "") {
  return DeviceWish{key, h, bus, connection, std::nullopt};
}

Wishes OfDevices(std::vector<DeviceWish> devices) {
  Wishes w;
  w.devices = std::move(devices);
  return w;
}

TEST(Wishes, OverlayLetsTheLaterSourceWinPerField) {
  Wishes metadata = OfDevices({Named("ua-a", Hotpluggable::kYes, BusWish::kPcie)});
  metadata.pcie_hotplug_slots = 3;
  metadata.pci_hotplug_slots = 1;
  Wishes flags = OfDevices(
      {Named("ua-a", Hotpluggable::kNo), Named("ua-b", Hotpluggable::kUnset, BusWish::kPci)});
  flags.pcie_hotplug_slots = 8;
  Wishes w = Overlay(metadata, flags);
  EXPECT_EQ(w.pcie_hotplug_slots, 8u);
  EXPECT_EQ(w.pci_hotplug_slots, 1u);
  ASSERT_EQ(w.devices.size(), 2u);
  EXPECT_EQ(w.devices[0].hotpluggable, Hotpluggable::kNo);
  EXPECT_EQ(w.devices[0].bus, BusWish::kPcie);
  EXPECT_EQ(w.devices[1].key, "ua-b");
}

TEST(Wishes, DevicesAreNamedByAliasOrIdentityAndUnknownNamesFail) {
  Result<Domain> d = ReadDomain(WithMetadata(
      "",
      "<disk type='file' device='disk'><target dev='vdb' bus='virtio'/></disk>"
      "<interface type='user'><mac address='52:54:00:00:00:01'/><alias name='ua-n'/>"
      "</interface><hostdev mode='subsystem' type='pci'><source><address domain='0x0000' "
      "bus='0x01' slot='0x00' function='0x1'/></source></hostdev>"
      "<controller type='pci' index='3' model='pcie-root-port'/>"));
  ASSERT_TRUE(d.ok());
  Wishes w = OfDevices(
      {Named("controller:pci:3"), Named("hostdev:0000:01:00.1"), Named("ua-n"), Named("disk:vdb")});
  Result<std::vector<int>> r = ResolveDeviceWishes(*d, w);
  ASSERT_TRUE(r.ok()) << r.errors().front().message;
  EXPECT_EQ(*r, (std::vector<int>{3, 2, 1, 0}));
  w.devices.push_back(Named("interface:52:54:00:00:00:01"));
  EXPECT_EQ(ResolveDeviceWishes(*d, w).errors().front().rule, Rule::kBadWish);  // same device
  Wishes unknown = OfDevices({Named("ua-nothing")});
  EXPECT_EQ(ResolveDeviceWishes(*d, unknown).errors().front().rule, Rule::kBadWish);
}

TEST(Wishes, XmlOfWishesReadsBackTheSame) {
  Wishes w = OfDevices({Named("ua-a", Hotpluggable::kNo, BusWish::kPci, "pci-bridge")});
  w.pcie_hotplug_slots = 4;
  w.default_address_type = TransportWish::kVirtioMmio;
  Result<Domain> d = ReadDomain(WithMetadata(WishesXml(w, "", "  ")));
  ASSERT_TRUE(d.ok()) << d.errors().front().message;
  EXPECT_EQ(d->wishes, w);
}

TEST(Wishes, DropAddressesOpensTheNamedDevicesOnlyAndUnknownNamesFail) {
  Result<Domain> d = ReadDomain(WithMetadata(
      "",
      "<disk type='file' device='disk'><target dev='vdb' bus='virtio'/>"
      "<address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/></disk>"
      "<interface type='user'><mac address='52:54:00:00:00:01'/><alias name='ua-n'/>"
      "<address type='pci' domain='0x0000' bus='0x00' slot='0x06' function='0x0'/></interface>"
      "<controller type='pci' index='3' model='pcie-root-port'>"
      "<address type='pci' domain='0x0000' bus='0x00' slot='0x07' function='0x0'/></controller>"
      "<rng model='virtio'><backend model='random'>/dev/urandom</backend>"
      "<alias name='ua-rng'/></rng>"));
  ASSERT_TRUE(d.ok());
  Result<Domain> dropped = DropAddresses(*d, {"disk:vdb", "controller:pci:3"});
  ASSERT_TRUE(dropped.ok()) << dropped.errors().front().message;
  EXPECT_EQ(dropped->devices[0].address.type, AddressType::kNone);
  EXPECT_EQ(dropped->devices[1].address, d->devices[1].address);
  EXPECT_EQ(dropped->devices[2].address.type, AddressType::kNone);
  EXPECT_EQ(dropped->devices[2].GetOr("@index", ""), "3");  // its bus number stays
  EXPECT_EQ(dropped->text, d->text);
  // By alias too; and a device with no address to drop is fine.
  Result<Domain> by_alias = DropAddresses(*d, {"ua-n"});
  ASSERT_TRUE(by_alias.ok());
  EXPECT_TRUE(by_alias->devices[1].address.WantsPci());
  Result<Domain> rng = DropAddresses(*d, {"ua-rng"});
  ASSERT_TRUE(rng.ok());
  EXPECT_EQ(rng->devices[3].address.type, AddressType::kNone);
  Result<Domain> unknown = DropAddresses(*d, {"ua-n", "disk:vdz"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.errors().front().rule, Rule::kBadReplan);
  EXPECT_NE(unknown.errors().front().message.find("--replan 'disk:vdz'"), std::string::npos);
}

}  // namespace
}  // namespace pciplan
